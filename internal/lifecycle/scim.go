package lifecycle

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// SCIM 2.0 provisioning (RFC 7643/7644): a partner's directory (Microsoft
// Entra ID, Okta) creates its staff as learners and reports leavers as they
// happen (CTL-9). A SCIM token is an actor scoped to one organisation; every
// change it asks for goes through the same use cases as an admin's
// (CreateLearner, UpdateLearner, MarkLeaver, ReinstateLearner), in one
// transaction with their audit entries and feed events (invariant 5).

// DirectoryStore is what SCIM needs from persistence beyond the rest.
// GetScimToken, ScimTokenByHash: NOT_FOUND when missing; CreateScimToken:
// CONFLICT on a taken hash; RevokeScimToken: false when nothing was revoked
// (missing, or revoked already).
type DirectoryStore interface {
	CreateScimToken(ctx context.Context, t domain.ScimToken) error
	ScimTokenByHash(ctx context.Context, hash string) (domain.ScimToken, error)
	GetScimToken(ctx context.Context, id string) (domain.ScimToken, error)
	ScimTokensByOrganisation(ctx context.Context, organisationID string) ([]domain.ScimToken, error)
	RevokeScimToken(ctx context.Context, id string, at time.Time) (bool, error)
	TouchScimToken(ctx context.Context, id string, at time.Time, interval time.Duration) error
	DirectoryLinks(ctx context.Context, learnerIDs []string) (map[string]domain.DirectoryLink, error)
	SaveDirectoryLink(ctx context.Context, l domain.DirectoryLink) error
	DirectoryUsers(ctx context.Context, f domain.DirectoryFilter, offset, limit int) ([]domain.Learner, map[string]domain.DirectoryLink, int, error)
}

// scimTokenPrefix marks SCIM secrets, so a leaked one is recognisable and
// never mistaken for an LMS key (rk_) or a JWT.
const scimTokenPrefix = "rcs_"

// scimTouchEvery bounds lastUsedAt writes: a provisioning cycle is thousands
// of requests, and a write per request would double them.
const scimTouchEvery = time.Minute

// Reasons written to the audit log for a directory's changes.
const (
	reasonDirectoryDisabled  = "the directory disabled the account (SCIM)"
	reasonDirectoryDeleted   = "the directory deleted the account (SCIM)"
	reasonDirectoryEnabled   = "the directory re-enabled the account (SCIM)"
	reasonDirectoryRejoined  = "the directory assigned the account again (SCIM)"
	reasonDirectoryCorrected = "the directory updated the account (SCIM)"
)

// IssueScimToken creates a token for an organisation's directory: the
// secret is returned once and stored as a hash. Programme admins and the
// organisation's own admins.
func (s *Service) IssueScimToken(ctx context.Context, organisationID, name string) (domain.ScimToken, string, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.ScimToken{}, "", err
	}
	o, err := s.tokenOrganisation(ctx, a, organisationID)
	if err != nil {
		return domain.ScimToken{}, "", err
	}
	if name, err = cleanText("name", name, 1, 100); err != nil {
		return domain.ScimToken{}, "", err
	}
	secret := scimTokenPrefix + randomToken()
	t := domain.ScimToken{ID: newID(), ProgrammeID: o.ProgrammeID, OrganisationID: o.ID, Name: name, Prefix: secret[:11],
		Hash: hashToken(secret), CreatedBy: a.ID, CreatedAt: s.clock()}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.CreateScimToken(ctx, t); err != nil {
			return err
		}
		return s.audit(ctx, a, &o.ProgrammeID, "scim_token.issue", "scim_token", t.ID, "", map[string]any{"organisationId": o.ID})
	})
	if err != nil {
		return domain.ScimToken{}, "", err
	}
	return t, secret, nil
}

