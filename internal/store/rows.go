package store

import (
	"encoding/json"
	"time"

	"github.com/rollcall-dev/rollcall/internal/domain"
)

// Row types mirror the tables; mappers turn them into domain values so gorm
// tags never leak out of this package.

type programmeRow struct {
	ID                   string `gorm:"primaryKey"`
	Name                 string
	Preset               string
	MinimumAge           int
	ErasureNeedsApproval bool
	WithdrawalDelayS     int64
	LeaverGraceS         int64
	AutomatedGraceS      int64
	InactivityLimitS     *int64
	ContractEndsAt       *time.Time
	ContractWarningS     int64
	RosterThreshold      float64
	LMSURL               string `gorm:"column:lms_url"`
	CreatedAt            time.Time
	UpdatedAt            time.Time
	ContractWarnedFor    *time.Time
}

func (programmeRow) TableName() string { return "programmes" }

func secs(d time.Duration) int64 { return int64(d / time.Second) }
func dur(s int64) time.Duration  { return time.Duration(s) * time.Second }

func toProgrammeRow(p domain.Programme) programmeRow {
	r := programmeRow{
		ID: p.ID, Name: p.Name, Preset: string(p.Preset),
		CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(),
	}
	setSettings(&r, p.Settings)
	return r
}

func setSettings(r *programmeRow, s domain.RuleSettings) {
	r.MinimumAge = s.MinimumAge
	r.ErasureNeedsApproval = s.ErasureNeedsApproval
	r.WithdrawalDelayS = secs(s.WithdrawalErasureDelay)
	r.LeaverGraceS = secs(s.LeaverGracePeriod)
	r.AutomatedGraceS = secs(s.AutomatedRemovalGrace)
	r.InactivityLimitS = nil
	if s.InactivityLimit != nil {
		v := secs(*s.InactivityLimit)
		r.InactivityLimitS = &v
	}
	r.ContractEndsAt = nil
	if s.ContractEndsAt != nil {
		t := s.ContractEndsAt.UTC()
		r.ContractEndsAt = &t
	}
	r.ContractWarningS = secs(s.ContractEndWarning)
	r.RosterThreshold = s.RosterRemovalThreshold
	r.LMSURL = s.LMSURL
}

func (r programmeRow) domain() domain.Programme {
	s := domain.RuleSettings{
		MinimumAge:             r.MinimumAge,
		ErasureNeedsApproval:   r.ErasureNeedsApproval,
		WithdrawalErasureDelay: dur(r.WithdrawalDelayS),
		LeaverGracePeriod:      dur(r.LeaverGraceS),
		AutomatedRemovalGrace:  dur(r.AutomatedGraceS),
		ContractEndWarning:     dur(r.ContractWarningS),
		RosterRemovalThreshold: r.RosterThreshold,
		LMSURL:                 r.LMSURL,
	}
	if r.InactivityLimitS != nil {
		d := dur(*r.InactivityLimitS)
		s.InactivityLimit = &d
	}
	if r.ContractEndsAt != nil {
		t := r.ContractEndsAt.UTC()
		s.ContractEndsAt = &t
	}
	return domain.Programme{ID: r.ID, Name: r.Name, Preset: domain.Preset(r.Preset), Settings: s,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), ContractWarnedFor: utcp(r.ContractWarnedFor)}
}

type governingBodyRow struct {
	ID             string `gorm:"primaryKey"`
	ProgrammeID    string
	Name           string
	Role           string
	OrganisationID *string
	CreatedAt      time.Time
}

func (governingBodyRow) TableName() string { return "governing_bodies" }

func (r governingBodyRow) domain() domain.GoverningBody {
	return domain.GoverningBody{ID: r.ID, ProgrammeID: r.ProgrammeID, Name: r.Name,
		Role: domain.GoverningBodyRole(r.Role), OrganisationID: r.OrganisationID, CreatedAt: r.CreatedAt.UTC()}
}

type organisationRow struct {
	ID          string `gorm:"primaryKey"`
	ProgrammeID string
	Name        string
	Kind        string
	Status      string
	CreatedAt   time.Time
	AdmittedAt  *time.Time
	RemovedAt   *time.Time
}

func (organisationRow) TableName() string { return "organisations" }

// The columns the list reads scan, in the order of the row's fields (the
// hot reads scan directly: gorm's reflective Find cost more than their
// statements, docs/performance.md).
const organisationColumns = "id, programme_id, name, kind, status, created_at, admitted_at, removed_at"

