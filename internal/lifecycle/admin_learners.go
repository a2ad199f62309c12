package lifecycle

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

type LearnerInput struct {
	Email         string
	GivenName     string
	FamilyName    string
	AccessGroupID *string
}

type LearnerUpdate struct {
	Email         *string
	GivenName     *string
	FamilyName    *string
	AccessGroupID *string
	Reason        string
}

func cleanName(field, v string) (*string, error) {
	v, err := domain.CleanName(field, v)
	if err != nil {
		return nil, textInvalid(field, err)
	}
	return &v, nil
}

// groupOf checks an access group belongs to the organisation.
func (s *Service) groupOf(ctx context.Context, orgID string, groupID *string, fallback string) (*string, error) {
	if groupID == nil {
		if fallback == "" {
			return nil, nil
		}
		return &fallback, nil
	}
	if !validID(*groupID) {
		return nil, apperr.Invalid("accessGroupId", "unknown access group")
	}
	g, err := s.st.GetAccessGroup(ctx, *groupID)
	if err != nil || g.OrganisationID != orgID {
		return nil, apperr.Invalid("accessGroupId", "the access group is not one of the organisation's")
	}
	return &g.ID, nil
}

// CreateLearner lets an organisation admin add one of their staff (ONC-4).
// The email's domain must be the organisation's own (CTL-3).
func (s *Service) CreateLearner(ctx context.Context, organisationID string, in LearnerInput) (domain.Learner, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.Learner{}, err
	}
	o, err := s.manageOrganisation(ctx, a, organisationID, false)
	if err != nil {
		return domain.Learner{}, err
	}
	el, err := s.resolveEmail(ctx, in.Email, "email")
	if err != nil {
		return domain.Learner{}, err
	}
	if el.org.ID != o.ID {
		return domain.Learner{}, apperr.Invalid("email", "this email's domain belongs to another organisation").
			WithReason("DOMAIN_NOT_OWNED").WithRule("CTL-3")
	}
	given, err := cleanName("givenName", in.GivenName)
	if err != nil {
		return domain.Learner{}, err
	}
	family, err := cleanName("familyName", in.FamilyName)
	if err != nil {
		return domain.Learner{}, err
	}
	group, err := s.groupOf(ctx, o.ID, in.AccessGroupID, el.group)
	if err != nil {
		return domain.Learner{}, err
	}
	now := s.clock()
	ended, err := s.contractEnded(ctx, o.ProgrammeID)
	if err != nil {
		return domain.Learner{}, err
	}
	email := el.email.String()
	l, events, err := domain.NewLearner(domain.Learner{ID: newID(), ProgrammeID: o.ProgrammeID, OrganisationID: o.ID,
		AccessGroupID: group, Email: &email, GivenName: given, FamilyName: family}, domain.OriginAdmin, ended, now)
	if err != nil {
		return domain.Learner{}, fromDomain(err)
	}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		// CTL-9, and CTL-6 again on what the transaction reads (the
		// contract may have been ended since the cache was read).
		if err := s.admitNewLearner(ctx, o.ID, domain.OriginAdmin); err != nil {
			return err
		}
		if err := s.st.CreateLearner(ctx, l); err != nil {
			if apperr.CodeOf(err) == apperr.Conflict {
				return apperr.Conflictf("a learner with this email already exists").WithField("email")
			}
			return err
		}
		if err := s.audit(ctx, a, &l.ProgrammeID, "learner.create", "learner", l.ID, "",
			map[string]any{"organisationId": o.ID}); err != nil {
			return err
		}
		return s.st.AppendEvents(ctx, events)
	})
	return l, err
}

