package store_test

// One contract suite per area of lifecycle.Store (internal/lifecycle/store.go)
// besides learners, grants and memberships (contract_test.go): each asserts
// the error codes its interface documents, on PostgreSQL and SQLite.

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

// ctID is a well-formed ID, distinct per n.
func ctID(n int) string { return fmt.Sprintf("01900000-0000-7000-8000-%012x", n) }

// ctMissing is a well-formed ID nothing has.
const ctMissing = "01900000-0000-7000-8000-00000000ffff"

func TestContract_Transactions(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		w := ctNew(t, st)
		// fn's error rolls back every write, nested InTx included, and comes back as is.
		boom := errors.New("boom")
		p := domain.Programme{ID: ctID(0x100), Name: "Rolled back", Preset: domain.PresetOnclick, CreatedAt: w.now, UpdatedAt: w.now,
			Settings: domain.PresetSettings(domain.PresetOnclick, w.now)}
		err := st.InTx(ctx, func(ctx context.Context) error {
			if err := st.CreateProgramme(ctx, p, nil); err != nil {
				return err
			}
			return st.InTx(ctx, func(ctx context.Context) error {
				if err := st.CreateOrganisation(ctx, domain.Organisation{ID: ctID(0x101), ProgrammeID: p.ID, Name: "Inner",
					Kind: "OTHER", Status: domain.OrgAdmitted, CreatedAt: w.now}); err != nil {
					return err
				}
				return boom
			})
		})
		if err != boom {
			t.Fatalf("InTx returned %v, want fn's error as is", err)
		}
		_, err = st.GetProgramme(ctx, p.ID)
		wantCode(t, "a programme written in a rolled-back transaction", err, apperr.NotFound)
		_, err = st.GetOrganisation(ctx, ctID(0x101))
		wantCode(t, "an organisation written in a rolled-back inner InTx", err, apperr.NotFound)
		// A committed transaction keeps its writes.
		if err := st.InTx(ctx, func(ctx context.Context) error { return st.CreateProgramme(ctx, p, nil) }); err != nil {
			t.Fatal(err)
		}
		if _, err := st.GetProgramme(ctx, p.ID); err != nil {
			t.Fatalf("committed programme: %v", err)
		}

		// TryLock: one holder at a time.
		unlock, ok, err := st.TryLock(ctx, 4242)
		if err != nil || !ok {
			t.Fatalf("first TryLock: ok %v, %v", ok, err)
		}
		if _, ok2, err := st.TryLock(ctx, 4242); err != nil || ok2 {
			t.Fatalf("second TryLock while held: ok %v, %v", ok2, err)
		}
		unlock()
		unlock2, ok, err := st.TryLock(ctx, 4242)
		if err != nil || !ok {
			t.Fatalf("TryLock after unlock: ok %v, %v", ok, err)
		}
		unlock2()
	})
}

func TestContract_Programmes(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		w := ctNew(t, st)
		taken := w.p
		taken.ID = ctID(0x110)
		wantCode(t, "CreateProgramme with a taken name", st.CreateProgramme(ctx, taken, nil), apperr.Conflict)
		_, err := st.GetProgramme(ctx, ctMissing)
		wantCode(t, "GetProgramme missing", err, apperr.NotFound)
		_, err = st.GetProgramme(ctx, "not-a-uuid")
		wantCode(t, "GetProgramme malformed", err, apperr.NotFound)
		_, err = st.ProgrammeByName(ctx, "Nobody's programme")
		wantCode(t, "ProgrammeByName missing", err, apperr.NotFound)
		if got, err := st.ProgrammeByName(ctx, w.p.Name); err != nil || got.ID != w.p.ID {
			t.Fatalf("ProgrammeByName: %+v %v", got, err)
		}
		// Settings round-trip.
		s := w.p.Settings
		s.MinimumAge = 18
		if err := st.UpdateProgrammeSettings(ctx, w.p.ID, s, w.now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, err := st.GetProgramme(ctx, w.p.ID); err != nil || got.Settings.MinimumAge != 18 {
			t.Fatalf("settings: %+v %v", got.Settings, err)
		}
		if bs, err := st.GoverningBodies(ctx, w.p.ID); err != nil || len(bs) != 2 {
			t.Fatalf("governing bodies: %+v %v", bs, err)
		}
	})
}

