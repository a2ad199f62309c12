-- +goose Up
-- CTL-6: the contract end a programme's learners were last warned about, so
-- the warning goes out once (and again if the end date moves).
ALTER TABLE programmes ADD COLUMN contract_warned_for datetime;

-- +goose Down
ALTER TABLE programmes DROP COLUMN contract_warned_for;
