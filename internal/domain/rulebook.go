package domain

import (
	"fmt"
	"strings"
)

// Rule is one entry of the rulebook (docs/rules.md): what a privacy notice says and
// what the service does about it.
type Rule struct {
	ID         string
	Source     string // the notice file the rule is drawn from
	Notice     string // what the notice says
	Text       string // what the service does
	Parameters map[string]string
}

const (
	noticeCTL = "000_78f9146fca99c002.txt"
	noticeONC = "004_a5ec3faf898cba9a.txt"
)

var rulebook = []Rule{
	{ID: "CTL-1", Source: noticeCTL, Notice: "All decisions regarding membership are made jointly by Smarter Digital Service and Kent Connects", Text: "Admitting or removing a partner organisation takes effect only when an admin of every governing body has approved it; one admin cannot approve twice; a proposal can be rejected."},
	{ID: "CTL-2", Source: noticeCTL, Notice: "Kent Connects is formed of 12 district and borough councils, Medway Council, Kent County Council, Kent Fire & Rescue, Kent Police, 4 universities and FE colleges", Text: "Partner organisations, each with its work email domains, access groups and optionally its own OIDC identity provider."},
	{ID: "CTL-3", Source: noticeCTL, Notice: "we collect … Name; Work email address", Text: "A learner record holds a name and a work email, nothing more. Only the domains of admitted partner organisations are accepted."},
	{ID: "CTL-4", Source: noticeCTL, Notice: "Assign the appropriate courses to the individual; Group individuals into their access group", Text: "The email domain selects the organisation and its access group; the access group carries the courses the LMS must enrol."},
	{ID: "CTL-5", Source: noticeCTL, Notice: "We rely on Article 6(1)(a)", Text: "No learner becomes active without a recorded acceptance of the current compulsory policy versions."},
	{ID: "CTL-6", Source: noticeCTL, Notice: "kept for the entirety of the contract with the supplier which is 2 years", Text: "When the contract end date passes, every learner of the programme is erased, with warnings in advance."},
	{ID: "CTL-7", Source: noticeCTL, Notice: "or you no longer benefit from e-learning", Text: "A learner with no sign-in and no LMS activity for the inactivity limit is scheduled for removal."},
	{ID: "CTL-8", Source: noticeCTL, Notice: "or until you withdraw consent", Text: "Withdrawing consent ends access at once; the learner is erased after the withdrawal delay."},
	{ID: "CTL-9", Source: noticeCTL, Notice: "or if routine maintenance highlights that you are no longer part of the organisation", Text: "Leavers (roster reconciliation, admin decision, disabled account, organisation leaving) lose access at once and are erased after the leaver grace period."},
	{ID: "CTL-10", Source: noticeCTL, Notice: "We will not share your personal information.", Text: "Personal data is returned only to the learner, admins of their organisation, programme admins and the programme's LMS; cross-organisation reads are refused."},
	{ID: "CTL-11", Source: noticeCTL, Notice: "rights: to see what is held, correct mistakes, ask for deletion, have it transferred", Text: "Self-service: read all data as one document, correct the name, withdraw consent, ask for erasure."},
	{ID: "CTL-12", Source: noticeCTL, Notice: "We limit access … to those who have a genuine business need", Text: "Role-based access; every admin action is audited with actor, reason and time."},
	{ID: "ONC-1", Source: noticeONC, Notice: "you are required to accept", Text: "Versioned site and privacy policies; the current compulsory versions must be accepted before access, and a new version makes earlier acceptance stale."},
	{ID: "ONC-2", Source: noticeONC, Notice: "Children under 16 years of age are not permitted", Text: "Accepting the privacy policy requires an explicit confirmation of the programme's minimum age."},
	{ID: "ONC-3", Source: noticeONC, Notice: "activity will also be stored and linked to your profile", Text: "The LMS reports learning activity back; it is personal data and is erased with the learner."},
	{ID: "ONC-4", Source: noticeONC, Notice: "your data is uploaded and amended by yourself and/or West Sussex County Council", Text: "Organisation admins create and correct learners of their own organisation, singly or in bulk."},
	{ID: "ONC-5", Source: noticeONC, Notice: "Onclick will not remove or amend any data without the authorisation from West Sussex County Council", Text: "Erasure waits as a data request until an admin of the learner's organisation approves it; access still ends at once."},
	{ID: "ONC-6", Source: noticeONC, Notice: "stored for as long as you continue to be a registered user", Text: "No inactivity limit and no contract end by default."},
	{ID: "ONC-7", Source: noticeONC, Notice: "shared with West Sussex County Council only; reports for monitoring", Text: "Organisation-level reports hold aggregates, not names, for the organisation's admins."},
	{ID: "ONC-8", Source: noticeONC, Notice: "You will then no longer be able to access the services provided if your consent is withdrawn.", Text: "Withdrawal ends access at once: sessions revoked, the LMS told to suspend the account."},
	{ID: "ONC-9", Source: noticeONC, Notice: "You may make corrections to your basic profile information", Text: "Learners edit their own name only; the email is changed only by an admin."},
	{ID: "ONC-10", Source: noticeONC, Notice: "You may request a record of all of the personal data relating to you", Text: "The learner's full data export as one JSON document."},
	{ID: "GEN-1", Source: "002_9987cf8c696f7420.txt", Notice: "We will state the retention schedule clearly when you apply", Text: "Every learner can see until when and why their data is kept."},
	{ID: "GEN-2", Source: "003_a0aaf65563565335.txt", Notice: "The withdrawal of consent shall not affect the lawfulness of processing based on consent before its withdrawal", Text: "Acceptance and withdrawal history is kept as a pseudonymous audit trail after erasure."},
	{ID: "GEN-3", Source: "003_a0aaf65563565335.txt", Notice: "included (in aggregate, non-identified form) in reports already produced", Text: "Aggregate report figures are not changed by an erasure."},
	{ID: "GEN-4", Source: noticeONC, Notice: "given you 21 days to request a reconsideration", Text: "A rule-decided removal waits the automated-removal grace period, during which an organisation admin can reverse it."},
	{ID: "GEN-5", Source: "003_a0aaf65563565335.txt", Notice: "register-inactive accounts deleted after two years", Text: "Covered by the inactivity limit with a per-programme value."},
}

