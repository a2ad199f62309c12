-- +goose Up
-- LMS API keys: shown once, stored as a SHA-256 hash, revocable. Each key is
-- also an LMS role grant (issuer urn:rollcall:api-key, subject = key ID).
CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    programme_id text NOT NULL REFERENCES programmes(id),
    name         text NOT NULL,
    prefix       text NOT NULL,
    hash         text NOT NULL UNIQUE,
    created_by   text NOT NULL,
    created_at   datetime NOT NULL,
    revoked_at   datetime
);
CREATE INDEX api_keys_programme ON api_keys (programme_id);
CREATE INDEX lifecycle_events_time ON lifecycle_events (occurred_at);
CREATE INDEX learners_active ON learners (programme_id, id) WHERE status = 'ACTIVE';

-- +goose Down
DROP INDEX learners_active;
DROP INDEX lifecycle_events_time;
DROP TABLE api_keys;
