package store

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/migrations"
)

// ---- programmes ----

func (s *Store) CreateProgramme(ctx context.Context, p domain.Programme, bodies []domain.GoverningBody) error {
	db := s.db(ctx)
	defer s.refChanged(ctx)()
	r := toProgrammeRow(p)
	if err := db.Create(&r).Error; err != nil {
		return translate(err)
	}
	for _, b := range bodies {
		row := governingBodyRow{ID: b.ID, ProgrammeID: p.ID, Name: b.Name, Role: string(b.Role),
			OrganisationID: b.OrganisationID, CreatedAt: b.CreatedAt.UTC()}
		if err := db.Create(&row).Error; err != nil {
			return translate(err)
		}
	}
	return nil
}

// GetProgramme reads a programme; outside a transaction through the cache
// of rows nearly every request reads (refcache.go).
func (s *Store) GetProgramme(ctx context.Context, id string) (domain.Programme, error) {
	return s.cachedProgramme(ctx, id, func() (domain.Programme, error) {
		var r programmeRow
		if err := s.db(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
			return domain.Programme{}, translate(err)
		}
		return r.domain(), nil
	})
}

func (s *Store) ProgrammeByName(ctx context.Context, name string) (domain.Programme, error) {
	var r programmeRow
	if err := s.db(ctx).Where("name = ?", name).Take(&r).Error; err != nil {
		return domain.Programme{}, translate(err)
	}
	return r.domain(), nil
}

// ListProgrammes returns the programmes with the given IDs, or all when ids is nil.
func (s *Store) ListProgrammes(ctx context.Context, ids []string) ([]domain.Programme, error) {
	q := s.db(ctx).Order("name")
	if ids != nil {
		if len(ids) == 0 {
			return nil, nil
		}
		q = q.Where("id IN ?", ids)
	}
	var rows []programmeRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, programmeRow.domain), nil
}

func (s *Store) UpdateProgrammeSettings(ctx context.Context, id string, set domain.RuleSettings, at time.Time) error {
	var r programmeRow
	setSettings(&r, set)
	defer s.refChanged(ctx)()
	res := s.db(ctx).Model(&programmeRow{}).Where("id = ?", id).Updates(map[string]any{
		"minimum_age": r.MinimumAge, "erasure_needs_approval": r.ErasureNeedsApproval,
		"withdrawal_delay_s": r.WithdrawalDelayS, "leaver_grace_s": r.LeaverGraceS,
		"automated_grace_s": r.AutomatedGraceS, "inactivity_limit_s": r.InactivityLimitS,
		"contract_ends_at": r.ContractEndsAt, "contract_warning_s": r.ContractWarningS,
		"roster_threshold": r.RosterThreshold, "lms_url": r.LMSURL, "updated_at": at.UTC(),
	})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return translate(gorm.ErrRecordNotFound)
	}
	return nil
}

func (s *Store) GoverningBodies(ctx context.Context, programmeID string) ([]domain.GoverningBody, error) {
	var rows []governingBodyRow
	if err := s.db(ctx).Where("programme_id = ?", programmeID).Order("created_at, name").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, governingBodyRow.domain), nil
}

func (s *Store) GoverningBodiesByProgrammes(ctx context.Context, ids []string) ([]domain.GoverningBody, error) {
	var rows []governingBodyRow
	if err := s.db(ctx).Where("programme_id IN ?", ids).Order("created_at, name").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, governingBodyRow.domain), nil
}

func (s *Store) SetGoverningBodyOrganisation(ctx context.Context, bodyID, orgID string) error {
	return translate(s.db(ctx).Model(&governingBodyRow{}).Where("id = ?", bodyID).Update("organisation_id", orgID).Error)
}

// ---- organisations ----