// Reference is where the rule is written in the repository: its anchor in
// docs/rules.md (the project's copy of the rulebook).
func (r Rule) Reference() string { return "docs/rules.md#" + strings.ToLower(r.ID) }

// AllRules lists every rulebook entry, whatever the programme.
func AllRules() []Rule { return append([]Rule(nil), rulebook...) }

// RulesInForce lists the rulebook entries that govern a programme, with the
// programme's current parameter values. The preset decides the notice family;
// settings decide whether optional rules (inactivity, contract end, approval,
// minimum age) are in force.
func RulesInForce(p Preset, s RuleSettings) []Rule {
	prefix := "CTL-"
	if p == PresetOnclick {
		prefix = "ONC-"
	}
	var out []Rule
	for _, r := range rulebook {
		if !strings.HasPrefix(r.ID, prefix) && !strings.HasPrefix(r.ID, "GEN-") {
			continue
		}
		r.Parameters = map[string]string{}
		switch r.ID {
		case "CTL-6":
			if s.ContractEndsAt == nil {
				continue
			}
			r.Parameters["contractEndsAt"] = s.ContractEndsAt.UTC().Format("2006-01-02T15:04:05Z")
			r.Parameters["contractEndWarning"] = FormatDuration(s.ContractEndWarning)
		case "CTL-7", "GEN-5":
			if s.InactivityLimit == nil {
				continue
			}
			r.Parameters["inactivityLimit"] = FormatDuration(*s.InactivityLimit)
		case "CTL-8":
			r.Parameters["withdrawalErasureDelay"] = FormatDuration(s.WithdrawalErasureDelay)
		case "CTL-9":
			r.Parameters["leaverGracePeriod"] = FormatDuration(s.LeaverGracePeriod)
		case "GEN-4":
			r.Parameters["automatedRemovalGrace"] = FormatDuration(s.AutomatedRemovalGrace)
			r.Parameters["rosterRemovalThreshold"] = fmt.Sprintf("%g", s.RosterRemovalThreshold)
		case "ONC-2":
			if s.MinimumAge == 0 {
				continue
			}
			r.Parameters["minimumAge"] = fmt.Sprint(s.MinimumAge)
		case "ONC-5":
			if !s.ErasureNeedsApproval {
				continue
			}
		}
		out = append(out, r)
	}
	// Settings can switch on rules another preset carries (a CTL programme may
	// require a minimum age or controller approval).
	if p != PresetOnclick {
		for _, id := range []string{"ONC-2", "ONC-5"} {
			on := (id == "ONC-2" && s.MinimumAge > 0) || (id == "ONC-5" && s.ErasureNeedsApproval)
			if on {
				r := RuleByID(id)
				r.Parameters = map[string]string{}
				if id == "ONC-2" {
					r.Parameters["minimumAge"] = fmt.Sprint(s.MinimumAge)
				}
				out = append(out, r)
			}
		}
	} else {
		if s.InactivityLimit != nil {
			r := RuleByID("CTL-7")
			r.Parameters = map[string]string{"inactivityLimit": FormatDuration(*s.InactivityLimit)}
			out = append(out, r)
		}
		if s.ContractEndsAt != nil {
			r := RuleByID("CTL-6")
			r.Parameters = map[string]string{"contractEndsAt": s.ContractEndsAt.UTC().Format("2006-01-02T15:04:05Z")}
			out = append(out, r)
		}
	}
	return out
}

// RuleByID returns the rulebook entry with that ID (zero Rule if unknown).
func RuleByID(id string) Rule {
	for _, r := range rulebook {
		if r.ID == id {
			return r
		}
	}
	return Rule{}
}
