package domain

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// erasureTable is what an erasure does, record by record, as the privacy
// notices read it (invariant 2: no name, no email; GEN-2: the audit trail
// stays; GEN-3: reports keep counts; CTL-12: decisions stay as evidence).
const erasureTable = `
learner             clear  email, given name, family name, removal due date, last sign-in, last activity
learning activity   count
learning activity   delete
session             delete
linked identity     delete
linked identity     remember
policy acceptance   blank  note
data request        blank  reason, decision note
audit entry         blank  reason
`

func erasureRows(s Scrub) []string {
	join := func(fs []Field) string {
		out := make([]string, len(fs))
		for i, f := range fs {
			out[i] = string(f)
		}
		return strings.Join(out, ", ")
	}
	rows := []string{fmt.Sprintf("%-19s clear  %s", RecordLearner, join(s.Cleared))}
	if s.CountActivity {
		rows = append(rows, fmt.Sprintf("%-19s count", RecordLearningActivity))
	}
	for _, r := range s.Deleted {
		rows = append(rows, fmt.Sprintf("%-19s delete", r))
		if r == RecordIdentity && s.RememberIdentities {
			rows = append(rows, fmt.Sprintf("%-19s remember", r))
		}
	}
	for _, b := range s.Blanked {
		rows = append(rows, fmt.Sprintf("%-19s blank  %s", b.Record, join(b.Fields)))
	}
	return rows
}

func TestErasure_INV2_ScrubsWhatTheTableSays(t *testing.T) {
	var want []string
	for _, line := range strings.Split(strings.TrimSpace(erasureTable), "\n") {
		want = append(want, strings.TrimRight(line, " "))
	}
	got := erasureRows(Erasure)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("domain.Erasure:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Both erasing bulk transitions apply this scrub; no other bulk path scrubs.
	for name, b := range map[string]Bulk{"BulkErase": BulkErase, "BulkEraseDue": BulkEraseDue} {
		if b.Scrub != &Erasure || b.To != StatusErased || b.Event != EventErased {
			t.Errorf("%s: %+v", name, b)
		}
	}
	for name, b := range map[string]Bulk{"BulkSchedule": BulkSchedule(RemovalLeaver), "BulkRevokeAccess": BulkRevokeAccess,
		"BulkCoursesChanged": BulkCoursesChanged, "BulkContractEnding": BulkContractEnding} {
		if b.Scrub != nil {
			t.Errorf("%s scrubs: %+v", name, b.Scrub)
		}
	}
}

// The transition in memory and the list agree: Erase clears exactly the
// learner fields the list declares, and those are every personal field of
// the record (invariant 2); the tombstone keeps the rest.
func TestErasure_INV2_EraseClearsTheDeclaredFieldsAndKeepsTheTombstone(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	email, given, family, group := "ann@kent.gov.uk", "Ann", "Smith", "group-1"
	reason := RemovalLeaver
	due, signIn, activity, linked, first := now.Add(time.Hour), now.Add(-time.Hour), now.Add(-2*time.Hour), now.Add(-3*time.Hour), now.Add(-4*time.Hour)
	l := Learner{ID: "l-1", ProgrammeID: "p-1", OrganisationID: "o-1", AccessGroupID: &group, Email: &email, GivenName: &given,
		FamilyName: &family, Status: StatusRemovalScheduled, RemovalReason: &reason, RemovalDueAt: &due, LastSignInAt: &signIn,
		LastActivityAt: &activity, Version: 4, CreatedAt: now.Add(-48 * time.Hour), Origin: OriginAdmin, IdentityLinkedAt: &linked,
		FirstActivatedAt: &first}
	before := l
	if _, err := l.Erase(now); err != nil {
		t.Fatal(err)
	}
	cleared := map[string]bool{}
	for _, f := range Erasure.Cleared {
		cleared[map[Field]string{FieldEmail: "Email", FieldGivenName: "GivenName", FieldFamilyName: "FamilyName",
			FieldRemovalDueAt: "RemovalDueAt", FieldLastSignInAt: "LastSignInAt", FieldLastActivityAt: "LastActivityAt"}[f]] = true
	}
	for _, personal := range []string{"Email", "GivenName", "FamilyName"} {
		if !cleared[personal] {
			t.Errorf("domain.Erasure does not clear %s", personal)
		}
	}
	bv, av := reflect.ValueOf(before), reflect.ValueOf(l)
	for i := 0; i < bv.NumField(); i++ {
		name := bv.Type().Field(i).Name
		switch {
		case cleared[name]:
			if !av.Field(i).IsNil() {
				t.Errorf("%s survives the erasure", name)
			}
		case name == "Status" || name == "ErasedAt" || name == "Version" || name == "UpdatedAt":
			// the transition itself
		default:
			if !reflect.DeepEqual(bv.Field(i).Interface(), av.Field(i).Interface()) {
				t.Errorf("%s changed: %v -> %v (not on the erasure's list)", name, bv.Field(i).Interface(), av.Field(i).Interface())
			}
		}
	}
	if l.Status != StatusErased || l.ErasedAt == nil || !l.ErasedAt.Equal(now) || l.Version != 5 {
		t.Fatalf("tombstone: %+v", l)
	}
}
