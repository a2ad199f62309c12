package model

import (
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// Read models: the service's values, with the relations a query asked for
// loaded alongside them (graph/relations.go) and bound as plain fields
// (gqlgen.yml), so gqlgen writes them inline without a resolver call. A
// relation the query did not ask for is left nil: nothing reads it.

type Learner struct {
	domain.Learner
	Organisation *Organisation
	AccessGroup  *AccessGroup
	Courses      []*domain.Course
	Acceptances  []*PolicyAcceptance
}

// LifecycleEvent points at the page's event rather than copying it; the
// page's learners are read at once and set here (graph/feed.resolvers.go).
// FeedEvent is never nil: the plain fields read through it are marshalled
// from pointers into it (graph/plainfield.go), outside gqlgen's per-field
// panic recovery.
type LifecycleEvent struct {
	*domain.FeedEvent
	Cursor  string
	Learner *Learner
}

type PolicyAcceptance struct {
	domain.PolicyAcceptance
	PolicyVersion *domain.PolicyVersion
}

type Organisation struct {
	domain.Organisation
	Domains      []*domain.DomainRule
	AccessGroups []*AccessGroup
}

type AccessGroup struct {
	domain.AccessGroup
	Courses []*domain.Course
}

type Policy struct {
	domain.Policy
	CurrentVersion *domain.PolicyVersion
	Versions       []*domain.PolicyVersion
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
