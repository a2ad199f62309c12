package lifecycle

import (
	"context"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// selfLearner returns the caller's own learner, or why they have none.
func selfLearner(a *domain.Actor) (string, error) {
	if a.Learner == nil {
		if a.SignInErr != nil {
			return "", a.SignInErr
		}
		return "", apperr.Forbiddenf("only a signed-in learner can do this")
	}
	return a.Learner.ID, nil
}

// WithdrawConsent ends the caller's access at once (CTL-8, ONC-8).
func (s *Service) WithdrawConsent(ctx context.Context, reason string) (domain.Learner, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.Learner{}, err
	}
	id, err := selfLearner(a)
	if err != nil {
		return domain.Learner{}, err
	}
	return s.withdraw(ctx, a, id, reason, false)
}

// WithdrawConsentOnBehalf is an organisation admin recording a learner's
// withdrawal given another way (a letter, a call); a reason is required.
func (s *Service) WithdrawConsentOnBehalf(ctx context.Context, learnerID, reason string) (domain.Learner, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.Learner{}, err
	}
	if _, err := cleanText("reason", reason, 1, 1000); err != nil {
		return domain.Learner{}, err
	}
	return s.withdraw(ctx, a, learnerID, reason, true)
}

// withdraw: status WITHDRAWN, sessions revoked, ACCESS_REVOKED, in one
// transaction; then erasure as the programme's rules say: at once (CTL-8 with
// no delay), after the delay (the sweep), or as a data request awaiting the
// controller (ONC-5).
func (s *Service) withdraw(ctx context.Context, a *domain.Actor, learnerID, reason string, onBehalf bool) (domain.Learner, error) {
	reason, err := cleanText("reason", reason, 0, 1000)
	if err != nil {
		return domain.Learner{}, err
	}
	authorise := func(l domain.Learner) error {
		if onBehalf && !canManageLearner(a, l) {
			return apperr.Forbiddenf("your role cannot act for this learner")
		}
		return nil
	}
	var p domain.Programme
	var out domain.Learner
	// One transaction holds the withdrawal and, with no delay, the erasure.
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		var err error
		out, err = s.withdrawLocked(ctx, a, learnerID, reason, onBehalf, authorise, &p)
		if err != nil || p.Settings.ErasureNeedsApproval || p.Settings.WithdrawalErasureDelay != 0 {
			return err
		}
		// CTL-8 with no delay: erased at once.
		if _, err := s.erase(ctx, a, []string{out.ID}, "CTL-8"); err != nil {
			return err
		}
		out, err = s.st.GetLearner(ctx, out.ID, false)
		return err
	})
	return out, err
}

func (s *Service) withdrawLocked(ctx context.Context, a *domain.Actor, learnerID, reason string, onBehalf bool,
	authorise func(domain.Learner) error, pp *domain.Programme) (domain.Learner, error) {
	return s.onLearner(ctx, a, learnerID, authorise, func(ctx context.Context, c *change) error {
		p := pp
		var err error
		if *p, err = s.st.GetProgramme(ctx, c.L.ProgrammeID); err != nil {
			return err
		}
		now := s.clock()
		var due *time.Time
		if !p.Settings.ErasureNeedsApproval {
			due = ptr(now.Add(p.Settings.WithdrawalErasureDelay))
		}
		if err := c.do(c.L.Withdraw(due, now)); err != nil {
			return err
		}
		if _, err := s.st.RevokeLearnerSessions(ctx, c.L.ID, now); err != nil {
			return err
		}
		auditReason := ""
		action := "learner.withdraw"
		if onBehalf {
			// An admin's reason is part of their accountability (CTL-12); a
			// learner's own words are personal data and stay out of the
			// append-only log (GEN-2).
			action, auditReason = "learner.withdraw.on_behalf", reason
		}
		c.audit(action, auditReason, map[string]any{"rule": "CTL-8"})
		if p.Settings.ErasureNeedsApproval {
			// ONC-5: nothing is removed without the controller's authorisation.
			_, err := s.openRequest(ctx, a, c.L, domain.RemovalConsentWithdrawn, reason)
			return err
		}
		return nil
	})
}

// openRequest records an erasure request for the learner's organisation to
// approve, or reuses the open one.
func (s *Service) openRequest(ctx context.Context, a *domain.Actor, l domain.Learner, origin domain.RemovalReason, reason string) (domain.DataRequest, error) {
	r, _, err := s.openRequestCreated(ctx, a, l, origin, reason)
	return r, err
}

