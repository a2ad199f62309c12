package lifecycle

import (
	"context"
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
)

// Store is what the use cases need from persistence: one small interface per
// area, each method documenting the error codes (apperr) it returns besides
// INTERNAL_SERVER_ERROR for a storage failure. store.Store implements them
// all on both databases; internal/store's contract tests hold each area to
// its documented codes on PostgreSQL and SQLite. A transaction travels in
// the context InTx passes to fn.
type Store interface {
	Transactions
	Programmes
	Organisations
	Memberships
	Policies
	Grants
	Learners
	SignIns
	Leaving
	Feed
	Audit
	DirectoryStore // scim.go
}

// Transactions: one transaction per change (invariant 5).
type Transactions interface {
	// InTx runs fn in a transaction (or the caller's, when ctx carries one);
	// fn's error rolls everything back and is returned as is.
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	// TryLock takes a lock held until unlock (PostgreSQL: an advisory lock);
	// ok is false when another holder has it.
	TryLock(ctx context.Context, key int64) (unlock func(), ok bool, err error)
}

// Programmes. Get*/…ByName: NOT_FOUND when missing; Create*: CONFLICT on a
// taken name.
type Programmes interface {
	CreateProgramme(ctx context.Context, p domain.Programme, bodies []domain.GoverningBody) error
	GetProgramme(ctx context.Context, id string) (domain.Programme, error)
	ProgrammeByName(ctx context.Context, name string) (domain.Programme, error)
	ListProgrammes(ctx context.Context, ids []string) ([]domain.Programme, error)
	UpdateProgrammeSettings(ctx context.Context, id string, s domain.RuleSettings, at time.Time) error
	GoverningBodies(ctx context.Context, programmeID string) ([]domain.GoverningBody, error)
	GoverningBodiesByProgrammes(ctx context.Context, ids []string) ([]domain.GoverningBody, error)
	SetGoverningBodyOrganisation(ctx context.Context, bodyID, orgID string) error
}

// Organisations, their email domains, access groups and courses. Get*:
// NOT_FOUND when missing; Create*: CONFLICT on a taken name, domain or LMS
// course ID; DeleteEmailDomain: NOT_FOUND when missing.
type Organisations interface {
	CreateOrganisation(ctx context.Context, o domain.Organisation) error
	GetOrganisation(ctx context.Context, id string) (domain.Organisation, error)
	// GetOrganisationShared reads the organisation in the caller's
	// transaction holding the organisation's lock shared to its end
	// (SetOrganisationStatus takes it exclusively: a removal waits for it,
	// or it for the removal); NOT_FOUND when missing.
	GetOrganisationShared(ctx context.Context, id string) (domain.Organisation, *time.Time, error)
	OrganisationByName(ctx context.Context, programmeID, name string) (domain.Organisation, error)
	OrganisationsByProgrammes(ctx context.Context, programmeIDs []string, only []string) ([]domain.Organisation, error)
	OrganisationsByIDs(ctx context.Context, ids []string) ([]domain.Organisation, error)
	SetOrganisationStatus(ctx context.Context, id string, st domain.OrganisationStatus, at time.Time) error
	OrganisationCounts(ctx context.Context, orgID string) (byStatus, byGroup, byVersion, byActivity []domain.Count, err error)

	CreateEmailDomain(ctx context.Context, d domain.DomainRule) error
	GetEmailDomain(ctx context.Context, id string) (domain.DomainRule, error)
	DeleteEmailDomain(ctx context.Context, id string) error
	DomainsByOrganisations(ctx context.Context, orgIDs []string) ([]domain.DomainRule, error)
	DomainsRelatedTo(ctx context.Context, d string) ([]domain.DomainRule, error)
	DomainsCovering(ctx context.Context, host string) ([]domain.DomainRule, error)

	CreateAccessGroup(ctx context.Context, g domain.AccessGroup) error
	GetAccessGroup(ctx context.Context, id string) (domain.AccessGroup, error)
	AccessGroupsByOrganisations(ctx context.Context, orgIDs []string) ([]domain.AccessGroup, error)
	AccessGroupsByIDs(ctx context.Context, ids []string) ([]domain.AccessGroup, error)
	SetAccessGroupCourses(ctx context.Context, groupID string, courseIDs []string) error
	CoursesByAccessGroups(ctx context.Context, groupIDs []string) (map[string][]domain.Course, error)
	CreateCourse(ctx context.Context, c domain.Course) error
	CoursesByIDs(ctx context.Context, ids []string) ([]domain.Course, error)
	CoursesByProgrammes(ctx context.Context, ids []string) ([]domain.Course, error)
}