func TestContract_Organisations(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		w := ctNew(t, st)
		dup := w.org
		dup.ID = ctID(0x120)
		wantCode(t, "CreateOrganisation with a taken name", st.CreateOrganisation(ctx, dup), apperr.Conflict)
		_, err := st.GetOrganisation(ctx, ctMissing)
		wantCode(t, "GetOrganisation missing", err, apperr.NotFound)
		_, err = st.OrganisationByName(ctx, w.p.ID, "Nobody")
		wantCode(t, "OrganisationByName missing", err, apperr.NotFound)

		other := domain.Organisation{ID: ctID(0x121), ProgrammeID: w.p.ID, Name: "Other", Kind: "OTHER", Status: domain.OrgAdmitted, CreatedAt: w.now}
		if err := st.CreateOrganisation(ctx, other); err != nil {
			t.Fatal(err)
		}
		d := domain.DomainRule{ID: ctID(0x122), OrganisationID: w.org.ID, Domain: "org.example", CreatedAt: w.now}
		if err := st.CreateEmailDomain(ctx, d); err != nil {
			t.Fatal(err)
		}
		taken := d
		taken.ID, taken.OrganisationID = ctID(0x123), other.ID
		wantCode(t, "CreateEmailDomain with a domain another organisation has", st.CreateEmailDomain(ctx, taken), apperr.Conflict)
		_, err = st.GetEmailDomain(ctx, ctMissing)
		wantCode(t, "GetEmailDomain missing", err, apperr.NotFound)
		wantCode(t, "DeleteEmailDomain missing", st.DeleteEmailDomain(ctx, ctMissing), apperr.NotFound)
		if err := st.DeleteEmailDomain(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "DeleteEmailDomain twice", st.DeleteEmailDomain(ctx, d.ID), apperr.NotFound)

		g := domain.AccessGroup{ID: ctID(0x124), OrganisationID: w.org.ID, Name: "Staff", IsDefault: true, CreatedAt: w.now}
		if err := st.CreateAccessGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		g2 := g
		g2.ID, g2.IsDefault = ctID(0x125), false
		wantCode(t, "CreateAccessGroup with a taken name", st.CreateAccessGroup(ctx, g2), apperr.Conflict)
		_, err = st.GetAccessGroup(ctx, ctMissing)
		wantCode(t, "GetAccessGroup missing", err, apperr.NotFound)

		c := domain.Course{ID: ctID(0x126), ProgrammeID: w.p.ID, LMSCourseID: "safeguarding-101", Title: "Safeguarding", CreatedAt: w.now}
		if err := st.CreateCourse(ctx, c); err != nil {
			t.Fatal(err)
		}
		c2 := c
		c2.ID, c2.Title = ctID(0x127), "Another title"
		wantCode(t, "CreateCourse with a taken LMS course ID", st.CreateCourse(ctx, c2), apperr.Conflict)
		if err := st.SetAccessGroupCourses(ctx, g.ID, []string{c.ID}); err != nil {
			t.Fatal(err)
		}
		if got, err := st.CoursesByAccessGroups(ctx, []string{g.ID}); err != nil || len(got[g.ID]) != 1 || got[g.ID][0].ID != c.ID {
			t.Fatalf("CoursesByAccessGroups: %+v %v", got, err)
		}
	})
}

