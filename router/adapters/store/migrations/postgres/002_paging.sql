-- Pages and incidents keep their full state as JSON (the lifecycle's own models), plus
-- the columns queries and constraints need. ``version`` guards against lost updates
-- when replicas race: a save only succeeds against the version it read.
CREATE TABLE pages (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key        TEXT    NOT NULL UNIQUE,
    group_key  TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    active     INTEGER NOT NULL,
    assignee   TEXT,
    digest_key TEXT,
    opened_at  DOUBLE PRECISION    NOT NULL,
    state      TEXT    NOT NULL,
    version    INTEGER NOT NULL
);
-- At most one active page per alert group: the rule "new alerts of the same group
-- update the same page; they do not page again", enforced even across replicas.
CREATE UNIQUE INDEX pages_one_active_per_group ON pages (group_key) WHERE active = 1;
CREATE INDEX pages_assignee ON pages (assignee, opened_at);
CREATE INDEX pages_digest ON pages (digest_key);

CREATE TABLE incidents (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number      INTEGER NOT NULL UNIQUE,
    page_key    TEXT    UNIQUE,
    status      TEXT    NOT NULL,
    declared_at DOUBLE PRECISION    NOT NULL,
    state       TEXT    NOT NULL,
    version     INTEGER NOT NULL
);

-- Append-only record of everything that happened to a page and its incident.
CREATE TABLE timeline (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    page_key        TEXT,
    incident_number INTEGER,
    at              DOUBLE PRECISION    NOT NULL,
    actor           TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    data            TEXT    NOT NULL
);
CREATE INDEX timeline_incident ON timeline (incident_number, at);
CREATE INDEX timeline_page ON timeline (page_key, at);
