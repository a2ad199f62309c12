package lifecycle_test

// The worlds these tests run in are testkit's shared builders
// (testkit.NewWorld, NewConnectToLearn, NewOnclick); the helpers here only
// read and assert.

import (
	"testing"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

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
