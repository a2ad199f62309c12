package domain

import (
	"fmt"
	"slices"
	"time"
)

// The learner state machine. Every change of a learner's status or version
// is one of the transitions below: each checks the state it may leave, bumps
// the version exactly once, and returns the one event the LMS is told. An
// operation that tells the LMS two things (an admin edit that also changes
// the group, a reinstatement that also restores access) is two transitions
// in a row, so every event of one learner carries its own, strictly
// increasing learnerVersion (invariant 3). Nothing outside this file assigns
// Status or Version; bulk paths (sweep, roster, policy activation, course
// changes) take a Bulk from here and apply it set-based.

// Refusal is a transition the learner's state does not allow: a code a
// client can act on, the rule that decides it and a finer reason.
type Refusal struct {
	Code    string // CONFLICT or FORBIDDEN (apperr codes)
	Reason  string // e.g. STATUS_ERASED
	Rule    string // RULES.md ID, "" when none
	Message string
}

func (r *Refusal) Error() string { return r.Message }

func conflict(reason, rule, format string, args ...any) *Refusal {
	return &Refusal{Code: "CONFLICT", Reason: reason, Rule: rule, Message: fmt.Sprintf(format, args...)}
}

func forbidden(reason, rule, format string, args ...any) *Refusal {
	return &Refusal{Code: "FORBIDDEN", Reason: reason, Rule: rule, Message: fmt.Sprintf(format, args...)}
}

// Origin is how a learner record came to exist.
type Origin string

const (
	OriginSignIn    Origin = "SIGN_IN"   // provisioned by the person's own first sign-in
	OriginAdmin     Origin = "ADMIN"     // createLearner
	OriginImport    Origin = "IMPORT"    // importLearners
	OriginDirectory Origin = "DIRECTORY" // a partner's directory (SCIM)
)

// Transition names the learner transitions (the table in transitions_test.go).
type Transition string

const (
	TActivate       Transition = "activate"
	TRevokeAccess   Transition = "revoke access"
	TSchedule       Transition = "schedule removal"
	TCancelRemoval  Transition = "cancel removal"
	TReinstate      Transition = "reinstate"
	TWithdraw       Transition = "withdraw"
	TRequestErasure Transition = "request erasure"
	TErase          Transition = "erase"
	TCorrect        Transition = "correct the name"
	TChangeGroup    Transition = "change group"
	TMove           Transition = "move organisation"
	TLinkIdentity   Transition = "link an identity"
	TContractEnd    Transition = "contract end"
)

// Bulk is a transition applied set-based: the statuses (and, for scheduled
// learners, the removal reasons) it may leave, what it sets, and the event it
// writes. store turns it into one UPDATE ... WHERE status IN (From) per batch.
type Bulk struct {
	From          []LearnerStatus
	FromScheduled []RemovalReason // REMOVAL_SCHEDULED learners with one of these reasons
	To            LearnerStatus   // "" leaves the status alone
	Event         EventType
	// Scrub is what an erasing transition removes (Erasure); nil for the
	// others.
	Scrub *Scrub
}

// Allows reports whether the bulk transition may leave l's state.
func (b Bulk) Allows(l Learner) bool {
	if slices.Contains(b.From, l.Status) {
		return true
	}
	return l.Status == StatusRemovalScheduled && l.RemovalReason != nil && slices.Contains(b.FromScheduled, *l.RemovalReason)
}

// Guard sets of the bulk paths.
var (
	// NotErased: every learner that still has data (erasure, contract end,
	// course changes of a group, the contract-end warning).
	NotErased = []LearnerStatus{StatusPendingAcceptance, StatusActive, StatusRemovalScheduled, StatusWithdrawn}
	// StillMember: learners who have or await access (roster, organisation removal).
	StillMember = []LearnerStatus{StatusPendingAcceptance, StatusActive}
	// Leaving: learners whose removal has a due date (the sweep's due erasures).
	Leaving = []LearnerStatus{StatusRemovalScheduled, StatusWithdrawn}
	// HasAccess: the desired state the LMS enrols.
	HasAccess = []LearnerStatus{StatusActive}
)

// BulkSchedule moves members to REMOVAL_SCHEDULED for reason. A removal for
// inactivity gives way to any other reason (a leaver who was also inactive is
// a leaver).
func BulkSchedule(reason RemovalReason) Bulk {
	b := Bulk{From: StillMember, To: StatusRemovalScheduled, Event: EventRemovalScheduled}
	if reason != RemovalInactivity {
		b.FromScheduled = []RemovalReason{RemovalInactivity}
	}
	return b
}

// BulkRevokeAccess: a new current version of a compulsory policy makes every
// active learner's acceptance stale (ONC-1).
var BulkRevokeAccess = Bulk{From: HasAccess, To: StatusPendingAcceptance, Event: EventAccessRevoked}

