package lifecycle

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// touchEvery bounds how often a returning sign-in writes lastSignInAt: the
// inactivity clock (CTL-7) counts days, and a write per request would make
// every bearer request a write.
const touchEvery = 15 * time.Minute

// eligibility is where an email belongs: the organisation owning its domain
// and the access group its domain rule selects (CTL-3, CTL-4).
type eligibility struct {
	org   domain.Organisation
	group string
	email domain.Email
}

// resolveEmail parses an email and finds the admitted organisation whose
// domain rule covers it (the most specific rule wins).
func (s *Service) resolveEmail(ctx context.Context, raw, field string) (eligibility, error) {
	em, err := domain.ParseEmail(raw)
	if err != nil {
		reason := "EMAIL_INVALID"
		var ee *domain.EmailError
		if errors.As(err, &ee) {
			reason = strings.ToUpper(string(ee.Reason))
			if ee.DomainErr != nil {
				reason = strings.ToUpper(string(ee.DomainErr.Reason))
			}
		}
		return eligibility{}, apperr.Invalid(field, "%s", err.Error()).WithReason(reason).WithRule("CTL-3")
	}
	rules, err := s.st.DomainsCovering(ctx, em.Domain)
	if err != nil {
		return eligibility{}, err
	}
	var best *domain.DomainRule
	for i, r := range rules {
		if domain.DomainCovers(r.Domain, r.IncludeSubdomains, em.Domain) && (best == nil || len(r.Domain) > len(best.Domain)) {
			best = &rules[i]
		}
	}
	notEligible := apperr.Invalid(field, "this email's domain does not belong to an organisation of the programme").
		WithReason("DOMAIN_NOT_ELIGIBLE").WithRule("CTL-3")
	if best == nil {
		return eligibility{}, notEligible
	}
	// Through the store's reference cache (outside a transaction): a
	// status changed on another replica may be seen up to 10 s late here,
	// so every path that writes a learner into the organisation found
	// re-reads it in its own transaction (stillAdmitted, CTL-9).
	orgs, err := s.st.OrganisationsByIDs(ctx, []string{best.OrganisationID})
	if err != nil {
		return eligibility{}, err
	}
	if len(orgs) != 1 || orgs[0].Status != domain.OrgAdmitted {
		return eligibility{}, notEligible
	}
	o := orgs[0]
	el := eligibility{org: o, email: em}
	if best.AccessGroupID != nil {
		el.group = *best.AccessGroupID
	} else {
		gs, err := s.st.AccessGroupsByOrganisations(ctx, []string{o.ID})
		if err != nil {
			return eligibility{}, err
		}
		for _, g := range gs {
			if g.IsDefault {
				el.group = g.ID
			}
		}
	}
	return el, nil
}

// authoritative reports whether provider p may vouch for org's learners:
// it is the organisation's own provider or the programme's (invariant 1).
func authoritative(p domain.IdentityProvider, org domain.Organisation) bool {
	if p.OrganisationID != nil {
		return *p.OrganisationID == org.ID
	}
	return p.ProgrammeID == org.ProgrammeID
}

var errNoSignIn = apperr.Forbiddenf("this sign-in cannot be accepted for a learner account")

