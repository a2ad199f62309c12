package lifecycle

import (
	"context"
	"slices"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// canReadLearner: the learner, admins of the learner's organisation,
// programme admins and the programme's LMS (CTL-10). Everyone else gets
// NOT_FOUND, as for a missing learner.
func canReadLearner(a *domain.Actor, l domain.Learner) bool {
	if a.Learner != nil && a.Learner.ID == l.ID {
		return true
	}
	return a.System || a.Bootstrap || a.ProgrammeAdmin(l.ProgrammeID) || a.OrganisationAdmin(l.OrganisationID) ||
		a.HasRoleIn(l.ProgrammeID, domain.RoleLMS) || a.DirectoryFor(l.OrganisationID)
}

// canManageLearner: a directory (SCIM token) manages its own organisation's
// learners only.
func canManageLearner(a *domain.Actor, l domain.Learner) bool {
	return a.System || a.Bootstrap || a.ProgrammeAdmin(l.ProgrammeID) || a.OrganisationAdmin(l.OrganisationID) ||
		a.DirectoryFor(l.OrganisationID)
}

func (s *Service) readLearner(ctx context.Context, a *domain.Actor, id string, forUpdate bool) (domain.Learner, error) {
	if !validID(id) {
		return domain.Learner{}, notFound("learner")
	}
	l, err := s.st.GetLearner(ctx, id, forUpdate)
	if err != nil {
		if apperr.CodeOf(err) == apperr.NotFound {
			return l, notFound("learner")
		}
		return l, err
	}
	if !canReadLearner(a, l) {
		return domain.Learner{}, notFound("learner")
	}
	return l, nil
}

// onlyAsLMS reports whether the actor reads l only because it is the
// programme's LMS: then it reads personal data only of learners in the
// desired state (CTL-10), of others only ID, status and version.
func onlyAsLMS(a *domain.Actor, l domain.Learner) bool {
	if a.System || a.Bootstrap || (a.Learner != nil && a.Learner.ID == l.ID) ||
		a.ProgrammeAdmin(l.ProgrammeID) || a.OrganisationAdmin(l.OrganisationID) {
		return false
	}
	return a.HasRoleIn(l.ProgrammeID, domain.RoleLMS)
}

// shown is l as the actor may read it: its access as of now (CTL-6), and
// without name and email for an LMS when it has no access (CTL-10).
func (s *Service) shown(ctx context.Context, a *domain.Actor, ls []domain.Learner) error {
	ps := make([]*domain.Learner, len(ls))
	for i := range ls {
		ps[i] = &ls[i]
	}
	if err := s.stampContract(ctx, ps...); err != nil {
		return err
	}
	for i, l := range ls {
		if !l.Personal() && onlyAsLMS(a, l) {
			ls[i] = l.WithoutPersonalData()
		}
	}
	return nil
}

// Learner returns a learner the actor may see.
func (s *Service) Learner(ctx context.Context, id string) (domain.Learner, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.Learner{}, err
	}
	l, err := s.readLearner(ctx, a, id, false)
	if err != nil {
		return l, err
	}
	one := []domain.Learner{l}
	return one[0], s.shown(ctx, a, one)
}

// LearnersByIDs is the batch read behind the feed's learner field. Erased
// learners are left out: their current data is gone (invariant 3).
func (s *Service) LearnersByIDs(ctx context.Context, ids []string) (map[string]domain.Learner, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return nil, err
	}
	ls, err := s.st.LearnersByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	keep := ls[:0]
	for _, l := range ls {
		if canReadLearner(a, l) && l.Status != domain.StatusErased {
			keep = append(keep, l)
		}
	}
	if err := s.shown(ctx, a, keep); err != nil {
		return nil, err
	}
	out := make(map[string]domain.Learner, len(keep))
	for _, l := range keep {
		out[l.ID] = l
	}
	return out, nil
}

type LearnerQuery struct {
	ProgrammeID    string
	OrganisationID *string
	Statuses       []domain.LearnerStatus
	Search         string
	First          int
	After          string
	// WithAcceptances: the page brings the learners' policy decisions,
	// read with them (one round trip on PostgreSQL).
	WithAcceptances bool
}

