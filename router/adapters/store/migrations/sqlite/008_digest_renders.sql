-- Digest parts whose lines changed since their message was last rendered. In a storm
-- the inbox renders a part at most every few hundred milliseconds, not after every
-- batch; a row here keeps that promise across a restart (the next batch renders it).
CREATE TABLE digest_stale (
    digest_key TEXT NOT NULL,
    part INTEGER NOT NULL,
    PRIMARY KEY (digest_key, part)
);
