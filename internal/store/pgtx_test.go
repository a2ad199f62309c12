package store_test

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// PostgreSQL transactions are begun and ended by the store (pgtx.go), not
// database/sql, so the feed rows can go with the COMMIT. These tests hold
// it to what a transaction must do whatever ends it, on a pool of ONE
// connection: a connection left inside a transaction would then hold every
// later statement in it, and what they wrote would be seen by no one else.

// pgtxWorld is a store on a one-connection pool, a second handle on the
// same database (another session, to see what is committed), and a learner.
func pgtxWorld(t *testing.T) (*store.Store, *store.Store, ctWorld, domain.Learner) {
	t.Helper()
	url := testkit.NewDatabaseURL(t, migrations.Postgres)
	st, other := testkit.OpenStore(t, url, store.Options{MaxOpenConns: 1}), testkit.OpenStore(t, url, store.Options{MaxOpenConns: 2})
	w, l := readWorld(t, st)
	return st, other, w, l
}

// committed reports whether the learner with this email is visible to
// another session, and the feed rows of the programme it sees.
func committed(t *testing.T, other *store.Store, w ctWorld, email string) (bool, []domain.FeedEvent) {
	t.Helper()
	ctx := context.Background()
	_, err := other.LearnerByEmail(ctx, email)
	if err != nil && apperr.CodeOf(err) != apperr.NotFound {
		t.Fatal(err)
	}
	es, _, rerr := other.ReadEvents(ctx, w.p.ID, 0, 100)
	if rerr != nil {
		t.Fatal(rerr)
	}
	return err == nil, es
}

// stillUsable checks the one connection is outside any transaction: a write
// outside InTx is seen at once by the other session.
func stillUsable(t *testing.T, st, other *store.Store, w ctWorld, id, email string) {
	t.Helper()
	l := domain.Learner{ID: id, ProgrammeID: w.p.ID, OrganisationID: w.org.ID, Email: &email, Status: domain.StatusPendingAcceptance,
		Version: 1, CreatedAt: w.now, UpdatedAt: w.now, Origin: domain.OriginAdmin}
	if err := st.CreateLearner(context.Background(), l); err != nil {
		t.Fatalf("the connection after the transaction: %v", err)
	}
	if ok, _ := committed(t, other, w, email); !ok {
		t.Fatal("a write after the transaction was not committed: the connection was left inside a transaction")
	}
}

