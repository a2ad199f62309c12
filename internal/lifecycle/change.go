package lifecycle

import (
	"context"
	"errors"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// change is one learner's change inside a transaction: the learner as the
// domain's transitions leave it, the events they returned, and the audit
// entry that records it. commit writes all three (invariant 5).
type change struct {
	L       domain.Learner
	events  []domain.Event
	action  string
	reason  string
	details map[string]any
}

// do records the outcome of a domain transition: its events, or its refusal
// as an error with the refusal's code, reason and rule.
func (c *change) do(events []domain.Event, err error) error {
	if err != nil {
		return fromDomain(err)
	}
	c.events = append(c.events, events...)
	return nil
}

// changed reports whether a transition changed the learner.
func (c *change) changed() bool { return len(c.events) > 0 }

func (c *change) audit(action, reason string, details map[string]any) {
	c.action, c.reason, c.details = action, reason, details
}

// fromDomain turns a domain refusal into the API's error.
func fromDomain(err error) error {
	var r *domain.Refusal
	if !errors.As(err, &r) {
		return err
	}
	e := apperr.Errorf(apperr.Code(r.Code), "%s", r.Message).WithReason(r.Reason)
	if r.Rule != "" {
		e = e.WithRule(r.Rule)
	}
	return e
}

// commit saves the learner (when a transition changed it), its audit entry
// and its events, in the caller's transaction.
func (s *Service) commit(ctx context.Context, a *domain.Actor, c *change) error {
	if c.changed() {
		if err := s.st.UpdateLearner(ctx, c.L); err != nil {
			return err
		}
	}
	if c.action != "" {
		if err := s.audit(ctx, a, &c.L.ProgrammeID, c.action, "learner", c.L.ID, c.reason, c.details); err != nil {
			return err
		}
	}
	if c.changed() {
		return s.st.AppendEvents(ctx, c.events)
	}
	return nil
}

// onLearner is the one way a single learner changes: in one transaction it
// locks the learner, lets authorise refuse the actor, runs fn (the domain's
// transitions), and saves the learner, its audit entry and its events.
func (s *Service) onLearner(ctx context.Context, a *domain.Actor, learnerID string, authorise func(l domain.Learner) error,
	fn func(ctx context.Context, c *change) error) (domain.Learner, error) {
	var out domain.Learner
	err := s.st.InTx(ctx, func(ctx context.Context) error {
		l, err := s.readLearner(ctx, a, learnerID, true)
		if err != nil {
			return err
		}
		if authorise != nil {
			if err := authorise(l); err != nil {
				return err
			}
		}
		out, err = s.changeLocked(ctx, a, l, fn)
		return err
	})
	return out, err
}

// changeLocked runs fn on l, which the caller's transaction has locked,
// and saves what it did.
func (s *Service) changeLocked(ctx context.Context, a *domain.Actor, l domain.Learner, fn func(ctx context.Context, c *change) error) (domain.Learner, error) {
	if err := s.stampContract(ctx, &l); err != nil {
		return l, err
	}
	c := &change{L: l}
	if err := fn(ctx, c); err != nil {
		return l, err
	}
	if err := s.commit(ctx, a, c); err != nil {
		return l, err
	}
	return c.L, nil
}

// contractEnded reports whether the programme's contract end has passed
// (CTL-6): from that moment no access, no provisioning, no activation.
func (s *Service) contractEnded(ctx context.Context, programmeID string) (bool, error) {
	p, err := s.st.GetProgramme(ctx, programmeID)
	if err != nil {
		return false, err
	}
	return contractOver(p, s.clock()), nil
}

func contractOver(p domain.Programme, now time.Time) bool {
	return contractEndPassed(p.Settings.ContractEndsAt, now)
}

// contractEndPassed: from the contract end on, nobody has access (CTL-6).
func contractEndPassed(end *time.Time, now time.Time) bool {
	return end != nil && !now.Before(*end)
}

// stampContract marks learners of a programme whose contract has ended, so
// that AccessAllowed is false for them at once (CTL-6).
func (s *Service) stampContract(ctx context.Context, ls ...*domain.Learner) error {
	ended := map[string]bool{}
	for _, l := range ls {
		e, ok := ended[l.ProgrammeID]
		if !ok {
			var err error
			if e, err = s.contractEnded(ctx, l.ProgrammeID); err != nil {
				return err
			}
			ended[l.ProgrammeID] = e
		}
		l.ContractEnded = e
	}
	return nil
}