// openRequestCreated is openRequest that also says whether it created one.
func (s *Service) openRequestCreated(ctx context.Context, a *domain.Actor, l domain.Learner, origin domain.RemovalReason, reason string) (domain.DataRequest, bool, error) {
	reqs, err := s.st.DataRequestsByLearner(ctx, l.ID)
	if err != nil {
		return domain.DataRequest{}, false, err
	}
	for _, r := range reqs {
		if r.Status == domain.RequestPending || r.Status == domain.RequestAwaitingApproval || r.Status == domain.RequestApproved {
			return r, false, nil
		}
	}
	r := domain.DataRequest{ID: newID(), ProgrammeID: l.ProgrammeID, OrganisationID: l.OrganisationID, LearnerID: l.ID,
		Kind: "ERASURE", Origin: origin, Status: domain.RequestAwaitingApproval, Reason: reason, RequestedBy: a.ID, RequestedAt: s.clock()}
	if err := s.st.CreateDataRequest(ctx, r); err != nil {
		return r, false, err
	}
	return r, true, s.audit(ctx, a, &l.ProgrammeID, "data_request.open", "learner", l.ID, "",
		map[string]any{"dataRequestId": r.ID, "origin": string(origin), "rule": "ONC-5"})
}

// erase erases learners inside the caller's transaction and audits each; it
// returns how many were erased now (already erased ones are skipped).
func (s *Service) erase(ctx context.Context, a *domain.Actor, ids []string, rule string) (int, error) {
	return s.eraseWhere(ctx, a, ids, rule, nil)
}

// eraseWhere is erase limited to learners still due by dueBy (the sweep).
func (s *Service) eraseWhere(ctx context.Context, a *domain.Actor, ids []string, rule string, dueBy *time.Time) (int, error) {
	now := s.clock()
	bulk := domain.BulkErase
	if dueBy != nil {
		bulk = domain.BulkEraseDue
	}
	done, err := s.st.EraseLearners(ctx, ids, bulk, now, dueBy)
	if err != nil || len(done) == 0 {
		return 0, err
	}
	ls, err := s.st.LearnersByIDs(ctx, done)
	if err != nil {
		return 0, err
	}
	audits := make([]domain.AuditEntry, len(ls))
	for i, l := range ls {
		audits[i] = domain.AuditEntry{ProgrammeID: ptr(l.ProgrammeID), ActorID: a.ID, Action: "learner.erase", TargetType: "learner",
			TargetID: l.ID, Reason: rule, OccurredAt: now}
	}
	// Report only what will commit: a batch whose audit write fails is
	// rolled back whole, so it erased nobody.
	if err := s.st.AppendAudits(ctx, audits); err != nil {
		return 0, err
	}
	return len(done), nil
}