// Memberships (CTL-1). GetProposal: NOT_FOUND; AddApproval: CONFLICT when
// the governing body, or the same person, already approved the proposal.
type Memberships interface {
	CreateProposal(ctx context.Context, p domain.MembershipProposal) error
	GetProposal(ctx context.Context, id string, forUpdate bool) (domain.MembershipProposal, error)
	ListProposals(ctx context.Context, programmeID string, status *domain.ProposalStatus) ([]domain.MembershipProposal, error)
	UpdateProposal(ctx context.Context, p domain.MembershipProposal) error
	AddApproval(ctx context.Context, a domain.MembershipApproval) error
	ApprovalsByProposals(ctx context.Context, ids []string) ([]domain.MembershipApproval, error)
}

// Policies and acceptances (CTL-5, ONC-1). GetPolicy: NOT_FOUND; Create*:
// CONFLICT on a taken name or version label.
type Policies interface {
	CreatePolicy(ctx context.Context, p domain.Policy) error
	GetPolicy(ctx context.Context, id string) (domain.Policy, error)
	PoliciesByProgrammes(ctx context.Context, ids []string) ([]domain.Policy, error)
	CreatePolicyVersion(ctx context.Context, v domain.PolicyVersion) error
	ActivatePolicyVersion(ctx context.Context, policyID, versionID string, at time.Time) error
	PolicyVersionsByPolicies(ctx context.Context, ids []string) ([]domain.PolicyVersion, error)
	PolicyVersionsByIDs(ctx context.Context, ids []string) ([]domain.PolicyVersion, error)
	SaveAcceptance(ctx context.Context, a domain.PolicyAcceptance) error
	AcceptancesByLearners(ctx context.Context, ids []string) ([]domain.PolicyAcceptance, error)
	// RevokeStaleAcceptance applies domain.BulkRevokeAccess to a programme.
	RevokeStaleAcceptance(ctx context.Context, programmeID string, b domain.Bulk, at time.Time) (int64, error)
}

// Grants and API keys (CTL-12). Get*/APIKeyByHash: NOT_FOUND; CreateGrant:
// CONFLICT when the identity holds the grant, or a grant for another
// governing body of the programme (CTL-1).
type Grants interface {
	CreateGrant(ctx context.Context, g domain.RoleGrant) error
	GetGrant(ctx context.Context, id string) (domain.RoleGrant, error)
	DeleteGrant(ctx context.Context, id string) error
	GrantsForIdentity(ctx context.Context, issuer, subject string) ([]domain.RoleGrant, error)
	// AuthGeneration changes whenever role grants change.
	AuthGeneration() uint64
	GrantsByProgramme(ctx context.Context, programmeID string) ([]domain.RoleGrant, error)
	DeleteGrantsOf(ctx context.Context, issuer, subject string) error
	CreateAPIKey(ctx context.Context, k domain.APIKey) error
	APIKeyByHash(ctx context.Context, hash string) (domain.APIKey, error)
	GetAPIKey(ctx context.Context, id string) (domain.APIKey, error)
	APIKeysByProgramme(ctx context.Context, programmeID string) ([]domain.APIKey, error)
	RevokeAPIKey(ctx context.Context, id string, at time.Time) error
}