func TestContract_Policies(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		w := ctNew(t, st)
		pol := domain.Policy{ID: ctID(0x130), ProgrammeID: w.p.ID, Name: "Site policy", Type: domain.PolicySite, Audience: domain.AudienceAll,
			Compulsory: true, CreatedAt: w.now}
		if err := st.CreatePolicy(ctx, pol); err != nil {
			t.Fatal(err)
		}
		dup := pol
		dup.ID = ctID(0x131)
		wantCode(t, "CreatePolicy with a taken name", st.CreatePolicy(ctx, dup), apperr.Conflict)
		_, err := st.GetPolicy(ctx, ctMissing)
		wantCode(t, "GetPolicy missing", err, apperr.NotFound)

		v1 := domain.PolicyVersion{ID: ctID(0x132), PolicyID: pol.ID, Label: "v1", Summary: "s", Content: "c", Status: domain.VersionDraft, PublishedAt: w.now}
		if err := st.CreatePolicyVersion(ctx, v1); err != nil {
			t.Fatal(err)
		}
		again := v1
		again.ID = ctID(0x133)
		wantCode(t, "CreatePolicyVersion with a taken label", st.CreatePolicyVersion(ctx, again), apperr.Conflict)
		// Activating a version archives the one active before: one current version.
		v2 := v1
		v2.ID, v2.Label = ctID(0x134), "v2"
		if err := st.CreatePolicyVersion(ctx, v2); err != nil {
			t.Fatal(err)
		}
		for _, v := range []domain.PolicyVersion{v1, v2} {
			if err := st.ActivatePolicyVersion(ctx, pol.ID, v.ID, w.now); err != nil {
				t.Fatal(err)
			}
		}
		vs, err := st.PolicyVersionsByPolicies(ctx, []string{pol.ID})
		if err != nil {
			t.Fatal(err)
		}
		status := map[string]domain.PolicyVersionStatus{}
		for _, v := range vs {
			status[v.Label] = v.Status
		}
		if status["v1"] != domain.VersionArchived || status["v2"] != domain.VersionActive {
			t.Fatalf("versions after two activations: %v", status)
		}
	})
}

func TestContract_SignIns(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		w := ctNew(t, st)
		p := domain.IdentityProvider{ID: ctID(0x140), ProgrammeID: w.p.ID, OrganisationID: &w.org.ID, Issuer: "https://idp.org.example",
			ClientID: "rollcall", Audience: "rollcall", Scopes: "openid email profile", EmailTrust: domain.EmailTrust("VERIFIED_CLAIM"),
			CreatedAt: w.now, UpdatedAt: w.now}
		if err := st.CreateProvider(ctx, p); err != nil {
			t.Fatal(err)
		}
		dup := p
		dup.ID, dup.OrganisationID = ctID(0x141), nil
		wantCode(t, "CreateProvider with a registered issuer", st.CreateProvider(ctx, dup), apperr.Conflict)
		_, err := st.GetProvider(ctx, ctMissing)
		wantCode(t, "GetProvider missing", err, apperr.NotFound)
		_, err = st.ProviderByIssuer(ctx, "https://idp.nobody.example")
		wantCode(t, "ProviderByIssuer missing", err, apperr.NotFound)
		if got, err := st.ProviderByIssuer(ctx, p.Issuer); err != nil || got.ID != p.ID {
			t.Fatalf("ProviderByIssuer: %+v %v", got, err)
		}
		missing := p
		missing.ID = ctMissing
		wantCode(t, "UpdateProvider missing", st.UpdateProvider(ctx, missing), apperr.NotFound)

		_, err = st.GetSession(ctx, "no-such-session")
		wantCode(t, "GetSession missing", err, apperr.NotFound)
		se := domain.Session{ID: "session-hash", Issuer: p.Issuer, Subject: "ann", CreatedAt: w.now, ExpiresAt: w.now.Add(time.Hour)}
		if err := st.CreateSession(ctx, se); err != nil {
			t.Fatal(err)
		}
		if n, err := st.RevokeSessionsByIssuer(ctx, p.Issuer, w.now); err != nil || n != 1 {
			t.Fatalf("RevokeSessionsByIssuer: %d %v", n, err)
		}
		if got, err := st.GetSession(ctx, se.ID); err != nil || got.RevokedAt == nil {
			t.Fatalf("revoked session: %+v %v", got, err)
		}

		_, err = st.TakeLoginState(ctx, "no-such-state")
		wantCode(t, "TakeLoginState missing", err, apperr.NotFound)
		ls := domain.LoginState{ID: "state-hash", ProviderID: p.ID, Nonce: "n", Verifier: "v", BrowserHash: "b", ReturnTo: "/",
			CreatedAt: w.now, ExpiresAt: w.now.Add(10 * time.Minute)}
		if err := st.CreateLoginState(ctx, ls); err != nil {
			t.Fatal(err)
		}
		if got, err := st.TakeLoginState(ctx, ls.ID); err != nil || got.Nonce != "n" || got.ProviderID != p.ID {
			t.Fatalf("TakeLoginState: %+v %v", got, err)
		}
		_, err = st.TakeLoginState(ctx, ls.ID)
		wantCode(t, "TakeLoginState taken already", err, apperr.NotFound)
	})
}

