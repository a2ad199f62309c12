-- +goose Up
-- Data requests (ONC-5, ONC-10, CTL-11): erasure waiting for the controller's
-- approval, and learners' own requests. Reasons are free text and are blanked
-- when the learner is erased.
CREATE TABLE data_requests (
    id              text PRIMARY KEY,
    programme_id    text NOT NULL REFERENCES programmes(id),
    organisation_id text NOT NULL REFERENCES organisations(id),
    learner_id      text NOT NULL REFERENCES learners(id),
    kind            text NOT NULL CHECK (kind IN ('ERASURE')),
    origin          text NOT NULL,   -- CONSENT_WITHDRAWN, ERASURE_REQUESTED, LEAVER, ...
    status          text NOT NULL CHECK (status IN ('PENDING', 'AWAITING_APPROVAL', 'APPROVED', 'COMPLETED', 'REJECTED')),
    reason          text NOT NULL DEFAULT '',
    requested_by    text NOT NULL,
    requested_at    datetime NOT NULL,
    decided_by      text,
    decided_at      datetime,
    decision_note   text NOT NULL DEFAULT '',
    completed_at    datetime
);
CREATE INDEX data_requests_programme ON data_requests (programme_id, status, id);
CREATE INDEX data_requests_learner ON data_requests (learner_id);
-- At most one open erasure request per learner.
CREATE UNIQUE INDEX data_requests_one_open ON data_requests (learner_id)
    WHERE status IN ('PENDING', 'AWAITING_APPROVAL', 'APPROVED');

-- The retention sweep finds due removals and inactive learners by index.
CREATE INDEX learners_due ON learners (programme_id, removal_due_at) WHERE status IN ('REMOVAL_SCHEDULED', 'WITHDRAWN');
CREATE INDEX learners_org_status ON learners (organisation_id, status);

-- ONC-3: learning activity the LMS reports back; personal data, erased with the learner.
CREATE TABLE learning_activity (
    learner_id     text NOT NULL REFERENCES learners(id),
    course_id      text NOT NULL REFERENCES courses(id),
    state          text NOT NULL CHECK (state IN ('ENROLLED', 'IN_PROGRESS', 'COMPLETED', 'SUSPENDED')),
    completed_at   datetime,
    last_access_at datetime,
    updated_at     datetime NOT NULL,
    PRIMARY KEY (learner_id, course_id)
);

-- GEN-3: when a learner is erased their activity rows go, but the
-- aggregate figures reports show must not change: erased activity is kept as
-- counts per organisation, course and state, with no learner in it.
CREATE TABLE erased_activity_totals (
    organisation_id text NOT NULL,
    course_id       text NOT NULL,
    state           text NOT NULL,
    n               bigint NOT NULL,
    PRIMARY KEY (organisation_id, course_id, state)
);

-- +goose Down
DROP TABLE erased_activity_totals;
DROP TABLE learning_activity;
DROP INDEX learners_org_status;
DROP INDEX learners_due;
DROP TABLE data_requests;
