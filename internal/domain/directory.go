package domain

import "time"

// ScimToken lets one organisation's directory (Entra ID, Okta) provision
// that organisation's staff over SCIM 2.0. The secret is shown once and
// stored as a hash; the token acts only within its organisation.
type ScimToken struct {
	ID             string
	ProgrammeID    string
	OrganisationID string
	Name           string
	Prefix         string
	Hash           string
	CreatedBy      string
	CreatedAt      time.Time
	LastUsedAt     *time.Time
	RevokedAt      *time.Time
}

// DirectoryScope is the organisation a directory actor (a SCIM token) acts
// for. It may provision, correct and report leavers among that
// organisation's learners, and nothing else.
type DirectoryScope struct {
	TokenID        string
	ProgrammeID    string
	OrganisationID string
}

// DirectoryFor: the actor is a directory of this organisation.
func (a *Actor) DirectoryFor(organisationID string) bool {
	return a != nil && a.Directory != nil && a.Directory.OrganisationID == organisationID
}

// DirectoryLink is what a directory knows of a learner beyond the learner
// record: its object ID, whether it deleted the user, and the due date of the
// removal it caused itself (nil: none), so that active=true reverses only
// that removal (GEN-4).
type DirectoryLink struct {
	LearnerID      string
	OrganisationID string
	ExternalID     *string
	DeletedAt      *time.Time
	RemovalDueAt   *time.Time
	Version        int64
	UpdatedAt      time.Time
}

// DirectoryFilter is a SCIM filter reduced to what Rollcall can match in
// SQL: equality on the learner's ID, email (userName, emails.value),
// and externalId, combined with "and". A nil field matches all.
type DirectoryFilter struct {
	OrganisationID string
	IDs            []string // every one must equal the learner ID (an "and" of several differing ones matches nothing)
	Emails         []string // normalised
	ExternalIDs    []string
	// Impossible: a condition that can match nobody (an unparsable email).
	Impossible bool
}
