-- The inbox without an index on (status, id): every accepted webhook paid for its
-- upkeep. Pending deliveries are taken in id order straight from the table (few dead
-- ones sit among them), and counted from the range of their ids (SqliteTx.inbox_stats),
-- which needs only the dead ones indexed.
DROP INDEX inbox_due;
CREATE INDEX inbox_dead ON inbox (id) WHERE status = 'dead';
