-- +goose Up
-- The feed is ordered by row ID (SQLite has one writer); drop the unused column.
DROP INDEX lifecycle_events_feed;
ALTER TABLE lifecycle_events DROP COLUMN txid;
CREATE INDEX lifecycle_events_feed ON lifecycle_events (programme_id, id);

-- +goose Down
DROP INDEX lifecycle_events_feed;
ALTER TABLE lifecycle_events ADD COLUMN txid integer NOT NULL DEFAULT 0;
CREATE INDEX lifecycle_events_feed ON lifecycle_events (programme_id, txid, id);