// RevokeScimToken ends a token at once: its next request is 401.
func (s *Service) RevokeScimToken(ctx context.Context, tokenID string) (bool, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return false, err
	}
	if !validID(tokenID) {
		return false, notFound("SCIM token")
	}
	t, err := s.st.GetScimToken(ctx, tokenID)
	if err != nil {
		if apperr.CodeOf(err) == apperr.NotFound {
			return false, notFound("SCIM token")
		}
		return false, err
	}
	if _, err := s.tokenOrganisation(ctx, a, t.OrganisationID); err != nil {
		if apperr.CodeOf(err) == apperr.NotFound {
			return false, notFound("SCIM token")
		}
		return false, err
	}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		done, err := s.st.RevokeScimToken(ctx, t.ID, s.clock())
		if err != nil || !done {
			return err // revoking twice changes nothing
		}
		return s.audit(ctx, a, &t.ProgrammeID, "scim_token.revoke", "scim_token", t.ID, "", nil)
	})
	return err == nil, err
}

// ScimTokens lists an organisation's tokens (never their secrets).
func (s *Service) ScimTokens(ctx context.Context, organisationID string) ([]domain.ScimToken, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.tokenOrganisation(ctx, a, organisationID)
	if err != nil {
		return nil, err
	}
	return s.st.ScimTokensByOrganisation(ctx, o.ID)
}

// tokenOrganisation: programme admins and the organisation's own admins
// manage its tokens; a directory never mints or sees tokens.
func (s *Service) tokenOrganisation(ctx context.Context, a *domain.Actor, organisationID string) (domain.Organisation, error) {
	if a.Directory != nil {
		return domain.Organisation{}, apperr.Forbiddenf("a directory token cannot manage tokens")
	}
	o, err := s.readOrganisation(ctx, a, organisationID)
	if err != nil {
		return o, err
	}
	if !canManageOrganisation(a, o) {
		return o, apperr.Forbiddenf("only a programme admin or the organisation's admin can manage its SCIM tokens")
	}
	return o, nil
}

// WithScimToken resolves a presented SCIM secret and returns a context acting
// as that organisation's directory; ok is false for anything that is not a
// live token (unknown, revoked, malformed, or its organisation gone).
func (s *Service) WithScimToken(ctx context.Context, secret string) (context.Context, bool, error) {
	if !strings.HasPrefix(secret, scimTokenPrefix) || len(secret) > 100 {
		return ctx, false, nil
	}
	t, err := s.st.ScimTokenByHash(ctx, hashToken(secret))
	if apperr.CodeOf(err) == apperr.NotFound {
		return ctx, false, nil
	}
	if err != nil {
		return ctx, false, err
	}
	if t.RevokedAt != nil {
		return ctx, false, nil
	}
	o, err := s.st.GetOrganisation(ctx, t.OrganisationID)
	if err != nil {
		return ctx, false, err
	}
	if o.Status != domain.OrgAdmitted {
		return ctx, false, nil
	}
	if now := s.clock(); t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= scimTouchEvery {
		if err := s.st.TouchScimToken(ctx, t.ID, now, scimTouchEvery); err != nil {
			return ctx, false, err
		}
	}
	a := &domain.Actor{ID: "scim:" + t.ID,
		Directory: &domain.DirectoryScope{TokenID: t.ID, ProgrammeID: t.ProgrammeID, OrganisationID: t.OrganisationID}}
	return context.WithValue(ctx, actorKey, &actorCell{actor: a, done: true}), true, nil
}

// DirectoryUser is a learner as a directory sees it.
type DirectoryUser struct {
	Learner domain.Learner
	Link    domain.DirectoryLink // zero when the directory never wrote one
	// Active is SCIM's "active": false once the learner is leaving. GET
	// still answers for such a user (Entra's validator requires a disabled
	// user to be returned with active false).
	Active bool
	// Version changes whenever the representation does (the ETag).
	Version string
}

func directoryUser(l domain.Learner, link domain.DirectoryLink) DirectoryUser {
	return DirectoryUser{Learner: l, Link: link, Active: directoryActive(l), Version: fmt.Sprintf("%d.%d", l.Version, link.Version)}
}

// directoryActive: the directory's account is enabled as long as the learner
// is not leaving (a pending acceptance or an inactivity warning is not a
// disabled account).
func directoryActive(l domain.Learner) bool {
	switch l.Status {
	case domain.StatusActive, domain.StatusPendingAcceptance:
		return true
	case domain.StatusRemovalScheduled:
		return l.RemovalReason != nil && *l.RemovalReason == domain.RemovalInactivity
	}
	return false
}

