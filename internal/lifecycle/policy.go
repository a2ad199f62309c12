package lifecycle

import (
	"context"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

type PolicyInput struct {
	Name       string
	Type       domain.PolicyType
	Audience   domain.PolicyAudience
	Compulsory bool
}

// CreatePolicy adds a policy to a programme (ONC-1); it has no text until a
// version is published.
func (s *Service) CreatePolicy(ctx context.Context, programmeID string, in PolicyInput) (domain.Policy, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.Policy{}, err
	}
	p, err := s.Programme(ctx, programmeID)
	if err != nil {
		return domain.Policy{}, err
	}
	if !isProgrammeAdmin(a, p.ID) {
		return domain.Policy{}, apperr.Forbiddenf("only a programme admin can create policies")
	}
	name, err := cleanText("name", in.Name, 1, 200)
	if err != nil {
		return domain.Policy{}, err
	}
	if !in.Type.Valid() {
		return domain.Policy{}, apperr.Invalid("type", "unknown policy type")
	}
	if !in.Audience.Valid() {
		return domain.Policy{}, apperr.Invalid("audience", "unknown policy audience")
	}
	pol := domain.Policy{ID: newID(), ProgrammeID: p.ID, Name: name, Type: in.Type, Audience: in.Audience,
		Compulsory: in.Compulsory, CreatedAt: s.clock()}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.CreatePolicy(ctx, pol); err != nil {
			if apperr.CodeOf(err) == apperr.Conflict {
				return apperr.Conflictf("a policy with this name already exists").WithField("name")
			}
			return err
		}
		return s.audit(ctx, a, &p.ID, "policy.create", "policy", pol.ID, "",
			map[string]any{"type": string(pol.Type), "compulsory": pol.Compulsory})
	})
	return pol, err
}

type PolicyVersionInput struct {
	Label    string
	Summary  string
	Content  string
	Activate bool
}

// PublishPolicyVersion adds an immutable version; with Activate it becomes the
// current version and the previous one is archived (ONC-1). Making earlier
// acceptances stale is done by the acceptance use cases.
func (s *Service) PublishPolicyVersion(ctx context.Context, policyID string, in PolicyVersionInput) (domain.PolicyVersion, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.PolicyVersion{}, err
	}
	if !validID(policyID) {
		return domain.PolicyVersion{}, notFound("policy")
	}
	pol, err := s.st.GetPolicy(ctx, policyID)
	if err != nil || !canReadProgramme(a, pol.ProgrammeID) {
		if err == nil || apperr.CodeOf(err) == apperr.NotFound {
			return domain.PolicyVersion{}, notFound("policy")
		}
		return domain.PolicyVersion{}, err
	}
	if !isProgrammeAdmin(a, pol.ProgrammeID) {
		return domain.PolicyVersion{}, apperr.Forbiddenf("only a programme admin can publish policy versions")
	}
	label, err := cleanText("label", in.Label, 1, 50)
	if err != nil {
		return domain.PolicyVersion{}, err
	}
	summary, err := cleanText("summary", in.Summary, 0, 2000)
	if err != nil {
		return domain.PolicyVersion{}, err
	}
	content, err := cleanText("content", in.Content, 1, 200_000)
	if err != nil {
		return domain.PolicyVersion{}, err
	}
	now := s.clock()
	v := domain.PolicyVersion{ID: newID(), PolicyID: pol.ID, Label: label, Summary: summary, Content: content,
		Status: domain.VersionDraft, PublishedAt: now}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.CreatePolicyVersion(ctx, v); err != nil {
			if apperr.CodeOf(err) == apperr.Conflict {
				return apperr.Conflictf("this policy already has a version with this label").WithField("label")
			}
			return err
		}
		if in.Activate {
			if err := s.activateVersion(ctx, a, pol, &v); err != nil {
				return err
			}
		}
		return s.audit(ctx, a, &pol.ProgrammeID, "policy.version.publish", "policy_version", v.ID, "",
			map[string]any{"policyId": pol.ID, "label": label, "activated": in.Activate})
	})
	return v, err
}

// activateVersion makes v current. For a compulsory policy, earlier
// acceptances become stale: every active learner of the programme goes back
// to PENDING_ACCEPTANCE with an ACCESS_REVOKED event, in one set-based
// statement (ONC-1).
func (s *Service) activateVersion(ctx context.Context, a *domain.Actor, pol domain.Policy, v *domain.PolicyVersion) error {
	now := s.clock()
	if err := s.st.ActivatePolicyVersion(ctx, pol.ID, v.ID, now); err != nil {
		return err
	}
	v.Status, v.ActivatedAt = domain.VersionActive, &now
	if !pol.Compulsory {
		return nil
	}
	n, err := s.st.RevokeStaleAcceptance(ctx, pol.ProgrammeID, domain.BulkRevokeAccess, now)
	if err != nil {
		return err
	}
	if n > 0 {
		return s.audit(ctx, a, &pol.ProgrammeID, "policy.acceptances.stale", "policy_version", v.ID, "",
			map[string]any{"learnersMovedToPendingAcceptance": n, "rule": "ONC-1"})
	}
	return nil
}

func (s *Service) PoliciesByProgrammes(ctx context.Context, ids []string) (map[string][]domain.Policy, error) {
	ps, err := s.st.PoliciesByProgrammes(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := map[string][]domain.Policy{}
	for _, p := range ps {
		out[p.ProgrammeID] = append(out[p.ProgrammeID], p)
	}
	return out, nil
}

func (s *Service) PolicyVersionsByPolicies(ctx context.Context, ids []string) (map[string][]domain.PolicyVersion, error) {
	vs, err := s.st.PolicyVersionsByPolicies(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := map[string][]domain.PolicyVersion{}
	for _, v := range vs {
		out[v.PolicyID] = append(out[v.PolicyID], v)
	}
	return out, nil
}
