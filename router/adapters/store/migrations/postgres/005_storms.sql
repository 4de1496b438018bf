-- Same contract as sqlite/004_storms.sql; see the comments there.
ALTER TABLE alerts ADD COLUMN page_key TEXT;
ALTER TABLE alerts ADD COLUMN severity_order INTEGER NOT NULL DEFAULT 0;
CREATE INDEX alerts_page_shown ON alerts (page_key, status, id);
CREATE INDEX alerts_page_worst ON alerts (page_key, status, severity_order, id);
UPDATE alerts SET page_key = (
    SELECT p.key FROM pages p WHERE p.group_key = alerts.group_key AND p.active = 1
) WHERE pageable = 1;

DROP INDEX pages_assignee;
CREATE INDEX pages_one_by_one ON pages (assignee, opened_at) WHERE digest_key IS NULL;

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

ALTER TABLE jobs ADD COLUMN target TEXT;
CREATE UNIQUE INDEX jobs_one_pending_edit ON jobs (target) WHERE status = 'pending';
ALTER TABLE message_versions ADD COLUMN applied_at DOUBLE PRECISION;

CREATE TABLE inbox (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      TEXT    NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    body        BYTEA   NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'pending',
    error       TEXT
);
CREATE INDEX inbox_due ON inbox (status, id);
