-- +goose Up
-- Issue 10: the learner's lifecycle in one guarded place (see the PostgreSQL
-- migration of the same number).
-- (No CHECK on origin here: SQLite cannot drop a column a CHECK names.)
ALTER TABLE learners ADD COLUMN origin text NOT NULL DEFAULT 'ADMIN';
ALTER TABLE learners ADD COLUMN identity_linked_at datetime;
ALTER TABLE learners ADD COLUMN first_activated_at datetime;

UPDATE learners SET origin = 'SIGN_IN'
    WHERE id IN (SELECT target_id FROM audit_entries WHERE action = 'learner.provision');
UPDATE learners SET origin = 'IMPORT'
    WHERE id IN (SELECT target_id FROM audit_entries WHERE action = 'learner.import');
UPDATE learners SET identity_linked_at = (SELECT min(i.created_at) FROM learner_identities i WHERE i.learner_id = learners.id);
UPDATE learners SET identity_linked_at = created_at WHERE identity_linked_at IS NULL AND origin = 'SIGN_IN';
UPDATE learners SET first_activated_at = (SELECT min(e.occurred_at) FROM lifecycle_events e
    WHERE e.learner_id = learners.id AND e.type IN ('LEARNER_ACTIVATED', 'ACCESS_GRANTED'));
UPDATE learners SET first_activated_at = (SELECT min(a.decided_at) FROM policy_acceptances a
    WHERE a.learner_id = learners.id AND a.decision = 'ACCEPTED')
    WHERE first_activated_at IS NULL AND status <> 'PENDING_ACCEPTANCE';
UPDATE learners SET first_activated_at = updated_at WHERE first_activated_at IS NULL AND status = 'ACTIVE';

CREATE UNIQUE INDEX membership_approvals_one_per_person ON membership_approvals (proposal_id, actor_id)
    WHERE actor_id NOT LIKE 'system:%';
CREATE UNIQUE INDEX role_grants_one_body ON role_grants (issuer, subject, programme_id)
    WHERE role = 'PROGRAMME_ADMIN' AND governing_body_id IS NOT NULL;

-- SQLite has no TRUNCATE: DELETE without WHERE is its nearest, and its
-- truncate optimisation is off for a table with a DELETE trigger, so
-- audit_entries_no_delete refuses it row by row. A reason may be blanked
-- only for an entry about an erased learner (the erasure's own scrub).
DROP TRIGGER audit_entries_no_update;
-- +goose StatementBegin
CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
WHEN NOT (NEW.reason = '' AND NEW.id = OLD.id AND NEW.programme_id IS OLD.programme_id AND NEW.actor_id = OLD.actor_id
          AND NEW.action = OLD.action AND NEW.target_type = OLD.target_type AND NEW.target_id = OLD.target_id
          AND NEW.details = OLD.details AND NEW.occurred_at = OLD.occurred_at
          AND EXISTS (SELECT 1 FROM learners l WHERE l.id = OLD.target_id AND l.status = 'ERASED'))
BEGIN
    SELECT RAISE(ABORT, 'audit_entries is append-only');
END;
-- +goose StatementEnd

-- +goose Down
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
DROP INDEX role_grants_one_body;
DROP INDEX membership_approvals_one_per_person;
ALTER TABLE learners DROP COLUMN first_activated_at;
ALTER TABLE learners DROP COLUMN identity_linked_at;
ALTER TABLE learners DROP COLUMN origin;
