package testkit

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/migrations"
)

// The issuers of the identities a World acts for. TestIssuer's subject
// "bootstrap" is the installation's bootstrap admin; KCCIssuer and
// WSCCIssuer are the organisations' own identity providers (registered by
// NewConnectToLearn(...).WithPolicies() and NewOnclick).
const (
	TestIssuer = "https://idp.test.example"
	KCCIssuer  = "https://idp.kcc.example"
	WSCCIssuer = "https://idp.wscc.example"
)

// World is the lifecycle service, without HTTP, on a fresh database with a
// settable clock (24 November 2026, 09:00 UTC). Its builders create objects
// through the service as the system actor (Sys) and fail the test on any
// error; As acts for an identity of TestIssuer.
type World struct {
	T       testing.TB
	Store   *store.Store
	Service *lifecycle.Service
	Clock   *Clock
	Sys     context.Context
}

// NewWorld starts the service over st.
func NewWorld(t testing.TB, st *store.Store) *World {
	clock := NewClock(time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC))
	svc := lifecycle.New(st, lifecycle.Options{Clock: clock.Now, BootstrapAdmin: &domain.Identity{Issuer: TestIssuer, Subject: "bootstrap"}})
	t.Cleanup(svc.StopReadAhead) // before the store closes (cleanups run last first)
	return &World{T: t, Store: st, Clock: clock, Sys: lifecycle.WithSystem(context.Background(), "test"), Service: svc}
}

// NewService is a second service over st (a wrapped store, say) on the
// world's clock, or on clock when it is not nil.
func (w *World) NewService(st lifecycle.Store, clock func() time.Time) *lifecycle.Service {
	if clock == nil {
		clock = w.Clock.Now
	}
	return lifecycle.New(st, lifecycle.Options{Clock: clock, BootstrapAdmin: &domain.Identity{Issuer: TestIssuer, Subject: "bootstrap"}})
}

// As is a context acting for subject of TestIssuer.
func (w *World) As(subject string) context.Context {
	return lifecycle.WithIdentity(context.Background(), domain.Identity{Issuer: TestIssuer, Subject: subject})
}

// Grant gives subject of TestIssuer a role.
func (w *World) Grant(subject string, role domain.Role, programmeID string, orgID, bodyID *string) domain.RoleGrant {
	w.T.Helper()
	g, err := w.Service.GrantRole(w.Sys, lifecycle.GrantRoleInput{Issuer: TestIssuer, Subject: subject, Role: role,
		ProgrammeID: programmeID, OrganisationID: orgID, GoverningBodyID: bodyID})
	if err != nil {
		w.T.Fatalf("grant: %v", err)
	}
	return g
}

// ConnectToLearnProgramme creates a two-body programme like Connect to Learn
// (the CONNECT_TO_LEARN preset), with programme admin "kc" acting for Kent
// Connects and "sds" for Smarter Digital Services.
func (w *World) ConnectToLearnProgramme() (domain.Programme, []domain.GoverningBody) {
	w.T.Helper()
	p, err := w.Service.CreateProgramme(w.Sys, lifecycle.CreateProgrammeInput{Name: "CTL " + w.T.Name(), Preset: domain.PresetConnectToLearn,
		GoverningBodies: []lifecycle.GoverningBodyInput{{Name: "Kent Connects", Role: domain.BodyOwner}, {Name: "Smarter Digital Services", Role: domain.BodyAdministrator}}})
	if err != nil {
		w.T.Fatal(err)
	}
	bodies, err := w.Service.GoverningBodies(w.Sys, p.ID)
	if err != nil {
		w.T.Fatal(err)
	}
	w.Grant("kc", domain.RoleProgrammeAdmin, p.ID, nil, &bodies[0].ID)
	w.Grant("sds", domain.RoleProgrammeAdmin, p.ID, nil, &bodies[1].ID)
	return p, bodies
}

// OnclickProgramme creates a programme of the ONCLICK preset with one
// controlling governing body.
func (w *World) OnclickProgramme(name, body string) domain.Programme {
	w.T.Helper()
	p, err := w.Service.CreateProgramme(w.Sys, lifecycle.CreateProgrammeInput{Name: name, Preset: domain.PresetOnclick,
		GoverningBodies: []lifecycle.GoverningBodyInput{{Name: body, Role: domain.BodyController}}})
	if err != nil {
		w.T.Fatalf("create programme %s: %v", name, err)
	}
	return p
}