// Learners pages a programme's learners. Programme admins and the LMS see all;
// an organisation admin sees their own organisation's, and asking for another
// organisation is NOT_FOUND, not an empty page (CTL-10).
func (s *Service) Learners(ctx context.Context, q LearnerQuery) (LearnersPage, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return LearnersPage{}, err
	}
	p, err := s.Programme(ctx, q.ProgrammeID)
	if err != nil {
		return LearnersPage{}, err
	}
	if q.First <= 0 || q.First > 500 {
		return LearnersPage{}, apperr.Invalid("first", "first must be between 1 and 500")
	}
	if q.After != "" && !validID(q.After) {
		return LearnersPage{}, apperr.Invalid("after", "malformed cursor")
	}
	if len(q.Search) > 100 {
		return LearnersPage{}, apperr.Invalid("search", "search is at most 100 characters")
	}
	f := domain.LearnerFilter{ProgrammeID: p.ID, Statuses: q.Statuses, Search: q.Search, AfterID: q.After, Limit: q.First + 1}
	full := a.Bootstrap || a.System || a.ProgrammeAdmin(p.ID) || a.HasRoleIn(p.ID, domain.RoleLMS)
	switch {
	case q.OrganisationID != nil:
		var o domain.Organisation
		if full {
			// Programme admins and the LMS list every learner of the
			// programme; the filter only narrows that.
			if !validID(*q.OrganisationID) {
				err = notFound("organisation")
			} else {
				o, err = s.st.GetOrganisation(ctx, *q.OrganisationID)
			}
		} else {
			o, err = s.readOrganisation(ctx, a, *q.OrganisationID)
		}
		if err != nil || o.ProgrammeID != p.ID {
			return LearnersPage{}, notFound("organisation").WithField("organisationId")
		}
		if !full && !a.OrganisationAdmin(o.ID) {
			return LearnersPage{}, notFound("organisation").WithField("organisationId")
		}
		f.OrganisationIDs = []string{o.ID}
	case !full:
		var own []string
		for _, g := range a.Grants {
			if g.Role == domain.RoleOrganisationAdmin && g.ProgrammeID == p.ID && g.OrganisationID != nil {
				own = append(own, *g.OrganisationID)
			}
		}
		if len(own) == 0 {
			return LearnersPage{}, apperr.Forbiddenf("your role cannot list learners")
		}
		f.OrganisationIDs = own
	}
	f.WithAcceptances = q.WithAcceptances
	ls, acc, err := s.st.ListLearners(ctx, f)
	if err != nil {
		return LearnersPage{}, err
	}
	page := LearnersPage{Learners: ls, More: len(ls) > q.First, Acceptances: acc}
	if page.More {
		last := ls[q.First].ID // read to know there is more, not listed
		page.Learners = ls[:q.First]
		page.Acceptances = slices.DeleteFunc(acc, func(a domain.PolicyAcceptance) bool { return a.LearnerID == last })
	}
	return page, s.shown(ctx, a, page.Learners)
}

// LearnersPage is a page of Learners: the learners, whether more follow,
// and with LearnerQuery.WithAcceptances their policy decisions (as
// AcceptancesByLearners gives them), read with them.
type LearnersPage struct {
	Learners    []domain.Learner
	More        bool
	Acceptances []domain.PolicyAcceptance
}

// AcceptancesByLearners backs Learner.acceptances: the learners'
// decisions, in the order they were made (the learners were authorised).
func (s *Service) AcceptancesByLearners(ctx context.Context, ids []string) ([]domain.PolicyAcceptance, error) {
	return s.st.AcceptancesByLearners(ctx, ids)
}

// OrganisationsByIDs backs Learner.organisation (the learner was authorised).
func (s *Service) OrganisationsByIDs(ctx context.Context, ids []string) (map[string]domain.Organisation, error) {
	os, err := s.st.OrganisationsByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]domain.Organisation, len(os))
	for _, o := range os {
		out[o.ID] = o
	}
	return out, nil
}

// AccessGroupsByIDs backs Learner.accessGroup.
func (s *Service) AccessGroupsByIDs(ctx context.Context, ids []string) (map[string]domain.AccessGroup, error) {
	gs, err := s.st.AccessGroupsByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]domain.AccessGroup, len(gs))
	for _, g := range gs {
		out[g.ID] = g
	}
	return out, nil
}

// Retention is GEN-1: until when and why the learner's data is kept.
func (s *Service) Retention(ctx context.Context, learnerID string) (domain.Retention, error) {
	l, err := s.Learner(ctx, learnerID)
	if err != nil {
		return domain.Retention{}, err
	}
	return s.RetentionOf(ctx, l)
}

// RetentionOf computes the statement for an already authorised learner.
func (s *Service) RetentionOf(ctx context.Context, l domain.Learner) (domain.Retention, error) {
	p, err := s.st.GetProgramme(ctx, l.ProgrammeID)
	if err != nil {
		return domain.Retention{}, err
	}
	return domain.RetentionFor(l, p.Settings), nil
}