// ctLearner creates a learner of the contract world in a status.
func ctLearner(t *testing.T, st *store.Store, w ctWorld, n int, email string, status domain.LearnerStatus) domain.Learner {
	t.Helper()
	l := domain.Learner{ID: ctID(n), ProgrammeID: w.p.ID, OrganisationID: w.org.ID, Email: &email, Status: status, Version: 1,
		CreatedAt: w.now, UpdatedAt: w.now, Origin: domain.OriginAdmin}
	if err := st.CreateLearner(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestContract_Leaving(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		w := ctNew(t, st)
		_, err := st.GetDataRequest(ctx, ctMissing, false)
		wantCode(t, "GetDataRequest missing", err, apperr.NotFound)
		active := ctLearner(t, st, w, 0x150, "ann@org.example", domain.StatusActive)
		withdrawn := ctLearner(t, st, w, 0x151, "bob@org.example", domain.StatusWithdrawn)
		r := domain.DataRequest{ID: ctID(0x152), ProgrammeID: w.p.ID, OrganisationID: w.org.ID, LearnerID: active.ID, Kind: "ERASURE",
			Origin: domain.RemovalErasureRequested, Status: domain.RequestAwaitingApproval, Reason: "please", RequestedBy: "usr_a", RequestedAt: w.now}
		if err := st.CreateDataRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		if got, err := st.GetDataRequest(ctx, r.ID, false); err != nil || got.Reason != "please" {
			t.Fatalf("GetDataRequest: %+v %v", got, err)
		}

		// A bulk path moves only the learners its guard set allows.
		due := w.now.Add(21 * 24 * time.Hour)
		moved, err := st.ScheduleRemoval(ctx, []string{active.ID, withdrawn.ID}, domain.BulkSchedule(domain.RemovalLeaver), domain.RemovalLeaver, due, w.now)
		if err != nil || len(moved) != 1 || moved[0] != active.ID {
			t.Fatalf("ScheduleRemoval: %v %v", moved, err)
		}
		if got, _ := st.GetLearner(ctx, withdrawn.ID, false); got.Status != domain.StatusWithdrawn || got.Version != 1 {
			t.Fatalf("a learner outside the guard set moved: %+v", got)
		}

		// An erasure applies the bulk's scrub; without one, or with one the
		// store cannot map, it is refused before anything is written.
		noScrub := domain.BulkErase
		noScrub.Scrub = nil
		odd := domain.Erasure
		odd.Cleared = append(append([]domain.Field{}, odd.Cleared...), domain.Field("shoe size"))
		oddBulk := domain.BulkErase
		oddBulk.Scrub = &odd
		for name, b := range map[string]domain.Bulk{"without a scrub": noScrub, "with an unknown field": oddBulk} {
			done, err := st.EraseLearners(ctx, []string{active.ID}, b, w.now, nil)
			if err == nil || len(done) != 0 {
				t.Fatalf("EraseLearners %s: %v %v", name, done, err)
			}
			if got, _ := st.GetLearner(ctx, active.ID, false); got.Status != domain.StatusRemovalScheduled || got.Email == nil {
				t.Fatalf("a refused erasure (%s) changed the learner: %+v", name, got)
			}
		}
		done, err := st.EraseLearners(ctx, []string{active.ID, withdrawn.ID}, domain.BulkErase, w.now, nil)
		if err != nil || len(done) != 2 {
			t.Fatalf("EraseLearners: %v %v", done, err)
		}
		for _, id := range done {
			got, _ := st.GetLearner(ctx, id, false)
			if got.Status != domain.StatusErased || got.Email != nil || got.RemovalDueAt != nil || got.ErasedAt == nil {
				t.Fatalf("erased learner: %+v", got)
			}
		}
		if got, _ := st.GetDataRequest(ctx, r.ID, false); got.Reason != "" {
			t.Fatalf("the erasure left the request's reason: %q", got.Reason)
		}
		// Erasing twice is a no-op.
		if again, err := st.EraseLearners(ctx, done, domain.BulkErase, w.now, nil); err != nil || len(again) != 0 {
			t.Fatalf("second erasure: %v %v", again, err)
		}
	})
}