// Admit proposes and fully approves an organisation with its email domains.
func (w *World) Admit(programmeID, name string, domains ...string) domain.Organisation {
	w.T.Helper()
	in := lifecycle.ProposeMembershipInput{ProgrammeID: programmeID, Action: domain.ProposalAdmit, Name: name, Kind: "DISTRICT_COUNCIL"}
	for _, d := range domains {
		in.Domains = append(in.Domains, lifecycle.DomainInput{Domain: d})
	}
	prop, err := w.Service.ProposeMembership(w.Sys, in)
	if err != nil {
		w.T.Fatalf("propose %s: %v", name, err)
	}
	for prop.Status == domain.ProposalPending {
		if prop, err = w.Service.ApproveMembership(w.Sys, prop.ID, ""); err != nil {
			w.T.Fatalf("approve %s: %v", name, err)
		}
	}
	o, err := w.Service.Organisation(w.Sys, *prop.OrganisationID)
	if err != nil {
		w.T.Fatal(err)
	}
	return o
}

// DefaultGroup is the ID of the organisation's default access group.
func (w *World) DefaultGroup(orgID string) string {
	w.T.Helper()
	gs, err := w.Service.AccessGroupsByOrganisations(w.Sys, []string{orgID})
	if err != nil {
		w.T.Fatal(err)
	}
	for _, g := range gs[orgID] {
		if g.IsDefault {
			return g.ID
		}
	}
	w.T.Fatalf("organisation %s has no default group", orgID)
	return ""
}

// RegisterProvider registers issuer as the organisation's own identity provider.
func (w *World) RegisterProvider(orgID, issuer string) {
	w.T.Helper()
	if _, err := w.Service.RegisterIdentityProvider(w.Sys, "", orgID, lifecycle.IdentityProviderInput{Issuer: issuer, ClientID: "x"}); err != nil {
		w.T.Fatalf("register provider %s: %v", issuer, err)
	}
}

// Policy creates a policy with an active first version "v1".
func (w *World) Policy(programmeID, name string, typ domain.PolicyType, aud domain.PolicyAudience, compulsory bool) (domain.Policy, domain.PolicyVersion) {
	w.T.Helper()
	pol, err := w.Service.CreatePolicy(w.Sys, programmeID, lifecycle.PolicyInput{Name: name, Type: typ, Audience: aud, Compulsory: compulsory})
	if err != nil {
		w.T.Fatalf("create policy %s: %v", name, err)
	}
	return pol, w.Publish(pol.ID, "v1", true)
}

// Publish publishes a version of a policy, activated or as a draft.
func (w *World) Publish(policyID, label string, activate bool) domain.PolicyVersion {
	w.T.Helper()
	v, err := w.Service.PublishPolicyVersion(w.Sys, policyID, lifecycle.PolicyVersionInput{Label: label, Summary: "summary " + label,
		Content: "The text of " + label + ".", Activate: activate})
	if err != nil {
		w.T.Fatalf("publish %s: %v", label, err)
	}
	return v
}

// UpdateRules changes a programme's rule settings as the system.
func (w *World) UpdateRules(programmeID string, patch lifecycle.RuleSettingsPatch) domain.Programme {
	w.T.Helper()
	p, err := w.Service.UpdateProgrammeRules(w.Sys, programmeID, patch, "test setting")
	if err != nil {
		w.T.Fatalf("update rules: %v", err)
	}
	return p
}

// CreateLearner adds a learner as an admin would (createLearner), as the system.
func (w *World) CreateLearner(orgID, email, given, family string) domain.Learner {
	w.T.Helper()
	l, err := w.Service.CreateLearner(w.Sys, orgID, lifecycle.LearnerInput{Email: email, GivenName: given, FamilyName: family})
	if err != nil {
		w.T.Fatalf("create %s: %v", email, err)
	}
	return l
}

