-- +goose Up
-- ONC-9, ONC-4: a name the learner or an admin corrected is kept; names
-- from a provider's token then no longer overwrite it at sign-in.
ALTER TABLE learners ADD COLUMN names_by_person boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE learners DROP COLUMN names_by_person;