// SignIn provisions or refreshes the learner of a verified identity. Identity
// is issuer + subject: a known subject is updated (and moved if its email now
// belongs to another organisation), never duplicated; an unknown subject is
// linked to an existing learner by verified email only as the domain's
// LinkIdentity allows (docs/lifecycle.md has the table), or creates one.
func (s *Service) SignIn(ctx context.Context, id domain.Identity) (domain.Learner, error) {
	prov, err := s.st.ProviderByIssuer(ctx, id.Issuer)
	if err != nil {
		if apperr.CodeOf(err) == apperr.NotFound {
			return domain.Learner{}, errNoSignIn.WithReason("ISSUER_NOT_A_PROVIDER")
		}
		return domain.Learner{}, err
	}
	now := s.clock()
	l, erasedAt, err := s.st.SignInLearner(ctx, id.Issuer, id.Subject)
	if err == nil {
		l, err = s.refreshSignIn(ctx, prov, l, id, now)
		if err == nil {
			err = s.stampContract(ctx, &l)
		}
		return l, err
	}
	if apperr.CodeOf(err) != apperr.NotFound {
		return domain.Learner{}, err
	}
	if !id.EmailVerified {
		return domain.Learner{}, errNoSignIn.WithReason("EMAIL_NOT_VERIFIED")
	}
	// A token from before this person's erasure must not bring them back:
	// re-joining takes a fresh sign-in.
	if erasedAt != nil && !id.IssuedAt.After(*erasedAt) {
		return domain.Learner{}, errNoSignIn.WithReason("ERASED_SIGN_IN_AGAIN")
	}
	el, err := s.resolveEmail(ctx, id.Email, "email")
	if err != nil {
		return domain.Learner{}, errNoSignIn.WithReason("DOMAIN_NOT_ELIGIBLE").WithRule("CTL-3")
	}
	if !authoritative(prov, el.org) {
		// A token from Medway's provider carrying a kent.gov.uk address.
		s.log.WarnContext(ctx, "sign-in refused", "why", "issuer not authoritative for the email's organisation",
			"provider", prov.ID, "organisation", el.org.ID)
		refusal := errNoSignIn.WithReason(domain.LinkIssuerNotTheOrgs)
		if existing, err := s.st.LearnerByEmail(ctx, el.email.String()); err == nil {
			s.auditLinkRefused(ctx, id, prov, existing, refusal)
		}
		return domain.Learner{}, refusal
	}
	// Two first sign-ins of one person race on the unique email and
	// identity; the loser retries and finds the winner's learner.
	for attempt := 0; ; attempt++ {
		var target *domain.Learner
		l, target, err = s.provision(ctx, prov, el, id, now)
		if target != nil && apperr.CodeOf(err) == apperr.Forbidden {
			s.auditLinkRefused(ctx, id, prov, *target, err)
		}
		if apperr.CodeOf(err) != apperr.Conflict || attempt == 2 {
			if err == nil {
				err = s.stampContract(ctx, &l)
			}
			return l, err
		}
		if existing, e2 := s.st.LearnerByIdentity(ctx, id.Issuer, id.Subject); e2 == nil {
			return existing, s.stampContract(ctx, &existing)
		}
	}
}

// auditLinkRefused records a refused takeover by email, in its own
// transaction (the refused change wrote nothing): opaque IDs and the reason
// code only.
func (s *Service) auditLinkRefused(ctx context.Context, id domain.Identity, prov domain.IdentityProvider, l domain.Learner, refusal error) {
	reason := ""
	if ae, ok := apperr.As(refusal); ok {
		reason = ae.Reason
	}
	actor := &domain.Actor{ID: ActorIDFor(id.Issuer, id.Subject)}
	if err := s.st.InTx(context.WithoutCancel(ctx), func(ctx context.Context) error {
		return s.audit(ctx, actor, &l.ProgrammeID, "learner.identity.link.refused", "learner", l.ID, "",
			map[string]any{"providerId": prov.ID, "refusal": reason})
	}); err != nil {
		s.log.ErrorContext(ctx, "could not audit a refused link", "learner", l.ID, "err", err.Error())
	}
}

// speaksFor reports whether prov is THE provider authoritative for org: the
// organisation's own, or the programme's where the organisation has none of
// its own. Only that provider may link a sign-in to a record someone else
// made (docs/lifecycle.md).
func (s *Service) speaksFor(ctx context.Context, prov domain.IdentityProvider, org domain.Organisation) (bool, error) {
	if prov.OrganisationID != nil {
		return *prov.OrganisationID == org.ID, nil
	}
	if prov.ProgrammeID != org.ProgrammeID {
		return false, nil
	}
	ps, err := s.st.ProvidersFor(ctx, org.ProgrammeID, org.ID)
	if err != nil {
		return false, err
	}
	for _, p := range ps {
		if p.OrganisationID != nil && *p.OrganisationID == org.ID {
			return false, nil
		}
	}
	return true, nil
}

