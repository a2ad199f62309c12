package graph

import (
	"fmt"
	"slices"
	"strings"

	"strconv"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"

	"github.com/rollcall-dev/rollcall/graph/model"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
)

// Mappers for the GraphQL types that are not bound to the service's values
// (gqlgen.yml): inputs, and answers whose shape differs from the domain's.
// They hold no logic beyond renaming.

func mapAll[D any, M any](in []D, f func(D) *M) []*M {
	out := make([]*M, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

func programmeOut(p domain.Programme) *model.Programme {
	s := p.Settings
	rs := &model.RuleSettings{
		MinimumAge:             s.MinimumAge,
		ErasureNeedsApproval:   s.ErasureNeedsApproval,
		WithdrawalErasureDelay: model.Duration(s.WithdrawalErasureDelay),
		LeaverGracePeriod:      model.Duration(s.LeaverGracePeriod),
		AutomatedRemovalGrace:  model.Duration(s.AutomatedRemovalGrace),
		ContractEndsAt:         s.ContractEndsAt,
		ContractEndWarning:     model.Duration(s.ContractEndWarning),
		RosterRemovalThreshold: s.RosterRemovalThreshold,
	}
	if s.LMSURL != "" {
		rs.LmsURL = &s.LMSURL
	}
	if s.InactivityLimit != nil {
		d := model.Duration(*s.InactivityLimit)
		rs.InactivityLimit = &d
	}
	return &model.Programme{ID: p.ID, Name: p.Name, Preset: model.RulePreset(p.Preset), Settings: rs,
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

func settingsIn(in *model.RuleSettingsInput) (lifecycle.RuleSettingsPatch, string) {
	if in == nil {
		return lifecycle.RuleSettingsPatch{}, ""
	}
	d := func(v *model.Duration) *time.Duration {
		if v == nil {
			return nil
		}
		t := time.Duration(*v)
		return &t
	}
	p := lifecycle.RuleSettingsPatch{
		MinimumAge:             in.MinimumAge,
		ErasureNeedsApproval:   in.ErasureNeedsApproval,
		WithdrawalErasureDelay: d(in.WithdrawalErasureDelay),
		LeaverGracePeriod:      d(in.LeaverGracePeriod),
		AutomatedRemovalGrace:  d(in.AutomatedRemovalGrace),
		InactivityLimit:        d(in.InactivityLimit),
		ClearInactivityLimit:   in.ClearInactivityLimit != nil && *in.ClearInactivityLimit,
		ContractEndsAt:         in.ContractEndsAt,
		ClearContractEnd:       in.ClearContractEnd != nil && *in.ClearContractEnd,
		ContractEndWarning:     d(in.ContractEndWarning),
		RosterRemovalThreshold: in.RosterRemovalThreshold,
		LMSURL:                 in.LmsURL,
	}
	return p, deref(in.Reason)
}

func ruleOut(r domain.Rule) *model.Rule {
	params := map[string]any{}
	for k, v := range r.Parameters {
		params[k] = v
	}
	return &model.Rule{ID: r.ID, Source: r.Source, Reference: r.Reference(), Notice: r.Notice, Text: r.Text, Parameters: params}
}

func proposalOut(v lifecycle.ProposalView) *model.MembershipProposal {
	p := v.MembershipProposal
	out := &model.MembershipProposal{ID: p.ID, ProgrammeID: p.ProgrammeID, Action: model.ProposalAction(p.Action),
		Status: model.ProposalStatus(p.Status), OrganisationID: p.OrganisationID, Name: p.Name,
		Kind: p.Kind, Reason: p.Reason, ProposedBy: p.ProposedBy,
		CreatedAt: p.CreatedAt, DecidedAt: p.DecidedAt}
	out.Domains = make([]*model.ProposedDomain, len(p.Domains))
	for i, d := range p.Domains {
		out.Domains[i] = &model.ProposedDomain{Domain: d.Domain, IncludeSubdomains: d.IncludeSubdomains}
	}
	out.Approvals = make([]*model.MembershipApproval, len(v.Approvals))
	for i, a := range v.Approvals {
		out.Approvals[i] = &model.MembershipApproval{GoverningBodyID: a.GoverningBodyID, ActorID: a.ActorID, Note: a.Note, ApprovedAt: a.ApprovedAt}
	}
	return out
}

func grantOut(g domain.RoleGrant) *model.RoleGrant {
	return &model.RoleGrant{ID: g.ID, Role: model.Role(g.Role), Issuer: g.Issuer, Subject: g.Subject,
		ProgrammeID: g.ProgrammeID, OrganisationID: g.OrganisationID, GoverningBodyID: g.GoverningBodyID, CreatedAt: g.CreatedAt}
}

func auditOut(e domain.AuditEntry) *model.AuditEntry {
	d := e.Details
	if d == nil {
		d = map[string]any{}
	}
	return &model.AuditEntry{ID: strconv.FormatInt(e.ID, 10), ActorID: e.ActorID, Action: e.Action,
		TargetType: e.TargetType, TargetID: e.TargetID, Reason: e.Reason, Details: d, OccurredAt: e.OccurredAt}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func retentionOut(r domain.Retention) *model.RetentionStatement {
	out := &model.RetentionStatement{KeptUntil: r.KeptUntil, Reason: r.Reason, Rule: r.Rule,
		Triggers: make([]*model.RetentionTrigger, len(r.Triggers))}
	for i, t := range r.Triggers {
		out.Triggers[i] = &model.RetentionTrigger{Rule: t.Rule, Reason: t.Reason, Date: t.Date}
	}
	return out
}

func providerOut(p domain.IdentityProvider) *model.IdentityProvider {
	return &model.IdentityProvider{ID: p.ID, ProgrammeID: p.ProgrammeID, OrganisationID: p.OrganisationID, Issuer: p.Issuer,
		ClientID: p.ClientID, Audience: p.Audience, Scopes: strings.Fields(p.Scopes), EmailTrust: model.EmailTrust(p.EmailTrust),
		HasClientSecret: p.ClientSecretEnc != nil || p.ClientSecretEnv != nil, CreatedAt: p.CreatedAt}
}

func viewerOut(a *domain.Actor) *model.Viewer {
	v := &model.Viewer{Subject: a.Identity.Subject, Issuer: a.Identity.Issuer, ActorID: a.ID,
		BootstrapAdmin: a.Bootstrap, Roles: mapAll(a.Grants, grantOut), Actor: a}
	if a.Learner != nil {
		v.AccessAllowed = a.Learner.AccessAllowed()
	}
	if a.SignInErr != nil {
		msg := a.SignInErr.Error()
		if ae, ok := apperr.As(a.SignInErr); ok {
			msg = ae.Message
			if ae.Reason != "" {
				msg += " (" + ae.Reason + ")"
			}
		}
		v.SignInError = &msg
	}
	return v
}

func providerIn(in model.IdentityProviderInput) lifecycle.IdentityProviderInput {
	out := lifecycle.IdentityProviderInput{Issuer: in.Issuer, ClientID: in.ClientID, ClientSecret: in.ClientSecret,
		ClientSecretEnv: in.ClientSecretEnv, Audience: deref(in.Audience), Scopes: in.Scopes}
	if in.EmailTrust != nil {
		out.EmailTrust = domain.EmailTrust(*in.EmailTrust)
	}
	return out
}

func exportOut(doc map[string]any) *model.PersonalDataExport {
	profile, _ := doc["profile"].(map[string]any)
	id, _ := profile["id"].(string)
	at, _ := time.Parse(time.RFC3339, fmt.Sprint(doc["exportedAt"]))
	return &model.PersonalDataExport{LearnerID: id, ExportedAt: at, Document: doc}
}

func removalOut(r domain.Removal) *model.ScheduledRemoval {
	return &model.ScheduledRemoval{LearnerID: r.LearnerID, OrganisationID: r.OrganisationID, Reason: r.Reason,
		Action: r.Action, DueAt: r.DueAt}
}

func requestOut(r domain.DataRequest) *model.DataRequest {
	return &model.DataRequest{ID: r.ID, ProgrammeID: r.ProgrammeID, OrganisationID: r.OrganisationID, LearnerID: r.LearnerID,
		Kind: r.Kind, Origin: r.Origin, Status: model.DataRequestStatus(r.Status), Reason: r.Reason,
		RequestedBy: r.RequestedBy, RequestedAt: r.RequestedAt, DecidedBy: r.DecidedBy, DecidedAt: r.DecidedAt,
		DecisionNote: r.DecisionNote, CompletedAt: r.CompletedAt}
}

func rosterOut(r lifecycle.RosterReport) *model.RosterReconciliation {
	due, _ := time.Parse(time.RFC3339, r.RemovalDueAt)
	out := &model.RosterReconciliation{DryRun: r.DryRun, RosterSize: r.RosterSize, ActiveLearners: r.ActiveLearners,
		ToRemove: r.ToRemove, Share: r.Share, Threshold: r.Threshold, Applied: r.Applied, RemovalDueAt: due,
		LearnerIds: r.Learners, BadLines: make([]*model.RosterLine, len(r.BadLines))}
	if out.LearnerIds == nil {
		out.LearnerIds = []string{}
	}
	for i, b := range r.BadLines {
		line := &model.RosterLine{Line: b.Line, Code: b.Code, Message: b.Message}
		if b.Reason != "" {
			line.Reason = &b.Reason
		}
		out.BadLines[i] = line
	}
	return out
}

func reportOut(rep map[string]any) *model.OrganisationReport {
	labels, _ := rep["labels"].(map[string]string)
	entries := func(k string) []*model.CountEntry {
		m, _ := rep[k].(map[string]int64)
		out := make([]*model.CountEntry, 0, len(m))
		for key, n := range m {
			e := &model.CountEntry{Key: key, Count: int(n)}
			if l, ok := labels[key]; ok && k != "byStatus" {
				e.Label = &l
			}
			out = append(out, e)
		}
		slices.SortFunc(out, func(a, b *model.CountEntry) int { return strings.Compare(a.Key, b.Key) })
		return out
	}
	gen, _ := rep["generatedAt"].(time.Time)
	id, _ := rep["organisationId"].(string)
	ever, _ := rep["learnersEver"].(int64)
	name, _ := rep["organisationName"].(string)
	return &model.OrganisationReport{OrganisationID: id, OrganisationName: name, GeneratedAt: gen, LearnersEver: int(ever), ByStatus: entries("byStatus"),
		ByAccessGroup: entries("byAccessGroup"), PolicyDecisions: entries("policyDecisions"), Activity: entries("activity")}
}

func apiKeyOut(k domain.APIKey) *model.APIKey {
	return &model.APIKey{ID: k.ID, ProgrammeID: k.ProgrammeID, Name: k.Name, Prefix: k.Prefix, CreatedAt: k.CreatedAt, RevokedAt: k.RevokedAt}
}
