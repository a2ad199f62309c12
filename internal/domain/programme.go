// Package domain holds Rollcall's entities, value types and rules. It has no
// storage or transport dependencies, so the rules can be read and tested alone.
package domain

import (
	"net"
	"net/url"
	"time"
)

// Preset names a rulebook from docs/rules.md that a programme is created from.
type Preset string

const (
	PresetConnectToLearn Preset = "CONNECT_TO_LEARN"
	PresetOnclick        Preset = "ONCLICK"
)

func (p Preset) Valid() bool { return p == PresetConnectToLearn || p == PresetOnclick }

const day = 24 * time.Hour

// RuleSettings are the per-programme parameters of the rulebook. Every value
// comes from a preset and can be changed by a programme admin (audited).
type RuleSettings struct {
	// ONC-2: learners must confirm they are at least this old; 0 means no minimum.
	MinimumAge int
	// ONC-5: erasure waits for an admin of the learner's organisation to approve.
	ErasureNeedsApproval bool
	// CTL-8: how long after withdrawal the learner is erased (0: at once).
	WithdrawalErasureDelay time.Duration
	// CTL-9: how long a leaver's record waits before erasure.
	LeaverGracePeriod time.Duration
	// GEN-4: how long a rule-decided removal waits for reconsideration.
	AutomatedRemovalGrace time.Duration
	// CTL-7 / GEN-5: no sign-in and no LMS activity for this long schedules removal; nil: no limit (ONC-6).
	InactivityLimit *time.Duration
	// CTL-6: when the supplier contract ends every learner is erased; nil: no end (ONC-6).
	ContractEndsAt *time.Time
	// CTL-6: how long before the contract end warnings appear in the feed and retention view.
	ContractEndWarning time.Duration
	// GEN-4 safety valve: reconciliation refuses to remove more than this share of an organisation.
	RosterRemovalThreshold float64
	// LMSURL is where learners go once they have access (the programme's
	// LMS); "" when the programme has not said.
	LMSURL string
}

// PresetSettings returns the rule settings a new programme starts with.
// CTL-6's "2 years" is counted from the programme's creation time.
func PresetSettings(p Preset, createdAt time.Time) RuleSettings {
	switch p {
	case PresetConnectToLearn:
		inactivity := 365 * day
		end := createdAt.AddDate(2, 0, 0).UTC()
		return RuleSettings{
			MinimumAge:             0,
			ErasureNeedsApproval:   false,
			WithdrawalErasureDelay: 0,
			LeaverGracePeriod:      7 * day,
			AutomatedRemovalGrace:  21 * day,
			InactivityLimit:        &inactivity,
			ContractEndsAt:         &end,
			ContractEndWarning:     90 * day,
			RosterRemovalThreshold: 0.10,
		}
	default: // ONCLICK
		return RuleSettings{
			MinimumAge:             16,
			ErasureNeedsApproval:   true,
			WithdrawalErasureDelay: 0,
			LeaverGracePeriod:      7 * day,
			AutomatedRemovalGrace:  21 * day,
			InactivityLimit:        nil,
			ContractEndsAt:         nil,
			ContractEndWarning:     90 * day,
			RosterRemovalThreshold: 0.10,
		}
	}
}

// Validate checks settings an admin supplies; it returns the field at fault.
func (s RuleSettings) Validate() (field, msg string, ok bool) {
	switch {
	case s.MinimumAge < 0 || s.MinimumAge > 120:
		return "minimumAge", "must be between 0 and 120", false
	case s.WithdrawalErasureDelay < 0 || s.WithdrawalErasureDelay > 3650*day:
		return "withdrawalErasureDelay", "must be between zero and ten years", false
	case s.LeaverGracePeriod < 0 || s.LeaverGracePeriod > 3650*day:
		return "leaverGracePeriod", "must be between zero and ten years", false
	case s.AutomatedRemovalGrace < 0 || s.AutomatedRemovalGrace > 3650*day:
		return "automatedRemovalGrace", "must be between zero and ten years", false
	case s.InactivityLimit != nil && (*s.InactivityLimit < day || *s.InactivityLimit > 3650*day):
		return "inactivityLimit", "must be between one day and ten years", false
	case s.ContractEndWarning < 0 || s.ContractEndWarning > 3650*day:
		return "contractEndWarning", "must be between zero and ten years", false
	case s.RosterRemovalThreshold <= 0 || s.RosterRemovalThreshold > 1:
		return "rosterRemovalThreshold", "must be a share above 0 and at most 1", false
	case s.LMSURL != "" && !validLMSURL(s.LMSURL):
		return "lmsUrl", "must be an absolute https:// address (http:// only on this machine), without user name or password, of at most 500 characters", false
	}
	return "", "", true
}

