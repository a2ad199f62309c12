package lifecycle

import (
	"context"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// SweepBatch is how many learners one sweep transaction handles: each batch
// commits on its own, so an interrupted sweep leaves every learner either
// fully processed or untouched, and a rerun picks up the rest.
const SweepBatch = 1000

// sweepLockKey is the advisory lock that keeps replicas from sweeping at once.
const sweepLockKey = 0x526f6c6c63616c6c // "Rollcall"

// SweepReport counts what a sweep did.
type SweepReport struct {
	ProgrammeID       string
	Skipped           bool // another replica holds the sweep lock
	Erased            int  // contract end, due removals, approved requests
	ScheduledInactive int
	RequestsOpened    int // ONC-5: due removals waiting for the controller
	ContractEnded     bool
	ContractWarned    int // CTL-6: learners warned of the coming contract end
}

// RunRetentionSweep applies the programme's retention rules now (CTL-6,
// CTL-7, CTL-9, GEN-4, GEN-5): contract end passed → everyone erased; no
// sign-in and no LMS activity within the inactivity limit → removal scheduled
// with the automated-removal grace; due removals erased (or, where erasure
// needs the controller, a data request opened); approved requests carried
// out. Set-based, in batches, idempotent.
func (s *Service) RunRetentionSweep(ctx context.Context, programmeID string) (SweepReport, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return SweepReport{}, err
	}
	p, err := s.Programme(ctx, programmeID)
	if err != nil {
		return SweepReport{}, err
	}
	if !isProgrammeAdmin(a, p.ID) {
		return SweepReport{}, apperr.Forbiddenf("only a programme admin can run the retention sweep")
	}
	unlock, ok, err := s.st.TryLock(ctx, sweepLockKey)
	if err != nil {
		return SweepReport{}, err
	}
	if !ok {
		return SweepReport{ProgrammeID: p.ID, Skipped: true}, nil
	}
	defer unlock()
	// The sweep decides irreversible things (CTL-6 erases everyone) on the
	// programme's rules: read them from the database, never from the
	// store's reference cache, which may hold a row another replica changed
	// in the last seconds (SweepAll lists them from the database too).
	ps, err := s.st.ListProgrammes(ctx, []string{p.ID})
	if err != nil {
		return SweepReport{}, err
	}
	if len(ps) != 1 {
		return SweepReport{}, notFound("programme")
	}
	return s.sweep(ctx, a, ps[0])
}