// Learners. GetLearner, LearnerByEmail, LearnerByIdentity: NOT_FOUND when
// missing (a malformed ID too); CreateLearner, UpdateLearner: CONFLICT when
// the email or the identity belongs to another learner; UpdateLearner:
// NOT_FOUND when missing. Status and version are the domain's: the store
// writes what the transitions left.
type Learners interface {
	CreateLearner(ctx context.Context, l domain.Learner) error
	// CreateLearnerWithIdentity: CreateLearner and CreateIdentity of its
	// identity in one (one round trip on PostgreSQL), both or neither. In
	// the caller's transaction a CONFLICT may leave the learner written
	// until it rolls back: the caller must return it, not go on.
	CreateLearnerWithIdentity(ctx context.Context, l domain.Learner, li domain.LearnerIdentity) error
	GetLearner(ctx context.Context, id string, forUpdate bool) (domain.Learner, error)
	LearnerByEmail(ctx context.Context, email string) (domain.Learner, error)
	LearnerByIdentity(ctx context.Context, issuer, subject string) (domain.Learner, error)
	UpdateLearner(ctx context.Context, l domain.Learner) error
	// TouchSignIn records a returning sign-in: no version, no event.
	TouchSignIn(ctx context.Context, learnerID string, at time.Time) error
	LearnersByIDs(ctx context.Context, ids []string) ([]domain.Learner, error)
	ListLearners(ctx context.Context, f domain.LearnerFilter) ([]domain.Learner, []domain.PolicyAcceptance, error)
	CreateIdentity(ctx context.Context, li domain.LearnerIdentity) error
	IdentitiesByLearner(ctx context.Context, learnerID string) ([]domain.LearnerIdentity, error)
	ExistingEmails(ctx context.Context, emails []string) (map[string]bool, error)
	// InsertLearners skips emails taken meanwhile; it returns the IDs written.
	InsertLearners(ctx context.Context, ls []domain.Learner) (map[string]bool, error)
	// ImportLearners inserts ls with a feed event and an audit entry by
	// actorID for each one written; it returns the IDs written.
	ImportLearners(ctx context.Context, ls []domain.Learner, actorID string, at time.Time) (map[string]bool, error)
	AppendAudits(ctx context.Context, es []domain.AuditEntry) error
	// SignInLearner is LearnerByIdentity, and when it is NOT_FOUND, when
	// that identity was erased (nil: never, or forgotten).
	SignInLearner(ctx context.Context, issuer, subject string) (domain.Learner, *time.Time, error)
	PurgeErasedIdentities(ctx context.Context, before time.Time) error
}

// SignIns: identity providers, sessions and login states. Get*,
// ProviderByIssuer: NOT_FOUND; CreateProvider: CONFLICT on a registered
// issuer; TakeLoginState: NOT_FOUND when missing or taken already.
type SignIns interface {
	CreateProvider(ctx context.Context, p domain.IdentityProvider) error
	GetProvider(ctx context.Context, id string) (domain.IdentityProvider, error)
	ProviderByIssuer(ctx context.Context, issuer string) (domain.IdentityProvider, error)
	ProvidersFor(ctx context.Context, programmeID, organisationID string) ([]domain.IdentityProvider, error)
	ProvidersByProgramme(ctx context.Context, programmeID string) ([]domain.IdentityProvider, error)
	UpdateProvider(ctx context.Context, p domain.IdentityProvider) error
	DeleteProvider(ctx context.Context, id string) error
	RevokeSessionsByIssuer(ctx context.Context, issuer string, at time.Time) (int64, error)
	CreateSession(ctx context.Context, se domain.Session) error
	GetSession(ctx context.Context, id string) (domain.Session, error)
	RevokeSession(ctx context.Context, id string, at time.Time) error
	RevokeLearnerSessions(ctx context.Context, learnerID string, at time.Time) (int64, error)
	CreateLoginState(ctx context.Context, ls domain.LoginState) error
	TakeLoginState(ctx context.Context, id string) (domain.LoginState, error)
}