func (s *Store) CreateOrganisation(ctx context.Context, o domain.Organisation) error {
	defer s.refChanged(ctx)()
	r := organisationRow{ID: o.ID, ProgrammeID: o.ProgrammeID, Name: o.Name, Kind: string(o.Kind),
		Status: string(o.Status), CreatedAt: o.CreatedAt.UTC(), AdmittedAt: utcp(o.AdmittedAt), RemovedAt: utcp(o.RemovedAt)}
	return translate(s.db(ctx).Create(&r).Error)
}

// GetOrganisation reads one organisation from the database, never from the
// reference cache: its callers decide on its status whether a learner may be
// created in it (sign-in, admins, imports, directories; CTL-3, CTL-9).
func (s *Store) GetOrganisation(ctx context.Context, id string) (domain.Organisation, error) {
	return readOne(s, ctx, "SELECT "+organisationColumns+" FROM organisations WHERE id = ?", []any{id}, (*organisationRow).fields, organisationRow.domain)
}

// GetOrganisationShared reads an organisation inside the caller's
// transaction holding the organisation's lock in shared mode until the
// transaction ends; SetOrganisationStatus takes it exclusively (SQLite has
// one writer at a time and needs neither). So a status change waits for the
// transactions reading this way, or they wait for it and then read the new
// status. It is a PostgreSQL advisory lock rather than FOR SHARE on the row:
// every first sign-in of an organisation takes it, and row share locks taken
// by many transactions at once are written into the row (MultiXacts), which
// cost first sign-ins a fifth of their rate.
//
// It also returns the organisation's programme's contract end, read in the
// same statement: a learner is written in that transaction only while the
// contract runs (CTL-6), decided on what the transaction reads itself, not
// on the reference cache, for the price of a join.
func (s *Store) GetOrganisationShared(ctx context.Context, id string) (domain.Organisation, *time.Time, error) {
	if err := s.organisationLock(ctx, id, false); err != nil {
		return domain.Organisation{}, nil, err
	}
	type row struct {
		o   organisationRow
		end *time.Time
	}
	r, err := readOne(s, ctx, "SELECT "+organisationColumnsO+", p.contract_ends_at FROM organisations o JOIN programmes p ON p.id = o.programme_id WHERE o.id = ?",
		[]any{id}, func(r *row) []any { return append(r.o.fields(), &r.end) }, func(r row) row { return r })
	if err != nil {
		return domain.Organisation{}, nil, err
	}
	return r.o.domain(), utcp(r.end), nil
}

func (s *Store) organisationLock(ctx context.Context, id string, exclusive bool) error {
	if s.dialect != migrations.Postgres {
		return nil
	}
	fn := "pg_advisory_xact_lock_shared"
	if exclusive {
		fn = "pg_advisory_xact_lock"
	}
	h := fnv.New64a()
	h.Write([]byte("rollcall-organisation:" + id))
	if s.later(ctx, `SELECT `+fn+`(?)`, int64(h.Sum64())) {
		return nil // held before the transaction's next statement runs (pgtx.go)
	}
	return translate(s.db(ctx).Exec(`SELECT `+fn+`(?)`, int64(h.Sum64())).Error)
}

func (s *Store) OrganisationByName(ctx context.Context, programmeID, name string) (domain.Organisation, error) {
	var r organisationRow
	if err := s.db(ctx).Where("programme_id = ? AND name = ?", programmeID, name).Take(&r).Error; err != nil {
		return domain.Organisation{}, translate(err)
	}
	return r.domain(), nil
}

// OrganisationsByProgrammes returns organisations of the programmes, optionally
// restricted to the given organisation IDs (an organisation admin's scope).
func (s *Store) OrganisationsByProgrammes(ctx context.Context, programmeIDs []string, only []string) ([]domain.Organisation, error) {
	cond, arg, none := s.anyID("programme_id", programmeIDs)
	q, args := "SELECT "+organisationColumns+" FROM organisations WHERE "+cond, []any{arg}
	if only != nil {
		c, a, n := s.anyID("id", only)
		q, args, none = q+" AND "+c, append(args, a), none || n
	}
	if none {
		return []domain.Organisation{}, nil
	}
	return readAll(s, ctx, 0, q+" ORDER BY name", args, (*organisationRow).fields, organisationRow.domain)
}

