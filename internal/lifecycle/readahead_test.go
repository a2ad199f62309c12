package lifecycle_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/testkit"
)

// changeAfterRows is a store whose second ListEnrolments (the page read
// ahead after the first) lets a change commit just after its rows were
// read.
type changeAfterRows struct {
	lifecycle.Store
	calls  atomic.Int32
	change func(rows []domain.Enrolment)
}

func (s *changeAfterRows) ListEnrolments(ctx context.Context, programmeID, afterLearner, afterCourse string, learnerDone bool, limit int) ([]domain.Enrolment, bool, error) {
	rows, exhausted, err := s.Store.ListEnrolments(ctx, programmeID, afterLearner, afterCourse, learnerDone, limit)
	if s.calls.Add(1) == 2 && err == nil {
		s.change(rows)
	}
	return rows, exhausted, err
}

// CTL-4, invariant 5: a page of enrolments read ahead records the feed's
// head before its rows, so a change committed after the rows were read
// moves the head past it and the request reads the page again, with the
// change. (Were the head read after the rows, it would already include the
// change and the page without it would be served.)
func TestReadAhead_CTL4_INV5_AChangeJustAfterTheRowsIsNotMissed(t *testing.T) {
	testkit.ForEachDialect(t, func(t *testing.T, st *store.Store) {
		w := testkit.NewConnectToLearn(t, st).WithPolicies()
		w.Courses()
		for _, name := range []string{"ra1", "ra2", "ra3"} {
			w.Active(name)
		}
		var changed atomic.Value
		wrapped := &changeAfterRows{Store: st}
		wrapped.change = func(rows []domain.Enrolment) {
			if len(rows) == 0 {
				t.Error("the page read ahead is empty")
				return
			}
			name := "Renamed"
			l, err := w.Service.UpdateLearner(w.Sys, rows[0].LearnerID, lifecycle.LearnerUpdate{GivenName: &name})
			if err != nil {
				t.Error(err)
				return
			}
			changed.Store(l)
		}
		svc := w.NewService(wrapped, nil)
		t.Cleanup(svc.StopReadAhead)
		first, err := svc.Enrolments(w.Sys, w.Programme.ID, 2, lifecycle.EnrolmentCursor{}) // one learner, 2 courses
		if err != nil || !first.HasNext || len(first.Enrolments) != 2 {
			t.Fatalf("the first page: %+v %v", first, err)
		}
		svc.SettleReadAhead()
		l, ok := changed.Load().(domain.Learner)
		if !ok {
			t.Fatal("nothing was read ahead")
		}
		next, err := svc.Enrolments(w.Sys, w.Programme.ID, 2, first.Next)
		if err != nil || len(next.Enrolments) == 0 {
			t.Fatalf("the page after: %+v %v", next, err)
		}
		if got := next.Enrolments[0]; got.LearnerID != l.ID || got.LearnerVersion != l.Version {
			t.Fatalf("the page after starts with %s at version %d, want %s at %d (the change after the read ahead)", got.LearnerID, got.LearnerVersion, l.ID, l.Version)
		}
		if n := wrapped.calls.Load(); n < 3 {
			t.Fatalf("%d reads of the list: the page after was served from its read ahead", n)
		}
	})
}
