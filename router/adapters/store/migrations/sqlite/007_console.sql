-- The console's reads: what its lists filter and count, as columns (kept by every
-- save), so a list or a 90-day report is an indexed range read, never a parse of
-- every page's or incident's JSON state.
ALTER TABLE incidents ADD COLUMN severity TEXT;
ALTER TABLE incidents ADD COLUMN commander TEXT;
ALTER TABLE incidents ADD COLUMN confidential INTEGER NOT NULL DEFAULT 0;
UPDATE incidents SET severity = json_extract(state, '$.severity'),
    commander = json_extract(state, '$.commander'),
    confidential = coalesce(json_extract(state, '$.confidential'), 0);
CREATE INDEX incidents_declared ON incidents (declared_at);

-- Alert quality: which alert a page was about, when and why it was decided.
ALTER TABLE pages ADD COLUMN alert_name TEXT;
ALTER TABLE pages ADD COLUMN decided_at REAL;
ALTER TABLE pages ADD COLUMN reason TEXT;
UPDATE pages SET decided_at = (julianday(json_extract(state, '$.decided_at')) - 2440587.5) * 86400.0,
    reason = json_extract(state, '$.reason')
    WHERE json_extract(state, '$.decided_at') IS NOT NULL;
-- A page's alert name is its title's first word (lifecycle._title).
UPDATE pages SET alert_name = substr(json_extract(state, '$.title'), 1,
    instr(json_extract(state, '$.title') || ' ', ' ') - 1);
-- Covering: alert quality counts a window by name and status from the index alone.
CREATE INDEX pages_opened ON pages (opened_at, alert_name, status);
-- One alert's pages over time (the chart on its incident's page).
CREATE INDEX pages_alert ON pages (alert_name, opened_at);
-- The pages list: every open page, folded ones included, newest first.
CREATE INDEX pages_open ON pages (opened_at) WHERE status = 'open';
