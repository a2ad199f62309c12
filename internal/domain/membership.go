package domain

import "time"

// ProposalAction is what a membership proposal would do (CTL-1).
type ProposalAction string

const (
	ProposalAdmit  ProposalAction = "ADMIT"
	ProposalRemove ProposalAction = "REMOVE"
)

// ProposalStatus: PENDING until every governing body approved (APPLIED) or one rejected.
type ProposalStatus string

const (
	ProposalPending  ProposalStatus = "PENDING"
	ProposalApplied  ProposalStatus = "APPLIED"
	ProposalRejected ProposalStatus = "REJECTED"
)

type ProposedDomain struct {
	Domain            string `json:"domain"`
	IncludeSubdomains bool   `json:"includeSubdomains"`
}

type MembershipProposal struct {
	ID             string
	ProgrammeID    string
	Action         ProposalAction
	OrganisationID *string // the organisation admitted (once created) or removed
	Name           string
	Kind           OrganisationKind
	Domains        []ProposedDomain
	Status         ProposalStatus
	Reason         string
	ProposedBy     string // actor ID (opaque)
	CreatedAt      time.Time
	DecidedAt      *time.Time
}

type MembershipApproval struct {
	ProposalID      string
	GoverningBodyID string
	ActorID         string
	Note            string
	ApprovedAt      time.Time
}

// ApprovalsComplete reports whether every governing body has approved (CTL-1).
func ApprovalsComplete(bodies []GoverningBody, approvals []MembershipApproval) bool {
	if len(bodies) == 0 {
		return false
	}
	got := make(map[string]bool, len(approvals))
	for _, a := range approvals {
		got[a.GoverningBodyID] = true
	}
	for _, b := range bodies {
		if !got[b.ID] {
			return false
		}
	}
	return true
}
