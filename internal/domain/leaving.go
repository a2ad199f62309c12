package domain

import "time"

// DataRequestStatus: PENDING → AWAITING_APPROVAL → APPROVED → COMPLETED, or REJECTED.
type DataRequestStatus string

const (
	RequestPending          DataRequestStatus = "PENDING"
	RequestAwaitingApproval DataRequestStatus = "AWAITING_APPROVAL"
	RequestApproved         DataRequestStatus = "APPROVED"
	RequestCompleted        DataRequestStatus = "COMPLETED"
	RequestRejected         DataRequestStatus = "REJECTED"
)

// DataRequest is an erasure waiting on, or done by, the controller (ONC-5, CTL-11).
type DataRequest struct {
	ID             string
	ProgrammeID    string
	OrganisationID string
	LearnerID      string
	Kind           string // ERASURE
	Origin         RemovalReason
	Status         DataRequestStatus
	Reason         string
	RequestedBy    string
	RequestedAt    time.Time
	DecidedBy      *string
	DecidedAt      *time.Time
	DecisionNote   string
	CompletedAt    *time.Time
}

// DataRequestFilter narrows a listing.
type DataRequestFilter struct {
	ProgrammeID     string
	OrganisationIDs []string // nil: all
	Statuses        []DataRequestStatus
	AfterID         string
	Limit           int
}

// Activity is one course's state reported by the LMS (ONC-3).
type Activity struct {
	LearnerID    string
	CourseID     string
	State        string
	CompletedAt  *time.Time
	LastAccessAt *time.Time
	ObservedAt   *time.Time
	UpdatedAt    time.Time
}

// Removal is one learner the retention rules would schedule or erase.
type Removal struct {
	LearnerID      string
	OrganisationID string
	Reason         RemovalReason
	Action         string // SCHEDULE or ERASE
	DueAt          time.Time
}

// SweepKind selects the learners a retention sweep step works on.
type SweepKind int

const (
	SweepAll      SweepKind = iota // every learner not yet erased (contract end, CTL-6)
	SweepDue                       // scheduled or withdrawn, due by now
	SweepInactive                  // active or pending with no sign-in, activity or creation since the cutoff (CTL-7)
)

// Count is one aggregate figure of a report.
type Count struct {
	K string
	N int64
}