func (s *Store) SetOrganisationStatus(ctx context.Context, id string, st domain.OrganisationStatus, at time.Time) error {
	defer s.refChanged(ctx)()
	// Taken exclusively, waiting for the transactions that read the
	// organisation to add a learner (GetOrganisationShared).
	if err := s.organisationLock(ctx, id, true); err != nil {
		return err
	}
	col := "admitted_at"
	if st == domain.OrgRemoved {
		col = "removed_at"
	}
	return translate(s.db(ctx).Model(&organisationRow{}).Where("id = ?", id).
		Updates(map[string]any{"status": string(st), col: at.UTC()}).Error)
}

// ---- membership proposals ----

func (s *Store) CreateProposal(ctx context.Context, p domain.MembershipProposal) error {
	r := toProposalRow(p)
	return translate(s.db(ctx).Create(&r).Error)
}

// GetProposal reads a proposal; forUpdate locks the row until the transaction
// ends so two approvals of one proposal serialise (PostgreSQL; SQLite has one writer).
func (s *Store) GetProposal(ctx context.Context, id string, forUpdate bool) (domain.MembershipProposal, error) {
	q := s.lockable(ctx, forUpdate)
	var r proposalRow
	if err := q.Where("id = ?", id).Take(&r).Error; err != nil {
		return domain.MembershipProposal{}, translate(err)
	}
	return r.domain(), nil
}

func (s *Store) ListProposals(ctx context.Context, programmeID string, status *domain.ProposalStatus) ([]domain.MembershipProposal, error) {
	q := s.db(ctx).Where("programme_id = ?", programmeID)
	if status != nil {
		q = q.Where("status = ?", string(*status))
	}
	var rows []proposalRow
	if err := q.Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, proposalRow.domain), nil
}

func (s *Store) UpdateProposal(ctx context.Context, p domain.MembershipProposal) error {
	r := toProposalRow(p)
	return translate(s.db(ctx).Model(&proposalRow{}).Where("id = ?", p.ID).Updates(map[string]any{
		"status": r.Status, "organisation_id": r.OrganisationID, "reason": r.Reason, "decided_at": r.DecidedAt,
	}).Error)
}

func (s *Store) AddApproval(ctx context.Context, a domain.MembershipApproval) error {
	r := approvalRow{ProposalID: a.ProposalID, GoverningBodyID: a.GoverningBodyID, ActorID: a.ActorID,
		Note: a.Note, ApprovedAt: a.ApprovedAt.UTC()}
	return translate(s.db(ctx).Create(&r).Error)
}

func (s *Store) ApprovalsByProposals(ctx context.Context, ids []string) ([]domain.MembershipApproval, error) {
	var rows []approvalRow
	if err := s.db(ctx).Where("proposal_id IN ?", ids).Order("approved_at").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, approvalRow.domain), nil
}

// ---- email domains ----

func (s *Store) CreateEmailDomain(ctx context.Context, d domain.DomainRule) error {
	r := emailDomainRow{ID: d.ID, OrganisationID: d.OrganisationID, Domain: d.Domain,
		IncludeSubdomains: d.IncludeSubdomains, AccessGroupID: d.AccessGroupID, CreatedAt: d.CreatedAt.UTC()}
	return translate(s.db(ctx).Create(&r).Error)
}

func (s *Store) GetEmailDomain(ctx context.Context, id string) (domain.DomainRule, error) {
	var r emailDomainRow
	if err := s.db(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return domain.DomainRule{}, translate(err)
	}
	return r.domain(), nil
}

// DeleteEmailDomain removes a domain rule; NOT_FOUND when there is none
// (removed meanwhile by another request).
func (s *Store) DeleteEmailDomain(ctx context.Context, id string) error {
	res := s.db(ctx).Where("id = ?", id).Delete(&emailDomainRow{})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return translate(gorm.ErrRecordNotFound)
	}
	return nil
}