// RequestErasure: the learner asks to be erased (CTL-11). Access ends at once;
// the erasure happens now, or waits for the controller where it must (ONC-5).
func (s *Service) RequestErasure(ctx context.Context, reason string) (domain.DataRequest, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.DataRequest{}, err
	}
	id, err := selfLearner(a)
	if err != nil {
		return domain.DataRequest{}, err
	}
	reason, err = cleanText("reason", reason, 0, 1000)
	if err != nil {
		return domain.DataRequest{}, err
	}
	var out domain.DataRequest
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		l, err := s.st.GetLearner(ctx, id, true)
		if err != nil {
			return err
		}
		if l.Status == domain.StatusErased {
			return apperr.Conflictf("the learner has been erased")
		}
		p, err := s.st.GetProgramme(ctx, l.ProgrammeID)
		if err != nil {
			return err
		}
		now := s.clock()
		if l.Status == domain.StatusRemovalScheduled && l.RemovalReason != nil && *l.RemovalReason == domain.RemovalErasureRequested {
			// Asked already: answer with the open request, write nothing.
			reqs, err := s.st.DataRequestsByLearner(ctx, l.ID)
			if err != nil {
				return err
			}
			for _, r := range reqs {
				if r.Status == domain.RequestAwaitingApproval || r.Status == domain.RequestPending || r.Status == domain.RequestApproved {
					out = r
					return nil
				}
			}
		}
		// An active learner, or one only scheduled for inactivity, leaves at
		// their own request now; a leaver keeps their scheduled removal.
		if domain.BulkSchedule(domain.RemovalErasureRequested).Allows(l) {
			var due *time.Time
			if !p.Settings.ErasureNeedsApproval {
				due = &now
			}
			c := &change{L: l}
			if err := c.do(c.L.RequestErasure(due, now)); err != nil {
				return err
			}
			if err := s.commit(ctx, a, c); err != nil {
				return err
			}
			l = c.L
			if _, err := s.st.RevokeLearnerSessions(ctx, l.ID, now); err != nil {
				return err
			}
		}
		if err := s.audit(ctx, a, &l.ProgrammeID, "learner.erasure.request", "learner", l.ID, "", map[string]any{"rule": "CTL-11"}); err != nil {
			return err
		}
		r, err := s.openRequest(ctx, a, l, domain.RemovalErasureRequested, reason)
		if err != nil {
			return err
		}
		if !p.Settings.ErasureNeedsApproval {
			// No controller approval needed: carry it out now (GEN-4: an
			// explicit request does not wait).
			r.Status, r.DecidedAt, r.CompletedAt = domain.RequestCompleted, &now, &now
			r.DecidedBy = ptr(a.ID)
			if err := s.st.UpdateDataRequest(ctx, r); err != nil {
				return err
			}
			if _, err := s.erase(ctx, a, []string{l.ID}, "CTL-11"); err != nil {
				return err
			}
		}
		out = r
		return nil
	})
	return out, err
}

// readRequest: visible to the learner's organisation's admins and programme
// admins; approval only by the organisation's own admins (ONC-5).
func (s *Service) readRequest(ctx context.Context, a *domain.Actor, id string, forUpdate bool) (domain.DataRequest, error) {
	if !validID(id) {
		return domain.DataRequest{}, notFound("data request")
	}
	r, err := s.st.GetDataRequest(ctx, id, forUpdate)
	if err != nil {
		if apperr.CodeOf(err) == apperr.NotFound {
			return r, notFound("data request")
		}
		return r, err
	}
	if !(a.System || a.Bootstrap || a.ProgrammeAdmin(r.ProgrammeID) || a.OrganisationAdmin(r.OrganisationID)) {
		return domain.DataRequest{}, notFound("data request")
	}
	return r, nil
}

// ApproveDataRequest: an admin of the learner's own organisation authorises
// the erasure (ONC-5); it is carried out in the same transaction.
func (s *Service) ApproveDataRequest(ctx context.Context, requestID, note string) (domain.DataRequest, error) {
	return s.decideRequest(ctx, requestID, note, true)
}

// RejectDataRequest refuses it, with a reason; a learner whose erasure was
// only requested regains what they had.
func (s *Service) RejectDataRequest(ctx context.Context, requestID, reason string) (domain.DataRequest, error) {
	if _, err := cleanText("reason", reason, 1, 1000); err != nil {
		return domain.DataRequest{}, err
	}
	return s.decideRequest(ctx, requestID, reason, false)
}

