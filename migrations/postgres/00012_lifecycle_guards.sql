-- +goose Up
-- Issue 10: the learner's lifecycle in one guarded place.

-- How a learner record came to exist, whether a sign-in identity was ever
-- linked to it, and its first activation (read by the state machine, never
-- from the feed, which is purged after its retention).
ALTER TABLE learners ADD COLUMN origin text NOT NULL DEFAULT 'ADMIN'
    CHECK (origin IN ('SIGN_IN', 'ADMIN', 'IMPORT', 'DIRECTORY'));
ALTER TABLE learners ADD COLUMN identity_linked_at timestamptz;
ALTER TABLE learners ADD COLUMN first_activated_at timestamptz;

UPDATE learners SET origin = 'SIGN_IN'
    WHERE id::text IN (SELECT target_id FROM audit_entries WHERE action = 'learner.provision');
UPDATE learners SET origin = 'IMPORT'
    WHERE id::text IN (SELECT target_id FROM audit_entries WHERE action = 'learner.import');
UPDATE learners l SET identity_linked_at = i.first
    FROM (SELECT learner_id, min(created_at) AS first FROM learner_identities GROUP BY learner_id) i
    WHERE i.learner_id = l.id;
-- An erased learner's identities are gone: it was linked if it was made by a sign-in.
UPDATE learners SET identity_linked_at = created_at WHERE identity_linked_at IS NULL AND origin = 'SIGN_IN';
UPDATE learners l SET first_activated_at = e.first
    FROM (SELECT learner_id, min(occurred_at) AS first FROM lifecycle_events
          WHERE type IN ('LEARNER_ACTIVATED', 'ACCESS_GRANTED') GROUP BY learner_id) e
    WHERE e.learner_id = l.id;
-- Activated before the feed rows that said so were purged.
UPDATE learners l SET first_activated_at = a.first
    FROM (SELECT learner_id, min(decided_at) AS first FROM policy_acceptances WHERE decision = 'ACCEPTED' GROUP BY learner_id) a
    WHERE a.learner_id = l.id AND l.first_activated_at IS NULL AND l.status <> 'PENDING_ACCEPTANCE';
UPDATE learners SET first_activated_at = updated_at WHERE first_activated_at IS NULL AND status = 'ACTIVE';

-- CTL-1: one person approves a proposal once, whatever grants they hold
-- (system actors seed both bodies' approvals), and holds a programme admin
-- grant for at most one governing body of a programme.
CREATE UNIQUE INDEX membership_approvals_one_per_person ON membership_approvals (proposal_id, actor_id)
    WHERE actor_id NOT LIKE 'system:%';
CREATE UNIQUE INDEX role_grants_one_body ON role_grants (issuer, subject, programme_id)
    WHERE role = 'PROGRAMME_ADMIN' AND governing_body_id IS NOT NULL;

-- The audit log refuses TRUNCATE too, and an erasure is the only thing that
-- may blank a reason: of an entry about a learner who is erased (the learner
-- row turns ERASED earlier in the same transaction as the scrub).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.reason = '' AND NEW.id = OLD.id AND NEW.programme_id IS NOT DISTINCT FROM OLD.programme_id
       AND NEW.actor_id = OLD.actor_id AND NEW.action = OLD.action AND NEW.target_type = OLD.target_type
       AND NEW.target_id = OLD.target_id AND NEW.details = OLD.details AND NEW.occurred_at = OLD.occurred_at
       AND EXISTS (SELECT 1 FROM learners l WHERE l.id::text = OLD.target_id AND l.status = 'ERASED') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_entries is append-only';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only();

-- +goose Down
DROP TRIGGER audit_entries_no_truncate ON audit_entries;
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
DROP INDEX role_grants_one_body;
DROP INDEX membership_approvals_one_per_person;
ALTER TABLE learners DROP COLUMN first_activated_at;
ALTER TABLE learners DROP COLUMN identity_linked_at;
ALTER TABLE learners DROP COLUMN origin;
