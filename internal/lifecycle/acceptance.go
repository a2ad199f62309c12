package lifecycle

import (
	"context"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// currentVersions returns the programme's policies with their current
// (ACTIVE) version, keyed by version ID.
func (s *Service) currentVersions(ctx context.Context, programmeID string) (map[string]domain.PolicyVersion, map[string]domain.Policy, error) {
	pols, err := s.st.PoliciesByProgrammes(ctx, []string{programmeID})
	if err != nil {
		return nil, nil, err
	}
	byID := map[string]domain.Policy{}
	ids := make([]string, 0, len(pols))
	for _, p := range pols {
		byID[p.ID] = p
		ids = append(ids, p.ID)
	}
	if len(ids) == 0 {
		return map[string]domain.PolicyVersion{}, byID, nil
	}
	vs, err := s.st.PolicyVersionsByPolicies(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	cur := map[string]domain.PolicyVersion{}
	for _, v := range vs {
		if v.Status == domain.VersionActive {
			cur[v.ID] = v
		}
	}
	return cur, byID, nil
}

// PendingPolicies lists the current compulsory versions the learner has not
// accepted yet (CTL-5, ONC-1).
func (s *Service) PendingPolicies(ctx context.Context, l domain.Learner) ([]domain.PolicyVersion, error) {
	cur, pols, err := s.currentVersions(ctx, l.ProgrammeID)
	if err != nil {
		return nil, err
	}
	acc, err := s.st.AcceptancesByLearners(ctx, []string{l.ID})
	if err != nil {
		return nil, err
	}
	return pendingOf(cur, pols, acc), nil
}

func pendingOf(cur map[string]domain.PolicyVersion, pols map[string]domain.Policy, acc []domain.PolicyAcceptance) []domain.PolicyVersion {
	accepted := map[string]bool{}
	for _, a := range acc {
		if a.Decision == domain.DecisionAccepted {
			accepted[a.PolicyVersionID] = true
		}
	}
	var out []domain.PolicyVersion
	for _, v := range cur {
		if pols[v.PolicyID].Compulsory && !accepted[v.ID] {
			out = append(out, v)
		}
	}
	slicesSortVersions(out)
	return out
}

type AcceptInput struct {
	PolicyVersionIDs  []string
	ConfirmMinimumAge bool
	Decline           bool   // record a decline (optional policies only)
	OnBehalfOf        string // learner ID, when an admin gives it
	Note              string // required on behalf
}

// AcceptPolicies records the learner's decisions on current policy versions.
// Accepting every current compulsory version activates the learner. Under a
// minimum age the privacy policy needs confirmMinimumAge (ONC-2); the refusal
// is audited without keeping any age data.
func (s *Service) AcceptPolicies(ctx context.Context, in AcceptInput) (domain.Learner, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.Learner{}, err
	}
	givenBy := "SELF"
	var learnerID string
	if in.OnBehalfOf != "" {
		givenBy = "ADMIN"
		learnerID = in.OnBehalfOf
		if in.Note, err = cleanText("note", in.Note, 1, 1000); err != nil {
			return domain.Learner{}, err
		}
	} else {
		if a.Learner == nil {
			if a.SignInErr != nil {
				return domain.Learner{}, a.SignInErr
			}
			return domain.Learner{}, apperr.Forbiddenf("only a signed-in learner can accept policies")
		}
		learnerID = a.Learner.ID
	}
	if len(in.PolicyVersionIDs) == 0 || len(in.PolicyVersionIDs) > 50 {
		return domain.Learner{}, apperr.Invalid("policyVersionIds", "give between 1 and 50 policy versions")
	}
	var out domain.Learner
	var refusedAge bool
	var programmeID string
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		l, err := s.readLearner(ctx, a, learnerID, true)
		if err != nil {
			return err
		}
		programmeID = l.ProgrammeID
		if givenBy == "ADMIN" && !canManageLearner(a, l) {
			return apperr.Forbiddenf("your role cannot accept policies for this learner")
		}
		if l.Status != domain.StatusPendingAcceptance && l.Status != domain.StatusActive {
			return apperr.Conflictf("the learner's status is %s", l.Status)
		}
		p, err := s.st.GetProgramme(ctx, l.ProgrammeID)
		if err != nil {
			return err
		}
		cur, pols, err := s.currentVersions(ctx, l.ProgrammeID)
		if err != nil {
			return err
		}
		needsAge := false
		for _, id := range in.PolicyVersionIDs {
			v, ok := cur[id]
			if !ok {
				return apperr.Invalid("policyVersionIds", "only the current version of a policy of the learner's programme can be accepted").
					WithReason("NOT_CURRENT_VERSION").WithRule("ONC-1")
			}
			pol := pols[v.PolicyID]
			if in.Decline && pol.Compulsory {
				return apperr.Invalid("policyVersionIds", "a compulsory policy cannot be declined; withdraw consent instead").WithRule("CTL-5")
			}
			if pol.Type == domain.PolicyPrivacy && p.Settings.MinimumAge > 0 && !in.Decline {
				needsAge = true
			}
		}
		if needsAge && !in.ConfirmMinimumAge {
			refusedAge = true
			return apperr.Invalid("confirmMinimumAge", "accepting the privacy policy requires confirming you are at least %d", p.Settings.MinimumAge).WithRule("ONC-2")
		}
		now := s.clock()
		decision := domain.DecisionAccepted
		if in.Decline {
			decision = domain.DecisionDeclined
		}
		for _, id := range in.PolicyVersionIDs {
			if err := s.st.SaveAcceptance(ctx, domain.PolicyAcceptance{ID: newID(), LearnerID: l.ID, PolicyVersionID: id,
				Decision: decision, AgeConfirmed: cur[id].ID != "" && pols[cur[id].PolicyID].Type == domain.PolicyPrivacy && in.ConfirmMinimumAge,
				GivenBy: givenBy, ActorID: a.ID, Note: in.Note, DecidedAt: now}); err != nil {
				return err
			}
		}
		action := "policy.accept"
		if in.Decline {
			action = "policy.decline"
		}
		if err := s.audit(ctx, a, &l.ProgrammeID, action, "learner", l.ID, in.Note,
			map[string]any{"policyVersionIds": in.PolicyVersionIDs, "givenBy": givenBy}); err != nil {
			return err
		}
		acc, err := s.st.AcceptancesByLearners(ctx, []string{l.ID})
		if err != nil {
			return err
		}
		if l.Status == domain.StatusPendingAcceptance && len(pendingOf(cur, pols, acc)) == 0 {
			// CTL-5: every current compulsory version accepted. CTL-6: the
			// domain refuses activation once the contract has ended.
			l.ContractEnded = contractOver(p, now)
			c := &change{L: l}
			if err := c.do(c.L.Activate(now)); err != nil {
				return err
			}
			c.audit("learner.activate", "", nil)
			if err := s.commit(ctx, a, c); err != nil {
				return err
			}
			l = c.L
		}
		out = l
		return nil
	})
	if refusedAge {
		// ONC-2: the refusal is recorded, with nothing about the person's age.
		if aerr := s.st.InTx(context.WithoutCancel(ctx), func(ctx context.Context) error {
			return s.audit(ctx, a, &programmeID, "policy.accept.refused", "learner", learnerID, "minimum age not confirmed",
				map[string]any{"rule": "ONC-2"})
		}); aerr != nil {
			s.log.ErrorContext(ctx, "could not audit an ONC-2 refusal", "learner", learnerID, "err", aerr.Error())
		}
	}
	return out, err
}

