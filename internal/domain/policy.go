package domain

import "time"

// PolicyType and PolicyAudience follow the Onclick policy list (ONC-1).
type PolicyType string
type PolicyAudience string
type PolicyVersionStatus string

const (
	PolicySite       PolicyType = "SITE"
	PolicyPrivacy    PolicyType = "PRIVACY"
	PolicyThirdParty PolicyType = "THIRD_PARTY"
	PolicyOther      PolicyType = "OTHER"

	AudienceAll           PolicyAudience = "ALL_USERS"
	AudienceAuthenticated PolicyAudience = "AUTHENTICATED"

	VersionDraft    PolicyVersionStatus = "DRAFT"
	VersionActive   PolicyVersionStatus = "ACTIVE"
	VersionArchived PolicyVersionStatus = "ARCHIVED"
)

func (t PolicyType) Valid() bool {
	return t == PolicySite || t == PolicyPrivacy || t == PolicyThirdParty || t == PolicyOther
}
func (a PolicyAudience) Valid() bool { return a == AudienceAll || a == AudienceAuthenticated }

type Policy struct {
	ID          string
	ProgrammeID string
	Name        string
	Type        PolicyType
	Audience    PolicyAudience
	Compulsory  bool
	CreatedAt   time.Time
}

// PolicyVersion is immutable once published; only its status moves
// (DRAFT -> ACTIVE -> ARCHIVED).
type PolicyVersion struct {
	ID          string
	PolicyID    string
	Label       string
	Summary     string
	Content     string
	Status      PolicyVersionStatus
	PublishedAt time.Time
	ActivatedAt *time.Time
}
