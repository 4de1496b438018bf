-- The console's reads: what its lists filter and count, as columns (kept by every
-- save), so a list or a 90-day report is an indexed range read, never a parse of
-- every page's or incident's JSON state.
ALTER TABLE incidents ADD COLUMN severity TEXT;
ALTER TABLE incidents ADD COLUMN commander TEXT;
ALTER TABLE incidents ADD COLUMN confidential INTEGER NOT NULL DEFAULT 0;
-- jsonb refuses the escape \u0000, which a stored state keeps for a NUL in a label or
-- title: such a row is left to its next save (which fills these columns) rather than
-- failing the upgrade. SQLite's json_extract takes it, so there every row is filled.
UPDATE incidents SET severity = state::jsonb ->> 'severity',
    commander = state::jsonb ->> 'commander',
    confidential = CASE WHEN (state::jsonb ->> 'confidential') = 'true' THEN 1 ELSE 0 END
    WHERE strpos(state, '\u0000') = 0;
CREATE INDEX incidents_declared ON incidents (declared_at);

-- Alert quality: which alert a page was about, when and why it was decided.
ALTER TABLE pages ADD COLUMN alert_name TEXT;
ALTER TABLE pages ADD COLUMN decided_at DOUBLE PRECISION;
ALTER TABLE pages ADD COLUMN reason TEXT;
UPDATE pages SET decided_at = extract(epoch FROM (state::jsonb ->> 'decided_at')::timestamptz),
    reason = state::jsonb ->> 'reason'
    WHERE strpos(state, '\u0000') = 0 AND state::jsonb ->> 'decided_at' IS NOT NULL;
-- A page's alert name is its title's first word (lifecycle._title).
UPDATE pages SET alert_name = split_part(state::jsonb ->> 'title', ' ', 1)
    WHERE strpos(state, '\u0000') = 0;
-- Covering: alert quality counts a window by name and status from the index alone.
CREATE INDEX pages_opened ON pages (opened_at, alert_name, status);
-- One alert's pages over time (the chart on its incident's page).
CREATE INDEX pages_alert ON pages (alert_name, opened_at);
-- The pages list: every open page, folded ones included, newest first.
CREATE INDEX pages_open ON pages (opened_at) WHERE status = 'open';