func (s *Service) decideRequest(ctx context.Context, requestID, note string, approve bool) (domain.DataRequest, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.DataRequest{}, err
	}
	note, err = cleanText("note", note, 0, 1000)
	if err != nil {
		return domain.DataRequest{}, err
	}
	var out domain.DataRequest
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		r, err := s.readRequest(ctx, a, requestID, true)
		if err != nil {
			return err
		}
		if !a.System && !a.OrganisationAdmin(r.OrganisationID) {
			return apperr.Forbiddenf("only an admin of the learner's own organisation can decide this request").WithRule("ONC-5")
		}
		if r.Status != domain.RequestAwaitingApproval && r.Status != domain.RequestPending {
			return apperr.Conflictf("the request is already %s", r.Status)
		}
		now := s.clock()
		r.DecidedBy, r.DecidedAt, r.DecisionNote = ptr(a.ID), &now, note
		if approve {
			l, err := s.st.GetLearner(ctx, r.LearnerID, true)
			if err != nil {
				return err
			}
			if l.Status != domain.StatusWithdrawn && l.Status != domain.StatusRemovalScheduled && l.Status != domain.StatusErased {
				return apperr.Conflictf("the learner is no longer leaving (status %s)", l.Status)
			}
			r.Status, r.CompletedAt = domain.RequestCompleted, &now
			if err := s.st.UpdateDataRequest(ctx, r); err != nil {
				return err
			}
			if err := s.audit(ctx, a, &r.ProgrammeID, "data_request.approve", "learner", r.LearnerID, note,
				map[string]any{"dataRequestId": r.ID, "rule": "ONC-5"}); err != nil {
				return err
			}
			if _, err := s.erase(ctx, a, []string{r.LearnerID}, "ONC-5"); err != nil {
				return err
			}
		} else {
			r.Status = domain.RequestRejected
			if err := s.st.UpdateDataRequest(ctx, r); err != nil {
				return err
			}
			if err := s.audit(ctx, a, &r.ProgrammeID, "data_request.reject", "learner", r.LearnerID, note,
				map[string]any{"dataRequestId": r.ID}); err != nil {
				return err
			}
			if r.Origin == domain.RemovalErasureRequested {
				l, err := s.st.GetLearner(ctx, r.LearnerID, true)
				if err != nil {
					return err
				}
				if l.RemovalReason != nil && *l.RemovalReason == domain.RemovalErasureRequested {
					if _, err := s.changeLocked(ctx, a, l, func(ctx context.Context, c *change) error {
						return s.cancelRemoval(ctx, a, c, domain.RemovalErasureRequested)
					}); err != nil {
						return err
					}
				}
			}
		}
		out = r
		return nil
	})
	return out, err
}

// cancelRemoval cancels a learner's removal scheduled for reason, gives
// access back when nothing is pending (a second transition, so a second
// version), and closes an erasure request that no longer has a removal
// behind it. It writes the change with the caller's audit entry.
func (s *Service) cancelRemoval(ctx context.Context, a *domain.Actor, c *change, reason domain.RemovalReason) error {
	if err := c.do(c.L.CancelRemoval(reason, s.clock())); err != nil {
		return err
	}
	return s.afterCancel(ctx, a, c)
}

// afterCancel follows a cancelled removal: access back when nothing is
// pending, and an open erasure request closed.
func (s *Service) afterCancel(ctx context.Context, a *domain.Actor, c *change) error {
	if err := s.restore(ctx, c); err != nil {
		return err
	}
	reqs, err := s.st.DataRequestsByLearner(ctx, c.L.ID)
	if err != nil {
		return err
	}
	for _, r := range reqs {
		if r.Status == domain.RequestAwaitingApproval || r.Status == domain.RequestPending {
			now := s.clock()
			r.Status, r.DecidedBy, r.DecidedAt, r.DecisionNote = domain.RequestRejected, ptr(a.ID), &now, "removal cancelled"
			if err := s.st.UpdateDataRequest(ctx, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// DataRequests lists a programme's requests: programme admins see all, an
// organisation admin their own organisation's.
func (s *Service) DataRequests(ctx context.Context, programmeID string, organisationID *string, statuses []domain.DataRequestStatus, first int, after string) ([]domain.DataRequest, bool, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return nil, false, err
	}
	p, err := s.Programme(ctx, programmeID)
	if err != nil {
		return nil, false, err
	}
	if first <= 0 || first > 500 {
		return nil, false, apperr.Invalid("first", "first must be between 1 and 500")
	}
	if after != "" && !validID(after) {
		return nil, false, apperr.Invalid("after", "malformed cursor")
	}
	f := domain.DataRequestFilter{ProgrammeID: p.ID, Statuses: statuses, AfterID: after, Limit: first + 1}
	full := a.Bootstrap || a.System || a.ProgrammeAdmin(p.ID)
	if organisationID != nil {
		o, err := s.readOrganisation(ctx, a, *organisationID)
		if err != nil || o.ProgrammeID != p.ID || (!full && !a.OrganisationAdmin(o.ID)) {
			return nil, false, notFound("organisation").WithField("organisationId")
		}
		f.OrganisationIDs = []string{o.ID}
	} else if !full {
		for _, g := range a.Grants {
			if g.Role == domain.RoleOrganisationAdmin && g.ProgrammeID == p.ID && g.OrganisationID != nil {
				f.OrganisationIDs = append(f.OrganisationIDs, *g.OrganisationID)
			}
		}
		if len(f.OrganisationIDs) == 0 {
			return nil, false, apperr.Forbiddenf("your role cannot list data requests")
		}
	}
	rs, err := s.st.ListDataRequests(ctx, f)
	if err != nil {
		return nil, false, err
	}
	more := len(rs) > first
	if more {
		rs = rs[:first]
	}
	return rs, more, nil
}

// adminChange runs fn on a learner the actor manages, locked, in one
// transaction, after checking the required reason: the common frame of the
// organisation admins' changes to one learner.
func (s *Service) adminChange(ctx context.Context, learnerID, reason string, fn func(ctx context.Context, a *domain.Actor, l domain.Learner, reason string) (domain.Learner, error)) (domain.Learner, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.Learner{}, err
	}
	if reason, err = cleanText("reason", reason, 1, 1000); err != nil {
		return domain.Learner{}, err
	}
	var out domain.Learner
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		l, err := s.readLearner(ctx, a, learnerID, true)
		if err != nil {
			return err
		}
		if !canManageLearner(a, l) {
			return apperr.Forbiddenf("your role cannot change this learner")
		}
		out, err = fn(ctx, a, l, reason)
		return err
	})
	return out, err
}