// directoryCaused: the learner's scheduled removal is the one this
// directory reported (GEN-4: only that one may it reverse), not an admin's
// leaver or a roster's that happened since.
func directoryCaused(l domain.Learner, link domain.DirectoryLink) bool {
	return l.Status == domain.StatusRemovalScheduled && l.RemovalReason != nil && *l.RemovalReason == domain.RemovalLeaver &&
		link.RemovalDueAt != nil && l.RemovalDueAt != nil &&
		link.RemovalDueAt.Truncate(time.Millisecond).Equal(l.RemovalDueAt.Truncate(time.Millisecond))
}

func directoryActor(a *domain.Actor) (*domain.DirectoryScope, error) {
	if a.Directory == nil {
		return nil, apperr.Forbiddenf("only a directory token can do this")
	}
	return a.Directory, nil
}

// DirectoryQuery is a SCIM filter's equality conditions, all of which must
// hold ("and"). The HTTP layer parses the filter; this becomes SQL.
type DirectoryQuery struct {
	IDs         []string
	UserNames   []string
	ExternalIDs []string
	// MatchNothing: a condition no learner can meet (emails of another type).
	MatchNothing bool
}

// MaxDirectoryPage bounds one page of a list (ServiceProviderConfig's
// filter.maxResults).
const MaxDirectoryPage = 200

// DirectoryUsers lists the directory's organisation's users matching q, from
// the 1-based startIndex, at most count, with the total.
func (s *Service) DirectoryUsers(ctx context.Context, q DirectoryQuery, startIndex, count int) ([]DirectoryUser, int, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return nil, 0, err
	}
	d, err := directoryActor(a)
	if err != nil {
		return nil, 0, err
	}
	f := domain.DirectoryFilter{OrganisationID: d.OrganisationID, ExternalIDs: q.ExternalIDs, Impossible: q.MatchNothing}
	for _, id := range q.IDs {
		if !validID(id) {
			f.Impossible = true
		}
		f.IDs = append(f.IDs, id)
	}
	for _, u := range q.UserNames {
		// userName is matched case-insensitively: it is compared as the
		// normalised email. Something that is no email matches nobody.
		em, err := domain.ParseEmail(u)
		if err != nil {
			f.Impossible = true
			continue
		}
		f.Emails = append(f.Emails, em.String())
	}
	startIndex = max(startIndex, 1)
	count = min(max(count, 0), MaxDirectoryPage)
	ls, links, total, err := s.st.DirectoryUsers(ctx, f, startIndex-1, count)
	if err != nil {
		return nil, 0, err
	}
	out := make([]DirectoryUser, len(ls))
	for i, l := range ls {
		out[i] = directoryUser(l, links[l.ID])
	}
	return out, total, nil
}

// DirectoryUserByID reads one user of the directory's organisation; another
// organisation's learner, an erased one or one it deleted is NOT_FOUND.
func (s *Service) DirectoryUserByID(ctx context.Context, id string) (DirectoryUser, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return DirectoryUser{}, err
	}
	if _, err := directoryActor(a); err != nil {
		return DirectoryUser{}, err
	}
	l, link, err := s.directoryRead(ctx, a, id, false)
	if err != nil {
		return DirectoryUser{}, err
	}
	return directoryUser(l, link), nil
}

func (s *Service) directoryRead(ctx context.Context, a *domain.Actor, id string, forUpdate bool) (domain.Learner, domain.DirectoryLink, error) {
	l, err := s.readLearner(ctx, a, id, forUpdate)
	if err != nil {
		if apperr.CodeOf(err) == apperr.NotFound {
			err = notFound("user") // one answer for missing and for another organisation's (CTL-10)
		}
		return l, domain.DirectoryLink{}, err
	}
	links, err := s.st.DirectoryLinks(ctx, []string{l.ID})
	if err != nil {
		return l, domain.DirectoryLink{}, err
	}
	link := links[l.ID]
	if l.Status == domain.StatusErased || link.DeletedAt != nil || !a.DirectoryFor(l.OrganisationID) {
		return l, link, notFound("user")
	}
	return l, link, nil
}

// DirectoryUserInput is a user as a directory sends it, reduced to what
// Rollcall keeps (CTL-3: a name and a work email; externalId is the
// directory's own object ID). Everything else was dropped by the caller.
type DirectoryUserInput struct {
	UserName   string
	ExternalID *string
	GivenName  *string
	FamilyName *string
	Active     *bool // nil: not sent
}