// Linked creates a learner as an organisation would (CreateLearner), then
// links the identity issuer+subject by a first sign-in with the verified
// email, as the learner's own provider would. It returns the learner after
// the link (PENDING_ACCEPTANCE, version 2) and a factory of contexts acting
// as that learner (a fresh context each time, so the learner record is never
// a stale cached copy). The organisation's provider for issuer must already
// be registered.
func (w *World) Linked(orgID, email, issuer, subject string) (domain.Learner, func() context.Context) {
	w.T.Helper()
	w.CreateLearner(orgID, email, "Given "+subject, "Family")
	id := domain.Identity{Issuer: issuer, Subject: subject}
	signed := id
	signed.Email, signed.EmailVerified = email, true
	l, err := w.Service.SignIn(context.Background(), signed)
	if err != nil {
		w.T.Fatalf("link %s: %v", email, err)
	}
	return l, func() context.Context { return lifecycle.WithIdentity(context.Background(), id) }
}

// SignIn provisions a learner by a first sign-in of issuer+subject with a
// verified email and returns them with a factory of contexts acting as them.
// Never call the factory after the learner is erased: a request from the
// person's identity provisions a new learner.
func (w *World) SignIn(issuer, subject, email, given, family string) (domain.Learner, func() context.Context) {
	w.T.Helper()
	l, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: issuer, Subject: subject, Email: email, EmailVerified: true,
		GivenName: given, FamilyName: family})
	if err != nil {
		w.T.Fatalf("sign in %s: %v", email, err)
	}
	return l, func() context.Context {
		return lifecycle.WithIdentity(context.Background(), domain.Identity{Issuer: issuer, Subject: subject})
	}
}

// Learner reads a learner back as the system.
func (w *World) Learner(id string) domain.Learner {
	w.T.Helper()
	l, err := w.Service.Learner(w.Sys, id)
	if err != nil {
		w.T.Fatal(err)
	}
	return l
}

// Acceptances lists a learner's policy decisions.
func (w *World) Acceptances(learnerID string) []domain.PolicyAcceptance {
	w.T.Helper()
	as, err := w.Service.AcceptancesByLearners(w.Sys, []string{learnerID})
	if err != nil {
		w.T.Fatal(err)
	}
	return as
}

// Audit reads the programme's audit log (up to 500 entries).
func (w *World) Audit(programmeID string) []domain.AuditEntry {
	w.T.Helper()
	es, err := w.Service.AuditLog(w.Sys, programmeID, nil, 0, 500)
	if err != nil {
		w.T.Fatal(err)
	}
	return es
}

// Sweep runs the retention sweep of a programme and fails when it is skipped.
func (w *World) Sweep(ctx context.Context, programmeID string) lifecycle.SweepReport {
	w.T.Helper()
	rep, err := w.Service.RunRetentionSweep(ctx, programmeID)
	if err != nil {
		w.T.Fatalf("sweep: %v", err)
	}
	if rep.Skipped {
		w.T.Fatalf("sweep skipped: %+v", rep)
	}
	return rep
}

// Activity records one course's LMS activity (ONC-3) straight into the
// table, and the learner's last activity (CTL-7) when lastAccessAt is set.
func (w *World) Activity(learnerID, courseID, state string, completedAt, lastAccessAt *time.Time, updatedAt time.Time) {
	w.T.Helper()
	opt := func(p *time.Time) any {
		if p == nil {
			return nil
		}
		return p.UTC()
	}
	if _, err := w.Store.SQL().Exec(w.SQL(`INSERT INTO learning_activity (learner_id, course_id, state, completed_at, last_access_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)`), learnerID, courseID, state, opt(completedAt), opt(lastAccessAt), updatedAt.UTC()); err != nil {
		w.T.Fatalf("insert activity: %v", err)
	}
}

// LastActivity sets the learner's last LMS activity (CTL-7).
func (w *World) LastActivity(learnerID string, at time.Time) {
	w.T.Helper()
	if _, err := w.Store.SQL().Exec(w.SQL(`UPDATE learners SET last_activity_at = ? WHERE id = ?`), at.UTC(), learnerID); err != nil {
		w.T.Fatal(err)
	}
}

// SQL rebinds ? placeholders for the world's database.
func (w *World) SQL(q string) string { return Rebind(w.Store.Dialect(), q) }

// Count runs a counting query with ? placeholders.
func (w *World) Count(q string, args ...any) int {
	w.T.Helper()
	return Count(w.T, w.Store, q, args...)
}

// Event is one row of the feed: its type and the learner's version.
type Event struct {
	Type    string
	Version int64
}

func (e Event) String() string { return fmt.Sprintf("%s@v%d", e.Type, e.Version) }

// Ev is an expected feed row.
func Ev(typ domain.EventType, v int64) Event { return Event{Type: string(typ), Version: v} }