// backendPID is the server process of the pool's one connection.
func backendPID(t *testing.T, st *store.Store) int {
	t.Helper()
	var pid int
	if err := st.SQL().QueryRow(`SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

func newLearner(w ctWorld, id, email string) domain.Learner {
	return domain.Learner{ID: id, ProgrammeID: w.p.ID, OrganisationID: w.org.ID, Email: &email, Status: domain.StatusPendingAcceptance,
		Version: 1, CreatedAt: w.now, UpdatedAt: w.now, Origin: domain.OriginAdmin}
}

// INV-3, INV-5: the feed rows a transaction appends are inserted with its
// COMMIT: while it runs, the programme's feed lock is not held; a read of
// the feed in the transaction sees them (they are inserted first); after
// the commit they are there, in the order appended, with the change they
// belong to. Outside a transaction they are written at once; appended to a
// transaction that has ended, they are refused, not lost.
func TestPgTx_INV3_INV5_FeedRowsGoWithTheCommit(t *testing.T) {
	st, other, w, l := pgtxWorld(t)
	ctx := context.Background()
	bob := newLearner(w, ctID(0x530), "bob@org.example")
	feedLocks := func() int {
		var n int
		if err := other.SQL().QueryRow(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
			AND mode = 'ExclusiveLock' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var spent context.Context
	err := st.InTx(ctx, func(ctx context.Context) error {
		spent = ctx
		if err := st.CreateLearner(ctx, bob); err != nil {
			return err
		}
		if err := st.AppendEvents(ctx, []domain.Event{
			{ProgrammeID: w.p.ID, LearnerID: bob.ID, Type: domain.EventProvisioned, LearnerVersion: 1, OccurredAt: w.now},
			{ProgrammeID: w.p.ID, LearnerID: l.ID, Type: domain.EventUpdated, LearnerVersion: 2, OccurredAt: w.now},
		}); err != nil {
			return err
		}
		if n := feedLocks(); n != 0 {
			t.Errorf("%d exclusive advisory locks held before the commit, want none (the feed lock is taken with the COMMIT)", n)
		}
		// A read of the feed in the transaction sees what it appended.
		if es, err := st.EventsByLearner(ctx, bob.ID); err != nil || len(es) != 1 || es[0].Type != domain.EventProvisioned {
			t.Errorf("the transaction's own events of Bob: %+v %v", es, err)
		}
		if n := feedLocks(); n != 1 {
			t.Errorf("%d feed locks held after the read inserted the events, want 1", n)
		}
		return st.AppendEvents(ctx, []domain.Event{{ProgrammeID: w.p.ID, LearnerID: bob.ID, Type: domain.EventUpdated, LearnerVersion: 2, OccurredAt: w.now}})
	})
	if err != nil {
		t.Fatal(err)
	}
	ok, es := committed(t, other, w, "bob@org.example")
	if !ok || len(es) != 3 {
		t.Fatalf("after the commit: learner %v, feed %+v", ok, es)
	}
	want := []struct {
		learner string
		version int64
	}{{bob.ID, 1}, {l.ID, 2}, {bob.ID, 2}}
	for i, e := range es {
		if e.LearnerID != want[i].learner || e.LearnerVersion != want[i].version || (i > 0 && e.ID <= es[i-1].ID) {
			t.Fatalf("feed row %d: %+v, want learner %s version %d, IDs rising", i, e, want[i].learner, want[i].version)
		}
	}
	late := []domain.Event{{ProgrammeID: w.p.ID, LearnerID: l.ID, Type: domain.EventUpdated, LearnerVersion: 3, OccurredAt: w.now}}
	if err := st.AppendEvents(spent, late); err == nil {
		t.Fatal("events appended to an ended transaction were accepted")
	}
	if err := st.AppendEvents(ctx, late); err != nil {
		t.Fatal(err)
	}
	if _, es := committed(t, other, w, "bob@org.example"); len(es) != 4 || es[3].LearnerVersion != 3 {
		t.Fatalf("an event appended outside a transaction: feed %+v", es)
	}
	stillUsable(t, st, other, w, ctID(0x531), "cat@org.example")
}

// A transaction whose context is cancelled fails with the context's error
// (not as an unreachable database), leaves nothing, and is rolled back on
// its own connection, which stays in the pool.
func TestPgTx_INV5_ACancelledTransactionRollsBackAndKeepsItsConnection(t *testing.T) {
	st, other, w, _ := pgtxWorld(t)
	pid := backendPID(t, st)
	ctx, cancel := context.WithCancel(context.Background())
	err := st.InTx(ctx, func(ctx context.Context) error {
		if err := st.CreateLearner(ctx, newLearner(w, ctID(0x570), "gus@org.example")); err != nil {
			return err
		}
		cancel()
		return st.CreateLearner(ctx, newLearner(w, ctID(0x571), "hal@org.example"))
	})
	if !errors.Is(err, context.Canceled) || store.Unreachable(err) {
		t.Fatalf("InTx after its context was cancelled: %v, want the cancellation", err)
	}
	if ok, _ := committed(t, other, w, "gus@org.example"); ok {
		t.Fatal("a cancelled transaction's write was committed")
	}
	stillUsable(t, st, other, w, ctID(0x572), "ida@org.example")
	if after := backendPID(t, st); after != pid {
		t.Fatalf("the pool's connection was replaced (backend %d, then %d)", pid, after)
	}
}

// INV-5: a transaction ended by its function's error, by a panic, by a
// feed row PostgreSQL refuses at COMMIT, or by a statement that failed
// while its error was dropped (COMMIT answers ROLLBACK), leaves nothing,
// reports the failure, and returns its connection outside any transaction.
func TestPgTx_INV5_EveryFailureRollsBackAndFreesTheConnection(t *testing.T) {
	boom := errors.New("boom")
	notUUID := "not-a-uuid"
	cases := []struct {
		name   string
		noFeed bool // COMMIT alone
		fn     func(st *store.Store, w ctWorld) func(ctx context.Context) error
		want   func(t *testing.T, err error, panicked any)
	}{
		{"the function's error", false, func(st *store.Store, w ctWorld) func(ctx context.Context) error {
			return func(ctx context.Context) error { return boom }
		}, func(t *testing.T, err error, _ any) {
			if !errors.Is(err, boom) {
				t.Fatalf("InTx: %v, want the function's error", err)
			}
		}},
		{"a panic", false, func(st *store.Store, w ctWorld) func(ctx context.Context) error {
			return func(ctx context.Context) error { panic(boom) }
		}, func(t *testing.T, _ error, panicked any) {
			if panicked != boom {
				t.Fatalf("recovered %v, want the function's panic raised again", panicked)
			}
		}},
		{"a feed row refused at COMMIT", false, func(st *store.Store, w ctWorld) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				// Not a UUID: the cast in the feed insert fails, after the
				// function returned.
				return st.AppendEvents(ctx, []domain.Event{{ProgrammeID: w.p.ID, LearnerID: "not-a-uuid", Type: domain.EventUpdated, LearnerVersion: 1, OccurredAt: w.now}})
			}
		}, func(t *testing.T, err error, _ any) {
			if err == nil {
				t.Fatal("InTx succeeded with a feed row PostgreSQL cannot take")
			}
		}},
		{"a queued statement refused at COMMIT", true, func(st *store.Store, w ctWorld) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				// Queued (store.later): the cast fails in the COMMIT's batch.
				return st.AppendAudit(ctx, domain.AuditEntry{ProgrammeID: &notUUID, ActorID: "test", Action: "test.bad",
					TargetType: "learner", TargetID: "x", OccurredAt: w.now})
			}
		}, func(t *testing.T, err error, _ any) {
			if err == nil {
				t.Fatal("InTx succeeded with an audit entry PostgreSQL cannot take")
			}
		}},
		{"a queued statement refused with the next one", true, func(st *store.Store, w ctWorld) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				if err := st.AppendAudit(ctx, domain.AuditEntry{ProgrammeID: &notUUID, ActorID: "test", Action: "test.bad",
					TargetType: "learner", TargetID: "x", OccurredAt: w.now}); err != nil {
					return err
				}
				if _, err := st.GetOrganisation(ctx, w.org.ID); err == nil {
					t.Error("a read after a refused queued statement succeeded")
				}
				return nil // dropped: the COMMIT must still not commit
			}
		}, func(t *testing.T, err error, _ any) {
			if err == nil {
				t.Fatal("InTx reported success for a transaction PostgreSQL rolled back")
			}
		}},
		{"a failure whose error was dropped", true, func(st *store.Store, w ctWorld) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				// No such organisation: a foreign key violation aborts the
				// transaction; the function carries on as if it had not.
				bad := newLearner(w, ctID(0x5ff), "nobody@org.example")
				bad.OrganisationID = ctID(0xbad)
				_ = st.CreateLearner(ctx, bad)
				return nil
			}
		}, func(t *testing.T, err error, _ any) {
			if err == nil {
				t.Fatal("InTx reported success for a transaction PostgreSQL rolled back")
			}
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, other, w, _ := pgtxWorld(t)
			email := "dan@org.example"
			fn := c.fn(st, w)
			pid := backendPID(t, st)
			var err error
			var panicked any
			func() {
				defer func() { panicked = recover() }()
				err = st.InTx(context.Background(), func(ctx context.Context) error {
					if err := st.CreateLearner(ctx, newLearner(w, ctID(0x540), email)); err != nil {
						return err
					}
					if c.noFeed {
						return fn(ctx)
					}
					if err := st.AppendEvents(ctx, []domain.Event{{ProgrammeID: w.p.ID, LearnerID: ctID(0x540), Type: domain.EventProvisioned,
						LearnerVersion: 1, OccurredAt: w.now}}); err != nil {
						return err
					}
					return fn(ctx)
				})
			}()
			c.want(t, err, panicked)
			if ok, es := committed(t, other, w, email); ok || len(es) != 0 {
				t.Fatalf("after the failure: learner committed %v, feed %+v", ok, es)
			}
			stillUsable(t, st, other, w, ctID(0x550+i), "eve@org.example")
			// Rolled back on its own connection, not dropped with it (pgx's
			// stdlib discards a connection returned inside a transaction:
			// stdlib/sql.go, Conn.ResetSession).
			if after := backendPID(t, st); after != pid {
				t.Fatalf("the pool's connection was replaced (backend %d, then %d): the transaction was not rolled back", pid, after)
			}
		})
	}
}

// A learner's insert takes the email writers' lock (nopii.go) in its own
// statement and holds it to commit: an email change, which takes it
// exclusively, waits for the transaction. Every column written is read back.
func TestPgTx_CreateLearnerHoldsTheEmailWritersLockAndWritesEveryColumn(t *testing.T) {
	st, other, w, _ := pgtxWorld(t)
	ctx := context.Background()
	group := ctID(0x510)
	reason := domain.RemovalLeaver
	t1, t2, t3, t4, t5, t6 := w.now.Add(1e9), w.now.Add(2e9), w.now.Add(3e9), w.now.Add(4e9), w.now.Add(5e9), w.now.Add(6e9)
	given, family := "Fay", "Lee"
	full := newLearner(w, ctID(0x560), "fay@org.example")
	full.AccessGroupID, full.GivenName, full.FamilyName, full.Status = &group, &given, &family, domain.StatusRemovalScheduled
	full.RemovalReason, full.RemovalDueAt, full.ErasedAt, full.LastSignInAt, full.LastActivityAt = &reason, &t1, &t2, &t3, &t4
	full.Version, full.UpdatedAt, full.NamesByPerson, full.Origin = 7, w.now.Add(7e9), true, domain.OriginDirectory
	full.IdentityLinkedAt, full.FirstActivatedAt = &t5, &t6
	err := st.InTx(ctx, func(ctx context.Context) error {
		if err := st.CreateLearner(ctx, full); err != nil {
			return err
		}
		var held int
		if err := other.SQL().QueryRow(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND mode = 'ShareLock'
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND (classid::bigint << 32 | objid::bigint) = $1`, int64(0x726f6c6c656d6c)).Scan(&held); err != nil {
			return err
		}
		if held != 1 {
			t.Errorf("the email writers' lock held shared by %d sessions after the insert, want 1", held)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := other.GetLearner(ctx, full.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if got.Email == nil || *got.Email != *full.Email || *got.AccessGroupID != group || *got.GivenName != given || *got.FamilyName != family ||
		got.Status != full.Status || *got.RemovalReason != reason || !got.RemovalDueAt.Equal(t1) || !got.ErasedAt.Equal(t2) ||
		!got.LastSignInAt.Equal(t3) || !got.LastActivityAt.Equal(t4) || got.Version != 7 || !got.CreatedAt.Equal(w.now) ||
		!got.UpdatedAt.Equal(full.UpdatedAt) || !got.NamesByPerson || got.Origin != domain.OriginDirectory ||
		!got.IdentityLinkedAt.Equal(t5) || !got.FirstActivatedAt.Equal(t6) || got.ProgrammeID != w.p.ID || got.OrganisationID != w.org.ID {
		t.Fatalf("read back %+v, want %+v", got, full)
	}
	dup := newLearner(w, ctID(0x561), "fay@org.example")
	wantCode(t, "CreateLearner with a taken email", st.CreateLearner(ctx, dup), apperr.Conflict)
}

// A connection back in the pool holds nothing of the request that last
// committed on it: pgx keeps a connection's last contexts (pgTx), and a
// request's context holds its decoded input (an import's 100,000 rows).
// Both ways a transaction commits: with feed rows (a pipeline), and
// without, after a statement with no arguments (the import's last, which
// pgx sends by the simple protocol).
func TestPgTx_TheConnectionKeepsNothingOfTheRequest(t *testing.T) {
	st, _, w, l := pgtxWorld(t)
	type key struct{}
	cases := []struct {
		name   string
		idle   bool // the connection idle for more than a second first: pgx's reset pings it
		pooled bool // fn runs outside a transaction, on pooled connections
		fn     func(ctx context.Context) error
	}{
		{"with feed rows", false, false, func(ctx context.Context) error {
			if err := st.CreateLearner(ctx, newLearner(w, ctID(0x580), "jo@org.example")); err != nil {
				return err
			}
			return st.AppendEvents(ctx, []domain.Event{{ProgrammeID: w.p.ID, LearnerID: ctID(0x580), Type: domain.EventProvisioned,
				LearnerVersion: 1, OccurredAt: w.now}})
		}},
		{"a read that carried BEGIN, then COMMIT alone", false, false, func(ctx context.Context) error {
			_, err := st.GetOrganisation(ctx, w.org.ID)
			return err
		}},
		{"a read that carried BEGIN and an audit entry with the COMMIT, on a connection idle a second", true, false, func(ctx context.Context) error {
			if _, err := st.GetOrganisation(ctx, w.org.ID); err != nil {
				return err
			}
			return st.AppendAudit(ctx, domain.AuditEntry{ProgrammeID: &w.p.ID, ActorID: "test", Action: "test.idle",
				TargetType: "learner", TargetID: "t", OccurredAt: w.now})
		}},
		{"after a statement without arguments", false, false, func(ctx context.Context) error {
			return st.WithPgx(ctx, func(ctx context.Context, c *pgx.Conn) error {
				_, err := c.Exec(ctx, "SELECT 1")
				return err
			})
		}},
		{"a read outside a transaction", false, true, func(ctx context.Context) error {
			_, err := st.GetOrganisation(ctx, w.org.ID)
			return err
		}},
		{"a read outside a transaction, on a connection idle a second", true, true, func(ctx context.Context) error {
			_, err := st.GetOrganisation(ctx, w.org.ID)
			return err
		}},
		{"a statement of gorm's outside a transaction", false, true, func(ctx context.Context) error {
			_, err := st.IdentitiesByLearner(ctx, l.ID)
			return err
		}},
		{"a statement of gorm's outside a transaction, on a connection idle a second", true, true, func(ctx context.Context) error {
			_, err := st.IdentitiesByLearner(ctx, l.ID)
			return err
		}},
		{"a read of gorm's rows outside a transaction, on a connection idle a second", true, true, func(ctx context.Context) error {
			_, err := st.FeedHead(ctx, w.p.ID, w.now)
			return err
		}},
		{"a page of learners with their decisions outside a transaction, on a connection idle a second", true, true, func(ctx context.Context) error {
			_, _, err := st.ListLearners(ctx, domain.LearnerFilter{ProgrammeID: w.p.ID, Limit: 10, WithAcceptances: true})
			return err
		}},
		{"an organisation's report outside a transaction, on a connection idle a second", true, true, func(ctx context.Context) error {
			_, _, _, _, err := st.OrganisationCounts(ctx, w.org.ID)
			return err
		}},
		{"a directory's page of users outside a transaction, on a connection idle a second", true, true, func(ctx context.Context) error {
			_, _, _, err := st.DirectoryUsers(ctx, domain.DirectoryFilter{OrganisationID: w.org.ID}, 0, 10)
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.idle {
				time.Sleep(1100 * time.Millisecond) // pgx stdlib Conn.ResetSession pings after 1 s
			}
			freed := make(chan struct{})
			func() {
				big := new([1 << 20]byte)
				runtime.AddCleanup(big, func(ch chan struct{}) { close(ch) }, freed)
				ctx := context.WithValue(context.Background(), key{}, big)
				run := func(ctx context.Context) error { return st.InTx(ctx, c.fn) }
				if c.pooled {
					run = c.fn
				}
				if err := run(ctx); err != nil {
					t.Fatal(err)
				}
			}()
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				runtime.GC()
				select {
				case <-freed:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
			t.Fatal("the request's context is still reachable after its statements ended")
		})
	}
}

// The rule TestPgTx_TheConnectionKeepsNothingOfTheRequest checks, kept
// for every read: a read of gorm's Row processor (Raw(…).Scan, Rows())
// outside a transaction on the caller's context is counted, and
// testkit.OpenStore fails the test of a store that counted one; a read
// through queryRows, or one in a transaction, is not counted.
func TestPgTx_INV5_ARowReadOnTheCallersContextIsCounted(t *testing.T) {
	// Not testkit.OpenStore: this test makes the read it would refuse.
	st, err := store.Open(context.Background(), testkit.NewDatabaseURL(t, migrations.Postgres), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	if err := st.ScanOnCallersContext(ctx); err != nil {
		t.Fatal(err)
	}
	if n := st.ReadsOnRequestContext(); n != 1 {
		t.Fatalf("a read of gorm's rows on the caller's context counted %d times, want 1", n)
	}
	if _, _, _, _, err := st.OrganisationCounts(ctx, ctID(0x5a0)); err != nil { // four reads through queryRows
		t.Fatal(err)
	}
	if err := st.InTx(ctx, st.ScanOnCallersContext); err != nil {
		t.Fatal(err)
	}
	if n := st.ReadsOnRequestContext(); n != 1 {
		t.Fatalf("reads through queryRows or in a transaction were counted: %d, want 1", n)
	}
}

// INV-5: the statements a transaction queues (store.later: BEGIN, a lock,
// an audit entry) go to PostgreSQL with its next statement, in one round
// trip, or with its COMMIT, and every statement after them sees what they
// did: a read through pgx carries them in its own batch, a statement of
// gorm's sends them first. A transaction that ran no statement sends
// nothing.
func TestPgTx_INV5_QueuedStatementsGoWithTheNextOneInOrder(t *testing.T) {
	url := testkit.NewDatabaseURL(t, migrations.Postgres)
	trips := &atomic.Int64{}
	st := testkit.OpenStore(t, url, store.Options{MaxOpenConns: 1, CountRoundTrips: trips})
	w, l := readWorld(t, st)
	ctx := context.Background()
	audit := func(ctx context.Context, target string) error {
		return st.AppendAudit(ctx, domain.AuditEntry{ProgrammeID: &w.p.ID, ActorID: "test", Action: "test.queued",
			TargetType: "learner", TargetID: target, OccurredAt: w.now})
	}
	cases := []struct {
		name  string
		trips int64
		fn    func(ctx context.Context) error
	}{
		{"nothing", 0, func(ctx context.Context) error { return nil }},
		{"a read through pgx: BEGIN with it", 2, func(ctx context.Context) error {
			_, err := st.GetLearner(ctx, l.ID, true)
			return err
		}},
		{"an audit entry alone: BEGIN and it with the COMMIT", 1, func(ctx context.Context) error {
			return audit(ctx, "t-1")
		}},
		{"an audit entry, then a read through pgx: both with BEGIN", 2, func(ctx context.Context) error {
			if err := audit(ctx, "t-4"); err != nil {
				return err
			}
			_, err := st.GetLearner(ctx, l.ID, true)
			return err
		}},
		{"an audit entry, then withPgx's read that sees it", 3, func(ctx context.Context) error {
			if err := audit(ctx, "t-2"); err != nil {
				return err
			}
			var n int
			return st.WithPgx(ctx, func(ctx context.Context, c *pgx.Conn) error {
				// withPgx sends the queue first: a round trip of its own.
				if err := c.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE target_id = 't-2'`).Scan(&n); err != nil {
					return err
				}
				if n != 1 {
					t.Errorf("withPgx's read in the transaction saw %d entries, want the one queued before it", n)
				}
				return nil
			})
		}},
		{"an audit entry, then gorm's read of it", 3, func(ctx context.Context) error {
			if err := audit(ctx, "t-3"); err != nil {
				return err
			}
			es, err := st.AuditAbout(ctx, "t-3")
			if err == nil && len(es) != 1 {
				t.Errorf("gorm's read in the transaction saw %d entries, want the one queued before it", len(es))
			}
			return err
		}},
		{"an organisation's lock, then its read: one round trip", 2, func(ctx context.Context) error {
			_, _, err := st.GetOrganisationShared(ctx, w.org.ID)
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			trips.Store(0)
			if err := st.InTx(ctx, c.fn); err != nil {
				t.Fatal(err)
			}
			if got := trips.Load(); got != c.trips {
				t.Fatalf("%d round trips, want %d", got, c.trips)
			}
		})
	}
	// What was queued committed: one entry each.
	for _, target := range []string{"t-1", "t-2", "t-3", "t-4"} {
		if es, err := st.AuditAbout(ctx, target); err != nil || len(es) != 1 {
			t.Fatalf("entries about %s after the commit: %d (%v), want 1", target, len(es), err)
		}
	}
}

// CTL-9: an organisation's lock queued with its read (GetOrganisationShared)
// is taken before the read runs, in a statement of its own: a transaction
// that removes the organisation (the lock held exclusively) makes the read
// wait, and the read then sees the removal. Were the lock taken in the
// read's own statement, the read's snapshot would be from before the wait.
func TestPgTx_CTL9_AQueuedLockIsHeldBeforeTheNextStatementReads(t *testing.T) {
	st, other, w, _ := pgtxWorld(t)
	ctx := context.Background()
	locked, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- other.InTx(ctx, func(ctx context.Context) error {
			if err := other.SetOrganisationStatus(ctx, w.org.ID, domain.OrgRemoved, w.now); err != nil {
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	read := make(chan domain.Organisation, 1)
	go func() {
		_ = st.InTx(ctx, func(ctx context.Context) error {
			o, _, err := st.GetOrganisationShared(ctx, w.org.ID)
			if err != nil {
				t.Error(err)
			}
			read <- o
			return err
		})
	}()
	select {
	case o := <-read:
		t.Fatalf("the read did not wait for the organisation's removal: status %s", o.Status)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if o := <-read; o.Status != domain.OrgRemoved {
		t.Fatalf("read %s after the removal committed, want %s", o.Status, domain.OrgRemoved)
	}
}

// INV-5: when the statements a transaction queued cannot be sent (here an
// argument pgx cannot encode, refused before it goes to the server),
// nothing more runs in that transaction: a later statement and the COMMIT
// fail, rather than run without it (an audit entry or a lock silently
// dropped) or outside any transaction. Queued after BEGIN went, the
// statement is refused before anything of its batch is written, and the
// connection is rolled back and kept; queued with BEGIN, pgx has written
// BEGIN when it refuses the next one and closes the connection (pgconn
// Pipeline.Close with requests unsynchronised).
func TestPgTx_INV5_QueuedStatementsThatCannotBeSentStopTheTransaction(t *testing.T) {
	for _, c := range []struct {
		name       string
		beganFirst bool
	}{{"queued after BEGIN went", true}, {"queued with BEGIN", false}} {
		t.Run(c.name, func(t *testing.T) {
			st, other, w, _ := pgtxWorld(t)
			pid := backendPID(t, st)
			err := st.InTx(context.Background(), func(ctx context.Context) error {
				if c.beganFirst {
					if _, err := st.GetOrganisation(ctx, w.org.ID); err != nil {
						return err
					}
				}
				if !st.Later(ctx, `SELECT CAST(? AS int)`, make(chan int)) {
					t.Fatal("not queued in a PostgreSQL transaction")
				}
				if _, err := st.GetOrganisation(ctx, w.org.ID); err == nil {
					t.Error("a read sent with a statement pgx cannot encode succeeded")
				}
				if err := st.CreateLearner(ctx, newLearner(w, ctID(0x590), "kim@org.example")); err == nil {
					t.Error("a write after the queue failed ran")
				}
				return nil // the errors dropped: the COMMIT must still refuse
			})
			if err == nil {
				t.Fatal("InTx reported success for a transaction whose queued statement was never sent")
			}
			if ok, _ := committed(t, other, w, "kim@org.example"); ok {
				t.Fatal("a write after the failed queue was committed")
			}
			stillUsable(t, st, other, w, ctID(0x591), "lee@org.example")
			if after := backendPID(t, st); c.beganFirst && after != pid {
				t.Fatalf("the pool's connection was replaced (backend %d, then %d)", pid, after)
			}
		})
	}
}

// A read through pgx in a transaction whose context was cancelled fails
// with the cancellation before anything is sent, as gorm's statements do,
// and the connection is rolled back and kept, not broken off mid-statement.
// An audit entry is queued before it, so the read would go in a batch on
// the transaction's value-free context, whose cancellation follows the
// request's a moment later.
func TestPgTx_INV5_ACancelledReadIsNotSent(t *testing.T) {
	st, other, w, l := pgtxWorld(t)
	pid := backendPID(t, st)
	ctx, cancel := context.WithCancel(context.Background())
	err := st.InTx(ctx, func(ctx context.Context) error {
		if _, err := st.GetLearner(ctx, l.ID, true); err != nil {
			return err
		}
		if err := st.AppendAudit(ctx, domain.AuditEntry{ProgrammeID: &w.p.ID, ActorID: "test", Action: "test.cancelled",
			TargetType: "learner", TargetID: l.ID, OccurredAt: w.now}); err != nil {
			return err
		}
		cancel()
		_, err := st.GetLearner(ctx, l.ID, true)
		if !errors.Is(err, context.Canceled) || store.Unreachable(err) {
			t.Errorf("a read after the cancellation: %v, want the cancellation", err)
		}
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("InTx: %v, want the cancellation", err)
	}
	stillUsable(t, st, other, w, ctID(0x592), "max@org.example")
	if after := backendPID(t, st); after != pid {
		t.Fatalf("the pool's connection was replaced (backend %d, then %d)", pid, after)
	}
}

// Outside a transaction, a batch of reads begins a read-only transaction of
// its own (one snapshot) and commits it in the same round trip. When one of
// its reads fails, PostgreSQL skips the COMMIT: the store rolls back, so the
// pool's connection is kept, outside any transaction, not dropped when next
// taken (pgx stdlib Conn.ResetSession) nor left in a failed one.
func TestReadBatch_INV5_AFailedReadRollsBackAndKeepsTheConnection(t *testing.T) {
	st, other, w, _ := pgtxWorld(t)
	pid := backendPID(t, st)
	ctx := context.Background()
	got, err := st.ReadBatch(ctx, "SELECT 1", "SELECT 2")
	if err != nil || len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("a batch of two reads: %v, %v; want [1 2]", got, err)
	}
	if _, err := st.ReadBatch(ctx, "SELECT 1", "SELECT 1/0"); err == nil {
		t.Fatal("a batch with a division by zero succeeded")
	}
	if err := st.WithPgx(ctx, func(ctx context.Context, c *pgx.Conn) error {
		if s := c.PgConn().TxStatus(); s != 'I' {
			t.Errorf("the connection's transaction status after the failed batch is %q, want 'I' (idle, outside a transaction)", s)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if after := backendPID(t, st); after != pid {
		t.Fatalf("the pool's connection was replaced (backend %d, then %d)", pid, after)
	}
	stillUsable(t, st, other, w, ctID(0x5a0), "una@org.example")
}

// A read outside a transaction on a context already cancelled fails with
// the cancellation before a connection is taken (its context without the
// request's values is cancelled a moment later, and a reset ping cut
// mid-way would close a healthy connection).
func TestPgTx_INV5_ACancelledPooledReadIsNotSent(t *testing.T) {
	st, other, w, _ := pgtxWorld(t)
	time.Sleep(1100 * time.Millisecond) // the connection will be pinged when next taken (stdlib Conn.ResetSession)
	pid := backendPID(t, st)
	time.Sleep(1100 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := st.GetOrganisation(ctx, w.org.ID); !errors.Is(err, context.Canceled) || store.Unreachable(err) {
		t.Fatalf("a read on a cancelled context: %v, want the cancellation", err)
	}
	if after := backendPID(t, st); after != pid {
		t.Fatalf("the pool's connection was replaced (backend %d, then %d)", pid, after)
	}
	stillUsable(t, st, other, w, ctID(0x5a1), "val@org.example")
}

// A pooled read whose context ends after its connection is taken but before
// anything is sent fails with the context's error, once: pgx calls that
// error safe to retry (pgconn contextAlreadyDoneError), but the connection
// is healthy, so it is kept, and the read is not run again on another.
func TestPgTx_INV5_APooledReadCancelledBeforeItIsSentKeepsItsConnection(t *testing.T) {
	st, other, w, _ := pgtxWorld(t)
	pid := backendPID(t, st)
	ctx, cancel := context.WithCancel(context.Background())
	runs := 0
	err := st.WithPgx(ctx, func(ctx context.Context, c *pgx.Conn) error {
		runs++
		cancel()
		<-ctx.Done() // the context without the caller's values follows a moment later
		_, err := c.Exec(ctx, "SELECT 1")
		return err
	})
	if !errors.Is(err, context.Canceled) || store.Unreachable(err) {
		t.Fatalf("a read cancelled before it was sent: %v, want the cancellation", err)
	}
	if runs != 1 {
		t.Fatalf("the read ran %d times, want once", runs)
	}
	if after := backendPID(t, st); after != pid {
		t.Fatalf("the pool's connection was replaced (backend %d, then %d)", pid, after)
	}
	stillUsable(t, st, other, w, ctID(0x5a2), "wyn@org.example")
}
