package lifecycle

import (
	"context"
	"strings"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// MyData is the caller's own export (ONC-10, CTL-11).
func (s *Service) MyData(ctx context.Context) (map[string]any, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return nil, err
	}
	id, err := selfLearner(a)
	if err != nil {
		return nil, err
	}
	return s.export(ctx, a, id)
}

// PersonalDataExport is an admin producing the export on request; the
// export itself is audited.
func (s *Service) PersonalDataExport(ctx context.Context, learnerID string) (map[string]any, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return nil, err
	}
	l, err := s.readLearner(ctx, a, learnerID, false)
	if err != nil {
		return nil, err
	}
	if !canManageLearner(a, l) {
		return nil, apperr.Forbiddenf("your role cannot export this learner's data")
	}
	return s.export(ctx, a, l.ID)
}

// export builds one JSON document with everything held on the person:
// profile, organisation, group, courses, policy decisions with version
// labels, learning activity, data requests, sign-ins and the audit entries
// about them.
func (s *Service) export(ctx context.Context, a *domain.Actor, learnerID string) (map[string]any, error) {
	l, err := s.st.GetLearner(ctx, learnerID, false)
	if err != nil {
		return nil, err
	}
	o, err := s.st.GetOrganisation(ctx, l.OrganisationID)
	if err != nil {
		return nil, err
	}
	p, err := s.st.GetProgramme(ctx, l.ProgrammeID)
	if err != nil {
		return nil, err
	}
	doc := map[string]any{
		"exportedAt": s.clock().Format(time.RFC3339),
		"format":     "rollcall.personal-data/1",
		"programme":  map[string]any{"id": p.ID, "name": p.Name},
		"profile": map[string]any{"id": l.ID, "email": l.Email, "givenName": l.GivenName, "familyName": l.FamilyName,
			"status": l.Status, "createdAt": l.CreatedAt, "lastSignInAt": l.LastSignInAt, "lastActivityAt": l.LastActivityAt,
			"removalReason": l.RemovalReason, "removalDueAt": l.RemovalDueAt, "erasedAt": l.ErasedAt},
		"organisation": map[string]any{"id": o.ID, "name": o.Name},
		"retention":    domain.RetentionFor(l, p.Settings),
	}
	courses := []map[string]any{}
	if l.AccessGroupID != nil {
		g, err := s.st.GetAccessGroup(ctx, *l.AccessGroupID)
		if err != nil {
			return nil, err
		}
		doc["accessGroup"] = map[string]any{"id": g.ID, "name": g.Name}
		cs, err := s.st.CoursesByAccessGroups(ctx, []string{g.ID})
		if err != nil {
			return nil, err
		}
		for _, c := range cs[g.ID] {
			courses = append(courses, map[string]any{"id": c.ID, "lmsCourseId": c.LMSCourseID, "title": c.Title})
		}
	}
	doc["courses"] = courses
	acc, err := s.st.AcceptancesByLearners(ctx, []string{l.ID})
	if err != nil {
		return nil, err
	}
	vids := make([]string, len(acc))
	for i, x := range acc {
		vids[i] = x.PolicyVersionID
	}
	vs := map[string]domain.PolicyVersion{}
	pols := map[string]domain.Policy{}
	if len(vids) > 0 {
		list, err := s.st.PolicyVersionsByIDs(ctx, vids)
		if err != nil {
			return nil, err
		}
		var pids []string
		for _, v := range list {
			vs[v.ID] = v
			pids = append(pids, v.PolicyID)
		}
		ps, err := s.st.PoliciesByProgrammes(ctx, []string{l.ProgrammeID})
		if err != nil {
			return nil, err
		}
		for _, x := range ps {
			pols[x.ID] = x
		}
	}
	decisions := []map[string]any{}
	for _, x := range acc {
		v := vs[x.PolicyVersionID]
		decisions = append(decisions, map[string]any{"policy": pols[v.PolicyID].Name, "policyType": pols[v.PolicyID].Type,
			"versionId": v.ID, "versionLabel": v.Label, "decision": x.Decision, "ageConfirmed": x.AgeConfirmed,
			"givenBy": x.GivenBy, "note": x.Note, "decidedAt": x.DecidedAt})
	}
	doc["policyDecisions"] = decisions
	act, err := s.st.ActivityByLearner(ctx, l.ID)
	if err != nil {
		return nil, err
	}
	activity := []map[string]any{}
	for _, x := range act {
		activity = append(activity, map[string]any{"courseId": x.CourseID, "state": x.State, "completedAt": x.CompletedAt,
			"lastAccessAt": x.LastAccessAt, "observedAt": x.ObservedAt, "updatedAt": x.UpdatedAt})
	}
	doc["learningActivity"] = activity
	reqs, err := s.st.DataRequestsByLearner(ctx, l.ID)
	if err != nil {
		return nil, err
	}
	requests := []map[string]any{}
	for _, r := range reqs {
		requests = append(requests, map[string]any{"id": r.ID, "kind": r.Kind, "origin": r.Origin, "status": r.Status,
			"reason": r.Reason, "requestedAt": r.RequestedAt, "decidedAt": r.DecidedAt, "decisionNote": r.DecisionNote, "completedAt": r.CompletedAt})
	}
	doc["dataRequests"] = requests
	ids, err := s.st.IdentitiesByLearner(ctx, l.ID)
	if err != nil {
		return nil, err
	}
	signIns := []map[string]any{}
	for _, x := range ids {
		signIns = append(signIns, map[string]any{"issuer": x.Issuer, "subject": x.Subject, "linkedAt": x.CreatedAt})
	}
	doc["signIns"] = signIns
	audit, err := s.st.AuditAbout(ctx, l.ID)
	if err != nil {
		return nil, err
	}
	entries := []map[string]any{}
	for _, e := range audit {
		entries = append(entries, map[string]any{"action": e.Action, "actorId": e.ActorID, "reason": e.Reason,
			"details": e.Details, "occurredAt": e.OccurredAt})
	}
	doc["auditEntries"] = entries
	if err := s.st.InTx(ctx, func(ctx context.Context) error {
		return s.audit(ctx, a, &l.ProgrammeID, "learner.export", "learner", l.ID, "", map[string]any{"rule": "ONC-10"})
	}); err != nil {
		return nil, err
	}
	return doc, nil
}