// Feed reads a learner's feed rows straight from the table, in order.
func (w *World) Feed(learnerID string) []Event {
	w.T.Helper()
	rows, err := w.Store.SQL().Query(w.SQL(`SELECT type, learner_version FROM lifecycle_events WHERE learner_id = ? ORDER BY id`), learnerID)
	if err != nil {
		w.T.Fatal(err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var ev Event
		if err := rows.Scan(&ev.Type, &ev.Version); err != nil {
			w.T.Fatal(err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		w.T.Fatal(err)
	}
	return out
}

// WantFeed fails the test unless the learner's feed is exactly want.
func (w *World) WantFeed(learnerID string, want ...Event) {
	w.T.Helper()
	got := w.Feed(learnerID)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		w.T.Fatalf("feed of %s:\n got %v\nwant %v", learnerID, got, want)
	}
}

// Rebind rewrites ? placeholders as $1, $2… for PostgreSQL.
func Rebind(d migrations.Dialect, q string) string {
	if d != migrations.Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Count runs a counting query with ? placeholders on st.
func Count(t testing.TB, st *store.Store, q string, args ...any) int {
	t.Helper()
	var n int
	if err := st.SQL().QueryRow(Rebind(st.Dialect(), q), args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// ConnectToLearn is a Connect to Learn programme (ConnectToLearnProgramme:
// programme admins "kc" and "sds") with two partners, Kent County Council
// (kent.gov.uk) and Medway Council (medway.gov.uk), and an organisation admin
// for each ("kcc-admin", "medway-admin"). WithPolicies adds KCC's own
// identity provider and the programme's policies.
type ConnectToLearn struct {
	*World
	Programme   domain.Programme
	Bodies      []domain.GoverningBody
	KCC, Medway domain.Organisation
	KCCGroup    string // KCC's default access group
	MedwayGroup string // Medway's default access group

	// Set by WithPolicies: a compulsory site policy, a compulsory privacy
	// policy and an optional one, each with an active first version.
	Site, Privacy, Optional       domain.Policy
	SiteV1, PrivacyV1, OptionalV1 domain.PolicyVersion
}

// NewConnectToLearn builds the Connect to Learn world on st.
func NewConnectToLearn(t testing.TB, st *store.Store) *ConnectToLearn {
	t.Helper()
	w := &ConnectToLearn{World: NewWorld(t, st)}
	w.Programme, w.Bodies = w.ConnectToLearnProgramme()
	w.KCC = w.Admit(w.Programme.ID, "Kent County Council", "kent.gov.uk")
	w.Medway = w.Admit(w.Programme.ID, "Medway Council", "medway.gov.uk")
	w.KCCGroup = w.DefaultGroup(w.KCC.ID)
	w.MedwayGroup = w.DefaultGroup(w.Medway.ID)
	w.Grant("kcc-admin", domain.RoleOrganisationAdmin, w.Programme.ID, &w.KCC.ID, nil)
	w.Grant("medway-admin", domain.RoleOrganisationAdmin, w.Programme.ID, &w.Medway.ID, nil)
	return w
}

// WithPolicies registers KCCIssuer as KCC's identity provider and publishes
// and activates three policies: "Site policy" (compulsory, for everyone),
// "Privacy policy" (compulsory, for signed-in people) and "Newsletter"
// (optional).
func (w *ConnectToLearn) WithPolicies() *ConnectToLearn {
	w.T.Helper()
	w.RegisterProvider(w.KCC.ID, KCCIssuer)
	w.Site, w.SiteV1 = w.Policy(w.Programme.ID, "Site policy", domain.PolicySite, domain.AudienceAll, true)
	w.Privacy, w.PrivacyV1 = w.Policy(w.Programme.ID, "Privacy policy", domain.PolicyPrivacy, domain.AudienceAuthenticated, true)
	w.Optional, w.OptionalV1 = w.Policy(w.Programme.ID, "Newsletter", domain.PolicyOther, domain.AudienceAuthenticated, false)
	return w
}

// LinkedKCC creates a KCC learner name@kent.gov.uk linked to subject name of
// KCC's provider (see Linked; needs WithPolicies).
func (w *ConnectToLearn) LinkedKCC(name string) (domain.Learner, func() context.Context) {
	w.T.Helper()
	return w.Linked(w.KCC.ID, name+"@kent.gov.uk", KCCIssuer, name)
}

// Active is LinkedKCC followed by the learner accepting both compulsory
// policies: ACTIVE at version 3 (provisioned, linked, activated).
func (w *ConnectToLearn) Active(name string) (domain.Learner, func() context.Context) {
	w.T.Helper()
	l, self := w.LinkedKCC(name)
	out, err := w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID, w.PrivacyV1.ID}})
	if err != nil || out.Status != domain.StatusActive || out.Version != 3 || out.ID != l.ID {
		w.T.Fatalf("activate %s: %+v %v", name, out, err)
	}
	return out, self
}

// Courses adds two courses to the programme, enrols KCC's default group on
// both (CTL-4) and returns the programme's courses, safeguarding-101 first.
func (w *ConnectToLearn) Courses() []domain.Course {
	w.T.Helper()
	for _, c := range []lifecycle.CourseInput{
		{LMSCourseID: "safeguarding-101", Title: "Safeguarding basics"},
		{LMSCourseID: "gdpr-201", Title: "Data protection in practice"},
	} {
		if _, err := w.Service.CreateCourse(w.Sys, w.Programme.ID, c); err != nil {
			w.T.Fatalf("create course %s: %v", c.LMSCourseID, err)
		}
	}
	byProg, err := w.Service.CoursesByProgrammes(w.Sys, []string{w.Programme.ID})
	if err != nil {
		w.T.Fatal(err)
	}
	cs := byProg[w.Programme.ID]
	if len(cs) != 2 {
		w.T.Fatalf("fixture: programme courses %+v", cs)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].LMSCourseID > cs[j].LMSCourseID }) // safeguarding-101, gdpr-201
	if _, err := w.Service.SetAccessGroupCourses(w.Sys, w.KCCGroup, []string{cs[0].ID, cs[1].ID}); err != nil {
		w.T.Fatal(err)
	}
	return cs
}