// provision links the identity to the learner its email finds, or creates
// one. On a refused link it returns the learner it refused, for the audit.
func (s *Service) provision(ctx context.Context, prov domain.IdentityProvider, el eligibility, id domain.Identity, now time.Time) (domain.Learner, *domain.Learner, error) {
	var out domain.Learner
	var refused *domain.Learner
	actor := &domain.Actor{ID: ActorIDFor(id.Issuer, id.Subject)}
	given, family := tokenNames(id)
	err := s.st.InTx(ctx, func(ctx context.Context) error {
		existing, err := s.st.LearnerByEmail(ctx, el.email.String())
		switch apperr.CodeOf(err) {
		case "":
			if existing, err = s.st.GetLearner(ctx, existing.ID, true); err != nil {
				return err
			}
			ids, err := s.st.IdentitiesByLearner(ctx, existing.ID)
			if err != nil {
				return err
			}
			for _, li := range ids {
				if li.Issuer == id.Issuer && li.Subject == id.Subject {
					out = existing // a concurrent first sign-in of ours linked it
					return nil
				}
			}
			own, err := s.speaksFor(ctx, prov, el.org)
			if err != nil {
				return err
			}
			c := &change{L: existing}
			if err := c.do(c.L.LinkIdentity(own, given, family, now)); err != nil {
				refused = &existing
				if ae, ok := apperr.As(err); ok {
					return errNoSignIn.WithReason(ae.Reason)
				}
				return err
			}
			if err := s.st.CreateIdentity(ctx, domain.LearnerIdentity{ID: newID(), LearnerID: existing.ID,
				Issuer: id.Issuer, Subject: id.Subject, CreatedAt: now}); err != nil {
				return err
			}
			c.audit("learner.identity.link", "", map[string]any{"providerId": prov.ID})
			out = c.L
			return s.commit(ctx, actor, c)
		case apperr.NotFound:
		default:
			return err
		}
		// CTL-9, and CTL-6 read in the same statement.
		ended, err := s.stillAdmitted(ctx, el.org.ID)
		if err != nil {
			if apperr.CodeOf(err) == apperr.Conflict {
				return errNoSignIn.WithReason("DOMAIN_NOT_ELIGIBLE").WithRule("CTL-3")
			}
			return err
		}
		email := el.email.String()
		l, events, err := domain.NewLearner(domain.Learner{ID: newID(), ProgrammeID: el.org.ProgrammeID, OrganisationID: el.org.ID,
			Email: &email, LastSignInAt: &now, IdentityLinkedAt: &now}, domain.OriginSignIn, ended, now)
		if err != nil {
			if ae, ok := apperr.As(fromDomain(err)); ok {
				return errNoSignIn.WithReason(ae.Reason).WithRule(ae.Rule)
			}
			return err
		}
		if el.group != "" {
			l.AccessGroupID = ptr(el.group)
		}
		applyNames(&l, id)
		if err := s.st.CreateLearnerWithIdentity(ctx, l, domain.LearnerIdentity{ID: newID(), LearnerID: l.ID, Issuer: id.Issuer,
			Subject: id.Subject, CreatedAt: now}); err != nil {
			return err
		}
		if err := s.audit(ctx, actor, &l.ProgrammeID, "learner.provision", "learner", l.ID, "",
			map[string]any{"organisationId": l.OrganisationID, "providerId": prov.ID}); err != nil {
			return err
		}
		out = l
		return s.st.AppendEvents(ctx, events)
	})
	return out, refused, err
}

// restore gives a learner whose removal was just cancelled their access back
// when nothing is pending and the contract runs (CTL-5, CTL-6).
func (s *Service) restore(ctx context.Context, c *change) error {
	if c.L.Status != domain.StatusPendingAcceptance || c.L.ContractEnded {
		return nil
	}
	pending, err := s.PendingPolicies(ctx, c.L)
	if err != nil || len(pending) > 0 {
		return err
	}
	return c.do(c.L.Activate(s.clock()))
}

