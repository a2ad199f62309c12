-- +goose Up
-- After an erasure, a token the person's provider issued before it must not
-- provision them again: a hash of issuer and subject (never the values) is
-- kept for a day, longer than any token lives, then purged by the sweep.
CREATE TABLE erased_identities (
    hash      text PRIMARY KEY,
    erased_at datetime NOT NULL
);

-- +goose Down
DROP TABLE erased_identities;