// BulkErase erases every learner not yet erased (invariant 2).
var BulkErase = Bulk{From: NotErased, To: StatusErased, Event: EventErased, Scrub: &Erasure}

// BulkEraseDue erases learners whose removal is due (the sweep).
var BulkEraseDue = Bulk{From: Leaving, To: StatusErased, Event: EventErased, Scrub: &Erasure}

// BulkCoursesChanged tells the LMS a group's courses changed.
var BulkCoursesChanged = Bulk{From: NotErased, Event: EventCoursesChanged}

// BulkContractEnding warns every learner of the contract end (CTL-6).
var BulkContractEnding = Bulk{From: NotErased, Event: EventContractEnding}

// bump gives l its next version and returns the event for it.
func (l *Learner) bump(t EventType, now time.Time) []Event {
	l.Version++
	l.UpdatedAt = now
	return []Event{{ProgrammeID: l.ProgrammeID, LearnerID: l.ID, Type: t, LearnerVersion: l.Version, OccurredAt: now}}
}

func (l *Learner) notErased() error {
	if l.Status == StatusErased {
		return conflict("STATUS_ERASED", "", "the learner has been erased")
	}
	return nil
}

// NewLearner is a learner record's first version and its LEARNER_PROVISIONED
// event. CTL-6: after the contract end nobody is provisioned.
func NewLearner(l Learner, origin Origin, contractEnded bool, now time.Time) (Learner, []Event, error) {
	if contractEnded {
		return Learner{}, nil, forbidden("CONTRACT_ENDED", "CTL-6", "the programme's contract has ended; no learner can join it")
	}
	l.Status, l.Origin, l.Version = StatusPendingAcceptance, origin, 0
	l.CreatedAt = now
	return l, l.bump(EventProvisioned, now), nil
}

// Activate gives a learner who accepted every current compulsory policy
// version access (CTL-5). The first activation is LEARNER_ACTIVATED and is
// recorded on the learner; later ones are ACCESS_GRANTED. CTL-6: no
// activation after the contract end.
func (l *Learner) Activate(now time.Time) ([]Event, error) {
	if l.ContractEnded {
		return nil, forbidden("CONTRACT_ENDED", "CTL-6", "the programme's contract has ended")
	}
	if l.Status != StatusPendingAcceptance {
		return nil, conflict("STATUS_"+string(l.Status), "CTL-5", "only a learner awaiting acceptance can be activated (status %s)", l.Status)
	}
	l.Status = StatusActive
	if l.FirstActivatedAt == nil {
		l.FirstActivatedAt = &now
		return l.bump(EventActivated, now), nil
	}
	return l.bump(EventAccessGranted, now), nil
}

// RevokeAccess sends an active learner back to acceptance (ONC-1: a new
// version of a compulsory policy).
func (l *Learner) RevokeAccess(now time.Time) ([]Event, error) {
	if l.Status != StatusActive {
		return nil, conflict("STATUS_"+string(l.Status), "ONC-1", "only an active learner's access can be revoked (status %s)", l.Status)
	}
	l.Status = StatusPendingAcceptance
	return l.bump(EventAccessRevoked, now), nil
}

// ScheduleRemoval ends access and schedules erasure at due (nil: when the
// controller approves, ONC-5). Allowed from the statuses BulkSchedule allows.
func (l *Learner) ScheduleRemoval(reason RemovalReason, due *time.Time, now time.Time) ([]Event, error) {
	if !BulkSchedule(reason).Allows(*l) {
		return nil, conflict("STATUS_"+string(l.Status), removalRule(&reason), "the learner's status is %s", l.Status)
	}
	l.Status, l.RemovalReason, l.RemovalDueAt = StatusRemovalScheduled, &reason, due
	return l.bump(EventRemovalScheduled, now), nil
}

// RequestErasure: the learner asks to be erased (CTL-11). Access ends at
// once (ACCESS_REVOKED); a removal for inactivity gives way to it, any other
// scheduled removal stands.
func (l *Learner) RequestErasure(due *time.Time, now time.Time) ([]Event, error) {
	if !BulkSchedule(RemovalErasureRequested).Allows(*l) {
		return nil, conflict("STATUS_"+string(l.Status), "CTL-11", "the learner's status is %s", l.Status)
	}
	r := RemovalErasureRequested
	l.Status, l.RemovalReason, l.RemovalDueAt = StatusRemovalScheduled, &r, due
	return l.bump(EventAccessRevoked, now), nil
}

