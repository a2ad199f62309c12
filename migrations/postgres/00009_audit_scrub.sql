-- +goose Up
-- The audit log stays append-only with one exception: an erasure may blank
-- the free-text reason of entries about the erased learner (an admin's note
-- may name them). Actor, action, target and time are never changed, so the
-- history survives pseudonymously (GEN-2) and stays accountable (CTL-12).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.reason = '' AND NEW.id = OLD.id AND NEW.programme_id IS NOT DISTINCT FROM OLD.programme_id
       AND NEW.actor_id = OLD.actor_id AND NEW.action = OLD.action AND NEW.target_type = OLD.target_type
       AND NEW.target_id = OLD.target_id AND NEW.details = OLD.details AND NEW.occurred_at = OLD.occurred_at THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_entries is append-only';
END;
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_entries is append-only';
END;
$$;
-- +goose StatementEnd