// UpdateLearner corrects a learner (ONC-4). A new email is re-evaluated: its
// domain decides the organisation and group; another organisation's domain
// is a move, audited as one.
func (s *Service) UpdateLearner(ctx context.Context, learnerID string, in LearnerUpdate) (domain.Learner, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.Learner{}, err
	}
	reason, err := cleanText("reason", in.Reason, 0, 1000)
	if err != nil {
		return domain.Learner{}, err
	}
	var given, family *string
	if in.GivenName != nil {
		if given, err = cleanName("givenName", *in.GivenName); err != nil {
			return domain.Learner{}, err
		}
	}
	if in.FamilyName != nil {
		if family, err = cleanName("familyName", *in.FamilyName); err != nil {
			return domain.Learner{}, err
		}
	}
	manage := func(l domain.Learner) error {
		if !canManageLearner(a, l) {
			return apperr.Forbiddenf("your role cannot change this learner")
		}
		return nil
	}
	out, err := s.onLearner(ctx, a, learnerID, manage, func(ctx context.Context, c *change) error {
		now := s.clock()
		details := map[string]any{}
		group := c.L.AccessGroupID
		var sameOrgEmail *string
		if in.Email != nil {
			el, err := s.resolveEmail(ctx, *in.Email, "email")
			if err != nil {
				return err
			}
			if el.org.ProgrammeID != c.L.ProgrammeID {
				return apperr.Invalid("email", "this email's domain belongs to another programme").WithReason("DOMAIN_NOT_ELIGIBLE").WithRule("CTL-3")
			}
			email := el.email.String()
			if el.org.ID != c.L.OrganisationID {
				// CTL-10, invariant 1: a move writes into the destination
				// organisation, so the actor must administer it too.
				if !canManageOrganisation(a, el.org) {
					return apperr.Forbiddenf("moving a learner to another organisation needs an admin of both organisations").
						WithField("email").WithReason("MOVE_NEEDS_BOTH_ORGANISATIONS").WithRule("CTL-10")
				}
				details["movedFrom"], details["movedTo"] = c.L.OrganisationID, el.org.ID
				if _, err := s.stillAdmitted(ctx, el.org.ID); err != nil { // a move: CTL-9 only
					return err
				}
				if err := c.do(c.L.Move(el.org.ID, email, now)); err != nil {
					return err
				}
				group = nil
				if el.group != "" {
					group = ptr(el.group)
				}
			} else if c.L.Email == nil || *c.L.Email != email {
				sameOrgEmail = &email
				// CTL-4: the domain rule decides the group; when the new
				// address falls under another rule, the group follows it.
				if c.L.Email != nil {
					if prev, err := s.resolveEmail(ctx, *c.L.Email, "email"); err == nil && prev.group != el.group && el.group != "" {
						group = ptr(el.group)
					}
				}
			}
		}
		if in.AccessGroupID != nil {
			g, err := s.groupOf(ctx, c.L.OrganisationID, in.AccessGroupID, "")
			if err != nil {
				return err
			}
			group = g
		}
		if err := c.do(c.L.Correct(domain.Correction{GivenName: given, FamilyName: family, Email: sameOrgEmail, ByPerson: true}, now)); err != nil {
			return err
		}
		if err := c.do(c.L.ChangeGroup(group, now)); err != nil {
			return err
		}
		if !c.changed() {
			return nil
		}
		if c.L.AccessGroupID != nil || group == nil {
			details["accessGroupId"] = deref(c.L.AccessGroupID)
		}
		action := "learner.update"
		if details["movedTo"] != nil {
			action = "learner.move"
		}
		c.audit(action, reason, details)
		return nil
	})
	if ae, ok := apperr.As(err); ok && ae.Code == apperr.Conflict && ae.Reason == "" {
		// The unique email index: another learner holds the address.
		return out, apperr.Conflictf("a learner with this email already exists").WithField("email")
	}
	return out, err
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// ImportRow is one line of a bulk import.
type ImportRow struct {
	Email         string
	GivenName     string
	FamilyName    string
	AccessGroupID *string
}

// ImportLine reports one row's outcome (rows count from 1).
type ImportLine struct {
	Row       int
	Code      string // CREATED, WOULD_CREATE, or an error code (BAD_USER_INPUT, CONFLICT)
	Reason    string
	Field     string
	Message   string
	LearnerID string
}

type ImportReport struct {
	DryRun  bool
	Atomic  bool
	Total   int
	Created int
	Failed  int
	Lines   []ImportLine // every failed row, and every created row
}

// MaxImportRows bounds one import call.
const MaxImportRows = 200_000

// importRowCheck is what checkImportRows found for one row: its email
// normalised, its names cleaned and its access group, or what is wrong.
type importRowCheck struct {
	email         string
	given, family *string
	group         string
	err           *apperr.Error
}

// importCheckChunk is the fewest rows checkImportRows gives a goroutine of
// its own.
const importCheckChunk = 10_000

