package domain

import (
	"fmt"
	"slices"
	"time"
)

// LearnerStatus is the learner's place in the lifecycle.
type LearnerStatus string

const (
	StatusPendingAcceptance LearnerStatus = "PENDING_ACCEPTANCE"
	StatusActive            LearnerStatus = "ACTIVE"
	StatusRemovalScheduled  LearnerStatus = "REMOVAL_SCHEDULED"
	StatusWithdrawn         LearnerStatus = "WITHDRAWN"
	StatusErased            LearnerStatus = "ERASED"
)

// LearnerStatuses are every status, in a fixed order.
var LearnerStatuses = []LearnerStatus{StatusPendingAcceptance, StatusActive, StatusRemovalScheduled, StatusWithdrawn, StatusErased}

func (s LearnerStatus) Valid() bool { return slices.Contains(LearnerStatuses, s) }

// RemovalReason says why a learner's data is going.
type RemovalReason string

const (
	RemovalConsentWithdrawn RemovalReason = "CONSENT_WITHDRAWN"
	RemovalLeaver           RemovalReason = "LEAVER"
	RemovalRoster           RemovalReason = "ROSTER_RECONCILIATION"
	RemovalInactivity       RemovalReason = "INACTIVITY"
	RemovalContractEnded    RemovalReason = "CONTRACT_ENDED"
	RemovalOrganisationLeft RemovalReason = "ORGANISATION_REMOVED"
	RemovalErasureRequested RemovalReason = "ERASURE_REQUESTED"
)

func (r RemovalReason) Valid() bool {
	switch r {
	case RemovalConsentWithdrawn, RemovalLeaver, RemovalRoster, RemovalInactivity, RemovalContractEnded,
		RemovalOrganisationLeft, RemovalErasureRequested:
		return true
	}
	return false
}

// Learner holds a name and a work email and nothing more (CTL-3).
type Learner struct {
	ID             string
	ProgrammeID    string
	OrganisationID string
	AccessGroupID  *string
	Email          *string // nil once erased
	GivenName      *string
	FamilyName     *string
	Status         LearnerStatus
	RemovalReason  *RemovalReason
	RemovalDueAt   *time.Time
	ErasedAt       *time.Time
	LastSignInAt   *time.Time
	LastActivityAt *time.Time
	Version        int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// NamesByPerson: the learner or an admin corrected the name (ONC-9,
	// ONC-4); a provider's token names no longer replace it.
	NamesByPerson bool
	// Origin is how the record came to exist (sign-in, admin, import,
	// directory): only a record someone else made may be linked to a sign-in.
	Origin Origin
	// IdentityLinkedAt is when a sign-in identity was first linked to the
	// record; nil: never.
	IdentityLinkedAt *time.Time
	// FirstActivatedAt is the first activation (LEARNER_ACTIVATED); later
	// ones are ACCESS_GRANTED. Nothing reads the feed to decide state.
	FirstActivatedAt *time.Time
	// ContractEnded is not stored: lifecycle sets it when the programme's
	// contract end has passed (CTL-6), which ends access at once, before any
	// sweep erases the learner.
	ContractEnded bool
}

// AccessAllowed: only an active learner may use the LMS (CTL-5, ONC-1), and
// nobody once the programme's contract has ended (CTL-6).
func (l Learner) AccessAllowed() bool { return l.Status == StatusActive && !l.ContractEnded }

// Personal reports whether the LMS may read the learner's name and email:
// only of a learner in the desired state (CTL-10). Of others it reads the
// ID, status and version.
func (l Learner) Personal() bool { return l.AccessAllowed() }

// WithoutPersonalData is l as the LMS may see it when it has no access:
// no name, no email.
func (l Learner) WithoutPersonalData() Learner {
	l.Email, l.GivenName, l.FamilyName = nil, nil, nil
	return l
}

// LastActive is the start of the inactivity clock (CTL-7): the latest of
// sign-in, LMS activity and creation.
func (l Learner) LastActive() time.Time {
	t := l.CreatedAt
	if l.LastSignInAt != nil && l.LastSignInAt.After(t) {
		t = *l.LastSignInAt
	}
	if l.LastActivityAt != nil && l.LastActivityAt.After(t) {
		t = *l.LastActivityAt
	}
	return t
}

// LearnerIdentity links an OIDC identity (issuer + subject) to a learner.
type LearnerIdentity struct {
	ID        string
	LearnerID string
	Issuer    string
	Subject   string
	CreatedAt time.Time
}

// EventType is a change-feed event type (docs/lms.md).
type EventType string