// OrganisationReport: aggregates only, for the organisation's admins and
// programme staff (ONC-7). Erasure does not change the figures (GEN-3):
// erased learners stay counted as ERASED, their decisions stay counted, and
// their activity is kept as anonymous totals.
func (s *Service) OrganisationReport(ctx context.Context, organisationID string) (map[string]any, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.readOrganisation(ctx, a, organisationID)
	if err != nil {
		return nil, err
	}
	byStatus, byGroup, byVersion, byActivity, err := s.st.OrganisationCounts(ctx, o.ID)
	if err != nil {
		return nil, err
	}
	m := func(cs []domain.Count) map[string]int64 {
		out := map[string]int64{}
		for _, c := range cs {
			out[c.K] = c.N
		}
		return out
	}
	var total int64
	for _, c := range byStatus {
		total += c.N
	}
	labels, err := s.reportLabels(ctx, o, byGroup, byVersion, byActivity)
	if err != nil {
		return nil, err
	}
	return map[string]any{"organisationId": o.ID, "organisationName": o.Name, "generatedAt": s.clock(), "learnersEver": total,
		"byStatus": m(byStatus), "byAccessGroup": m(byGroup), "policyDecisions": m(byVersion), "activity": m(byActivity),
		"labels": labels}, nil
}

// reportLabels names what a report's keys identify, for the admin reading it:
// an access group's name, a policy's name and version label with the
// decision, a course's title and LMS ID with the state. Names of things, never
// of people (ONC-7).
func (s *Service) reportLabels(ctx context.Context, o domain.Organisation, byGroup, byVersion, byActivity []domain.Count) (map[string]string, error) {
	labels := map[string]string{}
	var groupIDs, versionIDs, courseIDs []string
	for _, c := range byGroup {
		if c.K == "" {
			labels[""] = "(no access group)"
		} else {
			groupIDs = append(groupIDs, c.K)
		}
	}
	for _, c := range byVersion {
		id, _, _ := strings.Cut(c.K, ":")
		versionIDs = append(versionIDs, id)
	}
	for _, c := range byActivity {
		id, _, _ := strings.Cut(c.K, ":")
		courseIDs = append(courseIDs, id)
	}
	groups, err := s.st.AccessGroupsByIDs(ctx, groupIDs)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		labels[g.ID] = g.Name
	}
	versions, err := s.st.PolicyVersionsByIDs(ctx, versionIDs)
	if err != nil {
		return nil, err
	}
	policies, err := s.st.PoliciesByProgrammes(ctx, []string{o.ProgrammeID})
	if err != nil {
		return nil, err
	}
	policyName := map[string]string{}
	for _, p := range policies {
		policyName[p.ID] = p.Name
	}
	version := map[string]string{}
	for _, v := range versions {
		version[v.ID] = policyName[v.PolicyID] + " " + v.Label
	}
	for _, c := range byVersion {
		id, decision, _ := strings.Cut(c.K, ":")
		if name, ok := version[id]; ok {
			labels[c.K] = name + ": " + decision
		}
	}
	courses, err := s.st.CoursesByIDs(ctx, courseIDs)
	if err != nil {
		return nil, err
	}
	course := map[string]string{}
	for _, c := range courses {
		course[c.ID] = c.Title + " (" + c.LMSCourseID + ")"
	}
	for _, c := range byActivity {
		id, state, _ := strings.Cut(c.K, ":")
		if name, ok := course[id]; ok {
			labels[c.K] = name + ": " + state
		}
	}
	return labels, nil
}
