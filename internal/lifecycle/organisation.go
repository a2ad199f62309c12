package lifecycle

import (
	"context"
	"strings"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// Organisation returns an organisation the actor may read. An organisation
// admin asking for another organisation gets NOT_FOUND, exactly as for a
// missing one (CTL-10).
func (s *Service) Organisation(ctx context.Context, id string) (domain.Organisation, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.Organisation{}, err
	}
	return s.readOrganisation(ctx, a, id)
}

func (s *Service) readOrganisation(ctx context.Context, a *domain.Actor, id string) (domain.Organisation, error) {
	if !validID(id) {
		return domain.Organisation{}, notFound("organisation")
	}
	o, err := s.st.GetOrganisation(ctx, id)
	if err != nil {
		if apperr.CodeOf(err) == apperr.NotFound {
			return o, notFound("organisation")
		}
		return o, err
	}
	if !canReadOrganisation(a, o) {
		return domain.Organisation{}, notFound("organisation")
	}
	return o, nil
}

// manageOrganisation reads an organisation for a change: NOT_FOUND if the
// actor cannot see it, FORBIDDEN if they can see but not change it.
func (s *Service) manageOrganisation(ctx context.Context, a *domain.Actor, id string, programmeAdminOnly bool) (domain.Organisation, error) {
	o, err := s.readOrganisation(ctx, a, id)
	if err != nil {
		return o, err
	}
	ok := isProgrammeAdmin(a, o.ProgrammeID) || (!programmeAdminOnly && (a.OrganisationAdmin(o.ID) || a.DirectoryFor(o.ID)))
	if !ok {
		return o, apperr.Forbiddenf("your role cannot change this organisation")
	}
	if o.Status == domain.OrgRemoved {
		return o, apperr.Conflictf("the organisation has left the programme").WithReason("ORGANISATION_REMOVED").WithRule("CTL-9")
	}
	return o, nil
}

// stillAdmitted re-reads, in the caller's transaction and holding the
// organisation's lock shared to its end, the organisation a learner is about to be written into (a
// new learner, an import, a move). An organisation's removal schedules the
// removal of every learner it finds (CTL-9) once, in its own transaction: a
// learner written into the organisation after it would stay. With the lock,
// either the removal waits for this transaction and then finds the learner,
// or this transaction waits for the removal and refuses. What was read before
// the transaction (the eligibility of an email, an admin's right) cannot
// decide this.
//
// It reports too whether the programme's contract has ended (CTL-6), read
// in the same statement: a path that provisions a learner decides on it
// (domain.NewLearner), whatever the reference cache said before the
// transaction.
func (s *Service) stillAdmitted(ctx context.Context, orgID string) (contractEnded bool, err error) {
	o, end, err := s.st.GetOrganisationShared(ctx, orgID)
	if err != nil {
		return false, err
	}
	if o.Status != domain.OrgAdmitted {
		return false, apperr.Conflictf("the organisation has left the programme").WithReason("ORGANISATION_REMOVED").WithRule("CTL-9")
	}
	return contractEndPassed(end, s.clock()), nil
}

// admitNewLearner is stillAdmitted for a path that adds learners to the
// organisation: CTL-9, then CTL-6 decided by the domain (NewLearner) on
// the contract end the transaction read.
func (s *Service) admitNewLearner(ctx context.Context, orgID string, origin domain.Origin) error {
	ended, err := s.stillAdmitted(ctx, orgID)
	if err != nil || !ended {
		return err
	}
	_, _, err = domain.NewLearner(domain.Learner{}, origin, ended, s.clock())
	return fromDomain(err)
}

// OrganisationsByProgrammes is the batch read behind Programme.organisations.
// An organisation admin sees only their own organisation.
func (s *Service) OrganisationsByProgrammes(ctx context.Context, programmeIDs []string) (map[string][]domain.Organisation, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return nil, err
	}
	var full, scoped []string
	var only []string
	for _, pid := range programmeIDs {
		if a.Bootstrap || a.HasRoleIn(pid, domain.RoleProgrammeAdmin, domain.RoleAuditor) {
			full = append(full, pid)
		} else {
			scoped = append(scoped, pid)
		}
	}
	out := map[string][]domain.Organisation{}
	add := func(os []domain.Organisation) {
		for _, o := range os {
			out[o.ProgrammeID] = append(out[o.ProgrammeID], o)
		}
	}
	if len(full) > 0 {
		os, err := s.st.OrganisationsByProgrammes(ctx, full, nil)
		if err != nil {
			return nil, err
		}
		add(os)
	}
	if len(scoped) > 0 {
		for _, g := range a.Grants {
			if g.Role == domain.RoleOrganisationAdmin && g.OrganisationID != nil {
				only = append(only, *g.OrganisationID)
			}
		}
		if len(only) > 0 {
			os, err := s.st.OrganisationsByProgrammes(ctx, scoped, only)
			if err != nil {
				return nil, err
			}
			add(os)
		}
	}
	return out, nil
}