// Leaving: data requests (ONC-5) and the bulk removal paths, each applying a
// domain.Bulk (its guard set, target status and event) set-based: learners
// outside the guard set are skipped. EraseLearners applies the bulk's scrub
// (domain.Erasure) and refuses a bulk without one, or naming a record or
// field the store cannot map, before writing anything.
// GetDataRequest: NOT_FOUND.
type Leaving interface {
	CreateDataRequest(ctx context.Context, r domain.DataRequest) error
	GetDataRequest(ctx context.Context, id string, forUpdate bool) (domain.DataRequest, error)
	UpdateDataRequest(ctx context.Context, r domain.DataRequest) error
	ListDataRequests(ctx context.Context, f domain.DataRequestFilter) ([]domain.DataRequest, error)
	DataRequestsByLearner(ctx context.Context, learnerID string) ([]domain.DataRequest, error)
	ScheduleRemoval(ctx context.Context, ids []string, b domain.Bulk, reason domain.RemovalReason, due, at time.Time) ([]string, error)
	EraseLearners(ctx context.Context, ids []string, b domain.Bulk, at time.Time, dueBy *time.Time) ([]string, error)
	SweepCandidates(ctx context.Context, programmeID string, kind domain.SweepKind, b domain.Bulk, cutoff time.Time, afterID string, limit int) ([]string, error)
	RosterLeavers(ctx context.Context, organisationID string, b domain.Bulk, emails []string) ([]string, int, error)
	OrganisationLearnerIDs(ctx context.Context, organisationID string, b domain.Bulk) ([]string, error)
	WarnContractEnd(ctx context.Context, programmeID string, b domain.Bulk, end, at time.Time) (int, error)
}

// Feed: the LMS's change feed and desired state (invariant 3). ReadEvents:
// the events after an event ID (or after the purge horizon, when further),
// in order, gap-free under concurrent writers, and the horizon (the last
// event ID purged) read with them.
type Feed interface {
	AppendEvents(ctx context.Context, es []domain.Event) error
	ReadEvents(ctx context.Context, programmeID string, after int64, limit int) (events []domain.FeedEvent, horizon int64, err error)
	FeedHead(ctx context.Context, programmeID string, at time.Time) (domain.FeedPosition, error)
	PurgeEvents(ctx context.Context, before time.Time) (int64, error)
	// WatchFeed wakes the returned channel when events of the programme
	// commit after the call (LISTEN/NOTIFY on PostgreSQL); stop ends it.
	WatchFeed(programmeID string) (wake <-chan struct{}, stop func())
	// ListEnrolments: the desired state after a cursor, whole learners only
	// (at most limit rows, or one learner's rows when they are more); the
	// bool is set when no row follows.
	ListEnrolments(ctx context.Context, programmeID, afterLearner, afterCourse string, learnerDone bool, limit int) ([]domain.Enrolment, bool, error)
	BumpGroup(ctx context.Context, groupID string, b domain.Bulk, at time.Time) (int, error)
	RecordActivity(ctx context.Context, last map[string]time.Time, states []domain.Activity, at time.Time) error
	ActivityByLearner(ctx context.Context, learnerID string) ([]domain.Activity, error)
}

// Audit: append-only (the database refuses UPDATE, DELETE and TRUNCATE;
// only an erasure blanks a reason, GEN-2, CTL-12).
type Audit interface {
	AppendAudit(ctx context.Context, e domain.AuditEntry) error
	AppendAudits(ctx context.Context, es []domain.AuditEntry) error
	AuditEntries(ctx context.Context, programmeID string, targetID *string, afterID int64, limit int) ([]domain.AuditEntry, error)
	AuditAbout(ctx context.Context, targetID string) ([]domain.AuditEntry, error)
}
