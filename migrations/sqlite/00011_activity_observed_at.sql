-- +goose Up
-- ONC-3, CTL-7: when the LMS read an enrolment state. A row read earlier
-- than the one stored (a late retry) does not move the state back.
ALTER TABLE learning_activity ADD COLUMN observed_at datetime;

-- +goose Down
ALTER TABLE learning_activity DROP COLUMN observed_at;
