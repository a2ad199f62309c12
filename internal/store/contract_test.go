package store_test

// Contract tests: each area of lifecycle.Store returns the error codes its
// interface documents, on PostgreSQL and SQLite alike (Ory Kratos's pattern
// of one suite against every persister).

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

// The store implements every area.
var _ lifecycle.Store = (*store.Store)(nil)

func wantCode(t *testing.T, what string, err error, code apperr.Code) {
	t.Helper()
	if got := apperr.CodeOf(err); got != code {
		t.Fatalf("%s: code %q (%v), want %s", what, got, err, code)
	}
}

type ctWorld struct {
	p    domain.Programme
	org  domain.Organisation
	now  time.Time
	body []domain.GoverningBody
}

func ctNew(t *testing.T, st *store.Store) ctWorld {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	p := domain.Programme{ID: "01900000-0000-7000-8000-000000000001", Name: "Contract", Preset: domain.PresetConnectToLearn,
		CreatedAt: now, UpdatedAt: now, Settings: domain.PresetSettings(domain.PresetConnectToLearn, now)}
	bodies := []domain.GoverningBody{
		{ID: "01900000-0000-7000-8000-0000000000d1", ProgrammeID: p.ID, Name: "Operator", Role: domain.BodyAdministrator, CreatedAt: now},
		{ID: "01900000-0000-7000-8000-0000000000d2", ProgrammeID: p.ID, Name: "Partnership", Role: domain.BodyOwner, CreatedAt: now},
	}
	if err := st.CreateProgramme(ctx, p, bodies); err != nil {
		t.Fatal(err)
	}
	org := domain.Organisation{ID: "01900000-0000-7000-8000-0000000000b1", ProgrammeID: p.ID, Name: "Org", Kind: "OTHER",
		Status: domain.OrgAdmitted, CreatedAt: now}
	if err := st.CreateOrganisation(ctx, org); err != nil {
		t.Fatal(err)
	}
	return ctWorld{p: p, org: org, now: now, body: bodies}
}

func TestContract_Learners(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		w := ctNew(t, st)
		email := "ann@org.example"
		l, _, err := domain.NewLearner(domain.Learner{ID: "01900000-0000-7000-8000-0000000000a1", ProgrammeID: w.p.ID,
			OrganisationID: w.org.ID, Email: &email}, domain.OriginImport, false, w.now)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateLearner(ctx, l); err != nil {
			t.Fatal(err)
		}
		dup := l
		dup.ID = "01900000-0000-7000-8000-0000000000a2"
		wantCode(t, "CreateLearner with a taken email", st.CreateLearner(ctx, dup), apperr.Conflict)

		_, err = st.GetLearner(ctx, "01900000-0000-7000-8000-00000000ffff", false)
		wantCode(t, "GetLearner missing", err, apperr.NotFound)
		_, err = st.GetLearner(ctx, "not-a-uuid", false)
		wantCode(t, "GetLearner malformed", err, apperr.NotFound)
		_, err = st.LearnerByEmail(ctx, "nobody@org.example")
		wantCode(t, "LearnerByEmail missing", err, apperr.NotFound)
		_, err = st.LearnerByIdentity(ctx, "https://idp.example", "nobody")
		wantCode(t, "LearnerByIdentity missing", err, apperr.NotFound)
		missing := l
		free := "nobody@org.example"
		missing.ID, missing.Email = "01900000-0000-7000-8000-00000000fffe", &free
		wantCode(t, "UpdateLearner missing", st.UpdateLearner(ctx, missing), apperr.NotFound)

		// What the transitions leave is what the store keeps.
		if _, err := l.LinkIdentity(true, "Ann", "Smith", w.now); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Activate(w.now); err != nil {
			t.Fatal(err)
		}
		if err := st.UpdateLearner(ctx, l); err != nil {
			t.Fatal(err)
		}
		got, err := st.GetLearner(ctx, l.ID, false)
		if err != nil || got.Status != domain.StatusActive || got.Version != 3 || got.Origin != domain.OriginImport ||
			got.IdentityLinkedAt == nil || !got.IdentityLinkedAt.Equal(w.now) || got.FirstActivatedAt == nil || *got.GivenName != "Ann" {
			t.Fatalf("round trip: %+v %v", got, err)
		}
		li := domain.LearnerIdentity{ID: "01900000-0000-7000-8000-0000000000e1", LearnerID: l.ID, Issuer: "https://idp.example", Subject: "ann", CreatedAt: w.now}
		if err := st.CreateIdentity(ctx, li); err != nil {
			t.Fatal(err)
		}
		li.ID = "01900000-0000-7000-8000-0000000000e2"
		wantCode(t, "CreateIdentity taken", st.CreateIdentity(ctx, li), apperr.Conflict)
		if got, err := st.LearnerByIdentity(ctx, "https://idp.example", "ann"); err != nil || got.ID != l.ID {
			t.Fatalf("LearnerByIdentity: %+v %v", got, err)
		}

		// A second learner may not take the first one's email.
		other := "bob@org.example"
		b, _, _ := domain.NewLearner(domain.Learner{ID: "01900000-0000-7000-8000-0000000000a3", ProgrammeID: w.p.ID,
			OrganisationID: w.org.ID, Email: &other}, domain.OriginAdmin, false, w.now)
		if err := st.CreateLearner(ctx, b); err != nil {
			t.Fatal(err)
		}
		b.Email = &email
		wantCode(t, "UpdateLearner to a taken email", st.UpdateLearner(ctx, b), apperr.Conflict)
	})
}

