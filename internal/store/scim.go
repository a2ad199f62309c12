package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm/clause"

	"github.com/rollcall-dev/rollcall/internal/domain"
)

// ---- SCIM tokens ----

type scimTokenRow struct {
	ID             string `gorm:"primaryKey"`
	ProgrammeID    string
	OrganisationID string
	Name           string
	Prefix         string
	Hash           string
	CreatedBy      string
	CreatedAt      time.Time
	LastUsedAt     *time.Time
	RevokedAt      *time.Time
}

func (scimTokenRow) TableName() string { return "scim_tokens" }

func (r scimTokenRow) domain() domain.ScimToken {
	return domain.ScimToken{ID: r.ID, ProgrammeID: r.ProgrammeID, OrganisationID: r.OrganisationID, Name: r.Name,
		Prefix: r.Prefix, Hash: r.Hash, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt.UTC(),
		LastUsedAt: utcp(r.LastUsedAt), RevokedAt: utcp(r.RevokedAt)}
}

func (s *Store) CreateScimToken(ctx context.Context, t domain.ScimToken) error {
	r := scimTokenRow{ID: t.ID, ProgrammeID: t.ProgrammeID, OrganisationID: t.OrganisationID, Name: t.Name, Prefix: t.Prefix,
		Hash: t.Hash, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt.UTC()}
	return translate(s.db(ctx).Create(&r).Error)
}

func (s *Store) ScimTokenByHash(ctx context.Context, hash string) (domain.ScimToken, error) {
	var r scimTokenRow
	if err := s.db(ctx).Where("hash = ?", hash).Take(&r).Error; err != nil {
		return domain.ScimToken{}, translate(err)
	}
	return r.domain(), nil
}

func (s *Store) GetScimToken(ctx context.Context, id string) (domain.ScimToken, error) {
	var r scimTokenRow
	if err := s.db(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return domain.ScimToken{}, translate(err)
	}
	return r.domain(), nil
}

// ScimTokensByOrganisation lists an organisation's tokens, revoked ones too,
// oldest first.
func (s *Store) ScimTokensByOrganisation(ctx context.Context, organisationID string) ([]domain.ScimToken, error) {
	var rows []scimTokenRow
	if err := s.db(ctx).Where("organisation_id = ?", organisationID).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, scimTokenRow.domain), nil
}

// RevokeScimToken ends a token; it reports whether this call revoked it.
func (s *Store) RevokeScimToken(ctx context.Context, id string, at time.Time) (bool, error) {
	res := s.db(ctx).Model(&scimTokenRow{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", at.UTC())
	return res.RowsAffected > 0, translate(res.Error)
}

// TouchScimToken records use, at most once per interval (not a state change).
func (s *Store) TouchScimToken(ctx context.Context, id string, at time.Time, interval time.Duration) error {
	return translate(s.db(ctx).Model(&scimTokenRow{}).
		Where("id = ? AND (last_used_at IS NULL OR last_used_at < ?)", id, at.Add(-interval).UTC()).
		UpdateColumn("last_used_at", at.UTC()).Error)
}

// ---- directory links ----

type scimUserRow struct {
	LearnerID      string `gorm:"primaryKey"`
	OrganisationID string
	ExternalID     *string
	DeletedAt      *time.Time
	RemovalDueAt   *time.Time
	Version        int64
	UpdatedAt      time.Time
}

func (scimUserRow) TableName() string { return "scim_users" }

func (r scimUserRow) domain() domain.DirectoryLink {
	return domain.DirectoryLink{LearnerID: r.LearnerID, OrganisationID: r.OrganisationID, ExternalID: r.ExternalID,
		DeletedAt: utcp(r.DeletedAt), RemovalDueAt: utcp(r.RemovalDueAt), Version: r.Version, UpdatedAt: r.UpdatedAt.UTC()}
}

// DirectoryLinks reads the links of the given learners (absent: none).
func (s *Store) DirectoryLinks(ctx context.Context, learnerIDs []string) (map[string]domain.DirectoryLink, error) {
	out := map[string]domain.DirectoryLink{}
	if len(learnerIDs) == 0 {
		return out, nil
	}
	var rows []scimUserRow
	if err := s.db(ctx).Where("learner_id IN ?", learnerIDs).Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	for _, r := range rows {
		out[r.LearnerID] = r.domain()
	}
	return out, nil
}

// SaveDirectoryLink writes a link whole (insert or update). A second learner
// with the same externalId in the organisation is CONFLICT.
func (s *Store) SaveDirectoryLink(ctx context.Context, l domain.DirectoryLink) error {
	r := scimUserRow{LearnerID: l.LearnerID, OrganisationID: l.OrganisationID, ExternalID: l.ExternalID,
		DeletedAt: utcp(l.DeletedAt), RemovalDueAt: utcp(l.RemovalDueAt), Version: l.Version, UpdatedAt: l.UpdatedAt.UTC()}
	return translate(s.db(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "learner_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"organisation_id", "external_id", "deleted_at", "removal_due_at", "version", "updated_at"}),
	}).Create(&r).Error)
}

// DirectoryUsers pages the learners a directory sees: the organisation's
// learners that are not erased and that it has not deleted, narrowed by the
// filter, in ID order (UUIDv7: creation order, so pages are stable). It
// returns the page, their links and the total count.
func (s *Store) DirectoryUsers(ctx context.Context, f domain.DirectoryFilter, offset, limit int) ([]domain.Learner, map[string]domain.DirectoryLink, int, error) {
	if f.Impossible {
		return nil, map[string]domain.DirectoryLink{}, 0, nil
	}
	var where strings.Builder
	// An erased learner has no email left: the tombstone is nobody's user.
	where.WriteString(" FROM learners l LEFT JOIN scim_users u ON u.learner_id = l.id" +
		" WHERE l.organisation_id = ? AND l.email IS NOT NULL AND u.deleted_at IS NULL")
	args := []any{f.OrganisationID}
	for _, id := range f.IDs {
		where.WriteString(" AND l.id = ?")
		args = append(args, id)
	}
	for _, e := range f.Emails {
		where.WriteString(" AND l.email = ?")
		args = append(args, e)
	}
	for _, x := range f.ExternalIDs {
		where.WriteString(" AND u.external_id = ?")
		args = append(args, x)
	}
	var total int64
	if err := queryRows(s.db(ctx), "SELECT count(*)"+where.String(), args, func(r *sql.Rows) error { return r.Scan(&total) }); err != nil {
		return nil, nil, 0, err
	}
	if limit <= 0 || int64(offset) >= total {
		return nil, map[string]domain.DirectoryLink{}, int(total), nil
	}
	q := "SELECT " + learnerColumnsL + where.String() +
		" ORDER BY l.id LIMIT " + strconv.Itoa(limit) + " OFFSET " + strconv.Itoa(max(offset, 0))
	out := make([]domain.Learner, 0, limit)
	ids := make([]string, 0, limit)
	if err := queryRows(s.db(ctx), q, args, func(rows *sql.Rows) error {
		var r learnerRow
		if err := rows.Scan(r.fields()...); err != nil {
			return err
		}
		out = append(out, r.domain())
		ids = append(ids, r.ID)
		return nil
	}); err != nil {
		return nil, nil, 0, err
	}
	links, err := s.DirectoryLinks(ctx, ids)
	return out, links, int(total), err
}
