-- Same contract as sqlite/001_intake.sql; see the comments there.
CREATE TABLE alerts (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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

CREATE TABLE deliveries (
    source       TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    PRIMARY KEY (source, delivery_id)
);

-- DOUBLE PRECISION, not REAL: PostgreSQL's REAL is 4 bytes and would round epochs.
CREATE TABLE jobs (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind           TEXT    NOT NULL,
    key            TEXT    NOT NULL UNIQUE,
    payload        TEXT    NOT NULL,
    status         TEXT    NOT NULL DEFAULT 'pending',
    due_at         DOUBLE PRECISION NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    claimed_by     TEXT,
    claimed_until  DOUBLE PRECISION,
    last_error     TEXT,
    result         TEXT,
    created_at     DOUBLE PRECISION NOT NULL,
    updated_at     DOUBLE PRECISION NOT NULL
);
CREATE INDEX jobs_due ON jobs (status, due_at);
