-- +goose Up
-- Programme set-up: programmes, governing bodies (CTL-1), partner organisations (CTL-2),
-- their email domains, access groups and courses (CTL-4), role grants (CTL-12) and the
-- append-only audit log.
CREATE TABLE programmes (
    id                       text PRIMARY KEY,
    name                     text NOT NULL UNIQUE,
    preset                   text NOT NULL CHECK (preset IN ('CONNECT_TO_LEARN', 'ONCLICK')),
    minimum_age              integer NOT NULL DEFAULT 0,
    erasure_needs_approval   boolean NOT NULL DEFAULT false,
    withdrawal_delay_s       bigint NOT NULL DEFAULT 0,
    leaver_grace_s           bigint NOT NULL,
    automated_grace_s        bigint NOT NULL,
    inactivity_limit_s       bigint,
    contract_ends_at         datetime,
    contract_warning_s       bigint NOT NULL,
    roster_threshold         real NOT NULL,
    created_at               datetime NOT NULL,
    updated_at               datetime NOT NULL
);

CREATE TABLE organisations (
    id           text PRIMARY KEY,
    programme_id text NOT NULL REFERENCES programmes(id),
    name         text NOT NULL,
    kind         text NOT NULL,
    status       text NOT NULL CHECK (status IN ('PROPOSED', 'ADMITTED', 'REMOVED')),
    created_at   datetime NOT NULL,
    admitted_at  datetime,
    removed_at   datetime,
    UNIQUE (programme_id, name)
);
CREATE INDEX organisations_programme ON organisations (programme_id);

CREATE TABLE governing_bodies (
    id              text PRIMARY KEY,
    programme_id    text NOT NULL REFERENCES programmes(id),
    name            text NOT NULL,
    role            text NOT NULL,
    organisation_id text REFERENCES organisations(id),
    created_at      datetime NOT NULL,
    UNIQUE (programme_id, name)
);

CREATE TABLE access_groups (
    id              text PRIMARY KEY,
    organisation_id text NOT NULL REFERENCES organisations(id),
    name            text NOT NULL,
    is_default      boolean NOT NULL DEFAULT false,
    created_at      datetime NOT NULL,
    UNIQUE (organisation_id, name)
);
-- One default group per organisation.
CREATE UNIQUE INDEX access_groups_one_default ON access_groups (organisation_id) WHERE is_default;

-- A domain belongs to at most one organisation in the whole installation.
CREATE TABLE email_domains (
    id                 text PRIMARY KEY,
    organisation_id    text NOT NULL REFERENCES organisations(id),
    domain             text NOT NULL UNIQUE,
    include_subdomains boolean NOT NULL DEFAULT false,
    access_group_id    text REFERENCES access_groups(id),
    created_at         datetime NOT NULL
);
CREATE INDEX email_domains_organisation ON email_domains (organisation_id);

CREATE TABLE courses (
    id            text PRIMARY KEY,
    programme_id  text NOT NULL REFERENCES programmes(id),
    lms_course_id text NOT NULL,
    title         text NOT NULL,
    created_at    datetime NOT NULL,
    UNIQUE (programme_id, lms_course_id)
);

CREATE TABLE access_group_courses (
    access_group_id text NOT NULL REFERENCES access_groups(id) ON DELETE CASCADE,
    course_id       text NOT NULL REFERENCES courses(id),
    PRIMARY KEY (access_group_id, course_id)
);

CREATE TABLE membership_proposals (
    id              text PRIMARY KEY,
    programme_id    text NOT NULL REFERENCES programmes(id),
    action          text NOT NULL CHECK (action IN ('ADMIT', 'REMOVE')),
    organisation_id text REFERENCES organisations(id),
    name            text NOT NULL,
    kind            text NOT NULL,
    domains         text NOT NULL DEFAULT '[]',
    status          text NOT NULL CHECK (status IN ('PENDING', 'APPLIED', 'REJECTED')),
    reason          text NOT NULL DEFAULT '',
    proposed_by     text NOT NULL,
    created_at      datetime NOT NULL,
    decided_at      datetime
);
CREATE INDEX membership_proposals_programme ON membership_proposals (programme_id, status);

CREATE TABLE membership_approvals (
    proposal_id        text NOT NULL REFERENCES membership_proposals(id),
    governing_body_id  text NOT NULL REFERENCES governing_bodies(id),
    actor_id           text NOT NULL,
    note               text NOT NULL DEFAULT '',
    approved_at        datetime NOT NULL,
    PRIMARY KEY (proposal_id, governing_body_id)
);

CREATE TABLE role_grants (
    id                text PRIMARY KEY,
    issuer            text NOT NULL,
    subject           text NOT NULL,
    role              text NOT NULL,
    programme_id      text NOT NULL REFERENCES programmes(id),
    organisation_id   text REFERENCES organisations(id),
    governing_body_id text REFERENCES governing_bodies(id),
    created_at        datetime NOT NULL,
    created_by        text NOT NULL
);
CREATE INDEX role_grants_identity ON role_grants (issuer, subject);
CREATE UNIQUE INDEX role_grants_unique ON role_grants (issuer, subject, role, programme_id,
    coalesce(organisation_id, ''), coalesce(governing_body_id, ''));

CREATE TABLE policies (
    id           text PRIMARY KEY,
    programme_id text NOT NULL REFERENCES programmes(id),
    name         text NOT NULL,
    type         text NOT NULL CHECK (type IN ('SITE', 'PRIVACY', 'THIRD_PARTY', 'OTHER')),
    audience     text NOT NULL CHECK (audience IN ('ALL_USERS', 'AUTHENTICATED')),
    compulsory   boolean NOT NULL,
    created_at   datetime NOT NULL,
    UNIQUE (programme_id, name)
);

CREATE TABLE policy_versions (
    id           text PRIMARY KEY,
    policy_id    text NOT NULL REFERENCES policies(id),
    label        text NOT NULL,
    summary      text NOT NULL DEFAULT '',
    content      text NOT NULL,
    status       text NOT NULL CHECK (status IN ('DRAFT', 'ACTIVE', 'ARCHIVED')),
    published_at datetime NOT NULL,
    activated_at datetime,
    UNIQUE (policy_id, label)
);
CREATE UNIQUE INDEX policy_versions_one_active ON policy_versions (policy_id) WHERE status = 'ACTIVE';

-- GEN-2, CTL-12: opaque IDs only; append-only (see trigger below).
CREATE TABLE audit_entries (
    id           integer PRIMARY KEY AUTOINCREMENT,
    programme_id text,
    actor_id     text NOT NULL,
    action       text NOT NULL,
    target_type  text NOT NULL,
    target_id    text NOT NULL,
    reason       text NOT NULL DEFAULT '',
    details      text NOT NULL DEFAULT '{}',
    occurred_at  datetime NOT NULL
);
CREATE INDEX audit_entries_programme ON audit_entries (programme_id, id);
CREATE INDEX audit_entries_target ON audit_entries (target_id);

-- +goose StatementBegin
CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN
    SELECT RAISE(ABORT, 'audit_entries is append-only');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN
    SELECT RAISE(ABORT, 'audit_entries is append-only');
END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE audit_entries;
DROP TABLE policy_versions;
DROP TABLE policies;
DROP TABLE role_grants;
DROP TABLE membership_approvals;
DROP TABLE membership_proposals;
DROP TABLE access_group_courses;
DROP TABLE courses;
DROP TABLE email_domains;
DROP TABLE access_groups;
DROP TABLE governing_bodies;
DROP TABLE organisations;
DROP TABLE programmes;
