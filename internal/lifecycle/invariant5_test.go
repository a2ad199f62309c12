package lifecycle_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// inv5Break makes every insert into table fail until the returned func
// mends it: a database trigger, so the failure happens where the write does.
func inv5Break(t *testing.T, st *store.Store, table string) func() {
	t.Helper()
	var up, down []string
	if st.Dialect() == migrations.SQLite {
		up = []string{fmt.Sprintf(`CREATE TRIGGER inv5_down BEFORE INSERT ON %s BEGIN SELECT RAISE(ABORT, 'inv5: %s is down'); END`, table, table)}
		down = []string{`DROP TRIGGER inv5_down`}
	} else {
		up = []string{
			fmt.Sprintf(`CREATE FUNCTION inv5_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'inv5: %s is down'; END $$`, table),
			fmt.Sprintf(`CREATE TRIGGER inv5_down BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION inv5_down()`, table),
		}
		down = []string{fmt.Sprintf(`DROP TRIGGER inv5_down ON %s`, table), `DROP FUNCTION inv5_down()`}
	}
	for _, q := range up {
		if _, err := st.SQL().Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return func() {
		for _, q := range down {
			if _, err := st.SQL().Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
}

// Invariant 5: a learner's change, its audit entry and its feed event are
// written in one transaction. With the feed (or the audit log) refusing
// writes, every kind of change fails whole: the learner row, the other of
// the two logs and the identities are as before.
func TestInvariant_INV5_ChangeAuditAndFeedEventCommitTogether(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		l, self := w.LinkedKCC("frank")
		counts := func() string {
			return fmt.Sprintf("learners %d, identities %d, audit %d, events %d",
				testkit.Count(t, st, `SELECT count(*) FROM learners`), testkit.Count(t, st, `SELECT count(*) FROM learner_identities`),
				testkit.Count(t, st, `SELECT count(*) FROM audit_entries`), testkit.Count(t, st, `SELECT count(*) FROM lifecycle_events`))
		}
		changes := []struct {
			name string
			do   func() error
		}{
			{"updateMyProfile", func() error { _, err := w.Service.UpdateMyProfile(self(), lrnPtr("Francis"), nil); return err }},
			{"acceptPolicies", func() error {
				_, err := w.Service.AcceptPolicies(self(), lifecycle.AcceptInput{PolicyVersionIDs: []string{w.SiteV1.ID, w.PrivacyV1.ID}})
				return err
			}},
			{"updateLearner", func() error {
				_, err := w.Service.UpdateLearner(w.Sys, l.ID, lifecycle.LearnerUpdate{FamilyName: lrnPtr("Changed")})
				return err
			}},
			{"markLeaver", func() error { _, err := w.Service.MarkLeaver(w.Sys, l.ID, "left KCC"); return err }},
			{"withdrawConsent", func() error { _, err := w.Service.WithdrawConsent(self(), ""); return err }},
			{"first sign-in", func() error {
				_, err := w.Service.SignIn(context.Background(), domain.Identity{Issuer: testkit.KCCIssuer, Subject: "grace",
					Email: "grace@kent.gov.uk", EmailVerified: true, GivenName: "Grace"})
				return err
			}},
		}
		for _, table := range []string{"lifecycle_events", "audit_entries"} {
			mend := inv5Break(t, st, table)
			for _, c := range changes {
				before, learner := counts(), w.Learner(l.ID)
				if err := c.do(); err == nil {
					t.Errorf("%s with %s down: no error", c.name, table)
				}
				if after := counts(); after != before {
					t.Errorf("%s with %s down left rows behind: %s -> %s", c.name, table, before, after)
				}
				if got := w.Learner(l.ID); got.Version != learner.Version || got.Status != learner.Status ||
					lrnDeref(got.GivenName) != lrnDeref(learner.GivenName) || lrnDeref(got.FamilyName) != lrnDeref(learner.FamilyName) {
					t.Errorf("%s with %s down changed the learner: %+v -> %+v", c.name, table, learner, got)
				}
			}
			mend()
		}
		// Mended, the same changes go through (so the failures above were
		// the broken table's, not the calls').
		for _, c := range changes[:3] {
			if err := c.do(); err != nil {
				t.Errorf("%s after mending: %v", c.name, err)
			}
		}
	})
}