// MarkLeaver: an admin reports that a learner has left their organisation
// (CTL-9). Access ends at once; erasure follows the leaver grace period.
func (s *Service) MarkLeaver(ctx context.Context, learnerID, reason string) (domain.Learner, error) {
	return s.adminChange(ctx, learnerID, reason, func(ctx context.Context, a *domain.Actor, l domain.Learner, reason string) (domain.Learner, error) {
		p, err := s.st.GetProgramme(ctx, l.ProgrammeID)
		if err != nil {
			return l, err
		}
		return s.changeLocked(ctx, a, l, func(ctx context.Context, c *change) error {
			now := s.clock()
			if err := c.do(c.L.ScheduleRemoval(domain.RemovalLeaver, ptr(now.Add(p.Settings.LeaverGracePeriod)), now)); err != nil {
				return err
			}
			if _, err := s.st.RevokeLearnerSessions(ctx, c.L.ID, now); err != nil {
				return err
			}
			c.audit("learner.leaver", reason, map[string]any{"rule": "CTL-9"})
			return nil
		})
	})
}

// ReinstateLearner cancels a scheduled removal within its grace (GEN-4).
func (s *Service) ReinstateLearner(ctx context.Context, learnerID, reason string) (domain.Learner, error) {
	return s.adminChange(ctx, learnerID, reason, func(ctx context.Context, a *domain.Actor, l domain.Learner, reason string) (domain.Learner, error) {
		return s.changeLocked(ctx, a, l, func(ctx context.Context, c *change) error {
			if err := c.do(c.L.Reinstate(s.clock())); err != nil {
				return err
			}
			if err := s.afterCancel(ctx, a, c); err != nil {
				return err
			}
			c.audit("learner.reinstate", reason, map[string]any{"rule": "GEN-4"})
			return nil
		})
	})
}

// scheduleOrganisationRemoval: an organisation leaving the programme schedules
// every learner of it (CTL-9), with the automated-removal grace.
func (s *Service) scheduleOrganisationRemoval(ctx context.Context, a *domain.Actor, p domain.Programme, orgID string) (int, error) {
	ids, err := s.st.OrganisationLearnerIDs(ctx, orgID, domain.BulkSchedule(domain.RemovalOrganisationLeft))
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	now := s.clock()
	moved, err := s.st.ScheduleRemoval(ctx, ids, domain.BulkSchedule(domain.RemovalOrganisationLeft), domain.RemovalOrganisationLeft, now.Add(p.Settings.AutomatedRemovalGrace), now)
	if err != nil {
		return 0, err
	}
	return len(moved), s.auditEach(ctx, a, p.ID, moved, "learner.schedule_removal", string(domain.RemovalOrganisationLeft))
}

func (s *Service) auditEach(ctx context.Context, a *domain.Actor, programmeID string, ids []string, action, reason string) error {
	now := s.clock()
	audits := make([]domain.AuditEntry, len(ids))
	for i, id := range ids {
		audits[i] = domain.AuditEntry{ProgrammeID: &programmeID, ActorID: a.ID, Action: action, TargetType: "learner",
			TargetID: id, Reason: reason, OccurredAt: now}
	}
	return s.st.AppendAudits(ctx, audits)
}