// DomainsByOrganisations, AccessGroupsByOrganisations and CoursesByAccessGroups
// back the dataloaders; their parents were authorised when they were read.
func (s *Service) DomainsByOrganisations(ctx context.Context, ids []string) (map[string][]domain.DomainRule, error) {
	ds, err := s.st.DomainsByOrganisations(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := map[string][]domain.DomainRule{}
	for _, d := range ds {
		out[d.OrganisationID] = append(out[d.OrganisationID], d)
	}
	return out, nil
}

func (s *Service) AccessGroupsByOrganisations(ctx context.Context, ids []string) (map[string][]domain.AccessGroup, error) {
	gs, err := s.st.AccessGroupsByOrganisations(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := map[string][]domain.AccessGroup{}
	for _, g := range gs {
		out[g.OrganisationID] = append(out[g.OrganisationID], g)
	}
	return out, nil
}

func (s *Service) CoursesByAccessGroups(ctx context.Context, ids []string) (map[string][]domain.Course, error) {
	return s.st.CoursesByAccessGroups(ctx, ids)
}

func (s *Service) CoursesByProgrammes(ctx context.Context, ids []string) (map[string][]domain.Course, error) {
	cs, err := s.st.CoursesByProgrammes(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := map[string][]domain.Course{}
	for _, c := range cs {
		out[c.ProgrammeID] = append(out[c.ProgrammeID], c)
	}
	return out, nil
}

// AddEmailDomain gives an organisation another work email domain. Domains
// decide eligibility (CTL-3), so only programme admins may add them.
func (s *Service) AddEmailDomain(ctx context.Context, organisationID, raw string, includeSubdomains bool) (domain.DomainRule, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.DomainRule{}, err
	}
	o, err := s.manageOrganisation(ctx, a, organisationID, true)
	if err != nil {
		return domain.DomainRule{}, err
	}
	d, err := normaliseDomain("domain", raw)
	if err != nil {
		return domain.DomainRule{}, err
	}
	rule := domain.DomainRule{ID: newID(), OrganisationID: o.ID, Domain: d, IncludeSubdomains: includeSubdomains, CreatedAt: s.clock()}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		if err := s.checkDomainFree(ctx, d, includeSubdomains, o.ID); err != nil {
			return err
		}
		if err := s.st.CreateEmailDomain(ctx, rule); err != nil {
			if apperr.CodeOf(err) == apperr.Conflict {
				return apperr.Conflictf("this domain already belongs to an organisation").WithField("domain")
			}
			return err
		}
		return s.audit(ctx, a, &o.ProgrammeID, "domain.add", "organisation", o.ID, "",
			map[string]any{"domainId": rule.ID, "domain": d, "includeSubdomains": includeSubdomains})
	})
	return rule, err
}

// RemoveEmailDomain takes a domain away from its organisation.
func (s *Service) RemoveEmailDomain(ctx context.Context, domainID string) (domain.Organisation, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.Organisation{}, err
	}
	if !validID(domainID) {
		return domain.Organisation{}, notFound("domain")
	}
	rule, err := s.st.GetEmailDomain(ctx, domainID)
	if err != nil {
		if apperr.CodeOf(err) == apperr.NotFound {
			return domain.Organisation{}, notFound("domain")
		}
		return domain.Organisation{}, err
	}
	o, err := s.readOrganisation(ctx, a, rule.OrganisationID)
	if err != nil {
		return o, notFound("domain")
	}
	if !isProgrammeAdmin(a, o.ProgrammeID) {
		return o, apperr.Forbiddenf("only a programme admin can remove email domains")
	}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.DeleteEmailDomain(ctx, rule.ID); err != nil {
			return err
		}
		return s.audit(ctx, a, &o.ProgrammeID, "domain.remove", "organisation", o.ID, "",
			map[string]any{"domainId": rule.ID, "domain": rule.Domain})
	})
	return o, err
}

type AccessGroupInput struct {
	Name      string
	IsDefault bool
	CourseIDs []string
}

