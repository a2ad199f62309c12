-- +goose Up
-- The programme's LMS address: learners are sent there once they have
-- access (the learner pages' "You have access" link). Empty: not set.
ALTER TABLE programmes ADD COLUMN lms_url text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE programmes DROP COLUMN lms_url;