// organisationColumnsO is organisationColumns of the organisations o.
const organisationColumnsO = "o.id, o.programme_id, o.name, o.kind, o.status, o.created_at, o.admitted_at, o.removed_at"

func (r *organisationRow) fields() []any {
	return []any{&r.ID, &r.ProgrammeID, &r.Name, &r.Kind, &r.Status, &r.CreatedAt, &r.AdmittedAt, &r.RemovedAt}
}

func (r organisationRow) domain() domain.Organisation {
	return domain.Organisation{ID: r.ID, ProgrammeID: r.ProgrammeID, Name: r.Name,
		Kind: domain.OrganisationKind(r.Kind), Status: domain.OrganisationStatus(r.Status),
		CreatedAt: r.CreatedAt.UTC(), AdmittedAt: utcp(r.AdmittedAt), RemovedAt: utcp(r.RemovedAt)}
}

func utcp(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

type emailDomainRow struct {
	ID                string `gorm:"primaryKey"`
	OrganisationID    string
	Domain            string
	IncludeSubdomains bool
	AccessGroupID     *string
	CreatedAt         time.Time
}

func (emailDomainRow) TableName() string { return "email_domains" }

const emailDomainColumns = "id, organisation_id, domain, include_subdomains, access_group_id, created_at"

func (r *emailDomainRow) fields() []any {
	return []any{&r.ID, &r.OrganisationID, &r.Domain, &r.IncludeSubdomains, &r.AccessGroupID, &r.CreatedAt}
}

func (r emailDomainRow) domain() domain.DomainRule {
	return domain.DomainRule{ID: r.ID, OrganisationID: r.OrganisationID, Domain: r.Domain,
		IncludeSubdomains: r.IncludeSubdomains, AccessGroupID: r.AccessGroupID, CreatedAt: r.CreatedAt.UTC()}
}

type accessGroupRow struct {
	ID             string `gorm:"primaryKey"`
	OrganisationID string
	Name           string
	IsDefault      bool
	CreatedAt      time.Time
}

func (accessGroupRow) TableName() string { return "access_groups" }

const accessGroupColumns = "id, organisation_id, name, is_default, created_at"

func (r *accessGroupRow) fields() []any {
	return []any{&r.ID, &r.OrganisationID, &r.Name, &r.IsDefault, &r.CreatedAt}
}

func (r accessGroupRow) domain() domain.AccessGroup {
	return domain.AccessGroup{ID: r.ID, OrganisationID: r.OrganisationID, Name: r.Name,
		IsDefault: r.IsDefault, CreatedAt: r.CreatedAt.UTC()}
}

type courseRow struct {
	ID          string `gorm:"primaryKey"`
	ProgrammeID string
	LMSCourseID string `gorm:"column:lms_course_id"`
	Title       string
	CreatedAt   time.Time
}

func (courseRow) TableName() string { return "courses" }

func (r courseRow) domain() domain.Course {
	return domain.Course{ID: r.ID, ProgrammeID: r.ProgrammeID, LMSCourseID: r.LMSCourseID,
		Title: r.Title, CreatedAt: r.CreatedAt.UTC()}
}

type accessGroupCourseRow struct {
	AccessGroupID string `gorm:"primaryKey"`
	CourseID      string `gorm:"primaryKey"`
}

func (accessGroupCourseRow) TableName() string { return "access_group_courses" }

type proposalRow struct {
	ID             string `gorm:"primaryKey"`
	ProgrammeID    string
	Action         string
	OrganisationID *string
	Name           string
	Kind           string
	Domains        string
	Status         string
	Reason         string
	ProposedBy     string
	CreatedAt      time.Time
	DecidedAt      *time.Time
}

func (proposalRow) TableName() string { return "membership_proposals" }

func toProposalRow(p domain.MembershipProposal) proposalRow {
	ds := p.Domains
	if ds == nil {
		ds = []domain.ProposedDomain{}
	}
	b, _ := json.Marshal(ds)
	return proposalRow{ID: p.ID, ProgrammeID: p.ProgrammeID, Action: string(p.Action), OrganisationID: p.OrganisationID,
		Name: p.Name, Kind: string(p.Kind), Domains: string(b), Status: string(p.Status), Reason: p.Reason,
		ProposedBy: p.ProposedBy, CreatedAt: p.CreatedAt.UTC(), DecidedAt: utcp(p.DecidedAt)}
}

func (r proposalRow) domain() domain.MembershipProposal {
	var ds []domain.ProposedDomain
	_ = json.Unmarshal([]byte(r.Domains), &ds)
	return domain.MembershipProposal{ID: r.ID, ProgrammeID: r.ProgrammeID, Action: domain.ProposalAction(r.Action),
		OrganisationID: r.OrganisationID, Name: r.Name, Kind: domain.OrganisationKind(r.Kind), Domains: ds,
		Status: domain.ProposalStatus(r.Status), Reason: r.Reason, ProposedBy: r.ProposedBy,
		CreatedAt: r.CreatedAt.UTC(), DecidedAt: utcp(r.DecidedAt)}
}

type approvalRow struct {
	ProposalID      string `gorm:"primaryKey"`
	GoverningBodyID string `gorm:"primaryKey"`
	ActorID         string
	Note            string
	ApprovedAt      time.Time
}

func (approvalRow) TableName() string { return "membership_approvals" }

func (r approvalRow) domain() domain.MembershipApproval {
	return domain.MembershipApproval{ProposalID: r.ProposalID, GoverningBodyID: r.GoverningBodyID,
		ActorID: r.ActorID, Note: r.Note, ApprovedAt: r.ApprovedAt.UTC()}
}

type grantRow struct {
	ID              string `gorm:"primaryKey"`
	Issuer          string
	Subject         string
	Role            string
	ProgrammeID     string
	OrganisationID  *string
	GoverningBodyID *string
	CreatedAt       time.Time
	CreatedBy       string
}

func (grantRow) TableName() string { return "role_grants" }

const grantColumns = "id, issuer, subject, role, programme_id, organisation_id, governing_body_id, created_at, created_by"

func (r *grantRow) fields() []any {
	return []any{&r.ID, &r.Issuer, &r.Subject, &r.Role, &r.ProgrammeID, &r.OrganisationID, &r.GoverningBodyID, &r.CreatedAt, &r.CreatedBy}
}

func (r grantRow) domain() domain.RoleGrant {
	return domain.RoleGrant{ID: r.ID, Issuer: r.Issuer, Subject: r.Subject, Role: domain.Role(r.Role),
		ProgrammeID: r.ProgrammeID, OrganisationID: r.OrganisationID, GoverningBodyID: r.GoverningBodyID,
		CreatedAt: r.CreatedAt.UTC(), CreatedBy: r.CreatedBy}
}

type policyRow struct {
	ID          string `gorm:"primaryKey"`
	ProgrammeID string
	Name        string
	Type        string
	Audience    string
	Compulsory  bool
	CreatedAt   time.Time
}

func (policyRow) TableName() string { return "policies" }

func (r policyRow) domain() domain.Policy {
	return domain.Policy{ID: r.ID, ProgrammeID: r.ProgrammeID, Name: r.Name, Type: domain.PolicyType(r.Type),
		Audience: domain.PolicyAudience(r.Audience), Compulsory: r.Compulsory, CreatedAt: r.CreatedAt.UTC()}
}

type policyVersionRow struct {
	ID          string `gorm:"primaryKey"`
	PolicyID    string
	Label       string
	Summary     string
	Content     string
	Status      string
	PublishedAt time.Time
	ActivatedAt *time.Time
}

func (policyVersionRow) TableName() string { return "policy_versions" }

func (r policyVersionRow) domain() domain.PolicyVersion {
	return domain.PolicyVersion{ID: r.ID, PolicyID: r.PolicyID, Label: r.Label, Summary: r.Summary,
		Content: r.Content, Status: domain.PolicyVersionStatus(r.Status), PublishedAt: r.PublishedAt.UTC(),
		ActivatedAt: utcp(r.ActivatedAt)}
}

type auditRow struct {
	ID          int64 `gorm:"primaryKey;autoIncrement"`
	ProgrammeID *string
	ActorID     string
	Action      string
	TargetType  string
	TargetID    string
	Reason      string
	Details     string
	OccurredAt  time.Time
}

func (auditRow) TableName() string { return "audit_entries" }

func (r auditRow) domain() domain.AuditEntry {
	var d map[string]any
	_ = json.Unmarshal([]byte(r.Details), &d)
	return domain.AuditEntry{ID: r.ID, ProgrammeID: r.ProgrammeID, ActorID: r.ActorID, Action: r.Action,
		TargetType: r.TargetType, TargetID: r.TargetID, Reason: r.Reason, Details: d, OccurredAt: r.OccurredAt.UTC()}
}