// UpdateMyProfile lets a learner correct their own name, and nothing else (ONC-9).
func (s *Service) UpdateMyProfile(ctx context.Context, givenName, familyName *string) (domain.Learner, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.Learner{}, err
	}
	if a.Learner == nil {
		if a.SignInErr != nil {
			return domain.Learner{}, a.SignInErr
		}
		return domain.Learner{}, apperr.Forbiddenf("only a signed-in learner has a profile")
	}
	if givenName == nil && familyName == nil {
		return domain.Learner{}, apperr.Invalid("input", "give a givenName or a familyName")
	}
	var given, family *string
	if givenName != nil {
		if given, err = cleanName("givenName", *givenName); err != nil {
			return domain.Learner{}, err
		}
	}
	if familyName != nil {
		if family, err = cleanName("familyName", *familyName); err != nil {
			return domain.Learner{}, err
		}
	}
	return s.onLearner(ctx, a, a.Learner.ID, nil, func(ctx context.Context, c *change) error {
		c.audit("learner.profile.update", "", nil)
		return c.do(c.L.Correct(domain.Correction{GivenName: given, FamilyName: family, ByPerson: true, BySelf: true}, s.clock()))
	})
}

// PolicyVersionsByIDs backs PolicyAcceptance.policyVersion.
func (s *Service) PolicyVersionsByIDs(ctx context.Context, ids []string) (map[string]domain.PolicyVersion, error) {
	vs, err := s.st.PolicyVersionsByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]domain.PolicyVersion, len(vs))
	for _, v := range vs {
		out[v.ID] = v
	}
	return out, nil
}