// DirectoryCreate provisions a learner of the directory's organisation
// (PENDING_ACCEPTANCE until they accept, CTL-5). A userName whose learner the
// directory itself disabled or deleted, still within the grace, re-joins
// that learner (Entra re-assigning a person); any other existing userName is
// CONFLICT.
func (s *Service) DirectoryCreate(ctx context.Context, in DirectoryUserInput) (DirectoryUser, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return DirectoryUser{}, err
	}
	d, err := directoryActor(a)
	if err != nil {
		return DirectoryUser{}, err
	}
	if in.ExternalID != nil {
		if in.ExternalID, err = cleanExternalID(*in.ExternalID); err != nil {
			return DirectoryUser{}, err
		}
	}
	var out DirectoryUser
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		email, err := s.directoryEmail(ctx, d, in.UserName)
		if err != nil {
			return err
		}
		existing, err := s.st.LearnerByEmail(ctx, email)
		switch {
		case err == nil:
			out, err = s.directoryRejoin(ctx, a, existing, in)
			return err
		case apperr.CodeOf(err) != apperr.NotFound:
			return err
		}
		if in.GivenName == nil || in.FamilyName == nil {
			return apperr.Invalid("name", "name.givenName and name.familyName are required").WithRule("CTL-3")
		}
		l, err := s.CreateLearner(ctx, d.OrganisationID, LearnerInput{Email: email, GivenName: *in.GivenName, FamilyName: *in.FamilyName})
		if err != nil {
			return err
		}
		link := domain.DirectoryLink{LearnerID: l.ID, OrganisationID: l.OrganisationID, ExternalID: in.ExternalID, Version: 1}
		if in.Active != nil && !*in.Active {
			// Entra creates an in-scope user whose account is disabled with
			// active false: provisioned and a leaver at once (CTL-9).
			if l, link, err = s.directoryLeave(ctx, l, link); err != nil {
				return err
			}
		}
		link.UpdatedAt = s.clock()
		if err := s.saveLink(ctx, link); err != nil {
			return err
		}
		out = directoryUser(l, link)
		return nil
	})
	return out, err
}

// directoryRejoin handles a POST for a userName that already has a learner.
func (s *Service) directoryRejoin(ctx context.Context, a *domain.Actor, l domain.Learner, in DirectoryUserInput) (DirectoryUser, error) {
	conflict := apperr.Conflictf("a user with this userName already exists").WithField("userName")
	if !a.DirectoryFor(l.OrganisationID) {
		return DirectoryUser{}, conflict
	}
	l, err := s.st.GetLearner(ctx, l.ID, true)
	if err != nil {
		return DirectoryUser{}, err
	}
	links, err := s.st.DirectoryLinks(ctx, []string{l.ID})
	if err != nil {
		return DirectoryUser{}, err
	}
	link := links[l.ID]
	switch {
	case directoryCaused(l, link) && s.clock().Before(*l.RemovalDueAt):
		// GEN-4: the directory reverses its own removal within the grace.
		if l, err = s.ReinstateLearner(ctx, l.ID, reasonDirectoryRejoined); err != nil {
			return DirectoryUser{}, err
		}
		link.RemovalDueAt = nil
	case link.DeletedAt != nil && directoryActive(l):
		// Deleted by the directory, then reinstated by an admin: the
		// directory's user comes back as it is.
	default:
		return DirectoryUser{}, conflict
	}
	link.DeletedAt = nil
	if in.ExternalID != nil {
		link.ExternalID = in.ExternalID
	}
	link.Version++
	link.UpdatedAt = s.clock()
	if link.OrganisationID == "" {
		link.LearnerID, link.OrganisationID = l.ID, l.OrganisationID
	}
	if err := s.saveLink(ctx, link); err != nil {
		return DirectoryUser{}, err
	}
	if err := s.audit(ctx, a, &l.ProgrammeID, "learner.directory_rejoin", "learner", l.ID, reasonDirectoryRejoined, map[string]any{"rule": "GEN-4"}); err != nil {
		return DirectoryUser{}, err
	}
	if l, err = s.directoryCorrect(ctx, l, DirectoryChange{GivenName: in.GivenName, FamilyName: in.FamilyName}); err != nil {
		return DirectoryUser{}, err
	}
	if in.Active != nil && !*in.Active && directoryActive(l) {
		if l, link, err = s.directoryLeave(ctx, l, link); err != nil {
			return DirectoryUser{}, err
		}
		if err := s.saveLink(ctx, link); err != nil {
			return DirectoryUser{}, err
		}
	}
	return directoryUser(l, link), nil
}

