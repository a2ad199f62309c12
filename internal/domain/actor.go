package domain

import "time"

// Role is what a grant allows (CTL-12).
type Role string

const (
	RoleProgrammeAdmin    Role = "PROGRAMME_ADMIN"
	RoleOrganisationAdmin Role = "ORGANISATION_ADMIN"
	RoleAuditor           Role = "AUDITOR"
	RoleLMS               Role = "LMS"
	RoleLearner           Role = "LEARNER"
)

func (r Role) Grantable() bool {
	return r == RoleProgrammeAdmin || r == RoleOrganisationAdmin || r == RoleAuditor || r == RoleLMS
}

// Identity is who a verified token says the caller is. Identity is issuer +
// subject, never the email claim: emails are reassigned, subjects are not.
type Identity struct {
	Issuer        string
	Subject       string
	Email         string // as claimed; used only for provisioning, never for authorisation
	EmailVerified bool
	GivenName     string
	FamilyName    string
	IssuedAt      time.Time // the token's iat (zero for sessions and API keys)
}

// RoleGrant binds an identity to a role within a scope.
type RoleGrant struct {
	ID              string
	Issuer          string
	Subject         string
	Role            Role
	ProgrammeID     string
	OrganisationID  *string // ORGANISATION_ADMIN
	GoverningBodyID *string // PROGRAMME_ADMIN acting for a governing body (CTL-1)
	CreatedAt       time.Time
	CreatedBy       string
}

// Actor is the authenticated caller with their grants. System actors (CLI,
// scheduler, seed) have System set and are allowed everything.
type Actor struct {
	ID        string // opaque: the identity's ID for people, "system:<name>" otherwise
	Identity  Identity
	Grants    []RoleGrant
	System    bool
	Bootstrap bool // the configured bootstrap admin: may create programmes
	// Learner is the learner record linked to this identity, if any.
	Learner *Learner
	// SignInErr says why a provider identity could not be signed in as a learner.
	SignInErr error
	// Directory is set for a SCIM token: the organisation it provisions.
	Directory *DirectoryScope
}

// SystemActor is used by the CLI, the seeder and scheduled jobs.
func SystemActor(name string) *Actor { return &Actor{ID: "system:" + name, System: true} }

func (a *Actor) ProgrammeAdmin(programmeID string) bool {
	if a == nil {
		return false
	}
	if a.System {
		return true
	}
	for _, g := range a.Grants {
		if g.Role == RoleProgrammeAdmin && g.ProgrammeID == programmeID {
			return true
		}
	}
	return false
}

// GoverningBodies returns the bodies the actor may approve for in a programme.
func (a *Actor) GoverningBodies(programmeID string) []string {
	var out []string
	for _, g := range a.Grants {
		if g.Role == RoleProgrammeAdmin && g.ProgrammeID == programmeID && g.GoverningBodyID != nil {
			out = append(out, *g.GoverningBodyID)
		}
	}
	return out
}

func (a *Actor) OrganisationAdmin(organisationID string) bool {
	if a == nil {
		return false
	}
	for _, g := range a.Grants {
		if g.Role == RoleOrganisationAdmin && g.OrganisationID != nil && *g.OrganisationID == organisationID {
			return true
		}
	}
	return false
}

func (a *Actor) HasRoleIn(programmeID string, roles ...Role) bool {
	if a == nil {
		return false
	}
	if a.System {
		return true
	}
	for _, g := range a.Grants {
		if g.ProgrammeID != programmeID {
			continue
		}
		for _, r := range roles {
			if g.Role == r {
				return true
			}
		}
	}
	return false
}

// ProgrammeIDs lists the programmes in which the actor holds any grant.
func (a *Actor) ProgrammeIDs() []string {
	seen := map[string]bool{}
	var out []string
	for _, g := range a.Grants {
		if !seen[g.ProgrammeID] {
			seen[g.ProgrammeID] = true
			out = append(out, g.ProgrammeID)
		}
	}
	return out
}

// AuditEntry records a state change. It holds opaque IDs only (GEN-2).
type AuditEntry struct {
	ID          int64
	ProgrammeID *string
	ActorID     string
	Action      string
	TargetType  string
	TargetID    string
	Reason      string
	Details     map[string]any
	OccurredAt  time.Time
}