// INV-1, INV-5: a first sign-in writes its learner and the identity that
// vouched for it together (store.CreateLearnerWithIdentity): both, or, when
// the email or the identity belongs to another learner, neither, so no
// learner is left without the identity that provisioned it and no identity
// reaches another learner.
func TestContract_INV1_INV5_ALearnerAndItsIdentityAreWrittenBothOrNeither(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		w := ctNew(t, st)
		var err error
		withID := func(n byte, email, subject string) (domain.Learner, domain.LearnerIdentity) {
			id := fmt.Sprintf("01900000-0000-7000-8000-0000000001%02x", n)
			x, _, err := domain.NewLearner(domain.Learner{ID: id, ProgrammeID: w.p.ID, OrganisationID: w.org.ID, Email: &email},
				domain.OriginSignIn, false, w.now)
			if err != nil {
				t.Fatal(err)
			}
			return x, domain.LearnerIdentity{ID: fmt.Sprintf("01900000-0000-7000-8000-0000000002%02x", n), LearnerID: id,
				Issuer: "https://idp.example", Subject: subject, CreatedAt: w.now}
		}
		cat, catID := withID(1, "cat@org.example", "cat")
		if err := st.CreateLearnerWithIdentity(ctx, cat, catID); err != nil {
			t.Fatal(err)
		}
		if got, err := st.LearnerByIdentity(ctx, "https://idp.example", "cat"); err != nil || got.ID != cat.ID {
			t.Fatalf("LearnerByIdentity after CreateLearnerWithIdentity: %+v %v", got, err)
		}
		dan, danID := withID(2, "cat@org.example", "dan")
		wantCode(t, "CreateLearnerWithIdentity with a taken email", st.CreateLearnerWithIdentity(ctx, dan, danID), apperr.Conflict)
		_, err = st.LearnerByIdentity(ctx, "https://idp.example", "dan")
		wantCode(t, "the identity of a learner refused for its email", err, apperr.NotFound)
		eve, eveID := withID(3, "eve@org.example", "cat")
		wantCode(t, "CreateLearnerWithIdentity with a taken identity", st.CreateLearnerWithIdentity(ctx, eve, eveID), apperr.Conflict)
		_, err = st.LearnerByEmail(ctx, "eve@org.example")
		wantCode(t, "a learner refused for its identity", err, apperr.NotFound)
		if got, err := st.LearnerByIdentity(ctx, "https://idp.example", "cat"); err != nil || got.ID != cat.ID {
			t.Fatalf("the identity after a refused second learner: %+v %v, want still %s's", got, err, cat.ID)
		}
	})
}

func TestContract_Grants_CTL1_OneGoverningBodyPerPerson(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		w := ctNew(t, st)
		g := domain.RoleGrant{ID: "01900000-0000-7000-8000-0000000000f1", Issuer: "https://idp.example", Subject: "sds",
			Role: domain.RoleProgrammeAdmin, ProgrammeID: w.p.ID, GoverningBodyID: &w.body[0].ID, CreatedAt: w.now, CreatedBy: "system:test"}
		if err := st.CreateGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
		again := g
		again.ID = "01900000-0000-7000-8000-0000000000f2"
		wantCode(t, "the same grant again", st.CreateGrant(ctx, again), apperr.Conflict)
		again.GoverningBodyID = &w.body[1].ID
		wantCode(t, "a grant for another governing body", st.CreateGrant(ctx, again), apperr.Conflict)
		_, err := st.GetGrant(ctx, "01900000-0000-7000-8000-00000000ffff")
		wantCode(t, "GetGrant missing", err, apperr.NotFound)
	})
}

func TestContract_Memberships_CTL1_OneApprovalPerPerson(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		w := ctNew(t, st)
		prop := domain.MembershipProposal{ID: "01900000-0000-7000-8000-0000000000c1", ProgrammeID: w.p.ID, Action: domain.ProposalAdmit,
			Name: "New", Kind: "OTHER", Status: domain.ProposalPending, ProposedBy: "usr_a", CreatedAt: w.now}
		if err := st.CreateProposal(ctx, prop); err != nil {
			t.Fatal(err)
		}
		_, err := st.GetProposal(ctx, "01900000-0000-7000-8000-00000000ffff", false)
		wantCode(t, "GetProposal missing", err, apperr.NotFound)
		ap := domain.MembershipApproval{ProposalID: prop.ID, GoverningBodyID: w.body[0].ID, ActorID: "usr_a", ApprovedAt: w.now}
		if err := st.AddApproval(ctx, ap); err != nil {
			t.Fatal(err)
		}
		other := ap
		other.ActorID = "usr_b"
		wantCode(t, "the same body again", st.AddApproval(ctx, other), apperr.Conflict)
		ap.GoverningBodyID = w.body[1].ID
		wantCode(t, "the same person for the other body", st.AddApproval(ctx, ap), apperr.Conflict)
		// The seeder (a system actor) approves for both bodies.
		sys := domain.MembershipApproval{ProposalID: "01900000-0000-7000-8000-0000000000c2", GoverningBodyID: w.body[0].ID, ActorID: "system:seed", ApprovedAt: w.now}
		p2 := prop
		p2.ID = sys.ProposalID
		if err := st.CreateProposal(ctx, p2); err != nil {
			t.Fatal(err)
		}
		if err := st.AddApproval(ctx, sys); err != nil {
			t.Fatal(err)
		}
		sys.GoverningBodyID = w.body[1].ID
		if err := st.AddApproval(ctx, sys); err != nil {
			t.Fatalf("the seeder's second body: %v", err)
		}
	})
}