func (s *Store) DomainsByOrganisations(ctx context.Context, orgIDs []string) ([]domain.DomainRule, error) {
	cond, arg, none := s.anyID("organisation_id", orgIDs)
	if none {
		return []domain.DomainRule{}, nil
	}
	return readAll(s, ctx, len(orgIDs), "SELECT "+emailDomainColumns+" FROM email_domains WHERE "+cond+" ORDER BY domain", []any{arg},
		(*emailDomainRow).fields, emailDomainRow.domain)
}

// DomainsRelatedTo returns every rule that is d itself, a parent of d, or under
// d: the candidates for an overlap or a match. Parents are found by exact
// lookup of d's suffixes so the query stays on the unique index.
func (s *Store) DomainsRelatedTo(ctx context.Context, d string) ([]domain.DomainRule, error) {
	var rows []emailDomainRow
	if err := s.db(ctx).Where("domain IN ? OR domain LIKE ?", suffixes(d), "%."+d).Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, emailDomainRow.domain), nil
}

// DomainsCovering returns the rules that are host or one of its parents.
func (s *Store) DomainsCovering(ctx context.Context, host string) ([]domain.DomainRule, error) {
	// One text[] parameter on PostgreSQL: one plan however many labels the
	// host has (an IN list is a statement per length).
	cond := "domain IN ?"
	if s.dialect == migrations.Postgres {
		cond = "domain = ANY(?)"
	}
	return readAll(s, ctx, 1, "SELECT "+emailDomainColumns+" FROM email_domains WHERE "+cond, []any{suffixes(host)},
		(*emailDomainRow).fields, emailDomainRow.domain)
}

func suffixes(d string) []string {
	out := []string{d}
	for {
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return out
		}
		d = d[i+1:]
		out = append(out, d)
	}
}

// ---- access groups and courses ----

func (s *Store) CreateAccessGroup(ctx context.Context, g domain.AccessGroup) error {
	defer s.refChanged(ctx)()
	r := accessGroupRow{ID: g.ID, OrganisationID: g.OrganisationID, Name: g.Name, IsDefault: g.IsDefault, CreatedAt: g.CreatedAt.UTC()}
	return translate(s.db(ctx).Create(&r).Error)
}

func (s *Store) GetAccessGroup(ctx context.Context, id string) (domain.AccessGroup, error) {
	var r accessGroupRow
	if err := s.db(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return domain.AccessGroup{}, translate(err)
	}
	return r.domain(), nil
}

// AccessGroupsByOrganisations lists the organisations' access groups, the
// default first. One organisation's groups (what a sign-in reads to find the default group)
// come through the reference cache outside transactions; groups are only
// ever created (CreateAccessGroup drops the cache).
func (s *Store) AccessGroupsByOrganisations(ctx context.Context, orgIDs []string) ([]domain.AccessGroup, error) {
	if len(orgIDs) == 1 && !s.inTx(ctx) {
		now := time.Now()
		m := func() map[string]refEntry[[]domain.AccessGroup] { return s.refs.orgGroups }
		if gs, ok := refGet(&s.refs, m, orgIDs[0], now); ok {
			return slices.Clone(gs), nil
		}
		gen := s.refs.generation()
		gs, err := s.accessGroupsByOrganisations(ctx, orgIDs)
		if err == nil {
			refPut(&s.refs, func() *map[string]refEntry[[]domain.AccessGroup] { return &s.refs.orgGroups }, orgIDs[0], gen, now, slices.Clone(gs))
		}
		return gs, err
	}
	return s.accessGroupsByOrganisations(ctx, orgIDs)
}

