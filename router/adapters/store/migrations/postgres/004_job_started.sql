-- started_at: an attempt began carrying the job out (the adapter was called) and no
-- outcome was recorded since. Such a job may have happened: before it runs again the
-- adapter looks whether it did (router/outbox.py, "unknown outcomes").
ALTER TABLE jobs ADD COLUMN started_at DOUBLE PRECISION;
