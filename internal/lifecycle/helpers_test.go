package lifecycle_test

import (
	"context"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

const testIssuer = "https://idp.test.example"

type env struct {
	t     *testing.T
	st    *store.Store
	svc   *lifecycle.Service
	clock *testkit.Clock
	sys   context.Context
}

func newEnv(t *testing.T, st *store.Store) *env {
	clock := testkit.NewClock(time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC))
	svc := lifecycle.New(st, lifecycle.Options{Clock: clock.Now,
		BootstrapAdmin: &domain.Identity{Issuer: testIssuer, Subject: "bootstrap"}})
	return &env{t: t, st: st, svc: svc, clock: clock, sys: lifecycle.WithSystem(context.Background(), "test")}
}

// as returns a context acting for subject of the test issuer.
func (e *env) as(subject string) context.Context {
	return lifecycle.WithIdentity(context.Background(), domain.Identity{Issuer: testIssuer, Subject: subject})
}

func (e *env) grant(subject string, role domain.Role, programmeID string, orgID, bodyID *string) {
	e.t.Helper()
	if _, err := e.svc.GrantRole(e.sys, lifecycle.GrantRoleInput{Issuer: testIssuer, Subject: subject, Role: role,
		ProgrammeID: programmeID, OrganisationID: orgID, GoverningBodyID: bodyID}); err != nil {
		e.t.Fatalf("grant: %v", err)
	}
}

// ctlProgramme creates a two-body programme like Connect to Learn, with admin
// "kc" acting for Kent Connects and "sds" for Smarter Digital Services.
func (e *env) ctlProgramme() (domain.Programme, []domain.GoverningBody) {
	e.t.Helper()
	p, err := e.svc.CreateProgramme(e.sys, lifecycle.CreateProgrammeInput{Name: "CTL " + e.t.Name(), Preset: domain.PresetConnectToLearn,
		GoverningBodies: []lifecycle.GoverningBodyInput{{Name: "Kent Connects", Role: domain.BodyOwner}, {Name: "Smarter Digital Services", Role: domain.BodyAdministrator}}})
	if err != nil {
		e.t.Fatal(err)
	}
	bodies, err := e.svc.GoverningBodies(e.sys, p.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	e.grant("kc", domain.RoleProgrammeAdmin, p.ID, nil, &bodies[0].ID)
	e.grant("sds", domain.RoleProgrammeAdmin, p.ID, nil, &bodies[1].ID)
	return p, bodies
}

// admit proposes and fully approves an organisation.
func (e *env) admit(programmeID, name string, domains ...string) domain.Organisation {
	e.t.Helper()
	in := lifecycle.ProposeMembershipInput{ProgrammeID: programmeID, Action: domain.ProposalAdmit, Name: name, Kind: "DISTRICT_COUNCIL"}
	for _, d := range domains {
		in.Domains = append(in.Domains, lifecycle.DomainInput{Domain: d})
	}
	prop, err := e.svc.ProposeMembership(e.sys, in)
	if err != nil {
		e.t.Fatalf("propose %s: %v", name, err)
	}
	for prop.Status == domain.ProposalPending {
		if prop, err = e.svc.ApproveMembership(e.sys, prop.ID, ""); err != nil {
			e.t.Fatalf("approve %s: %v", name, err)
		}
	}
	o, err := e.svc.Organisation(e.sys, *prop.OrganisationID)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

func (e *env) audit(programmeID string) []domain.AuditEntry {
	e.t.Helper()
	es, err := e.svc.AuditLog(e.sys, programmeID, nil, 0, 500)
	if err != nil {
		e.t.Fatal(err)
	}
	return es
}

func countActions(es []domain.AuditEntry, action string) int {
	n := 0
	for _, e := range es {
		if e.Action == action {
			n++
		}
	}
	return n
}

func wantCode(t *testing.T, err error, code apperr.Code) {
	t.Helper()
	if got := apperr.CodeOf(err); got != code {
		t.Fatalf("want %s, got %v (%v)", code, got, err)
	}
}