func (s *Store) accessGroupsByOrganisations(ctx context.Context, orgIDs []string) ([]domain.AccessGroup, error) {
	cond, arg, none := s.anyID("organisation_id", orgIDs)
	if none {
		return []domain.AccessGroup{}, nil
	}
	return readAll(s, ctx, len(orgIDs), "SELECT "+accessGroupColumns+" FROM access_groups WHERE "+cond+" ORDER BY is_default DESC, name", []any{arg},
		(*accessGroupRow).fields, accessGroupRow.domain)
}

// SetAccessGroupCourses replaces the group's course list.
func (s *Store) SetAccessGroupCourses(ctx context.Context, groupID string, courseIDs []string) error {
	db := s.db(ctx)
	if err := db.Where("access_group_id = ?", groupID).Delete(&accessGroupCourseRow{}).Error; err != nil {
		return translate(err)
	}
	if len(courseIDs) == 0 {
		return nil
	}
	rows := make([]accessGroupCourseRow, len(courseIDs))
	for i, c := range courseIDs {
		rows[i] = accessGroupCourseRow{AccessGroupID: groupID, CourseID: c}
	}
	return translate(db.Create(&rows).Error)
}

// CoursesByAccessGroups returns, per group ID, its courses ordered by LMS ID.
func (s *Store) CoursesByAccessGroups(ctx context.Context, groupIDs []string) (map[string][]domain.Course, error) {
	var groupID string
	var c courseRow
	cond, arg, none := s.anyID("agc.access_group_id", groupIDs)
	out := make(map[string][]domain.Course, len(groupIDs))
	if none {
		return out, nil
	}
	err := s.readRows(ctx, `SELECT agc.access_group_id, c.id, c.programme_id, c.lms_course_id, c.title, c.created_at
		FROM access_group_courses agc JOIN courses c ON c.id = agc.course_id WHERE `+cond+` ORDER BY c.lms_course_id`, []any{arg},
		[]any{&groupID, &c.ID, &c.ProgrammeID, &c.LMSCourseID, &c.Title, &c.CreatedAt}, func() error {
			out[groupID] = append(out[groupID], c.domain())
			return nil
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) CreateCourse(ctx context.Context, c domain.Course) error {
	r := courseRow{ID: c.ID, ProgrammeID: c.ProgrammeID, LMSCourseID: c.LMSCourseID, Title: c.Title, CreatedAt: c.CreatedAt.UTC()}
	return translate(s.db(ctx).Create(&r).Error)
}

func (s *Store) CoursesByIDs(ctx context.Context, ids []string) ([]domain.Course, error) {
	var rows []courseRow
	if err := s.db(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, courseRow.domain), nil
}

func (s *Store) CoursesByProgrammes(ctx context.Context, ids []string) ([]domain.Course, error) {
	var rows []courseRow
	if err := s.db(ctx).Where("programme_id IN ?", ids).Order("lms_course_id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, courseRow.domain), nil
}

// ---- policies ----

func (s *Store) CreatePolicy(ctx context.Context, p domain.Policy) error {
	r := policyRow{ID: p.ID, ProgrammeID: p.ProgrammeID, Name: p.Name, Type: string(p.Type),
		Audience: string(p.Audience), Compulsory: p.Compulsory, CreatedAt: p.CreatedAt.UTC()}
	return translate(s.db(ctx).Create(&r).Error)
}

func (s *Store) GetPolicy(ctx context.Context, id string) (domain.Policy, error) {
	var r policyRow
	if err := s.db(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return domain.Policy{}, translate(err)
	}
	return r.domain(), nil
}

func (s *Store) PoliciesByProgrammes(ctx context.Context, ids []string) ([]domain.Policy, error) {
	var rows []policyRow
	if err := s.db(ctx).Where("programme_id IN ?", ids).Order("created_at, name").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, policyRow.domain), nil
}

func (s *Store) CreatePolicyVersion(ctx context.Context, v domain.PolicyVersion) error {
	defer s.refChanged(ctx)()
	r := policyVersionRow{ID: v.ID, PolicyID: v.PolicyID, Label: v.Label, Summary: v.Summary, Content: v.Content,
		Status: string(v.Status), PublishedAt: v.PublishedAt.UTC(), ActivatedAt: utcp(v.ActivatedAt)}
	return translate(s.db(ctx).Create(&r).Error)
}

// ActivatePolicyVersion archives the policy's active version and activates v.
func (s *Store) ActivatePolicyVersion(ctx context.Context, policyID, versionID string, at time.Time) error {
	defer s.refChanged(ctx)()
	db := s.db(ctx)
	if err := db.Model(&policyVersionRow{}).Where("policy_id = ? AND status = ?", policyID, string(domain.VersionActive)).
		Update("status", string(domain.VersionArchived)).Error; err != nil {
		return translate(err)
	}
	return translate(db.Model(&policyVersionRow{}).Where("id = ?", versionID).
		Updates(map[string]any{"status": string(domain.VersionActive), "activated_at": at.UTC()}).Error)
}

func (s *Store) PolicyVersionsByPolicies(ctx context.Context, ids []string) ([]domain.PolicyVersion, error) {
	var rows []policyVersionRow
	if err := s.db(ctx).Where("policy_id IN ?", ids).Order("published_at, label").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, policyVersionRow.domain), nil
}

// ---- role grants ----

func (s *Store) CreateGrant(ctx context.Context, g domain.RoleGrant) error {
	r := grantRow{ID: g.ID, Issuer: g.Issuer, Subject: g.Subject, Role: string(g.Role), ProgrammeID: g.ProgrammeID,
		OrganisationID: g.OrganisationID, GoverningBodyID: g.GoverningBodyID, CreatedAt: g.CreatedAt.UTC(), CreatedBy: g.CreatedBy}
	s.grantsChanged(ctx)
	return insertNew(s.db(ctx), &r) // a subject may be an email (nopii.go)
}

func (s *Store) GetGrant(ctx context.Context, id string) (domain.RoleGrant, error) {
	var r grantRow
	if err := s.db(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return domain.RoleGrant{}, translate(err)
	}
	return r.domain(), nil
}

func (s *Store) DeleteGrant(ctx context.Context, id string) error {
	s.grantsChanged(ctx)
	return translate(s.db(ctx).Where("id = ?", id).Delete(&grantRow{}).Error)
}

func (s *Store) GrantsForIdentity(ctx context.Context, issuer, subject string) ([]domain.RoleGrant, error) {
	// Every first sign-in asks (its grants are not cached yet): read
	// without gorm, as the learner it looks up next.
	return readAll(s, ctx, 0, "SELECT "+grantColumns+" FROM role_grants WHERE issuer = ? AND subject = ? ORDER BY created_at",
		[]any{issuer, subject}, (*grantRow).fields, grantRow.domain)
}

func (s *Store) GrantsByProgramme(ctx context.Context, programmeID string) ([]domain.RoleGrant, error) {
	var rows []grantRow
	if err := s.db(ctx).Where("programme_id = ?", programmeID).Order("created_at").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, grantRow.domain), nil
}