// SweepAll sweeps every programme (the scheduler and `rollcall sweep`).
func (s *Service) SweepAll(ctx context.Context) ([]SweepReport, error) {
	ctx = WithSystem(ctx, "retention-sweep")
	a, _ := s.Actor(ctx)
	unlock, ok, err := s.st.TryLock(ctx, sweepLockKey)
	if err != nil || !ok {
		return nil, err
	}
	defer unlock()
	ps, err := s.st.ListProgrammes(ctx, nil)
	if err != nil {
		return nil, err
	}
	// Feed rows older than the retention go; their cursors answer CURSOR_EXPIRED.
	// Pages read ahead from before the purge are dropped (readahead.go).
	if n, err := s.st.PurgeEvents(ctx, s.clock().Add(-s.feedRetention())); err != nil {
		return nil, err
	} else if n > 0 {
		s.feedAhead.forget()
	}
	if err := s.st.PurgeErasedIdentities(ctx, s.clock().Add(-24*time.Hour)); err != nil {
		return nil, err
	}
	var out []SweepReport
	for _, p := range ps {
		r, err := s.sweep(ctx, a, p)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *Service) sweep(ctx context.Context, a *domain.Actor, p domain.Programme) (SweepReport, error) {
	rep := SweepReport{ProgrammeID: p.ID}
	now := s.clock()
	// eachBatch pages candidate IDs and runs fn on each page in its own transaction.
	eachBatch := func(kind domain.SweepKind, cutoff time.Time, fn func(ctx context.Context, ids []string) error) error {
		after := ""
		for {
			ids, err := s.st.SweepCandidates(ctx, p.ID, kind, sweepGuard(kind), cutoff, after, SweepBatch)
			if err != nil || len(ids) == 0 {
				return err
			}
			if err := s.st.InTx(ctx, func(ctx context.Context) error { return fn(ctx, ids) }); err != nil {
				return err
			}
			after = ids[len(ids)-1]
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	// CTL-6: the contract has ended; everyone goes.
	if p.Settings.ContractEndsAt != nil && !now.Before(*p.Settings.ContractEndsAt) {
		rep.ContractEnded = true
		err := eachBatch(domain.SweepAll, now, func(ctx context.Context, ids []string) error {
			n, err := s.erase(ctx, a, ids, "CTL-6")
			rep.Erased += n
			return err
		})
		return rep, err
	}
	// CTL-6: warn ahead of the contract end, once per end date, through the feed.
	if end := p.Settings.ContractEndsAt; end != nil && !now.Before(end.Add(-p.Settings.ContractEndWarning)) &&
		(p.ContractWarnedFor == nil || !p.ContractWarnedFor.Equal(*end)) {
		err := s.st.InTx(ctx, func(ctx context.Context) error {
			n, err := s.st.WarnContractEnd(ctx, p.ID, domain.BulkContractEnding, *end, now)
			if err != nil || n == 0 {
				return err
			}
			rep.ContractWarned = n
			return s.audit(ctx, a, &p.ID, "programme.contract_end.warn", "programme", p.ID, "",
				map[string]any{"contractEndsAt": end.Format(time.RFC3339), "learners": n, "rule": "CTL-6"})
		})
		if err != nil {
			return rep, err
		}
	}
	// Due removals: erased, or handed to the controller (ONC-5).
	err := eachBatch(domain.SweepDue, now, func(ctx context.Context, ids []string) error {
		if !p.Settings.ErasureNeedsApproval {
			n, err := s.eraseWhere(ctx, a, ids, "GEN-4", &now)
			rep.Erased += n
			return err
		}
		ls, err := s.st.LearnersByIDs(ctx, ids)
		if err != nil {
			return err
		}
		for _, l := range ls {
			reason := domain.RemovalLeaver
			if l.RemovalReason != nil {
				reason = *l.RemovalReason
			}
			_, created, err := s.openRequestCreated(ctx, a, l, reason, "")
			if err != nil {
				return err
			}
			if created {
				rep.RequestsOpened++
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	// CTL-7 / GEN-5: inactivity schedules removal with the automated grace (GEN-4).
	if p.Settings.InactivityLimit != nil {
		cutoff := now.Add(-*p.Settings.InactivityLimit)
		due := now.Add(p.Settings.AutomatedRemovalGrace)
		err := eachBatch(domain.SweepInactive, cutoff, func(ctx context.Context, ids []string) error {
			moved, err := s.st.ScheduleRemoval(ctx, ids, domain.BulkSchedule(domain.RemovalInactivity), domain.RemovalInactivity, due, now)
			if err != nil {
				return err
			}
			rep.ScheduledInactive += len(moved)
			return s.auditEach(ctx, a, p.ID, moved, "learner.schedule_removal", string(domain.RemovalInactivity))
		})
		if err != nil {
			return rep, err
		}
	}
	// Approved requests not yet carried out (a crash between approval and erasure).
	reqs, err := s.st.ListDataRequests(ctx, domain.DataRequestFilter{ProgrammeID: p.ID,
		Statuses: []domain.DataRequestStatus{domain.RequestApproved}, Limit: 100000})
	if err != nil {
		return rep, err
	}
	for _, r := range reqs {
		err := s.st.InTx(ctx, func(ctx context.Context) error {
			n, err := s.erase(ctx, a, []string{r.LearnerID}, "ONC-5")
			if err != nil {
				return err
			}
			rep.Erased += n
			r.Status, r.CompletedAt = domain.RequestCompleted, ptr(s.clock())
			return s.st.UpdateDataRequest(ctx, r)
		})
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// RetentionPreview lists who would be scheduled or erased by asOf, and why
// (GEN-1, GEN-4); contract-end warnings show as CONTRACT_ENDED entries.
func (s *Service) RetentionPreview(ctx context.Context, programmeID string, asOf time.Time) ([]domain.Removal, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.Programme(ctx, programmeID)
	if err != nil {
		return nil, err
	}
	if !isProgrammeAdmin(a, p.ID) && !a.HasRoleIn(p.ID, domain.RoleAuditor) {
		return nil, apperr.Forbiddenf("only programme admins and auditors can preview retention")
	}
	var out []domain.Removal
	collect := func(kind domain.SweepKind, cutoff time.Time, mk func(l domain.Learner) domain.Removal) error {
		after := ""
		for {
			ids, err := s.st.SweepCandidates(ctx, p.ID, kind, sweepGuard(kind), cutoff, after, SweepBatch)
			if err != nil || len(ids) == 0 {
				return err
			}
			ls, err := s.st.LearnersByIDs(ctx, ids)
			if err != nil {
				return err
			}
			for _, l := range ls {
				out = append(out, mk(l))
			}
			after = ids[len(ids)-1]
			if len(out) > 100000 {
				return apperr.Invalid("asOf", "the preview is larger than 100,000 learners; choose an earlier date")
			}
		}
	}
	if end := p.Settings.ContractEndsAt; end != nil && !asOf.Before(end.Add(-p.Settings.ContractEndWarning)) {
		// CTL-6: from the warning period on, everyone is listed: WARN before
		// the end date, ERASE from it.
		action := "WARN"
		if !asOf.Before(*end) {
			action = "ERASE"
		}
		err := collect(domain.SweepAll, asOf, func(l domain.Learner) domain.Removal {
			return domain.Removal{LearnerID: l.ID, OrganisationID: l.OrganisationID, Reason: domain.RemovalContractEnded, Action: action, DueAt: *end}
		})
		if err != nil || action == "ERASE" {
			return out, err
		}
	}
	err = collect(domain.SweepDue, asOf, func(l domain.Learner) domain.Removal {
		r := domain.RemovalLeaver
		if l.RemovalReason != nil {
			r = *l.RemovalReason
		}
		return domain.Removal{LearnerID: l.ID, OrganisationID: l.OrganisationID, Reason: r, Action: "ERASE", DueAt: *l.RemovalDueAt}
	})
	if err != nil {
		return nil, err
	}
	if p.Settings.InactivityLimit != nil {
		limit := *p.Settings.InactivityLimit
		err = collect(domain.SweepInactive, asOf.Add(-limit), func(l domain.Learner) domain.Removal {
			return domain.Removal{LearnerID: l.ID, OrganisationID: l.OrganisationID, Reason: domain.RemovalInactivity, Action: "SCHEDULE",
				DueAt: l.LastActive().Add(limit)}
		})
	}
	return out, err
}

// sweepGuard is the domain's guard set each sweep condition reads: everyone
// not erased (contract end), the leaving (due removals), the members
// (inactivity).
func sweepGuard(kind domain.SweepKind) domain.Bulk {
	switch kind {
	case domain.SweepDue:
		return domain.BulkEraseDue
	case domain.SweepInactive:
		return domain.Bulk{From: domain.StillMember}
	}
	return domain.BulkErase
}
