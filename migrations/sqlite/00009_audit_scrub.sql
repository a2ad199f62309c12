-- +goose Up
-- Append-only except that an erasure may blank the free-text reason of
-- entries about the erased learner; nothing else may change (GEN-2, CTL-12).
DROP TRIGGER audit_entries_no_update;
-- +goose StatementBegin
CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
WHEN NOT (NEW.reason = '' AND NEW.id = OLD.id AND NEW.programme_id IS OLD.programme_id AND NEW.actor_id = OLD.actor_id
          AND NEW.action = OLD.action AND NEW.target_type = OLD.target_type AND NEW.target_id = OLD.target_id
          AND NEW.details = OLD.details AND NEW.occurred_at = OLD.occurred_at)
BEGIN
    SELECT RAISE(ABORT, 'audit_entries is append-only');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER audit_entries_no_update;
-- +goose StatementBegin
CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN
    SELECT RAISE(ABORT, 'audit_entries is append-only');
END;
-- +goose StatementEnd