// Onclick is a programme of the ONCLICK preset (minimum age 16) named Learn
// Public Health, with West Sussex County Council (westsussex.gov.uk), its
// identity provider WSCCIssuer, its admin "wscc-admin", and the two
// compulsory policies of the Onclick notice, each with an active first
// version.
type Onclick struct {
	*World
	Programme         domain.Programme
	WSCC              domain.Organisation
	Site, Privacy     domain.Policy
	SiteV1, PrivacyV1 domain.PolicyVersion
}

// NewOnclick builds the Onclick world on st.
func NewOnclick(t testing.TB, st *store.Store) *Onclick {
	t.Helper()
	w := &Onclick{World: NewWorld(t, st)}
	p, err := w.Service.CreateProgramme(w.Sys, lifecycle.CreateProgrammeInput{Name: "Learn Public Health", Preset: domain.PresetOnclick,
		GoverningBodies: []lifecycle.GoverningBodyInput{{Name: "West Sussex County Council", Role: domain.BodyController}}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Settings.MinimumAge != 16 {
		t.Fatalf("ONCLICK preset minimum age: %d", p.Settings.MinimumAge)
	}
	w.Programme = p
	w.WSCC = w.Admit(p.ID, "West Sussex County Council", "westsussex.gov.uk")
	w.Grant("wscc-admin", domain.RoleOrganisationAdmin, p.ID, &w.WSCC.ID, nil)
	w.RegisterProvider(w.WSCC.ID, WSCCIssuer)
	w.Site, w.SiteV1 = w.Policy(p.ID, "Privacy and Data Protection", domain.PolicySite, domain.AudienceAll, true)
	w.Privacy, w.PrivacyV1 = w.Policy(p.ID, "Privacy Policy", domain.PolicyPrivacy, domain.AudienceAuthenticated, true)
	return w
}

// Active creates a West Sussex learner name@westsussex.gov.uk linked to
// subject name of WSCC's provider who accepted both policies with the ONC-2
// age confirmation: ACTIVE at version 3.
func (w *Onclick) Active(name string) (domain.Learner, func() context.Context) {
	w.T.Helper()
	l, self := w.Linked(w.WSCC.ID, name+"@westsussex.gov.uk", WSCCIssuer, name)
	out, err := w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID, w.PrivacyV1.ID}, ConfirmMinimumAge: true})
	if err != nil || out.Status != domain.StatusActive || out.Version != 3 || out.ID != l.ID {
		w.T.Fatalf("activate %s: %+v %v", name, out, err)
	}
	return out, self
}
