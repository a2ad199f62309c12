package lifecycle

import (
	"context"
	"fmt"
	"math"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

type RosterLine struct {
	Line    int
	Code    string
	Reason  string
	Message string
}

// RosterReport: what a reconciliation found and did (CTL-9, GEN-4).
type RosterReport struct {
	DryRun         bool
	RosterSize     int
	ActiveLearners int
	ToRemove       int
	Share          float64
	Threshold      float64
	Applied        bool
	RemovalDueAt   string
	Learners       []string // every learner scheduled (or, in a dry run, who would be)
	BadLines       []RosterLine
}

// MaxRosterLines bounds one reconciliation.
const MaxRosterLines = 500_000

// ReconcileRoster compares the organisation's current staff list with its
// learners: those not on it are scheduled for removal (ROSTER_RECONCILIATION)
// after the automated-removal grace. Bad lines are reported, never guessed. A
// safety valve refuses to remove more than the threshold share of the
// organisation (default 10%) unless allowRemovingMoreThan is raised; an empty
// roster is therefore refused. dryRun writes nothing.
//
// With atomic (the default in the API) a roster with any bad line applies
// nothing (invariant 4): a mistyped address would otherwise schedule that
// person's removal. Without it, the good lines apply and the bad are reported.
func (s *Service) ReconcileRoster(ctx context.Context, organisationID string, emails []string, dryRun, atomic bool, allowRemovingMoreThan *float64) (RosterReport, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return RosterReport{}, err
	}
	o, err := s.manageOrganisation(ctx, a, organisationID, false)
	if err != nil {
		return RosterReport{}, err
	}
	if len(emails) > MaxRosterLines {
		return RosterReport{}, apperr.Invalid("emails", "at most %d lines per roster", MaxRosterLines)
	}
	p, err := s.st.GetProgramme(ctx, o.ProgrammeID)
	if err != nil {
		return RosterReport{}, err
	}
	rep := RosterReport{DryRun: dryRun, Threshold: p.Settings.RosterRemovalThreshold}
	if allowRemovingMoreThan != nil {
		if *allowRemovingMoreThan < 0 || *allowRemovingMoreThan > 1 || math.IsNaN(*allowRemovingMoreThan) {
			return rep, apperr.Invalid("allowRemovingMoreThan", "a share between 0 and 1")
		}
		rep.Threshold = math.Max(rep.Threshold, *allowRemovingMoreThan)
	}
	rules, err := s.st.DomainsByOrganisations(ctx, []string{o.ID})
	if err != nil {
		return rep, err
	}
	clean := make([]string, 0, len(emails))
	for i, raw := range emails {
		em, err := domain.ParseEmail(raw)
		if err != nil {
			e, _ := normaliseEmailErr(err)
			rep.BadLines = append(rep.BadLines, RosterLine{Line: i + 1, Code: string(e.Code), Reason: e.Reason, Message: e.Message})
			continue
		}
		owned := false
		for _, d := range rules {
			owned = owned || domain.DomainCovers(d.Domain, d.IncludeSubdomains, em.Domain)
		}
		if !owned {
			// Reported, not guessed: another organisation's address on this
			// roster is a mistake to look at, not a reason to keep or remove anyone.
			rep.BadLines = append(rep.BadLines, RosterLine{Line: i + 1, Code: string(apperr.BadUserInput), Reason: "DOMAIN_NOT_OWNED",
				Message: "the email's domain is not one of this organisation's"})
			continue
		}
		clean = append(clean, em.String())
	}
	rep.RosterSize = len(clean)
	leavers, active, err := s.st.RosterLeavers(ctx, o.ID, domain.Bulk{From: domain.StillMember}, clean)
	if err != nil {
		return rep, err
	}
	rep.ActiveLearners, rep.ToRemove, rep.Learners = active, len(leavers), leavers
	if active > 0 {
		rep.Share = float64(len(leavers)) / float64(active)
	}
	due := s.clock().Add(p.Settings.AutomatedRemovalGrace)
	rep.RemovalDueAt = due.Format("2006-01-02T15:04:05Z")
	if rep.ToRemove > 0 && rep.Share > rep.Threshold {
		return rep, apperr.Invalid("allowRemovingMoreThan",
			"this roster would remove %d of %d learners (%.1f%%), more than the safety threshold of %.1f%%; check the roster, or pass allowRemovingMoreThan",
			rep.ToRemove, active, 100*rep.Share, 100*rep.Threshold).WithReason("SAFETY_VALVE").WithRule("GEN-4")
	}
	if dryRun || rep.ToRemove == 0 || (atomic && len(rep.BadLines) > 0) {
		return rep, nil
	}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		moved, err := s.st.ScheduleRemoval(ctx, leavers, domain.BulkSchedule(domain.RemovalRoster), domain.RemovalRoster, due, s.clock())
		if err != nil {
			return err
		}
		rep.Learners = moved
		if err := s.audit(ctx, a, &o.ProgrammeID, "roster.reconcile", "organisation", o.ID, "",
			map[string]any{"rosterSize": rep.RosterSize, "scheduled": len(moved), "rule": "CTL-9"}); err != nil {
			return err
		}
		return s.auditEach(ctx, a, o.ProgrammeID, moved, "learner.schedule_removal", string(domain.RemovalRoster))
	})
	if err != nil {
		return RosterReport{DryRun: dryRun}, err
	}
	rep.Applied = true
	rep.ToRemove = len(rep.Learners)
	return rep, nil
}

func (r RosterReport) String() string {
	return fmt.Sprintf("roster %d, active %d, remove %d (%.1f%%)", r.RosterSize, r.ActiveLearners, r.ToRemove, 100*r.Share)
}