// CreateAccessGroup adds a group to an organisation (programme admins and the
// organisation's own admins). A new default group replaces the old default.
func (s *Service) CreateAccessGroup(ctx context.Context, organisationID string, in AccessGroupInput) (domain.AccessGroup, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.AccessGroup{}, err
	}
	o, err := s.manageOrganisation(ctx, a, organisationID, false)
	if err != nil {
		return domain.AccessGroup{}, err
	}
	name, err := cleanText("name", in.Name, 1, 200)
	if err != nil {
		return domain.AccessGroup{}, err
	}
	courseIDs, err := s.checkCourses(ctx, o.ProgrammeID, in.CourseIDs)
	if err != nil {
		return domain.AccessGroup{}, err
	}
	if in.IsDefault {
		return domain.AccessGroup{}, apperr.Invalid("isDefault", "an organisation has one default group, created on admission; create the group and move the domain rule instead")
	}
	g := domain.AccessGroup{ID: newID(), OrganisationID: o.ID, Name: name, CreatedAt: s.clock()}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.CreateAccessGroup(ctx, g); err != nil {
			if apperr.CodeOf(err) == apperr.Conflict {
				return apperr.Conflictf("the organisation already has a group with this name").WithField("name")
			}
			return err
		}
		if err := s.st.SetAccessGroupCourses(ctx, g.ID, courseIDs); err != nil {
			return err
		}
		return s.audit(ctx, a, &o.ProgrammeID, "access_group.create", "access_group", g.ID, "",
			map[string]any{"organisationId": o.ID, "courseIds": courseIDs})
	})
	return g, err
}

// SetAccessGroupCourses replaces the courses a group is enrolled on (CTL-4).
func (s *Service) SetAccessGroupCourses(ctx context.Context, groupID string, courseIDs []string) (domain.AccessGroup, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.AccessGroup{}, err
	}
	if !validID(groupID) {
		return domain.AccessGroup{}, notFound("access group")
	}
	g, err := s.st.GetAccessGroup(ctx, groupID)
	if err != nil {
		if apperr.CodeOf(err) == apperr.NotFound {
			return g, notFound("access group")
		}
		return g, err
	}
	o, err := s.manageOrganisation(ctx, a, g.OrganisationID, false)
	if err != nil {
		if apperr.CodeOf(err) == apperr.NotFound {
			return domain.AccessGroup{}, notFound("access group")
		}
		return domain.AccessGroup{}, err
	}
	ids, err := s.checkCourses(ctx, o.ProgrammeID, courseIDs)
	if err != nil {
		return domain.AccessGroup{}, err
	}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.SetAccessGroupCourses(ctx, g.ID, ids); err != nil {
			return err
		}
		// The LMS must re-enrol every member: one set-based version bump.
		n, err := s.st.BumpGroup(ctx, g.ID, domain.BulkCoursesChanged, s.clock())
		if err != nil {
			return err
		}
		return s.audit(ctx, a, &o.ProgrammeID, "access_group.set_courses", "access_group", g.ID, "",
			map[string]any{"courseIds": ids, "learnersAffected": n})
	})
	return g, err
}

// checkCourses de-duplicates course IDs and checks each is a course of the programme.
func (s *Service) checkCourses(ctx context.Context, programmeID string, ids []string) ([]string, error) {
	if len(ids) > 500 {
		return nil, apperr.Invalid("courseIds", "at most 500 courses per group")
	}
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !validID(id) {
			return nil, apperr.Invalid("courseIds", "unknown course")
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	if len(out) == 0 {
		return out, nil
	}
	cs, err := s.st.CoursesByIDs(ctx, out)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, c := range cs {
		if c.ProgrammeID == programmeID {
			n++
		}
	}
	if n != len(out) {
		return nil, apperr.Invalid("courseIds", "unknown course")
	}
	return out, nil
}

type CourseInput struct {
	LMSCourseID string
	Title       string
}

// CreateCourse adds a course the LMS knows by lmsCourseId (programme admins).
func (s *Service) CreateCourse(ctx context.Context, programmeID string, in CourseInput) (domain.Course, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.Course{}, err
	}
	p, err := s.Programme(ctx, programmeID)
	if err != nil {
		return domain.Course{}, err
	}
	if !isProgrammeAdmin(a, p.ID) {
		return domain.Course{}, apperr.Forbiddenf("only a programme admin can create courses")
	}
	lmsID, err := cleanText("lmsCourseId", in.LMSCourseID, 1, 100)
	if err != nil {
		return domain.Course{}, err
	}
	if strings.ContainsAny(lmsID, " \t\n") {
		return domain.Course{}, apperr.Invalid("lmsCourseId", "lmsCourseId must not contain spaces")
	}
	title, err := cleanText("title", in.Title, 1, 300)
	if err != nil {
		return domain.Course{}, err
	}
	c := domain.Course{ID: newID(), ProgrammeID: p.ID, LMSCourseID: lmsID, Title: title, CreatedAt: s.clock()}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.CreateCourse(ctx, c); err != nil {
			if apperr.CodeOf(err) == apperr.Conflict {
				return apperr.Conflictf("a course with this lmsCourseId already exists").WithField("lmsCourseId")
			}
			return err
		}
		return s.audit(ctx, a, &p.ID, "course.create", "course", c.ID, "", nil)
	})
	return c, err
}
