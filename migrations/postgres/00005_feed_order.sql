-- +goose Up
-- The feed is ordered by row ID: writers take a per-programme advisory lock
-- just before inserting feed rows and hold it to commit, so IDs become
-- visible in order and each learner's versions only increase along the feed.
-- The transaction-ID column of the first design is no longer needed.
DROP INDEX lifecycle_events_feed;
ALTER TABLE lifecycle_events DROP COLUMN txid;
CREATE INDEX lifecycle_events_feed ON lifecycle_events (programme_id, id);

-- +goose Down
DROP INDEX lifecycle_events_feed;
ALTER TABLE lifecycle_events ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX lifecycle_events_feed ON lifecycle_events (programme_id, txid, id);
