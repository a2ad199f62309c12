package lifecycle

import (
	"context"
	"sort"

	"github.com/rollcall-dev/rollcall/internal/domain"
)

// PolicyItem is one current policy version as the learner's pages show it.
type PolicyItem struct {
	Policy   domain.Policy
	Version  domain.PolicyVersion
	Decision *domain.Decision // the learner's latest decision on this version; nil: none
	// NeedsAgeConfirmation: accepting it needs confirmMinimumAge (ONC-2),
	// as AcceptPolicies decides.
	NeedsAgeConfirmation bool
}

// LearnerHome is everything the signed-in learner's own pages read: their
// record, the names of what it belongs to, the policies the programme asks
// them to decide on, the retention statement (GEN-1) and the rules that can
// end it. It changes nothing; changes go through AcceptPolicies,
// UpdateMyProfile, WithdrawConsent, RequestErasure and MyData, exactly as the
// GraphQL mutations do.
type LearnerHome struct {
	Learner       domain.Learner
	Organisation  string // name
	AccessGroup   string // name; "" when none
	Programme     string // name
	Settings      domain.RuleSettings
	Compulsory    []PolicyItem // current compulsory versions, accepted or not
	Optional      []PolicyItem // current optional versions
	Pending       int          // compulsory versions not yet accepted (CTL-5)
	Retention     domain.Retention
	Triggers      []domain.RetentionTrigger
	Withdrawal    domain.ErasureTiming // what withdrawing consent does here (CTL-8, ONC-5)
	ErasureAsked  domain.ErasureTiming // what asking for erasure does here (CTL-11, ONC-5)
	AccessAllowed bool
}

// MyHome reads the caller's own learner record for their pages. An identity
// that is not a learner gets the same error as the self-service mutations.
func (s *Service) MyHome(ctx context.Context) (LearnerHome, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return LearnerHome{}, err
	}
	id, err := selfLearner(a)
	if err != nil {
		return LearnerHome{}, err
	}
	l, err := s.st.GetLearner(ctx, id, false)
	if err != nil {
		return LearnerHome{}, err
	}
	p, err := s.st.GetProgramme(ctx, l.ProgrammeID)
	if err != nil {
		return LearnerHome{}, err
	}
	o, err := s.st.GetOrganisation(ctx, l.OrganisationID)
	if err != nil {
		return LearnerHome{}, err
	}
	h := LearnerHome{Learner: l, Organisation: o.Name, Programme: p.Name, Settings: p.Settings,
		Triggers:   domain.RetentionTriggers(p.Settings),
		Withdrawal: domain.WithdrawalErasure(p.Settings), ErasureAsked: domain.RequestedErasure(p.Settings),
		AccessAllowed: l.AccessAllowed()}
	// GEN-1: the same statement as the retention query.
	if h.Retention, err = s.RetentionOf(ctx, l); err != nil {
		return LearnerHome{}, err
	}
	if l.AccessGroupID != nil {
		g, err := s.st.GetAccessGroup(ctx, *l.AccessGroupID)
		if err != nil {
			return LearnerHome{}, err
		}
		h.AccessGroup = g.Name
	}
	cur, pols, err := s.currentVersions(ctx, l.ProgrammeID)
	if err != nil {
		return LearnerHome{}, err
	}
	acc, err := s.st.AcceptancesByLearners(ctx, []string{l.ID})
	if err != nil {
		return LearnerHome{}, err
	}
	latest := map[string]domain.PolicyAcceptance{}
	for _, x := range acc {
		if prev, ok := latest[x.PolicyVersionID]; !ok || !x.DecidedAt.Before(prev.DecidedAt) {
			latest[x.PolicyVersionID] = x
		}
	}
	for _, v := range cur {
		pol := pols[v.PolicyID]
		it := PolicyItem{Policy: pol, Version: v,
			NeedsAgeConfirmation: pol.Type == domain.PolicyPrivacy && p.Settings.MinimumAge > 0}
		if x, ok := latest[v.ID]; ok {
			it.Decision = ptr(x.Decision)
		}
		if pol.Compulsory {
			h.Compulsory = append(h.Compulsory, it)
		} else {
			h.Optional = append(h.Optional, it)
		}
	}
	h.Pending = len(pendingOf(cur, pols, acc))
	for _, list := range [][]PolicyItem{h.Compulsory, h.Optional} {
		sort.Slice(list, func(i, j int) bool {
			if list[i].Policy.CreatedAt.Equal(list[j].Policy.CreatedAt) {
				return list[i].Policy.ID < list[j].Policy.ID
			}
			return list[i].Policy.CreatedAt.Before(list[j].Policy.CreatedAt)
		})
	}
	return h, nil
}
