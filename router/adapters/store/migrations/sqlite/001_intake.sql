-- Alerts as received. One row per (source, group, fingerprint, startsAt): Alertmanager
-- resends the whole group, so the natural key makes intake idempotent; a resolution
-- updates the firing row. A new firing of the same label set has a new startsAt.
CREATE TABLE alerts (
    id           INTEGER PRIMARY KEY,
    source       TEXT    NOT NULL,
    group_key    TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,
    starts_at    TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    ends_at      TEXT,
    labels       TEXT    NOT NULL,
    annotations  TEXT    NOT NULL,
    links        TEXT    NOT NULL,
    pageable     INTEGER NOT NULL,
    first_seen   TEXT    NOT NULL,
    last_seen    TEXT    NOT NULL,
    seen_count   INTEGER NOT NULL DEFAULT 1,
    UNIQUE (source, group_key, fingerprint, starts_at)
);
CREATE INDEX alerts_group ON alerts (group_key, status);

-- Deliveries already accepted, for sources that name them (PagerDuty X-Webhook-Id).
CREATE TABLE deliveries (
    source       TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    PRIMARY KEY (source, delivery_id)
);

-- The transactional outbox. due_at is epoch seconds so ordering is numeric.
CREATE TABLE jobs (
    id             INTEGER PRIMARY KEY,
    kind           TEXT    NOT NULL,
    key            TEXT    NOT NULL UNIQUE,
    payload        TEXT    NOT NULL,
    status         TEXT    NOT NULL DEFAULT 'pending',
    due_at         REAL    NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    claimed_by     TEXT,
    claimed_until  REAL,
    last_error     TEXT,
    result         TEXT,
    created_at     REAL    NOT NULL,
    updated_at     REAL    NOT NULL
);
CREATE INDEX jobs_due ON jobs (status, due_at);
