package domain

// What erasing a learner scrubs (invariant 2, GEN-2, GEN-3, CTL-12). The list
// is declared here, once; Learner.Erase applies its learner fields to the
// record in memory and store applies the whole list set-based
// (Store.EraseLearners), mapping each record and field to its table and
// column. store decides nothing: a field left off this list stays, and a
// record or field it cannot map is an error, not a silent skip.

// Record is a kind of record held about a learner.
type Record string

const (
	RecordLearner          Record = "learner"           // the learner itself: the tombstone stays
	RecordLearningActivity Record = "learning activity" // course states and times from the LMS (ONC-3)
	RecordSession          Record = "session"           // browser sessions
	RecordIdentity         Record = "linked identity"   // issuer + subject of their sign-ins
	RecordPolicyAcceptance Record = "policy acceptance" // their decisions on policy versions
	RecordDataRequest      Record = "data request"      // their withdrawal and erasure requests
	RecordAuditEntry       Record = "audit entry"       // audit entries whose target is the learner
)

// Field is a field of a record.
type Field string

const (
	FieldEmail          Field = "email"
	FieldGivenName      Field = "given name"
	FieldFamilyName     Field = "family name"
	FieldRemovalDueAt   Field = "removal due date"
	FieldLastSignInAt   Field = "last sign-in"
	FieldLastActivityAt Field = "last activity"
	FieldNote           Field = "note"          // a policy decision's note (given on the learner's behalf)
	FieldReason         Field = "reason"        // free text: a data request's, an audit entry's
	FieldDecisionNote   Field = "decision note" // a data request's decision
)

// Blank is free text blanked on records that stay.
type Blank struct {
	Record Record
	Fields []Field
}

// Scrub is what an erasure does to the data about a learner.
type Scrub struct {
	// Cleared: the learner's fields set to nothing on the tombstone, which
	// keeps its ID, organisation, status, reason, dates and version.
	Cleared []Field
	// CountActivity: learning activity is first folded into anonymous
	// totals per organisation, course and state, which reports keep (GEN-3).
	CountActivity bool
	// Deleted: records about the learner deleted outright.
	Deleted []Record
	// Blanked: free text blanked on records that stay as evidence (the
	// decisions, the requests, the audit entries; GEN-2, CTL-12).
	Blanked []Blank
	// RememberIdentities: a one-way hash of each linked identity is kept
	// for a while, so a token issued before the erasure cannot provision
	// the person again at once.
	RememberIdentities bool
}

// Erasure is the scrub of every erasure: by a request, a withdrawal, the
// sweep, an organisation leaving or the contract end.
var Erasure = Scrub{
	Cleared:       []Field{FieldEmail, FieldGivenName, FieldFamilyName, FieldRemovalDueAt, FieldLastSignInAt, FieldLastActivityAt},
	CountActivity: true,
	Deleted:       []Record{RecordLearningActivity, RecordSession, RecordIdentity},
	Blanked: []Blank{
		{Record: RecordPolicyAcceptance, Fields: []Field{FieldNote}},
		{Record: RecordDataRequest, Fields: []Field{FieldReason, FieldDecisionNote}},
		// Admins' notes about the learner; the entries themselves stay (GEN-2).
		{Record: RecordAuditEntry, Fields: []Field{FieldReason}},
	},
	RememberIdentities: true,
}

// clear applies the scrub's learner fields to l.
func (s Scrub) clear(l *Learner) {
	for _, f := range s.Cleared {
		switch f {
		case FieldEmail:
			l.Email = nil
		case FieldGivenName:
			l.GivenName = nil
		case FieldFamilyName:
			l.FamilyName = nil
		case FieldRemovalDueAt:
			l.RemovalDueAt = nil
		case FieldLastSignInAt:
			l.LastSignInAt = nil
		case FieldLastActivityAt:
			l.LastActivityAt = nil
		default:
			panic("domain: erasure clears an unknown learner field " + string(f))
		}
	}
}