// ---- audit ----

// AppendAudit writes one audit entry; call it inside the change's transaction.
func (s *Store) AppendAudit(ctx context.Context, e domain.AuditEntry) error {
	details := "{}"
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details)
		if err != nil {
			return err
		}
		details = string(b)
	}
	var programme *string // a copy: a queued statement's arguments are read when it is sent
	if e.ProgrammeID != nil {
		programme = new(string)
		*programme = *e.ProgrammeID
	}
	args := []any{programme, e.ActorID, e.Action, e.TargetType, e.TargetID, e.Reason, details, e.OccurredAt.UTC()}
	if s.later(ctx, auditInsert, args...) {
		return nil // with the transaction's next statement (pgtx.go)
	}
	return translate(s.db(ctx).Exec(auditInsert, args...).Error)
}

// auditInsert writes one audit entry (AppendAudit); its ID is drawn by the
// column's default.
const auditInsert = `INSERT INTO audit_entries (programme_id, actor_id, action, target_type, target_id, reason, details, occurred_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// AuditEntries lists a programme's entries after the given ID, oldest first.
func (s *Store) AuditEntries(ctx context.Context, programmeID string, targetID *string, afterID int64, limit int) ([]domain.AuditEntry, error) {
	q := s.db(ctx).Where("programme_id = ? AND id > ?", programmeID, afterID)
	if targetID != nil {
		q = q.Where("target_id = ?", *targetID)
	}
	var rows []auditRow
	if err := q.Order("id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, auditRow.domain), nil
}

func mapRows[R any, D any](rows []R, f func(R) D) []D {
	out := make([]D, len(rows))
	for i, r := range rows {
		out[i] = f(r)
	}
	return out
}

// OrganisationsByIDs, AccessGroupsByIDs and PolicyVersionsByIDs are the
// relations of a learners page, read for the whole page at once: they scan
// their columns directly rather than through gorm's reflective Find, which
// cost more than the statements themselves (docs/performance.md).
func (s *Store) OrganisationsByIDs(ctx context.Context, ids []string) ([]domain.Organisation, error) {
	return cachedByIDs(s, ctx, ids, func() *map[string]refEntry[domain.Organisation] { return &s.refs.organisations },
		func(o domain.Organisation) string { return o.ID }, func(ids []string) ([]domain.Organisation, error) { return s.organisationsByIDs(ctx, ids) })
}

func (s *Store) organisationsByIDs(ctx context.Context, ids []string) ([]domain.Organisation, error) {
	return byIDs(s, ctx, "SELECT "+organisationColumns+" FROM organisations", ids, (*organisationRow).fields, organisationRow.domain)
}

func (s *Store) AccessGroupsByIDs(ctx context.Context, ids []string) ([]domain.AccessGroup, error) {
	return cachedByIDs(s, ctx, ids, func() *map[string]refEntry[domain.AccessGroup] { return &s.refs.groups },
		func(g domain.AccessGroup) string { return g.ID }, func(ids []string) ([]domain.AccessGroup, error) { return s.accessGroupsByIDs(ctx, ids) })
}

func (s *Store) accessGroupsByIDs(ctx context.Context, ids []string) ([]domain.AccessGroup, error) {
	return byIDs(s, ctx, "SELECT "+accessGroupColumns+" FROM access_groups", ids, (*accessGroupRow).fields, accessGroupRow.domain)
}

func (s *Store) PolicyVersionsByIDs(ctx context.Context, ids []string) ([]domain.PolicyVersion, error) {
	return cachedByIDs(s, ctx, ids, func() *map[string]refEntry[domain.PolicyVersion] { return &s.refs.versions },
		func(v domain.PolicyVersion) string { return v.ID }, func(ids []string) ([]domain.PolicyVersion, error) { return s.policyVersionsByIDs(ctx, ids) })
}

func (s *Store) policyVersionsByIDs(ctx context.Context, ids []string) ([]domain.PolicyVersion, error) {
	return byIDs(s, ctx, "SELECT id, policy_id, label, summary, content, status, published_at, activated_at FROM policy_versions", ids,
		func(v *policyVersionRow) []any {
			return []any{&v.ID, &v.PolicyID, &v.Label, &v.Summary, &v.Content, &v.Status, &v.PublishedAt, &v.ActivatedAt}
		}, policyVersionRow.domain)
}

// byIDs reads the rows of selectFrom whose id is one of ids (anyID).
func byIDs[R, D any](s *Store, ctx context.Context, selectFrom string, ids []string, fields func(*R) []any, conv func(R) D) ([]D, error) {
	cond, arg, none := s.anyID("id", ids)
	if none {
		return []D{}, nil
	}
	return readAll(s, ctx, len(ids), selectFrom+" WHERE "+cond, []any{arg}, fields, conv)
}