func TestContract_Feed(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		w := ctNew(t, st)
		l := ctLearner(t, st, w, 0x160, "ann@org.example", domain.StatusPendingAcceptance)
		head, err := st.FeedHead(ctx, w.p.ID, w.now)
		if err != nil {
			t.Fatal(err)
		}
		var es []domain.Event
		for v := int64(2); v <= 4; v++ {
			es = append(es, domain.Event{ProgrammeID: w.p.ID, LearnerID: l.ID, Type: domain.EventUpdated, LearnerVersion: v, OccurredAt: w.now})
		}
		if err := st.AppendEvents(ctx, es); err != nil {
			t.Fatal(err)
		}
		// ReadEvents: the events after a position, in order, paged.
		got, _, err := st.ReadEvents(ctx, w.p.ID, head.ID, 2)
		if err != nil || len(got) != 2 || got[0].LearnerVersion != 2 || got[1].LearnerVersion != 3 || got[0].ID >= got[1].ID {
			t.Fatalf("first page: %+v %v", got, err)
		}
		rest, _, err := st.ReadEvents(ctx, w.p.ID, got[1].ID, 10)
		if err != nil || len(rest) != 1 || rest[0].LearnerVersion != 4 {
			t.Fatalf("second page: %+v %v", rest, err)
		}
		// Every column comes back as written, the time in UTC.
		for i, e := range append(got, rest...) {
			want := es[i]
			want.ID, want.OccurredAt = e.ID, e.OccurredAt
			if e.Event != want || !e.OccurredAt.Equal(es[i].OccurredAt) || e.OccurredAt.Location() != time.UTC || e.TxID != 0 {
				t.Errorf("event %d read back as %+v (location %v), want %+v in UTC", i, e, e.OccurredAt.Location(), want)
			}
		}
		end, err := st.FeedHead(ctx, w.p.ID, w.now)
		if err != nil || end.ID != rest[0].ID {
			t.Fatalf("FeedHead after the events: %+v %v (last event %d)", end, err, rest[0].ID)
		}
		if none, _, err := st.ReadEvents(ctx, w.p.ID, end.ID, 10); err != nil || len(none) != 0 {
			t.Fatalf("after the head: %+v %v", none, err)
		}
		// Another programme's feed does not see them.
		if other, _, err := st.ReadEvents(ctx, ctMissing, 0, 10); err != nil || len(other) != 0 {
			t.Fatalf("another programme's feed: %+v %v", other, err)
		}
	})
}