// DirectoryChange is a PATCH or PUT reduced to what Rollcall keeps. Nil
// fields are left alone; ExternalID set with a nil inner value clears it.
type DirectoryChange struct {
	UserName   *string
	ExternalID **string
	GivenName  *string
	FamilyName *string
	Active     *bool
}

// DirectoryUpdate applies a change to one user. ifMatch, when not empty or
// "*", must be the user's current version (an ETag precondition, RFC 7644
// section 3.14), else CONFLICT with reason PRECONDITION_FAILED.
//
// active=false is a leaver signal (CTL-9). active=true reverses only a
// removal the directory caused, within the grace (GEN-4); a leaver marked by
// an admin or a roster stays one, and an active=true for someone active
// changes nothing at all (Entra re-sends it periodically).
func (s *Service) DirectoryUpdate(ctx context.Context, id string, ch DirectoryChange, ifMatch string) (DirectoryUser, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return DirectoryUser{}, err
	}
	d, err := directoryActor(a)
	if err != nil {
		return DirectoryUser{}, err
	}
	if ch.ExternalID != nil && *ch.ExternalID != nil {
		x, err := cleanExternalID(**ch.ExternalID)
		if err != nil {
			return DirectoryUser{}, err
		}
		ch.ExternalID = &x
	}
	var out DirectoryUser
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		l, link, err := s.directoryRead(ctx, a, id, true)
		if err != nil {
			return err
		}
		if err := checkIfMatch(ifMatch, directoryUser(l, link).Version); err != nil {
			return err
		}
		if ch.UserName != nil {
			email, err := s.directoryEmail(ctx, d, *ch.UserName)
			if err != nil {
				return err
			}
			ch.UserName = &email
		}
		linkChanged := false
		if ch.Active != nil && *ch.Active && !directoryActive(l) && directoryCaused(l, link) && s.clock().Before(*l.RemovalDueAt) {
			if l, err = s.ReinstateLearner(ctx, l.ID, reasonDirectoryEnabled); err != nil {
				return err
			}
			link.RemovalDueAt = nil
			linkChanged = true
		}
		if l, err = s.directoryCorrect(ctx, l, ch); err != nil {
			return err
		}
		if ch.ExternalID != nil && !sameString(*ch.ExternalID, link.ExternalID) {
			link.ExternalID = *ch.ExternalID
			linkChanged = true
			if err := s.audit(ctx, a, &l.ProgrammeID, "learner.directory_link", "learner", l.ID, "", nil); err != nil {
				return err
			}
		}
		if ch.Active != nil && !*ch.Active && directoryActive(l) {
			if l, link, err = s.directoryLeave(ctx, l, link); err != nil {
				return err
			}
			linkChanged = true
		}
		if linkChanged {
			if link.LearnerID == "" {
				link.LearnerID, link.OrganisationID = l.ID, l.OrganisationID
			}
			link.Version++
			link.UpdatedAt = s.clock()
			if err := s.saveLink(ctx, link); err != nil {
				return err
			}
		}
		out = directoryUser(l, link)
		return nil
	})
	return out, err
}

