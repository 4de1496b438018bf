-- Storms: the work a delivery causes depends on its own alerts, not on its group's size.

-- The page an alert belongs to (set when it is recorded for that page), so a page
-- reads what it shows and its evidence by index, never the whole group. The
-- severity order is the alert's place in the page's suggestion (lower is worse):
-- the worst firing alert is one indexed row.
ALTER TABLE alerts ADD COLUMN page_key TEXT;
ALTER TABLE alerts ADD COLUMN severity_order INTEGER NOT NULL DEFAULT 0;
CREATE INDEX alerts_page_shown ON alerts (page_key, status, id);
CREATE INDEX alerts_page_worst ON alerts (page_key, status, severity_order, id);
-- Pages open before this migration: their alerts belong to the group's active page.
UPDATE alerts SET page_key = (
    SELECT p.key FROM pages p WHERE p.group_key = alerts.group_key AND p.active = 1
) WHERE pageable = 1;

-- Storm control counts the pages a person got one by one; folded pages stay out of
-- the index, so counting never walks a digest of thousands.
DROP INDEX pages_assignee;
CREATE INDEX pages_one_by_one ON pages (assignee, opened_at) WHERE digest_key IS NULL;

-- A storm digest: its state (count, who got it, its messages) in one row, and one
-- line per folded page, so a fold appends a line instead of reloading every page.
CREATE TABLE digests (
    key      TEXT    PRIMARY KEY,
    state    TEXT    NOT NULL,
    version  INTEGER NOT NULL
);
CREATE TABLE digest_lines (
    digest_key      TEXT    NOT NULL,
    position        INTEGER NOT NULL,
    page_key        TEXT    NOT NULL,
    title           TEXT    NOT NULL,
    severity        TEXT    NOT NULL,
    firing          INTEGER NOT NULL,
    resolved        INTEGER NOT NULL,
    status          TEXT    NOT NULL,
    all_resolved    INTEGER NOT NULL,
    incident_number INTEGER,
    PRIMARY KEY (digest_key, position)
);

-- Coalesced message edits: at most one pending edit per message (``target``); a newer
-- state replaces the pending edit's payload instead of queueing another call.
ALTER TABLE jobs ADD COLUMN target TEXT;
CREATE UNIQUE INDEX jobs_one_pending_edit ON jobs (target) WHERE status = 'pending';
ALTER TABLE message_versions ADD COLUMN applied_at REAL;

-- The inbox: Alertmanager deliveries as received, committed before the 2xx and
-- processed (deleted) in the transaction that applies them: exactly once.
CREATE TABLE inbox (
    id          INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    received_at REAL    NOT NULL,
    body        BLOB    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'pending',
    error       TEXT
);
CREATE INDEX inbox_due ON inbox (status, id);