// A feed page carries the purge horizon read by its own statement, so from
// the events' snapshot: it skips what a purge left behind the horizon, and
// a cursor below the horizon is seen as such whatever page it reads
// (INV-3: the reader is told, never handed a page with a hole).
func TestContract_INV3_FeedPageCarriesThePurgeHorizon(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		w := ctNew(t, st)
		learner := ctID(0x530)
		old := w.now.Add(-48 * time.Hour)
		var es []domain.Event
		for v, at := range []time.Time{old, old, w.now} {
			es = append(es, domain.Event{ProgrammeID: w.p.ID, LearnerID: learner, Type: domain.EventUpdated, LearnerVersion: int64(v + 1), OccurredAt: at})
		}
		if err := st.AppendEvents(ctx, es); err != nil {
			t.Fatal(err)
		}
		all, horizon, err := st.ReadEvents(ctx, w.p.ID, 0, 10)
		if err != nil || len(all) != 3 || horizon != 0 {
			t.Fatalf("before the purge: %d events, horizon %d, %v", len(all), horizon, err)
		}
		if n, err := st.PurgeEvents(ctx, w.now.Add(-24*time.Hour)); err != nil || n != 2 {
			t.Fatalf("purge: %d %v", n, err)
		}
		for _, c := range []struct {
			name  string
			after int64
			want  int
		}{
			{"from the start", 0, 1},
			{"from a purged event", all[0].ID, 1},
			{"from the last purged event", all[1].ID, 1},
			{"from the head", all[2].ID, 0},
		} {
			got, h, err := st.ReadEvents(ctx, w.p.ID, c.after, 10)
			if err != nil || h != all[1].ID || len(got) != c.want || (c.want == 1 && got[0].ID != all[2].ID) {
				t.Errorf("%s: %d events, horizon %d (want %d events, horizon %d), %v", c.name, len(got), h, c.want, all[1].ID, err)
			}
		}
	})
}

// The purge horizon only rises (INV-3): an event with a later ID can carry
// an earlier time (its time is taken before its writer holds the feed
// lock), so a purge can delete it while an event before it stays; when a
// later purge deletes that one, a cursor between the two still answers
// CURSOR_EXPIRED (its page starts below the horizon), never reads on past
// the event it missed.
func TestContract_INV3_ThePurgeHorizonNeverFalls(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		w := ctNew(t, st)
		learner := ctID(0x531)
		// y first, with the later time; x after it, with the earlier.
		y := domain.Event{ProgrammeID: w.p.ID, LearnerID: learner, Type: domain.EventUpdated, LearnerVersion: 1, OccurredAt: w.now.Add(-24 * time.Hour)}
		x := domain.Event{ProgrammeID: w.p.ID, LearnerID: learner, Type: domain.EventUpdated, LearnerVersion: 2, OccurredAt: w.now.Add(-72 * time.Hour)}
		for _, e := range []domain.Event{y, x} {
			if err := st.AppendEvents(ctx, []domain.Event{e}); err != nil {
				t.Fatal(err)
			}
		}
		all, _, err := st.ReadEvents(ctx, w.p.ID, 0, 10)
		if err != nil || len(all) != 2 {
			t.Fatalf("before the purges: %+v %v", all, err)
		}
		yID, xID := all[0].ID, all[1].ID
		if n, err := st.PurgeEvents(ctx, w.now.Add(-48*time.Hour)); err != nil || n != 1 {
			t.Fatalf("the first purge: %d %v", n, err)
		}
		if _, h, err := st.ReadEvents(ctx, w.p.ID, yID, 10); err != nil || h != xID {
			t.Fatalf("after the first purge the horizon is %d, want x's %d (%v)", h, xID, err)
		}
		if n, err := st.PurgeEvents(ctx, w.now); err != nil || n != 1 {
			t.Fatalf("the second purge: %d %v", n, err)
		}
		if _, h, err := st.ReadEvents(ctx, w.p.ID, yID, 10); err != nil || h != xID {
			t.Fatalf("after the second purge the horizon is %d, want it still at x's %d, not back at y's %d (%v)", h, xID, yID, err)
		}
	})
}

