package lifecycle

import (
	"context"
	"strings"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

type GrantRoleInput struct {
	Issuer          string
	Subject         string
	Role            domain.Role
	ProgrammeID     string
	OrganisationID  *string
	GoverningBodyID *string
}

// GrantRole binds an identity (issuer + subject, never an email) to a role.
// Programme admins grant any role of their programme; an organisation admin
// may appoint further admins of their own organisation.
func (s *Service) GrantRole(ctx context.Context, in GrantRoleInput) (domain.RoleGrant, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.RoleGrant{}, err
	}
	p, err := s.Programme(ctx, in.ProgrammeID)
	if err != nil {
		return domain.RoleGrant{}, err
	}
	if !in.Role.Grantable() {
		return domain.RoleGrant{}, apperr.Invalid("role", "this role cannot be granted")
	}
	iss, err := cleanText("issuer", in.Issuer, 1, 500)
	if err != nil {
		return domain.RoleGrant{}, err
	}
	if !strings.HasPrefix(iss, "https://") && !strings.HasPrefix(iss, "http://") {
		return domain.RoleGrant{}, apperr.Invalid("issuer", "issuer must be an http(s) URL")
	}
	sub, err := cleanText("subject", in.Subject, 1, 255)
	if err != nil {
		return domain.RoleGrant{}, err
	}
	g := domain.RoleGrant{ID: newID(), Issuer: iss, Subject: sub, Role: in.Role, ProgrammeID: p.ID,
		CreatedAt: s.clock(), CreatedBy: a.ID}
	switch in.Role {
	case domain.RoleOrganisationAdmin:
		if in.OrganisationID == nil {
			return g, apperr.Invalid("organisationId", "an organisation admin grant needs an organisation")
		}
		o, err := s.readOrganisation(ctx, a, *in.OrganisationID)
		if err != nil || o.ProgrammeID != p.ID {
			return g, notFound("organisation").WithField("organisationId")
		}
		if !isProgrammeAdmin(a, p.ID) && !a.OrganisationAdmin(o.ID) {
			return g, apperr.Forbiddenf("your role cannot grant this role")
		}
		g.OrganisationID = &o.ID
	case domain.RoleProgrammeAdmin:
		if !isProgrammeAdmin(a, p.ID) {
			return g, apperr.Forbiddenf("only a programme admin can grant this role")
		}
		if in.GoverningBodyID != nil {
			bodies, err := s.st.GoverningBodies(ctx, p.ID)
			if err != nil {
				return g, err
			}
			found := false
			for _, b := range bodies {
				found = found || b.ID == *in.GoverningBodyID
			}
			if !found {
				return g, notFound("governing body").WithField("governingBodyId")
			}
			g.GoverningBodyID = in.GoverningBodyID
		}
	default:
		if !isProgrammeAdmin(a, p.ID) {
			return g, apperr.Forbiddenf("only a programme admin can grant this role")
		}
	}
	if g.Role != domain.RoleOrganisationAdmin && in.OrganisationID != nil {
		return g, apperr.Invalid("organisationId", "only organisation admin grants take an organisation")
	}
	if g.Role != domain.RoleProgrammeAdmin && in.GoverningBodyID != nil {
		return g, apperr.Invalid("governingBodyId", "only programme admin grants take a governing body")
	}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		if g.GoverningBodyID != nil {
			// CTL-1: decisions are joint, so one person acts for one
			// governing body of a programme (the database holds it too).
			held, err := s.st.GrantsForIdentity(ctx, g.Issuer, g.Subject)
			if err != nil {
				return err
			}
			for _, h := range held {
				if h.Role == domain.RoleProgrammeAdmin && h.ProgrammeID == g.ProgrammeID && h.GoverningBodyID != nil {
					if *h.GoverningBodyID == *g.GoverningBodyID {
						return apperr.Conflictf("this identity already holds this grant")
					}
					return apperr.Conflictf("this identity already acts for another governing body of the programme").
						WithField("governingBodyId").WithReason("ONE_GOVERNING_BODY_PER_PERSON").WithRule("CTL-1")
				}
			}
		}
		if err := s.st.CreateGrant(ctx, g); err != nil {
			if apperr.CodeOf(err) == apperr.Conflict {
				if g.GoverningBodyID != nil {
					return apperr.Conflictf("this identity already acts for a governing body of the programme").
						WithField("governingBodyId").WithReason("ONE_GOVERNING_BODY_PER_PERSON").WithRule("CTL-1")
				}
				return apperr.Conflictf("this identity already holds this grant")
			}
			return err
		}
		return s.audit(ctx, a, &p.ID, "role.grant", "role_grant", g.ID, "",
			map[string]any{"role": string(g.Role), "grantee": ActorIDFor(g.Issuer, g.Subject)})
	})
	return g, err
}

// RevokeRole removes a grant, under the same rules as granting it.
func (s *Service) RevokeRole(ctx context.Context, grantID string) error {
	a, err := s.Actor(ctx)
	if err != nil {
		return err
	}
	if !validID(grantID) {
		return notFound("grant")
	}
	g, err := s.st.GetGrant(ctx, grantID)
	if err != nil {
		if apperr.CodeOf(err) == apperr.NotFound {
			return notFound("grant")
		}
		return err
	}
	allowed := isProgrammeAdmin(a, g.ProgrammeID) ||
		(g.Role == domain.RoleOrganisationAdmin && g.OrganisationID != nil && a.OrganisationAdmin(*g.OrganisationID))
	if !allowed {
		if a.HasRoleIn(g.ProgrammeID, domain.RoleAuditor) { // sees every grant through the audit log
			return apperr.Forbiddenf("your role cannot revoke this grant")
		}
		return notFound("grant")
	}
	return s.st.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.DeleteGrant(ctx, g.ID); err != nil {
			return err
		}
		return s.audit(ctx, a, &g.ProgrammeID, "role.revoke", "role_grant", g.ID, "",
			map[string]any{"role": string(g.Role), "grantee": ActorIDFor(g.Issuer, g.Subject)})
	})
}

// Grants lists the grants of a programme (programme admins).
func (s *Service) Grants(ctx context.Context, programmeID string) ([]domain.RoleGrant, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.Programme(ctx, programmeID)
	if err != nil {
		return nil, err
	}
	if !isProgrammeAdmin(a, p.ID) {
		return nil, apperr.Forbiddenf("only a programme admin can list grants")
	}
	return s.st.GrantsByProgramme(ctx, p.ID)
}

// AuditLog pages a programme's audit entries (programme admins and auditors; CTL-12).
func (s *Service) AuditLog(ctx context.Context, programmeID string, targetID *string, afterID int64, first int) ([]domain.AuditEntry, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.Programme(ctx, programmeID)
	if err != nil {
		return nil, err
	}
	if !isProgrammeAdmin(a, p.ID) && !a.HasRoleIn(p.ID, domain.RoleAuditor) {
		return nil, apperr.Forbiddenf("only programme admins and auditors can read the audit log")
	}
	if first <= 0 || first > 500 {
		return nil, apperr.Invalid("first", "first must be between 1 and 500")
	}
	return s.st.AuditEntries(ctx, p.ID, targetID, afterID, first+1) // one extra: is there a next page?
}
