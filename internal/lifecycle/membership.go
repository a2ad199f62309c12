package lifecycle

import (
	"context"
	"errors"
	"strings"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

type DomainInput struct {
	Domain            string
	IncludeSubdomains bool
}

type ProposeMembershipInput struct {
	ProgrammeID    string
	Action         domain.ProposalAction
	Name           string // ADMIT
	Kind           domain.OrganisationKind
	Domains        []DomainInput
	OrganisationID string // REMOVE
	Reason         string
}

// ProposalView is a proposal with its approvals so far.
type ProposalView struct {
	domain.MembershipProposal
	Approvals []domain.MembershipApproval
}

// ProposeMembership opens a proposal to admit or remove a partner (CTL-1).
// Nothing changes until every governing body approves.
func (s *Service) ProposeMembership(ctx context.Context, in ProposeMembershipInput) (ProposalView, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return ProposalView{}, err
	}
	p, err := s.Programme(ctx, in.ProgrammeID)
	if err != nil {
		return ProposalView{}, err
	}
	if !isProgrammeAdmin(a, p.ID) {
		return ProposalView{}, apperr.Forbiddenf("only a programme admin can propose membership changes").WithRule("CTL-1")
	}
	reason, err := cleanText("reason", in.Reason, 0, 1000)
	if err != nil {
		return ProposalView{}, err
	}
	now := s.clock()
	prop := domain.MembershipProposal{ID: newID(), ProgrammeID: p.ID, Action: in.Action, Status: domain.ProposalPending,
		Reason: reason, ProposedBy: a.ID, CreatedAt: now}
	switch in.Action {
	case domain.ProposalAdmit:
		if prop.Name, err = cleanText("name", in.Name, 1, 200); err != nil {
			return ProposalView{}, err
		}
		if !in.Kind.Valid() {
			return ProposalView{}, apperr.Invalid("kind", "unknown organisation kind")
		}
		prop.Kind = in.Kind
		if len(in.Domains) > 50 {
			return ProposalView{}, apperr.Invalid("domains", "at most 50 domains per proposal")
		}
		for i, d := range in.Domains {
			norm, err := normaliseDomain("domains", d.Domain)
			if err != nil {
				return ProposalView{}, err
			}
			for _, prev := range prop.Domains[:i] {
				if domain.DomainsOverlap(prev.Domain, prev.IncludeSubdomains, norm, d.IncludeSubdomains) {
					return ProposalView{}, apperr.Invalid("domains", "domains %d and another in this proposal overlap", i+1)
				}
			}
			prop.Domains = append(prop.Domains, domain.ProposedDomain{Domain: norm, IncludeSubdomains: d.IncludeSubdomains})
		}
		if _, err := s.st.OrganisationByName(ctx, p.ID, prop.Name); err == nil {
			return ProposalView{}, apperr.Conflictf("an organisation with this name is already in the programme").WithField("name")
		}
		for _, d := range prop.Domains {
			if err := s.checkDomainFree(ctx, d.Domain, d.IncludeSubdomains, ""); err != nil {
				return ProposalView{}, err
			}
		}
	case domain.ProposalRemove:
		o, err := s.st.GetOrganisation(ctx, in.OrganisationID)
		if !validID(in.OrganisationID) || err != nil || o.ProgrammeID != p.ID {
			return ProposalView{}, notFound("organisation").WithField("organisationId")
		}
		if o.Status != domain.OrgAdmitted {
			return ProposalView{}, apperr.Conflictf("the organisation is not an admitted member").WithField("organisationId")
		}
		prop.OrganisationID, prop.Name, prop.Kind = &o.ID, o.Name, o.Kind
	default:
		return ProposalView{}, apperr.Invalid("action", "action must be ADMIT or REMOVE")
	}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.CreateProposal(ctx, prop); err != nil {
			return err
		}
		return s.audit(ctx, a, &p.ID, "membership.propose", "membership_proposal", prop.ID, reason,
			map[string]any{"action": string(prop.Action)})
	})
	return ProposalView{MembershipProposal: prop}, err
}