const (
	EventProvisioned      EventType = "LEARNER_PROVISIONED"
	EventActivated        EventType = "LEARNER_ACTIVATED"
	EventUpdated          EventType = "LEARNER_UPDATED"
	EventAccessGranted    EventType = "ACCESS_GRANTED"
	EventAccessRevoked    EventType = "ACCESS_REVOKED"
	EventGroupChanged     EventType = "GROUP_CHANGED"
	EventCoursesChanged   EventType = "COURSES_CHANGED"
	EventRemovalScheduled EventType = "REMOVAL_SCHEDULED"
	EventRemovalCancelled EventType = "REMOVAL_CANCELLED"
	EventErased           EventType = "LEARNER_ERASED"
	// EventContractEnding warns ahead of the contract end (CTL-6): every
	// learner of the programme will be erased on that date.
	EventContractEnding EventType = "CONTRACT_ENDING"
)

// EventTypes lists every event type (the schema's LifecycleEventType).
var EventTypes = []EventType{EventProvisioned, EventActivated, EventUpdated, EventAccessGranted, EventAccessRevoked,
	EventGroupChanged, EventCoursesChanged, EventRemovalScheduled, EventRemovalCancelled, EventErased, EventContractEnding}

// Event is one feed row: opaque IDs only (invariant 3).
type Event struct {
	ID             int64
	ProgrammeID    string
	LearnerID      string
	Type           EventType
	LearnerVersion int64
	OccurredAt     time.Time
}

// Decision on a policy version.
type Decision string

const (
	DecisionAccepted Decision = "ACCEPTED"
	DecisionDeclined Decision = "DECLINED"
)

// Who gave a policy decision (PolicyAcceptance.GivenBy).
const (
	GivenBySelf  = "SELF"
	GivenByAdmin = "ADMIN"
)

// PolicyAcceptance records who decided, on which version, when, and whether
// an admin gave it on the learner's behalf (CTL-5).
type PolicyAcceptance struct {
	ID              string
	LearnerID       string
	PolicyVersionID string
	Decision        Decision
	AgeConfirmed    bool
	GivenBy         string // SELF or ADMIN
	ActorID         string
	Note            string
	DecidedAt       time.Time
}

// Retention is GEN-1's statement: until when and why a learner's data is kept.
type Retention struct {
	KeptUntil *time.Time // the earliest dated trigger; nil: while the learner stays registered (ONC-6)
	Reason    string     // plain words, of the trigger that decides KeptUntil
	Rule      string     // the rule ID that decides it
	// Triggers lists every retention trigger that applies to the learner, in
	// plain words, earliest first (undated ones last), so a learner sees all
	// of them, not only the one that comes first.
	Triggers []AppliedTrigger
}

// AppliedTrigger is one retention trigger that applies to the learner: why
// the data will go, in plain words, with its date if known. (RetentionTrigger
// is a rule in force, whoever it applies to.)
type AppliedTrigger struct {
	Rule   string
	Reason string
	Date   *time.Time
}

const rights = " You can withdraw consent or ask for erasure at any time."

// RetentionFor lists the retention triggers that apply to the learner and
// keeps the earliest date as KeptUntil (GEN-1).
func RetentionFor(l Learner, s RuleSettings) Retention {
	if l.Status == StatusErased {
		return withTriggers(AppliedTrigger{Date: l.ErasedAt, Reason: "Your personal data has been erased; only an anonymous record remains.", Rule: "GEN-2"})
	}
	var ts []AppliedTrigger
	leaving := l.Status == StatusRemovalScheduled || l.Status == StatusWithdrawn
	switch {
	case leaving && l.RemovalDueAt == nil && l.RemovalReason != nil:
		// ONC-5: erasure waits for the controller's approval.
		ts = append(ts, AppliedTrigger{Reason: fmt.Sprintf("Your access has ended (%s). Your data will be erased as soon as your organisation approves the erasure; nothing else is done with it meanwhile.",
			removalWords(l.RemovalReason)), Rule: "ONC-5"})
	case leaving && l.RemovalDueAt != nil:
		ts = append(ts, AppliedTrigger{Date: l.RemovalDueAt, Reason: fmt.Sprintf("Your removal is scheduled (%s); your data will be erased on %s.",
			removalWords(l.RemovalReason), l.RemovalDueAt.Format("2 January 2006")), Rule: removalRule(l.RemovalReason)})
	}
	if s.InactivityLimit != nil && !leaving {
		until := l.LastActive().Add(*s.InactivityLimit)
		ts = append(ts, AppliedTrigger{Date: &until, Rule: "CTL-7",
			Reason: fmt.Sprintf("Your data is kept while you use e-learning. If you neither sign in nor use a course for %s, your account will be scheduled for removal on %s.",
				humanDuration(*s.InactivityLimit), until.Format("2 January 2006"))})
	}
	if s.ContractEndsAt != nil {
		end := *s.ContractEndsAt
		ts = append(ts, AppliedTrigger{Date: &end, Rule: "CTL-6",
			Reason: fmt.Sprintf("Your data is kept for the duration of the programme's contract with its supplier, which ends on %s; it will be erased then.",
				end.Format("2 January 2006"))})
	}
	if len(ts) == 0 {
		ts = append(ts, AppliedTrigger{Reason: "Your data is kept for as long as you remain a registered user.", Rule: "ONC-6"})
	}
	r := withTriggers(ts...)
	if !leaving {
		r.Reason += rights
	}
	return r
}