func TestContract_Audit(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		w := ctNew(t, st)
		target := ctID(0x170)
		for i, action := range []string{"a.one", "a.two", "a.three"} {
			e := domain.AuditEntry{ProgrammeID: &w.p.ID, ActorID: "usr_a", Action: action, TargetType: "learner", TargetID: target,
				Reason: fmt.Sprint("reason ", i), Details: map[string]any{"n": float64(i)}, OccurredAt: w.now.Add(time.Duration(i) * time.Second)}
			if err := st.AppendAudit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		page, err := st.AuditEntries(ctx, w.p.ID, &target, 0, 2)
		if err != nil || len(page) != 2 {
			t.Fatalf("first page: %+v %v", page, err)
		}
		rest, err := st.AuditEntries(ctx, w.p.ID, &target, page[1].ID, 10)
		if err != nil || len(rest) != 1 {
			t.Fatalf("second page: %+v %v", rest, err)
		}
		all := append(page, rest...)
		seen := map[string]bool{}
		for _, e := range all {
			seen[e.Action] = true
			if e.ActorID != "usr_a" || e.TargetID != target || e.Details["n"] == nil {
				t.Errorf("entry read back: %+v", e)
			}
		}
		if len(seen) != 3 || all[0].ID == all[1].ID || all[1].ID == all[2].ID {
			t.Fatalf("pages overlap or miss entries: %+v", all)
		}
		if about, err := st.AuditAbout(ctx, target); err != nil || len(about) != 3 {
			t.Fatalf("AuditAbout: %+v %v", about, err)
		}
		// Append-only: the database refuses a rewrite (TestAudit_* in
		// store_test.go hold the rest).
		if _, err := st.SQL().Exec(testkit.Rebind(st.Dialect(), `UPDATE audit_entries SET reason = 'rewritten' WHERE target_id = ?`), target); err == nil {
			t.Fatal("UPDATE of audit_entries succeeded")
		}
	})
}

func TestContract_Directory(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		w := ctNew(t, st)
		_, err := st.GetScimToken(ctx, ctMissing)
		wantCode(t, "GetScimToken missing", err, apperr.NotFound)
		_, err = st.ScimTokenByHash(ctx, "no-such-hash")
		wantCode(t, "ScimTokenByHash missing", err, apperr.NotFound)
		tok := domain.ScimToken{ID: ctID(0x180), ProgrammeID: w.p.ID, OrganisationID: w.org.ID, Name: "Entra", Prefix: "rcs_abcd",
			Hash: "hash-1", CreatedBy: "usr_a", CreatedAt: w.now}
		if err := st.CreateScimToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		dup := tok
		dup.ID = ctID(0x181)
		wantCode(t, "CreateScimToken with a taken hash", st.CreateScimToken(ctx, dup), apperr.Conflict)
		if got, err := st.ScimTokenByHash(ctx, "hash-1"); err != nil || got.ID != tok.ID {
			t.Fatalf("ScimTokenByHash: %+v %v", got, err)
		}
		if ok, err := st.RevokeScimToken(ctx, tok.ID, w.now); err != nil || !ok {
			t.Fatalf("RevokeScimToken: %v %v", ok, err)
		}
		if ok, err := st.RevokeScimToken(ctx, tok.ID, w.now); err != nil || ok {
			t.Fatalf("RevokeScimToken twice: %v %v (want false: nothing revoked)", ok, err)
		}
		if ok, err := st.RevokeScimToken(ctx, ctMissing, w.now); err != nil || ok {
			t.Fatalf("RevokeScimToken missing: %v %v", ok, err)
		}
	})
}