// CancelRemoval cancels a removal scheduled for reason (a sign-in cancels one
// for inactivity, CTL-7; a rejected request one for erasure). The learner
// awaits acceptance again; Activate restores access when nothing is pending.
func (l *Learner) CancelRemoval(reason RemovalReason, now time.Time) ([]Event, error) {
	if l.Status != StatusRemovalScheduled || l.RemovalReason == nil || *l.RemovalReason != reason {
		return nil, conflict("NOT_SCHEDULED_FOR_"+string(reason), "GEN-4", "no removal for %s is scheduled", reason)
	}
	l.Status, l.RemovalReason, l.RemovalDueAt = StatusPendingAcceptance, nil, nil
	return l.bump(EventRemovalCancelled, now), nil
}

// Reinstatable are the removals an organisation admin may reverse (GEN-4):
// those a rule or an admin decided, not the learner's own request, the
// contract end or the organisation leaving.
var Reinstatable = []RemovalReason{RemovalLeaver, RemovalRoster, RemovalInactivity}

// Reinstate reverses a scheduled removal within its grace period (GEN-4).
func (l *Learner) Reinstate(now time.Time) ([]Event, error) {
	if l.Status != StatusRemovalScheduled || l.RemovalReason == nil || !slices.Contains(Reinstatable, *l.RemovalReason) {
		return nil, conflict("NOT_REINSTATABLE", "GEN-4", "only a scheduled removal can be reversed (status %s)", l.Status)
	}
	if l.RemovalDueAt != nil && !now.Before(*l.RemovalDueAt) {
		return nil, conflict("GRACE_ENDED", "GEN-4", "the grace period has ended")
	}
	return l.CancelRemoval(*l.RemovalReason, now)
}

// Withdraw records a withdrawal of consent (CTL-8, ONC-8): access ends at
// once; erasure at due (nil: when the controller approves, ONC-5).
func (l *Learner) Withdraw(due *time.Time, now time.Time) ([]Event, error) {
	switch l.Status {
	case StatusWithdrawn:
		return nil, conflict("STATUS_WITHDRAWN", "CTL-8", "consent has already been withdrawn")
	case StatusErased:
		return nil, l.notErased()
	}
	r := RemovalConsentWithdrawn
	l.Status, l.RemovalReason, l.RemovalDueAt = StatusWithdrawn, &r, due
	return l.bump(EventAccessRevoked, now), nil
}

// Erase scrubs the learner to a tombstone (invariant 2): no name, no email,
// no activity dates. The row keeps its ID, organisation, dates and reason.
func (l *Learner) Erase(now time.Time) ([]Event, error) {
	if err := l.notErased(); err != nil {
		return nil, err
	}
	l.Status, l.ErasedAt = StatusErased, &now
	Erasure.clear(l)
	return l.bump(EventErased, now), nil
}

// EndContract is CTL-6's transition: when the contract end passes, every
// learner not yet erased is erased.
func (l *Learner) EndContract(now time.Time) ([]Event, error) { return l.Erase(now) }

// Correction is an edit of the learner's own details within their
// organisation: names, and (by an admin) the email.
type Correction struct {
	GivenName, FamilyName *string
	Email                 *string
	// ByPerson: the learner or an admin typed the names (ONC-9, ONC-4); a
	// provider's token names no longer replace them.
	ByPerson bool
	// BySelf: the learner's own edit, which a withdrawn learner can no
	// longer make.
	BySelf bool
}

// Correct applies a correction (ONC-9, ONC-4); LEARNER_UPDATED. A correction
// that changes nothing is not a transition: no version, no event.
func (l *Learner) Correct(c Correction, now time.Time) ([]Event, error) {
	if err := l.notErased(); err != nil {
		return nil, err
	}
	if c.BySelf && l.Status == StatusWithdrawn {
		return nil, conflict("STATUS_WITHDRAWN", "ONC-9", "the learner's status is %s", l.Status)
	}
	changed := false
	set := func(dst **string, v *string) {
		if v != nil && (*dst == nil || **dst != *v) {
			s := *v
			*dst, changed = &s, true
		}
	}
	set(&l.GivenName, c.GivenName)
	set(&l.FamilyName, c.FamilyName)
	set(&l.Email, c.Email)
	if c.ByPerson && (c.GivenName != nil || c.FamilyName != nil) && !l.NamesByPerson {
		l.NamesByPerson, changed = true, true
	}
	if !changed {
		return nil, nil
	}
	return l.bump(EventUpdated, now), nil
}

// ChangeGroup puts the learner in another access group (CTL-4):
// GROUP_CHANGED, or nothing when the group is the same.
func (l *Learner) ChangeGroup(group *string, now time.Time) ([]Event, error) {
	if err := l.notErased(); err != nil {
		return nil, err
	}
	if (l.AccessGroupID == nil && group == nil) || (l.AccessGroupID != nil && group != nil && *l.AccessGroupID == *group) {
		return nil, nil
	}
	l.AccessGroupID = group
	return l.bump(EventGroupChanged, now), nil
}