// withTriggers orders the triggers (dated, earliest first, then undated) and
// states the first: its date is the earliest, so it is KeptUntil.
func withTriggers(ts ...AppliedTrigger) Retention {
	slices.SortStableFunc(ts, func(a, b AppliedTrigger) int {
		switch {
		case a.Date == nil && b.Date == nil:
			return 0
		case a.Date == nil:
			return 1
		case b.Date == nil:
			return -1
		}
		return a.Date.Compare(*b.Date)
	})
	return Retention{KeptUntil: ts[0].Date, Reason: ts[0].Reason, Rule: ts[0].Rule, Triggers: ts}
}

func removalWords(r *RemovalReason) string {
	if r == nil {
		return "removal"
	}
	return map[RemovalReason]string{
		RemovalConsentWithdrawn: "you withdrew consent", RemovalLeaver: "you have left your organisation",
		RemovalRoster: "you are no longer on your organisation's staff list", RemovalInactivity: "inactivity",
		RemovalContractEnded: "the programme's contract ended", RemovalOrganisationLeft: "your organisation left the programme",
		RemovalErasureRequested: "you asked for erasure",
	}[*r]
}

func removalRule(r *RemovalReason) string {
	if r == nil {
		return "GEN-4"
	}
	return map[RemovalReason]string{
		RemovalConsentWithdrawn: "CTL-8", RemovalLeaver: "CTL-9", RemovalRoster: "CTL-9", RemovalInactivity: "CTL-7",
		RemovalContractEnded: "CTL-6", RemovalOrganisationLeft: "CTL-9", RemovalErasureRequested: "CTL-11",
	}[*r]
}

func humanDuration(d time.Duration) string {
	days := int(d / day)
	switch {
	case days%365 == 0 && days >= 365:
		if days == 365 {
			return "a year"
		}
		return fmt.Sprintf("%d years", days/365)
	case days == 1:
		return "a day"
	}
	return fmt.Sprintf("%d days", days)
}

// LearnerFilter narrows a learner listing; OrganisationIDs nil means all.
type LearnerFilter struct {
	ProgrammeID     string
	OrganisationIDs []string
	Statuses        []LearnerStatus
	Search          string
	AfterID         string
	Limit           int
	// WithAcceptances: the listed learners' policy decisions are read too,
	// with them (store ListLearners).
	WithAcceptances bool
}

// FeedPosition is a point in a programme's change feed (ordered by row ID).
type FeedPosition struct {
	TxID uint64 // reserved; always 0
	ID   int64
	At   time.Time // when the position was reached: cursors expire with feed retention
	// Programme is the cursor tag of the programme the position was issued
	// for (see lifecycle.CursorTag); empty for cursors from before tags.
	Programme string
}

// FeedEvent is an event read from the feed.
type FeedEvent struct {
	Event
	TxID uint64 // reserved; always 0
}

// Enrolment is one row of the LMS's desired state.
type Enrolment struct {
	LearnerID       string
	Email           string
	GivenName       *string
	FamilyName      *string
	AccessGroupID   string
	AccessGroupName string
	LMSCourseID     string
	LearnerVersion  int64
}

// APIKey is an LMS key of one programme.
type APIKey struct {
	ID          string
	ProgrammeID string
	Name        string
	Prefix      string
	Hash        string
	CreatedBy   string
	CreatedAt   time.Time
	RevokedAt   *time.Time
}

// ActivityRow is one learner's activity as the LMS reports it (ONC-3).
type ActivityRow struct {
	LearnerID    string
	LastAccessAt *time.Time
	ObservedAt   *time.Time // when the LMS read the row; orders its enrolment states
	Enrolments   []ActivityEnrolment
}

type ActivityEnrolment struct {
	LMSCourseID string
	State       string
	CompletedAt *time.Time
}