// ApproveMembership records the approval of one governing body the actor acts
// for; when every body has approved, the change is applied in the same
// transaction (CTL-1). The same body cannot approve twice.
func (s *Service) ApproveMembership(ctx context.Context, proposalID, note string) (ProposalView, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return ProposalView{}, err
	}
	note, err = cleanText("note", note, 0, 1000)
	if err != nil {
		return ProposalView{}, err
	}
	var view ProposalView
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		prop, err := s.readProposal(ctx, a, proposalID, true)
		if err != nil {
			return err
		}
		if prop.Status != domain.ProposalPending {
			return apperr.Conflictf("the proposal is already %s", strings.ToLower(string(prop.Status))).WithRule("CTL-1")
		}
		bodies, err := s.st.GoverningBodies(ctx, prop.ProgrammeID)
		if err != nil {
			return err
		}
		approvals, err := s.st.ApprovalsByProposals(ctx, []string{prop.ID})
		if err != nil {
			return err
		}
		// CTL-1: one person approves once, whatever grants they hold, so a
		// decision is joint. (System actors seed both bodies' approvals.)
		if !a.System {
			for _, ap := range approvals {
				if ap.ActorID == a.ID {
					return apperr.Conflictf("you have already approved this proposal; another governing body's admin must approve it").
						WithReason("ALREADY_APPROVED_BY_YOU").WithRule("CTL-1")
				}
			}
		}
		body, err := pickBody(a, prop.ProgrammeID, bodies, approvals)
		if err != nil {
			return err
		}
		now := s.clock()
		ap := domain.MembershipApproval{ProposalID: prop.ID, GoverningBodyID: body, ActorID: a.ID, Note: note, ApprovedAt: now}
		if err := s.st.AddApproval(ctx, ap); err != nil {
			if apperr.CodeOf(err) == apperr.Conflict {
				return apperr.Conflictf("this governing body, or you, already approved").WithRule("CTL-1")
			}
			return err
		}
		approvals = append(approvals, ap)
		if err := s.audit(ctx, a, &prop.ProgrammeID, "membership.approve", "membership_proposal", prop.ID, note,
			map[string]any{"governingBodyId": body}); err != nil {
			return err
		}
		if domain.ApprovalsComplete(bodies, approvals) {
			if err := s.applyProposal(ctx, a, &prop); err != nil {
				return err
			}
		}
		view = ProposalView{MembershipProposal: prop, Approvals: approvals}
		return nil
	})
	return view, err
}

// pickBody chooses which governing body this approval counts for: one the
// actor acts for that has not approved yet. System actors approve for the
// first body still missing (seeding).
func pickBody(a *domain.Actor, programmeID string, bodies []domain.GoverningBody, approvals []domain.MembershipApproval) (string, error) {
	done := map[string]bool{}
	for _, ap := range approvals {
		done[ap.GoverningBodyID] = true
	}
	mine := a.GoverningBodies(programmeID)
	if a.System {
		for _, b := range bodies {
			mine = append(mine, b.ID)
		}
	}
	if len(mine) == 0 {
		return "", apperr.Forbiddenf("approving needs a programme admin grant acting for a governing body").WithRule("CTL-1")
	}
	for _, id := range mine {
		if !done[id] {
			return id, nil
		}
	}
	return "", apperr.Conflictf("your governing body has already approved this proposal").WithRule("CTL-1")
}

func (s *Service) readProposal(ctx context.Context, a *domain.Actor, id string, forUpdate bool) (domain.MembershipProposal, error) {
	if !validID(id) {
		return domain.MembershipProposal{}, notFound("proposal")
	}
	prop, err := s.st.GetProposal(ctx, id, forUpdate)
	if err != nil {
		if apperr.CodeOf(err) == apperr.NotFound {
			return prop, notFound("proposal")
		}
		return prop, err
	}
	if !isProgrammeAdmin(a, prop.ProgrammeID) {
		if canReadProgramme(a, prop.ProgrammeID) && a.HasRoleIn(prop.ProgrammeID, domain.RoleAuditor) {
			return prop, apperr.Forbiddenf("auditors cannot decide membership")
		}
		return prop, notFound("proposal")
	}
	return prop, nil
}

func (s *Service) applyProposal(ctx context.Context, a *domain.Actor, prop *domain.MembershipProposal) error {
	now := s.clock()
	switch prop.Action {
	case domain.ProposalAdmit:
		// Domains may have been taken since the proposal was made.
		for _, d := range prop.Domains {
			if err := s.checkDomainFree(ctx, d.Domain, d.IncludeSubdomains, ""); err != nil {
				return err
			}
		}
		o := domain.Organisation{ID: newID(), ProgrammeID: prop.ProgrammeID, Name: prop.Name, Kind: prop.Kind,
			Status: domain.OrgAdmitted, CreatedAt: now, AdmittedAt: &now}
		if err := s.st.CreateOrganisation(ctx, o); err != nil {
			if apperr.CodeOf(err) == apperr.Conflict {
				return apperr.Conflictf("an organisation with this name is already in the programme")
			}
			return err
		}
		g := domain.AccessGroup{ID: newID(), OrganisationID: o.ID, Name: "All staff", IsDefault: true, CreatedAt: now}
		if err := s.st.CreateAccessGroup(ctx, g); err != nil {
			return err
		}
		for _, d := range prop.Domains {
			rule := domain.DomainRule{ID: newID(), OrganisationID: o.ID, Domain: d.Domain, IncludeSubdomains: d.IncludeSubdomains, CreatedAt: now}
			if err := s.st.CreateEmailDomain(ctx, rule); err != nil {
				if apperr.CodeOf(err) == apperr.Conflict {
					return apperr.Conflictf("a domain of this proposal already belongs to an organisation").WithField("domains")
				}
				return err
			}
		}
		prop.OrganisationID = &o.ID
		if err := s.audit(ctx, a, &prop.ProgrammeID, "organisation.admit", "organisation", o.ID, "",
			map[string]any{"proposalId": prop.ID}); err != nil {
			return err
		}
	case domain.ProposalRemove:
		if err := s.st.SetOrganisationStatus(ctx, *prop.OrganisationID, domain.OrgRemoved, now); err != nil {
			return err
		}
		// CTL-9: the organisation's learners are scheduled for removal.
		p, err := s.st.GetProgramme(ctx, prop.ProgrammeID)
		if err != nil {
			return err
		}
		if _, err := s.scheduleOrganisationRemoval(ctx, a, p, *prop.OrganisationID); err != nil {
			return err
		}
		if err := s.audit(ctx, a, &prop.ProgrammeID, "organisation.remove", "organisation", *prop.OrganisationID, "",
			map[string]any{"proposalId": prop.ID}); err != nil {
			return err
		}
	}
	prop.Status = domain.ProposalApplied
	prop.DecidedAt = &now
	return s.st.UpdateProposal(ctx, *prop)
}

