package lifecycle

import (
	"context"
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
)

// Store is what the use cases need from persistence. store.Store implements
// it; a transaction travels in the context InTx passes to fn.
type Store interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error

	CreateProgramme(ctx context.Context, p domain.Programme, bodies []domain.GoverningBody) error
	GetProgramme(ctx context.Context, id string) (domain.Programme, error)
	ProgrammeByName(ctx context.Context, name string) (domain.Programme, error)
	ListProgrammes(ctx context.Context, ids []string) ([]domain.Programme, error)
	UpdateProgrammeSettings(ctx context.Context, id string, s domain.RuleSettings, at time.Time) error
	GoverningBodies(ctx context.Context, programmeID string) ([]domain.GoverningBody, error)
	GoverningBodiesByProgrammes(ctx context.Context, ids []string) ([]domain.GoverningBody, error)
	SetGoverningBodyOrganisation(ctx context.Context, bodyID, orgID string) error

	CreateOrganisation(ctx context.Context, o domain.Organisation) error
	GetOrganisation(ctx context.Context, id string) (domain.Organisation, error)
	OrganisationByName(ctx context.Context, programmeID, name string) (domain.Organisation, error)
	OrganisationsByProgrammes(ctx context.Context, programmeIDs []string, only []string) ([]domain.Organisation, error)
	SetOrganisationStatus(ctx context.Context, id string, st domain.OrganisationStatus, at time.Time) error

	CreateProposal(ctx context.Context, p domain.MembershipProposal) error
	GetProposal(ctx context.Context, id string, forUpdate bool) (domain.MembershipProposal, error)
	ListProposals(ctx context.Context, programmeID string, status *domain.ProposalStatus) ([]domain.MembershipProposal, error)
	UpdateProposal(ctx context.Context, p domain.MembershipProposal) error
	AddApproval(ctx context.Context, a domain.MembershipApproval) error
	ApprovalsByProposals(ctx context.Context, ids []string) ([]domain.MembershipApproval, error)

	CreateEmailDomain(ctx context.Context, d domain.DomainRule) error
	GetEmailDomain(ctx context.Context, id string) (domain.DomainRule, error)
	DeleteEmailDomain(ctx context.Context, id string) error
	DomainsByOrganisations(ctx context.Context, orgIDs []string) ([]domain.DomainRule, error)
	DomainsRelatedTo(ctx context.Context, d string) ([]domain.DomainRule, error)
	DomainsCovering(ctx context.Context, host string) ([]domain.DomainRule, error)

	CreateAccessGroup(ctx context.Context, g domain.AccessGroup) error
	GetAccessGroup(ctx context.Context, id string) (domain.AccessGroup, error)
	AccessGroupsByOrganisations(ctx context.Context, orgIDs []string) ([]domain.AccessGroup, error)
	SetAccessGroupCourses(ctx context.Context, groupID string, courseIDs []string) error
	CoursesByAccessGroups(ctx context.Context, groupIDs []string) (map[string][]domain.Course, error)
	CreateCourse(ctx context.Context, c domain.Course) error
	CoursesByIDs(ctx context.Context, ids []string) ([]domain.Course, error)
	CoursesByProgrammes(ctx context.Context, ids []string) ([]domain.Course, error)

	CreatePolicy(ctx context.Context, p domain.Policy) error
	GetPolicy(ctx context.Context, id string) (domain.Policy, error)
	PoliciesByProgrammes(ctx context.Context, ids []string) ([]domain.Policy, error)
	CreatePolicyVersion(ctx context.Context, v domain.PolicyVersion) error
	ActivatePolicyVersion(ctx context.Context, policyID, versionID string, at time.Time) error
	PolicyVersionsByPolicies(ctx context.Context, ids []string) ([]domain.PolicyVersion, error)

	CreateGrant(ctx context.Context, g domain.RoleGrant) error
	GetGrant(ctx context.Context, id string) (domain.RoleGrant, error)
	DeleteGrant(ctx context.Context, id string) error
	GrantsForIdentity(ctx context.Context, issuer, subject string) ([]domain.RoleGrant, error)
	GrantsByProgramme(ctx context.Context, programmeID string) ([]domain.RoleGrant, error)

	OrganisationsByIDs(ctx context.Context, ids []string) ([]domain.Organisation, error)
	AccessGroupsByIDs(ctx context.Context, ids []string) ([]domain.AccessGroup, error)
	PolicyVersionsByIDs(ctx context.Context, ids []string) ([]domain.PolicyVersion, error)
	CreateLearner(ctx context.Context, l domain.Learner) error
	GetLearner(ctx context.Context, id string, forUpdate bool) (domain.Learner, error)
	LearnerByEmail(ctx context.Context, email string) (domain.Learner, error)
	LearnerByIdentity(ctx context.Context, issuer, subject string) (domain.Learner, error)
	UpdateLearner(ctx context.Context, l domain.Learner) error
	TouchSignIn(ctx context.Context, learnerID string, at time.Time) error
	LearnersByIDs(ctx context.Context, ids []string) ([]domain.Learner, error)
	ListLearners(ctx context.Context, f domain.LearnerFilter) ([]domain.Learner, error)
	CreateIdentity(ctx context.Context, li domain.LearnerIdentity) error
	IdentitiesByLearner(ctx context.Context, learnerID string) ([]domain.LearnerIdentity, error)
	AppendEvents(ctx context.Context, es []domain.Event) error
	EventsByLearner(ctx context.Context, learnerID string) ([]domain.Event, error)
	SaveAcceptance(ctx context.Context, a domain.PolicyAcceptance) error
	AcceptancesByLearners(ctx context.Context, ids []string) ([]domain.PolicyAcceptance, error)
	RevokeStaleAcceptance(ctx context.Context, programmeID string, b domain.Bulk, at time.Time) (int64, error)
	ExistingEmails(ctx context.Context, emails []string) (map[string]bool, error)
	InsertLearners(ctx context.Context, ls []domain.Learner) (map[string]bool, error)
	AppendAudits(ctx context.Context, es []domain.AuditEntry) error

	CreateProvider(ctx context.Context, p domain.IdentityProvider) error
	GetProvider(ctx context.Context, id string) (domain.IdentityProvider, error)
	ProviderByIssuer(ctx context.Context, issuer string) (domain.IdentityProvider, error)
	ProvidersFor(ctx context.Context, programmeID, organisationID string) ([]domain.IdentityProvider, error)
	ProvidersByProgramme(ctx context.Context, programmeID string) ([]domain.IdentityProvider, error)
	CreateSession(ctx context.Context, se domain.Session) error
	GetSession(ctx context.Context, id string) (domain.Session, error)
	RevokeSession(ctx context.Context, id string, at time.Time) error
	RevokeLearnerSessions(ctx context.Context, learnerID string, at time.Time) (int64, error)
	CreateLoginState(ctx context.Context, ls domain.LoginState) error
	TakeLoginState(ctx context.Context, id string) (domain.LoginState, error)

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
	OrganisationCounts(ctx context.Context, orgID string) (byStatus, byGroup, byVersion, byActivity []domain.Count, err error)
	ActivityByLearner(ctx context.Context, learnerID string) ([]domain.Activity, error)
	AuditAbout(ctx context.Context, targetID string) ([]domain.AuditEntry, error)
	ErasedSince(ctx context.Context, issuer, subject string) (*time.Time, error)
	PurgeErasedIdentities(ctx context.Context, before time.Time) error
	WarnContractEnd(ctx context.Context, programmeID string, b domain.Bulk, end, at time.Time) (int, error)
	TryLock(ctx context.Context, key int64) (unlock func(), ok bool, err error)

	ReadEvents(ctx context.Context, programmeID string, pos domain.FeedPosition, limit int) ([]domain.FeedEvent, error)
	FeedHead(ctx context.Context, programmeID string, at time.Time) (domain.FeedPosition, error)
	PurgeEvents(ctx context.Context, before time.Time) (int64, error)
	FeedHorizon(ctx context.Context, programmeID string) (int64, error)
	ListEnrolments(ctx context.Context, programmeID, afterLearner, afterCourse string, learnerDone bool, limit int) ([]domain.Enrolment, bool, string, error)
	BumpGroup(ctx context.Context, groupID string, b domain.Bulk, at time.Time) (int, error)
	RecordActivity(ctx context.Context, last map[string]time.Time, states []domain.Activity, at time.Time) error
	CreateAPIKey(ctx context.Context, k domain.APIKey) error
	APIKeyByHash(ctx context.Context, hash string) (domain.APIKey, error)
	GetAPIKey(ctx context.Context, id string) (domain.APIKey, error)
	APIKeysByProgramme(ctx context.Context, programmeID string) ([]domain.APIKey, error)
	RevokeAPIKey(ctx context.Context, id string, at time.Time) error
	DeleteGrantsOf(ctx context.Context, issuer, subject string) error

	AppendAudit(ctx context.Context, e domain.AuditEntry) error
	AuditEntries(ctx context.Context, programmeID string, targetID *string, afterID int64, limit int) ([]domain.AuditEntry, error)
}