// DirectoryDelete: the directory deleted the user (Entra does, 30 days after
// a soft delete). The learner is a leaver as for active=false; the user is
// NOT_FOUND to the directory afterwards.
func (s *Service) DirectoryDelete(ctx context.Context, id, ifMatch string) error {
	a, err := s.Actor(ctx)
	if err != nil {
		return err
	}
	if _, err := directoryActor(a); err != nil {
		return err
	}
	return s.st.InTx(ctx, func(ctx context.Context) error {
		l, link, err := s.directoryRead(ctx, a, id, true)
		if err != nil {
			return err
		}
		if err := checkIfMatch(ifMatch, directoryUser(l, link).Version); err != nil {
			return err
		}
		if link.LearnerID == "" {
			link = domain.DirectoryLink{LearnerID: l.ID, OrganisationID: l.OrganisationID}
		}
		if directoryActive(l) {
			if l, link, err = s.directoryLeaveAs(ctx, l, link, reasonDirectoryDeleted); err != nil {
				return err
			}
		}
		now := s.clock()
		link.DeletedAt = &now
		link.Version++
		link.UpdatedAt = now
		if err := s.saveLink(ctx, link); err != nil {
			return err
		}
		return s.audit(ctx, a, &l.ProgrammeID, "learner.directory_delete", "learner", l.ID, reasonDirectoryDeleted, map[string]any{"rule": "CTL-9"})
	})
}

// directoryLeave makes the learner a leaver through MarkLeaver (CTL-9: access
// ends at once, REMOVAL_SCHEDULED with reason LEAVER after the leaver grace,
// audited, in the feed) and remembers that the directory caused it.
func (s *Service) directoryLeave(ctx context.Context, l domain.Learner, link domain.DirectoryLink) (domain.Learner, domain.DirectoryLink, error) {
	return s.directoryLeaveAs(ctx, l, link, reasonDirectoryDisabled)
}

func (s *Service) directoryLeaveAs(ctx context.Context, l domain.Learner, link domain.DirectoryLink, reason string) (domain.Learner, domain.DirectoryLink, error) {
	l, err := s.MarkLeaver(ctx, l.ID, reason)
	if err != nil {
		return l, link, err
	}
	link.RemovalDueAt = l.RemovalDueAt
	return l, link, nil
}

// directoryCorrect applies name and email changes through UpdateLearner
// (audited, LEARNER_UPDATED in the feed); no change writes nothing.
func (s *Service) directoryCorrect(ctx context.Context, l domain.Learner, ch DirectoryChange) (domain.Learner, error) {
	var up LearnerUpdate
	changed := false
	if ch.UserName != nil && (l.Email == nil || *l.Email != *ch.UserName) {
		up.Email, changed = ch.UserName, true
	}
	if ch.GivenName != nil && !sameString(ptr(strings.TrimSpace(*ch.GivenName)), l.GivenName) {
		up.GivenName, changed = ch.GivenName, true
	}
	if ch.FamilyName != nil && !sameString(ptr(strings.TrimSpace(*ch.FamilyName)), l.FamilyName) {
		up.FamilyName, changed = ch.FamilyName, true
	}
	if !changed {
		return l, nil
	}
	up.Reason = reasonDirectoryCorrected
	return s.UpdateLearner(ctx, l.ID, up)
}

// directoryEmail normalises a userName and checks that its domain is the
// directory's own organisation's (CTL-3, invariant 1: one partner's
// directory never creates or moves anyone into another partner's domain).
func (s *Service) directoryEmail(ctx context.Context, d *domain.DirectoryScope, userName string) (string, error) {
	el, err := s.resolveEmail(ctx, userName, "userName")
	if err != nil {
		return "", err
	}
	if el.org.ID != d.OrganisationID {
		return "", apperr.Invalid("userName", "this userName's domain is not one of this organisation's").
			WithReason("DOMAIN_NOT_OWNED").WithRule("CTL-3")
	}
	return el.email.String(), nil
}

func (s *Service) saveLink(ctx context.Context, link domain.DirectoryLink) error {
	if err := s.st.SaveDirectoryLink(ctx, link); err != nil {
		if apperr.CodeOf(err) == apperr.Conflict {
			return apperr.Conflictf("another user of this organisation has this externalId").WithField("externalId")
		}
		return err
	}
	return nil
}

// ReasonPreconditionFailed marks a CONFLICT from a stale If-Match.
const ReasonPreconditionFailed = "PRECONDITION_FAILED"

func checkIfMatch(ifMatch, version string) error {
	if ifMatch == "" || ifMatch == "*" || ifMatch == version {
		return nil
	}
	return apperr.Conflictf("the user has changed since this version was read").WithReason(ReasonPreconditionFailed)
}

func cleanExternalID(v string) (*string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	if len(v) > 256 {
		return nil, apperr.Invalid("externalId", "externalId must be at most 256 characters")
	}
	return &v, nil
}

func sameString(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}