// refreshSignIn updates a returning learner: names and email from the
// token, and lastSignInAt at most every touchEvery.
func (s *Service) refreshSignIn(ctx context.Context, prov domain.IdentityProvider, l domain.Learner, id domain.Identity, now time.Time) (domain.Learner, error) {
	if l.Status == domain.StatusErased {
		return l, errNoSignIn.WithReason("ERASED")
	}
	// Invariant 1 holds for returning identities too: an admin may have moved
	// the learner to an organisation this provider does not speak for.
	if !authoritative(prov, domain.Organisation{ID: l.OrganisationID, ProgrammeID: l.ProgrammeID}) {
		return l, errNoSignIn.WithReason("ISSUER_NOT_AUTHORITATIVE")
	}
	actor := &domain.Actor{ID: ActorIDFor(id.Issuer, id.Subject)}
	if l.Status == domain.StatusRemovalScheduled && l.RemovalReason != nil && *l.RemovalReason == domain.RemovalInactivity {
		// CTL-7: signing in is activity; it cancels a removal for inactivity
		// (but not one for leaving, GEN-4).
		err := s.st.InTx(ctx, func(ctx context.Context) error {
			cur, err := s.st.GetLearner(ctx, l.ID, true)
			if err != nil {
				return err
			}
			if err := s.stampContract(ctx, &cur); err != nil {
				return err
			}
			c := &change{L: cur}
			if err := s.cancelRemoval(ctx, actor, c, domain.RemovalInactivity); err != nil {
				return err
			}
			c.L.LastSignInAt = &now
			c.audit("learner.removal.cancelled_by_activity", "", map[string]any{"rule": "CTL-7"})
			return s.commit(ctx, actor, c)
		})
		if err != nil && apperr.CodeOf(err) != apperr.Conflict {
			return l, err
		}
		if l, err = s.st.GetLearner(ctx, l.ID, false); err != nil {
			return l, err
		}
	}
	emailChanged := id.Email != "" && l.Email != nil && !strings.EqualFold(strings.TrimSpace(id.Email), *l.Email)
	// ONC-9: once a person corrected the name, the token's names are not news.
	// Compared as applyNames would store them, or a claim with a trailing
	// space would count as a change on every request.
	given, family := tokenNames(id)
	namesChanged := !l.NamesByPerson && ((given != "" && (l.GivenName == nil || *l.GivenName != given)) ||
		(family != "" && (l.FamilyName == nil || *l.FamilyName != family)))
	if !emailChanged && !namesChanged {
		if l.LastSignInAt == nil || now.Sub(*l.LastSignInAt) >= touchEvery {
			if err := s.st.TouchSignIn(ctx, l.ID, now); err != nil {
				return l, err
			}
			l.LastSignInAt = &now
		}
		return l, nil
	}
	var el eligibility
	if emailChanged {
		if !id.EmailVerified {
			return l, errNoSignIn.WithReason("EMAIL_NOT_VERIFIED")
		}
		var err error
		if el, err = s.resolveEmail(ctx, id.Email, "email"); err != nil {
			return l, errNoSignIn.WithReason("DOMAIN_NOT_ELIGIBLE").WithRule("CTL-3")
		}
		if !authoritative(prov, el.org) {
			return l, errNoSignIn.WithReason("ISSUER_NOT_AUTHORITATIVE")
		}
		if el.org.ProgrammeID != l.ProgrammeID {
			return l, errNoSignIn.WithReason("OTHER_PROGRAMME")
		}
	}
	var out domain.Learner
	err := s.st.InTx(ctx, func(ctx context.Context) error {
		cur, err := s.st.GetLearner(ctx, l.ID, true)
		if err != nil {
			return err
		}
		c := &change{L: cur}
		details := map[string]any{}
		var sameOrgEmail *string
		group := cur.AccessGroupID
		if emailChanged {
			email := el.email.String()
			if other, err := s.st.LearnerByEmail(ctx, email); err == nil && other.ID != cur.ID {
				// Never take over another learner's account.
				return errNoSignIn.WithReason("EMAIL_BELONGS_TO_ANOTHER_LEARNER")
			}
			if el.org.ID != cur.OrganisationID {
				// CTL-9: not into an organisation removed meanwhile.
				if _, err := s.stillAdmitted(ctx, el.org.ID); err != nil { // a move, not a new learner: CTL-9 only
					if apperr.CodeOf(err) == apperr.Conflict {
						return errNoSignIn.WithReason("DOMAIN_NOT_ELIGIBLE").WithRule("CTL-3")
					}
					return err
				}
				details["movedFrom"], details["movedTo"] = cur.OrganisationID, el.org.ID
				if err := c.do(c.L.Move(el.org.ID, email, now)); err != nil {
					return err
				}
				group = nil
				if el.group != "" {
					group = ptr(el.group)
				}
			} else {
				sameOrgEmail = &email
				// CTL-4: within one organisation the group follows the domain
				// rule only when the rule changes, so a group an admin chose
				// survives a renamed mailbox.
				if cur.Email != nil {
					if prev, err := s.resolveEmail(ctx, *cur.Email, "email"); err == nil && prev.group != el.group && el.group != "" {
						group = ptr(el.group)
					}
				}
			}
		}
		if err := c.do(c.L.SignInUpdate(given, family, sameOrgEmail, now)); err != nil {
			return err
		}
		if err := c.do(c.L.ChangeGroup(group, now)); err != nil {
			return err
		}
		action := "learner.signin.update"
		if details["movedTo"] != nil {
			action = "learner.move"
		}
		c.audit(action, "", details)
		if err := s.commit(ctx, actor, c); err != nil {
			if apperr.CodeOf(err) == apperr.Conflict {
				return errNoSignIn.WithReason("EMAIL_BELONGS_TO_ANOTHER_LEARNER")
			}
			return err
		}
		out = c.L
		return nil
	})
	return out, err
}

func applyNames(l *domain.Learner, id domain.Identity) {
	if l.NamesByPerson {
		return
	}
	given, family := tokenNames(id)
	if given != "" {
		l.GivenName = &given
	}
	if family != "" {
		l.FamilyName = &family
	}
}

// tokenNames are the names of a token that Rollcall takes: trimmed, and
// empty when a name breaks the text rules (domain.CleanName) or is longer
// than 100 bytes. A provider's odd name does not stop the person signing in.
func tokenNames(id domain.Identity) (given, family string) {
	keep := func(s string) string {
		s, err := domain.CleanName("name", s)
		if err != nil || len(s) > 100 {
			return ""
		}
		return s
	}
	return keep(id.GivenName), keep(id.FamilyName)
}