// Move puts the learner in another organisation of the same programme with
// the email that belongs there (CTL-3): LEARNER_UPDATED. The group is a
// separate transition (ChangeGroup). Who may move whom is lifecycle's
// authorisation (both organisations, CTL-10).
func (l *Learner) Move(organisationID, email string, now time.Time) ([]Event, error) {
	if err := l.notErased(); err != nil {
		return nil, err
	}
	if organisationID == l.OrganisationID {
		return nil, conflict("SAME_ORGANISATION", "", "the learner is already in this organisation")
	}
	l.OrganisationID, l.Email = organisationID, &email
	return l.bump(EventUpdated, now), nil
}

// Link reasons: why a first sign-in may not take over a learner found by
// its email (invariant 1, CTL-5). docs/lifecycle.md has the table.
const (
	LinkOK                = ""
	LinkSignedUpItself    = "EMAIL_LINKED_TO_ANOTHER_ACCOUNT" // the record was made by someone's own sign-in
	LinkAlreadyLinked     = "LEARNER_ALREADY_LINKED"          // an identity was linked once already
	LinkLearnerLeaving    = "LEARNER_NOT_LINKABLE"            // withdrawn, erased or scheduled for removal
	LinkIssuerNotTheOrgs  = "ISSUER_NOT_AUTHORITATIVE"        // not the provider that speaks for the email's organisation
	LinkContractEndedCode = "CONTRACT_ENDED"
)

// LinkIdentity links a first sign-in to a learner found by the token's
// verified email. It is allowed only when the record was made by an admin,
// an import or a directory, no identity was ever linked to it, the learner
// still has or awaits access, and the token's issuer is the one authoritative
// for the email's organisation (orgsOwnIssuer). The identity's names replace
// the admin's unless a person corrected them. LEARNER_UPDATED.
func (l *Learner) LinkIdentity(orgsOwnIssuer bool, given, family string, now time.Time) ([]Event, error) {
	refuse := func(reason, msg string) error { return forbidden(reason, "", "%s", msg) }
	switch {
	case l.Origin == OriginSignIn:
		return nil, refuse(LinkSignedUpItself, "this email belongs to an account made by another sign-in")
	case l.IdentityLinkedAt != nil:
		return nil, refuse(LinkAlreadyLinked, "this learner is already linked to a sign-in")
	case !slices.Contains(StillMember, l.Status):
		return nil, refuse(LinkLearnerLeaving, "this learner's account cannot be taken over")
	case !orgsOwnIssuer:
		return nil, refuse(LinkIssuerNotTheOrgs, "only the organisation's own identity provider can link this learner")
	}
	l.IdentityLinkedAt, l.LastSignInAt = &now, &now
	if !l.NamesByPerson {
		if given != "" {
			l.GivenName = &given
		}
		if family != "" {
			l.FamilyName = &family
		}
	}
	return l.bump(EventUpdated, now), nil
}

// SignInUpdate is a returning sign-in bringing new names (or, from the
// programme's provider, a new email in the same organisation): LEARNER_UPDATED.
func (l *Learner) SignInUpdate(given, family string, email *string, now time.Time) ([]Event, error) {
	if err := l.notErased(); err != nil {
		return nil, err
	}
	c := Correction{Email: email}
	if !l.NamesByPerson {
		if given != "" {
			c.GivenName = &given
		}
		if family != "" {
			c.FamilyName = &family
		}
	}
	l.LastSignInAt = &now
	return l.Correct(c, now)
}

// Apply runs a named transition with no arguments beyond the clock, for the
// transition table; the argument-taking ones use fixed, typical arguments.
func (l *Learner) Apply(t Transition, now time.Time) ([]Event, error) {
	due := now.Add(21 * day)
	switch t {
	case TActivate:
		return l.Activate(now)
	case TRevokeAccess:
		return l.RevokeAccess(now)
	case TSchedule:
		return l.ScheduleRemoval(RemovalLeaver, &due, now)
	case TCancelRemoval:
		return l.CancelRemoval(RemovalInactivity, now)
	case TReinstate:
		return l.Reinstate(now)
	case TWithdraw:
		return l.Withdraw(&due, now)
	case TRequestErasure:
		return l.RequestErasure(&now, now)
	case TErase:
		return l.Erase(now)
	case TCorrect:
		n := "Corrected"
		return l.Correct(Correction{GivenName: &n, ByPerson: true}, now)
	case TChangeGroup:
		g := "another-group"
		return l.ChangeGroup(&g, now)
	case TMove:
		return l.Move("another-organisation", "someone@other.example", now)
	case TLinkIdentity:
		return l.LinkIdentity(true, "", "", now)
	case TContractEnd:
		return l.EndContract(now)
	}
	return nil, fmt.Errorf("unknown transition %q", t)
}