// checkImportRows checks each row on its own (its email's syntax and
// domain, CTL-3; its names; its access group), the work of an import that
// does not depend on the other rows: on two goroutines for a large import
// (a 100,000-row import spent about 150 ms here on one core while the other
// idled). What does depend on them (an email twice in the file) is the
// caller's, in row order.
func checkImportRows(rows []ImportRow, rules []domain.DomainRule, groupIDs map[string]bool, defaultGroup string) []importRowCheck {
	out := make([]importRowCheck, len(rows))
	check := func(lo, hi int) {
		var parser domain.EmailParser // each domain spelling normalised once
		for i := lo; i < hi; i++ {
			out[i] = checkImportRow(&parser, rows[i], rules, groupIDs, defaultGroup)
		}
	}
	if len(rows) < 2*importCheckChunk {
		check(0, len(rows))
		return out
	}
	half := len(rows) / 2
	var wg sync.WaitGroup
	var panicked any
	wg.Go(func() {
		// A panic here is the request's, not the process's: raised again
		// on the request's goroutine, whose recovery answers it.
		defer func() { panicked = recover() }()
		check(0, half)
	})
	check(half, len(rows))
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
	return out
}

// rowError is err as a row's error: never nil, since a row without an
// error is taken as good.
func rowError(field string, err error) *apperr.Error {
	if e, ok := apperr.As(err); ok && e != nil {
		return e
	}
	return apperr.Invalid(field, "%s", err.Error())
}

func checkImportRow(parser *domain.EmailParser, r ImportRow, rules []domain.DomainRule, groupIDs map[string]bool, defaultGroup string) importRowCheck {
	em, err := parser.Parse(r.Email)
	if err != nil {
		e, _ := normaliseEmailErr(err)
		return importRowCheck{err: e}
	}
	var rule *domain.DomainRule
	for j, d := range rules {
		if domain.DomainCovers(d.Domain, d.IncludeSubdomains, em.Domain) && (rule == nil || len(d.Domain) > len(rule.Domain)) {
			rule = &rules[j]
		}
	}
	if rule == nil {
		return importRowCheck{err: apperr.Invalid("email", "the email's domain is not one of this organisation's").WithReason("DOMAIN_NOT_OWNED").WithRule("CTL-3")}
	}
	given, err := cleanName("givenName", r.GivenName)
	if err != nil {
		return importRowCheck{err: rowError("givenName", err)}
	}
	family, err := cleanName("familyName", r.FamilyName)
	if err != nil {
		return importRowCheck{err: rowError("familyName", err)}
	}
	group := defaultGroup
	if rule.AccessGroupID != nil {
		group = *rule.AccessGroupID
	}
	if r.AccessGroupID != nil {
		if !groupIDs[*r.AccessGroupID] {
			return importRowCheck{err: apperr.Invalid("accessGroupId", "the access group is not one of the organisation's")}
		}
		group = *r.AccessGroupID
	}
	return importRowCheck{email: em.String(), given: given, family: family, group: group}
}

