-- +goose Up
-- Learners (CTL-3: name and work email only), their linked OIDC identities
-- (invariant 1: issuer + subject), browser sessions, policy acceptances
-- (CTL-5, ONC-1, ONC-2) and the change feed the LMS follows (invariant 3).

CREATE TABLE identity_providers (
    id                uuid PRIMARY KEY,
    programme_id      uuid NOT NULL REFERENCES programmes(id),
    organisation_id   uuid REFERENCES organisations(id),   -- NULL: the programme's own provider
    issuer            text NOT NULL UNIQUE,
    client_id         text NOT NULL,
    client_secret_enc text,           -- AES-GCM with ROLLCALL_SECRET_KEY, or NULL
    client_secret_env text,           -- or the name of an environment variable holding it
    audience          text NOT NULL,
    scopes            text NOT NULL DEFAULT 'openid email profile',
    email_trust       text NOT NULL CHECK (email_trust IN ('VERIFIED_CLAIM', 'TRUSTED')),
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);
CREATE UNIQUE INDEX identity_providers_one_per_org ON identity_providers (organisation_id) WHERE organisation_id IS NOT NULL;

CREATE TABLE learners (
    id               uuid PRIMARY KEY,
    programme_id     uuid NOT NULL REFERENCES programmes(id),
    organisation_id  uuid NOT NULL REFERENCES organisations(id),
    access_group_id  uuid REFERENCES access_groups(id),
    email            text,            -- normalised; NULL once erased
    given_name       text,
    family_name      text,
    status           text NOT NULL CHECK (status IN ('PENDING_ACCEPTANCE', 'ACTIVE', 'REMOVAL_SCHEDULED', 'WITHDRAWN', 'ERASED')),
    removal_reason   text,
    removal_due_at   timestamptz,
    erased_at        timestamptz,
    last_sign_in_at  timestamptz,
    last_activity_at timestamptz,
    version          bigint NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
-- One learner per normalised email in the whole installation.
CREATE UNIQUE INDEX learners_email ON learners (email) WHERE email IS NOT NULL;
CREATE INDEX learners_programme ON learners (programme_id, id);
CREATE INDEX learners_organisation ON learners (organisation_id, id);
CREATE INDEX learners_group ON learners (access_group_id);

CREATE TABLE learner_identities (
    id           uuid PRIMARY KEY,
    learner_id   uuid NOT NULL REFERENCES learners(id),
    issuer       text NOT NULL,
    subject      text NOT NULL,
    created_at   timestamptz NOT NULL,
    UNIQUE (issuer, subject)
);
CREATE INDEX learner_identities_learner ON learner_identities (learner_id);

CREATE TABLE sessions (
    id           text PRIMARY KEY,    -- SHA-256 of the cookie value, never the value
    learner_id   uuid REFERENCES learners(id),
    issuer       text NOT NULL,
    subject      text NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX sessions_learner ON sessions (learner_id);

CREATE TABLE login_states (
    id            text PRIMARY KEY,   -- SHA-256 of the state parameter
    provider_id   uuid NOT NULL REFERENCES identity_providers(id) ON DELETE CASCADE,
    nonce         text NOT NULL,
    verifier      text NOT NULL,
    browser_hash  text NOT NULL,      -- binds the state to the browser's cookie
    return_to     text NOT NULL DEFAULT '/',
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL
);

CREATE TABLE policy_acceptances (
    id                uuid PRIMARY KEY,
    learner_id        uuid NOT NULL REFERENCES learners(id),
    policy_version_id uuid NOT NULL REFERENCES policy_versions(id),
    decision          text NOT NULL CHECK (decision IN ('ACCEPTED', 'DECLINED')),
    age_confirmed     boolean NOT NULL DEFAULT false,
    given_by          text NOT NULL CHECK (given_by IN ('SELF', 'ADMIN')),
    actor_id          text NOT NULL,
    note              text NOT NULL DEFAULT '',
    decided_at        timestamptz NOT NULL,
    UNIQUE (learner_id, policy_version_id)
);

-- The feed: opaque IDs only. On PostgreSQL each row carries the writing
-- transaction's ID so readers can stop below the oldest transaction still
-- running and never skip a row that commits late (gap-free).
CREATE TABLE lifecycle_events (
    id              bigserial PRIMARY KEY,
    txid            xid8 NOT NULL DEFAULT pg_current_xact_id(),
    programme_id    uuid NOT NULL,
    learner_id      uuid NOT NULL,
    type            text NOT NULL,
    learner_version bigint NOT NULL,
    occurred_at     timestamptz NOT NULL
);
CREATE INDEX lifecycle_events_feed ON lifecycle_events (programme_id, txid, id);
CREATE INDEX lifecycle_events_learner ON lifecycle_events (learner_id);

-- +goose Down
DROP TABLE lifecycle_events;
DROP TABLE policy_acceptances;
DROP TABLE login_states;
DROP TABLE sessions;
DROP TABLE learner_identities;
DROP TABLE learners;
DROP TABLE identity_providers;
