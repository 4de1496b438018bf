-- Incident channels: an incident's own Slack channel, by id, so `/incident` typed in
-- that channel finds its incident without INC-n (one indexed row). Set once the job
-- that creates the channel has run; NULL in thread mode and for older incidents.
ALTER TABLE incidents ADD COLUMN channel_id TEXT;
CREATE UNIQUE INDEX incidents_channel ON incidents (channel_id) WHERE channel_id IS NOT NULL;
