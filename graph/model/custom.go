package model

import (
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
)

// Models with hidden fields the field resolvers need. gqlgen binds them
// instead of generating them (gqlgen.yml).

type Learner struct {
	ID             string         `json:"id"`
	Email          *string        `json:"email,omitempty"`
	GivenName      *string        `json:"givenName,omitempty"`
	FamilyName     *string        `json:"familyName,omitempty"`
	Status         LearnerStatus  `json:"status"`
	AccessAllowed  bool           `json:"accessAllowed"`
	RemovalReason  *RemovalReason `json:"removalReason,omitempty"`
	RemovalDueAt   *time.Time     `json:"removalDueAt,omitempty"`
	ErasedAt       *time.Time     `json:"erasedAt,omitempty"`
	CreatedAt      time.Time      `json:"createdAt"`
	LastSignInAt   *time.Time     `json:"lastSignInAt,omitempty"`
	LastActivityAt *time.Time     `json:"lastActivityAt,omitempty"`
	Version        int            `json:"version"`
	// The learner as the service returned it (already authorised).
	Domain domain.Learner `json:"-"`
}

type PolicyAcceptance struct {
	Decision        Decision  `json:"decision"`
	GivenBy         GivenBy   `json:"givenBy"`
	AgeConfirmed    bool      `json:"ageConfirmed"`
	Note            string    `json:"note"`
	DecidedAt       time.Time `json:"decidedAt"`
	PolicyVersionID string    `json:"-"`
	ProgrammeID     string    `json:"-"`
}

type Viewer struct {
	Subject        string        `json:"subject"`
	Issuer         string        `json:"issuer"`
	ActorID        string        `json:"actorId"`
	BootstrapAdmin bool          `json:"bootstrapAdmin"`
	Roles          []*RoleGrant  `json:"roles"`
	AccessAllowed  bool          `json:"accessAllowed"`
	SignInError    *string       `json:"signInError,omitempty"`
	Actor          *domain.Actor `json:"-"`
}