// GoverningBodyRole is what a governing body is to the programme (CTL-1).
type GoverningBodyRole string

const (
	BodyOwner         GoverningBodyRole = "OWNER"
	BodyAdministrator GoverningBodyRole = "ADMINISTRATOR"
	BodyController    GoverningBodyRole = "CONTROLLER"
)

func (r GoverningBodyRole) Valid() bool {
	return r == BodyOwner || r == BodyAdministrator || r == BodyController
}

type Programme struct {
	ID        string
	Name      string
	Preset    Preset
	Settings  RuleSettings
	CreatedAt time.Time
	UpdatedAt time.Time
	// ContractWarnedFor is the contract end learners were last warned about (CTL-6).
	ContractWarnedFor *time.Time
}

type GoverningBody struct {
	ID             string
	ProgrammeID    string
	Name           string
	Role           GoverningBodyRole
	OrganisationID *string
	CreatedAt      time.Time
}

// OrganisationKind classifies partners (CTL-2).
type OrganisationKind string

const (
	KindCountyCouncil   OrganisationKind = "COUNTY_COUNCIL"
	KindUnitaryCouncil  OrganisationKind = "UNITARY_COUNCIL"
	KindDistrictCouncil OrganisationKind = "DISTRICT_COUNCIL"
	KindFireAndRescue   OrganisationKind = "FIRE_AND_RESCUE"
	KindPolice          OrganisationKind = "POLICE"
	KindUniversity      OrganisationKind = "UNIVERSITY"
	KindFeCollege       OrganisationKind = "FE_COLLEGE"
	KindOther           OrganisationKind = "OTHER"
)

var OrganisationKinds = []OrganisationKind{
	KindCountyCouncil, KindUnitaryCouncil, KindDistrictCouncil, KindFireAndRescue,
	KindPolice, KindUniversity, KindFeCollege, KindOther,
}

func (k OrganisationKind) Valid() bool {
	for _, v := range OrganisationKinds {
		if v == k {
			return true
		}
	}
	return false
}

// OrganisationStatus follows membership decisions (CTL-1).
type OrganisationStatus string

const (
	OrgProposed OrganisationStatus = "PROPOSED"
	OrgAdmitted OrganisationStatus = "ADMITTED"
	OrgRemoved  OrganisationStatus = "REMOVED"
)

type Organisation struct {
	ID          string
	ProgrammeID string
	Name        string
	Kind        OrganisationKind
	Status      OrganisationStatus
	CreatedAt   time.Time
	AdmittedAt  *time.Time
	RemovedAt   *time.Time
}

type DomainRule struct {
	ID                string
	OrganisationID    string
	Domain            string
	IncludeSubdomains bool
	AccessGroupID     *string // CTL-4: a domain rule may select a non-default group
	CreatedAt         time.Time
}

type AccessGroup struct {
	ID             string
	OrganisationID string
	Name           string
	IsDefault      bool
	CreatedAt      time.Time
}

type Course struct {
	ID          string
	ProgrammeID string
	LMSCourseID string
	Title       string
	CreatedAt   time.Time
}

// validLMSURL: learners follow this link from their home page, so it must be
// a plain web address: https (http on a loopback host, for local LMSs), a
// host, no credentials, no fragment tricks.
func validLMSURL(raw string) bool {
	if len(raw) > 500 {
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Opaque != "" {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		ip := net.ParseIP(u.Hostname())
		return u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback())
	}
	return false
}