// ImportLearners checks every row (syntax, the organisation's own domain,
// duplicates in the file and against existing learners) and reports line by
// line. dryRun writes nothing; atomic writes all or nothing; otherwise the
// good rows are written and the bad reported (invariant 4). The learners,
// their feed events and audit entries are written set-based in one
// transaction (store.ImportLearners: COPY and INSERT ... SELECT on
// PostgreSQL, multi-row INSERTs on SQLite).
func (s *Service) ImportLearners(ctx context.Context, organisationID string, rows []ImportRow, dryRun, atomic bool) (ImportReport, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return ImportReport{}, err
	}
	o, err := s.manageOrganisation(ctx, a, organisationID, false)
	if err != nil {
		return ImportReport{}, err
	}
	if len(rows) == 0 {
		return ImportReport{}, apperr.Invalid("rows", "no rows to import")
	}
	if len(rows) > MaxImportRows {
		return ImportReport{}, apperr.Invalid("rows", "at most %d rows per import", MaxImportRows)
	}
	rep := ImportReport{DryRun: dryRun, Atomic: atomic, Total: len(rows)}
	// The organisation's domain rules and groups, once: rows are matched in memory.
	rules, err := s.st.DomainsByOrganisations(ctx, []string{o.ID})
	if err != nil {
		return rep, err
	}
	groups, err := s.st.AccessGroupsByOrganisations(ctx, []string{o.ID})
	if err != nil {
		return rep, err
	}
	groupIDs := map[string]bool{}
	defaultGroup := ""
	for _, g := range groups {
		groupIDs[g.ID] = true
		if g.IsDefault {
			defaultGroup = g.ID
		}
	}
	fail := func(i int, e *apperr.Error) {
		rep.Failed++
		rep.Lines = append(rep.Lines, ImportLine{Row: i + 1, Code: string(e.Code), Reason: e.Reason, Field: e.Field, Message: e.Message})
	}
	now := s.clock()
	ended, err := s.contractEnded(ctx, o.ProgrammeID)
	if err != nil {
		return rep, err
	}
	if ended {
		_, _, err := domain.NewLearner(domain.Learner{}, domain.OriginImport, ended, now)
		return rep, fromDomain(err)
	}
	checked := checkImportRows(rows, rules, groupIDs, defaultGroup)
	seen := make(map[string]int, len(rows))
	cands := make([]domain.Learner, 0, len(rows))
	candRow := make([]int, 0, len(rows))
	for i := range checked {
		c := &checked[i]
		if c.err != nil {
			fail(i, c.err)
			continue
		}
		email, given, family, group := c.email, c.given, c.family, c.group
		if first, dup := seen[email]; dup {
			fail(i, apperr.Conflictf("the same email is on row %d", first).WithField("email").WithReason("DUPLICATE_IN_FILE"))
			continue
		}
		seen[email] = i + 1
		l, _, err := domain.NewLearner(domain.Learner{ID: newID(), ProgrammeID: o.ProgrammeID, OrganisationID: o.ID, Email: &email,
			GivenName: given, FamilyName: family}, domain.OriginImport, ended, now)
		if err != nil {
			return rep, fromDomain(err)
		}
		if group != "" {
			l.AccessGroupID = ptr(group)
		}
		cands = append(cands, l)
		candRow = append(candRow, i)
	}
	emails := make([]string, len(cands))
	for i, c := range cands {
		emails[i] = *c.Email
	}
	existing, err := s.st.ExistingEmails(ctx, emails)
	if err != nil {
		return rep, err
	}
	// Filtered in place: a 100,000-row import holds one copy of its learners.
	good, goodRow := cands[:0], candRow[:0]
	for i, c := range cands {
		if existing[*c.Email] {
			fail(candRow[i], apperr.Conflictf("a learner with this email already exists").WithField("email").WithReason("DUPLICATE_EXISTING"))
			continue
		}
		good = append(good, c)
		goodRow = append(goodRow, candRow[i])
	}
	rep.Lines = slices.Grow(rep.Lines, len(good))
	if dryRun || (atomic && rep.Failed > 0) {
		if dryRun {
			for i, c := range good {
				rep.Lines = append(rep.Lines, ImportLine{Row: goodRow[i] + 1, Code: "WOULD_CREATE", LearnerID: c.ID})
			}
		}
		sortLines(rep.Lines)
		return rep, nil
	}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		// CTL-9, and CTL-6 again on what the transaction reads (above:
		// the cache's).
		if err := s.admitNewLearner(ctx, o.ID, domain.OriginImport); err != nil {
			return err
		}
		// Each learner written comes with its feed event and audit entry.
		written, err := s.st.ImportLearners(ctx, good, a.ID, now)
		if err != nil {
			return err
		}
		if atomic && len(written) != len(good) {
			return apperr.Conflictf("another import or sign-in created some of these learners meanwhile; nothing was written")
		}
		for i, c := range good {
			if !written[c.ID] {
				fail(goodRow[i], apperr.Conflictf("a learner with this email already exists").WithField("email").WithReason("DUPLICATE_EXISTING"))
				continue
			}
			rep.Created++
			rep.Lines = append(rep.Lines, ImportLine{Row: goodRow[i] + 1, Code: "CREATED", LearnerID: c.ID})
		}
		return nil
	})
	if err != nil {
		return ImportReport{DryRun: dryRun, Atomic: atomic, Total: len(rows)}, err
	}
	sortLines(rep.Lines)
	return rep, nil
}

func sortLines(ls []ImportLine) {
	// Rows arrive mostly in order; insertion-sort-like stability is not needed.
	slicesSortFunc(ls)
}

func normaliseEmailErr(err error) (*apperr.Error, bool) {
	ae, ok := apperr.As(err)
	if ok {
		return ae, true
	}
	return apperr.Invalid("email", "%s", err.Error()).WithReason(emailReason(err)).WithRule("CTL-3"), true
}

func emailReason(err error) string {
	return strings.ToUpper(fmt.Sprint(reasonOf(err)))
}