// RejectMembership ends a pending proposal; any programme admin may reject.
func (s *Service) RejectMembership(ctx context.Context, proposalID, reason string) (ProposalView, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return ProposalView{}, err
	}
	reason, err = cleanText("reason", reason, 1, 1000)
	if err != nil {
		return ProposalView{}, err
	}
	var view ProposalView
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		prop, err := s.readProposal(ctx, a, proposalID, true)
		if err != nil {
			return err
		}
		if prop.Status != domain.ProposalPending {
			return apperr.Conflictf("the proposal is already %s", strings.ToLower(string(prop.Status))).WithRule("CTL-1")
		}
		now := s.clock()
		prop.Status, prop.DecidedAt, prop.Reason = domain.ProposalRejected, &now, reason
		if err := s.st.UpdateProposal(ctx, prop); err != nil {
			return err
		}
		approvals, err := s.st.ApprovalsByProposals(ctx, []string{prop.ID})
		if err != nil {
			return err
		}
		view = ProposalView{MembershipProposal: prop, Approvals: approvals}
		return s.audit(ctx, a, &prop.ProgrammeID, "membership.reject", "membership_proposal", prop.ID, reason, nil)
	})
	return view, err
}

// MembershipProposals lists a programme's proposals (programme admins and auditors).
func (s *Service) MembershipProposals(ctx context.Context, programmeID string, status *domain.ProposalStatus) ([]ProposalView, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.Programme(ctx, programmeID)
	if err != nil {
		return nil, err
	}
	if !isProgrammeAdmin(a, p.ID) && !a.HasRoleIn(p.ID, domain.RoleAuditor) {
		return nil, apperr.Forbiddenf("only programme admins and auditors can read membership proposals")
	}
	props, err := s.st.ListProposals(ctx, p.ID, status)
	if err != nil || len(props) == 0 {
		return nil, err
	}
	ids := make([]string, len(props))
	for i, pr := range props {
		ids[i] = pr.ID
	}
	aps, err := s.st.ApprovalsByProposals(ctx, ids)
	if err != nil {
		return nil, err
	}
	by := map[string][]domain.MembershipApproval{}
	for _, ap := range aps {
		by[ap.ProposalID] = append(by[ap.ProposalID], ap)
	}
	out := make([]ProposalView, len(props))
	for i, pr := range props {
		out[i] = ProposalView{MembershipProposal: pr, Approvals: by[pr.ID]}
	}
	return out, nil
}

// normaliseDomain turns the domain parser's refusal into BAD_USER_INPUT with
// a reason a client can act on.
func normaliseDomain(field, raw string) (string, error) {
	d, err := domain.NormaliseDomain(raw)
	if err != nil {
		var de *domain.DomainError
		reason := "DOMAIN_INVALID"
		if errors.As(err, &de) {
			reason = strings.ToUpper(string(de.Reason))
		}
		return "", apperr.Invalid(field, "%s", err.Error()).WithReason(reason).WithRule("CTL-3")
	}
	return d, nil
}

// checkDomainFree enforces that a domain belongs to at most one organisation
// in the installation, and that subdomain rules do not overlap another
// organisation's domains. exceptOrg may own overlapping rules.
func (s *Service) checkDomainFree(ctx context.Context, d string, sub bool, exceptOrg string) error {
	related, err := s.st.DomainsRelatedTo(ctx, d)
	if err != nil {
		return err
	}
	for _, r := range related {
		if r.Domain == d {
			return apperr.Conflictf("this domain already belongs to an organisation").WithField("domain")
		}
		if r.OrganisationID != exceptOrg && domain.DomainsOverlap(r.Domain, r.IncludeSubdomains, d, sub) {
			return apperr.Conflictf("this domain overlaps a domain of another organisation").WithField("domain")
		}
	}
	return nil
}
