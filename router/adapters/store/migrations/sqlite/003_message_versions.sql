-- The newest version of each Slack message that was actually applied. Message edits
-- carry the whole message, so an older edit that was retried must not land after a
-- newer one: the outbox skips an edit whose version is not newer than this.
CREATE TABLE message_versions (
    target TEXT    PRIMARY KEY,
    seq    INTEGER NOT NULL
);
