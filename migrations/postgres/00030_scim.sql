-- +goose Up
-- SCIM 2.0 provisioning (issue 15). A directory token belongs to one
-- organisation: its secret is shown once and stored as a SHA-256 hash.
CREATE TABLE scim_tokens (
    id              uuid PRIMARY KEY,
    programme_id    uuid NOT NULL REFERENCES programmes(id),
    organisation_id uuid NOT NULL REFERENCES organisations(id),
    name            text NOT NULL,
    prefix          text NOT NULL,
    hash            text NOT NULL UNIQUE,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL,
    last_used_at    timestamptz,
    revoked_at      timestamptz
);
CREATE INDEX scim_tokens_organisation ON scim_tokens (organisation_id);

-- What a directory knows of a learner beyond the learner row: its own object
-- ID (externalId), whether it deleted the user (DELETE: 404 afterwards), and
-- the removal it caused (so active=true reverses only that one, GEN-4).
-- external_id may be personal (Entra maps it from mailNickname by default),
-- so the row goes with the learner's erasure (invariant 2; trigger below).
CREATE TABLE scim_users (
    learner_id      uuid PRIMARY KEY REFERENCES learners(id),
    organisation_id uuid NOT NULL REFERENCES organisations(id),
    external_id     text,
    deleted_at      timestamptz,
    removal_due_at  timestamptz,  -- the due date of the removal the directory caused; NULL: none
    version         bigint NOT NULL DEFAULT 1,
    updated_at      timestamptz NOT NULL
);
CREATE UNIQUE INDEX scim_users_external_id ON scim_users (organisation_id, external_id) WHERE external_id IS NOT NULL;

-- +goose StatementBegin
CREATE FUNCTION scim_users_forget_erased() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM scim_users WHERE learner_id = NEW.id;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER scim_users_forget_erased AFTER UPDATE OF status ON learners
    FOR EACH ROW WHEN (NEW.status = 'ERASED') EXECUTE FUNCTION scim_users_forget_erased();

-- +goose Down
DROP TRIGGER scim_users_forget_erased ON learners;
DROP FUNCTION scim_users_forget_erased();
DROP TABLE scim_users;
DROP TABLE scim_tokens;
