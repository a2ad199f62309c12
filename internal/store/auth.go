package store

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/rollcall-dev/rollcall/internal/domain"
)

type providerRow struct {
	ID              string `gorm:"primaryKey"`
	ProgrammeID     string
	OrganisationID  *string
	Issuer          string
	ClientID        string
	ClientSecretEnc *string
	ClientSecretEnv *string
	Audience        string
	Scopes          string
	EmailTrust      string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

func (providerRow) TableName() string { return "identity_providers" }

func (r providerRow) domain() domain.IdentityProvider {
	return domain.IdentityProvider{ID: r.ID, ProgrammeID: r.ProgrammeID, OrganisationID: r.OrganisationID, Issuer: r.Issuer,
		ClientID: r.ClientID, ClientSecretEnc: r.ClientSecretEnc, ClientSecretEnv: r.ClientSecretEnv, Audience: r.Audience,
		Scopes: r.Scopes, EmailTrust: domain.EmailTrust(r.EmailTrust), CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

func (s *Store) CreateProvider(ctx context.Context, p domain.IdentityProvider) error {
	defer s.refChanged(ctx)()
	r := providerRow{ID: p.ID, ProgrammeID: p.ProgrammeID, OrganisationID: p.OrganisationID, Issuer: p.Issuer,
		ClientID: p.ClientID, ClientSecretEnc: p.ClientSecretEnc, ClientSecretEnv: p.ClientSecretEnv, Audience: p.Audience,
		Scopes: p.Scopes, EmailTrust: string(p.EmailTrust), CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC()}
	return translate(s.db(ctx).Create(&r).Error)
}

func (s *Store) GetProvider(ctx context.Context, id string) (domain.IdentityProvider, error) {
	var r providerRow
	if err := s.db(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return domain.IdentityProvider{}, translate(err)
	}
	return r.domain(), nil
}

// ProviderByIssuer reads the provider of an issuer; outside a transaction
// through the cache of rows nearly every request reads (refcache.go).
func (s *Store) ProviderByIssuer(ctx context.Context, issuer string) (domain.IdentityProvider, error) {
	return s.cachedProvider(ctx, issuer, func() (domain.IdentityProvider, error) {
		var r providerRow
		if err := s.db(ctx).Where("issuer = ?", issuer).Take(&r).Error; err != nil {
			return domain.IdentityProvider{}, translate(err)
		}
		return r.domain(), nil
	})
}

// ProvidersFor returns the organisation's provider and the programme's own.
func (s *Store) ProvidersFor(ctx context.Context, programmeID, organisationID string) ([]domain.IdentityProvider, error) {
	var rows []providerRow
	if err := s.db(ctx).Where("programme_id = ? AND (organisation_id = ? OR organisation_id IS NULL)", programmeID, organisationID).
		Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, providerRow.domain), nil
}

func (s *Store) ProvidersByProgramme(ctx context.Context, programmeID string) ([]domain.IdentityProvider, error) {
	var rows []providerRow
	if err := s.db(ctx).Where("programme_id = ?", programmeID).Order("created_at").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return mapRows(rows, providerRow.domain), nil
}

type sessionRow struct {
	ID        string `gorm:"primaryKey"`
	LearnerID *string
	Issuer    string
	Subject   string
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt *time.Time
}

func (sessionRow) TableName() string { return "sessions" }

func (s *Store) CreateSession(ctx context.Context, se domain.Session) error {
	r := sessionRow{ID: se.ID, LearnerID: se.LearnerID, Issuer: se.Issuer, Subject: se.Subject,
		CreatedAt: se.CreatedAt.UTC(), ExpiresAt: se.ExpiresAt.UTC()}
	return translate(s.db(ctx).Create(&r).Error)
}

func (s *Store) GetSession(ctx context.Context, id string) (domain.Session, error) {
	var r sessionRow
	if err := s.db(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return domain.Session{}, translate(err)
	}
	return domain.Session{ID: r.ID, LearnerID: r.LearnerID, Issuer: r.Issuer, Subject: r.Subject,
		CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(), RevokedAt: utcp(r.RevokedAt)}, nil
}

func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time) error {
	return translate(s.db(ctx).Model(&sessionRow{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", at.UTC()).Error)
}

// RevokeLearnerSessions ends every session of a learner (withdrawal, leaving, erasure).
func (s *Store) RevokeLearnerSessions(ctx context.Context, learnerID string, at time.Time) (int64, error) {
	res := s.db(ctx).Model(&sessionRow{}).Where("learner_id = ? AND revoked_at IS NULL", learnerID).Update("revoked_at", at.UTC())
	return res.RowsAffected, translate(res.Error)
}

type loginStateRow struct {
	ID          string `gorm:"primaryKey"`
	ProviderID  string
	Nonce       string
	Verifier    string
	BrowserHash string
	ReturnTo    string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

func (loginStateRow) TableName() string { return "login_states" }

func (s *Store) CreateLoginState(ctx context.Context, ls domain.LoginState) error {
	r := loginStateRow{ID: ls.ID, ProviderID: ls.ProviderID, Nonce: ls.Nonce, Verifier: ls.Verifier,
		BrowserHash: ls.BrowserHash, ReturnTo: ls.ReturnTo, CreatedAt: ls.CreatedAt.UTC(), ExpiresAt: ls.ExpiresAt.UTC()}
	return translate(s.db(ctx).Create(&r).Error)
}

// TakeLoginState reads and deletes a login state in one step: a state (and
// so an authorization code bound to it) can be used once.
func (s *Store) TakeLoginState(ctx context.Context, id string) (domain.LoginState, error) {
	var out domain.LoginState
	err := s.InTx(ctx, func(ctx context.Context) error {
		var r loginStateRow
		if err := s.db(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
			return translate(err)
		}
		res := s.db(ctx).Where("id = ?", id).Delete(&loginStateRow{})
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 { // a concurrent callback took it first
			return translate(errNotFound)
		}
		out = domain.LoginState{ID: r.ID, ProviderID: r.ProviderID, Nonce: r.Nonce, Verifier: r.Verifier,
			BrowserHash: r.BrowserHash, ReturnTo: r.ReturnTo, CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC()}
		return nil
	})
	return out, err
}

// PurgeLoginStates deletes expired login states.
func (s *Store) PurgeLoginStates(ctx context.Context, now time.Time) error {
	return translate(s.db(ctx).Where("expires_at < ?", now.UTC()).Delete(&loginStateRow{}).Error)
}

// UpdateProvider writes a provider's changeable fields (not its issuer,
// programme or organisation).
func (s *Store) UpdateProvider(ctx context.Context, p domain.IdentityProvider) error {
	defer s.refChanged(ctx)()
	res := s.db(ctx).Model(&providerRow{}).Where("id = ?", p.ID).Updates(map[string]any{
		"client_id": p.ClientID, "client_secret_enc": p.ClientSecretEnc, "client_secret_env": p.ClientSecretEnv,
		"audience": p.Audience, "scopes": p.Scopes, "email_trust": string(p.EmailTrust), "updated_at": p.UpdatedAt.UTC()})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return translate(gorm.ErrRecordNotFound)
	}
	return nil
}

// DeleteProvider removes a provider (its pending login states go with it).
func (s *Store) DeleteProvider(ctx context.Context, id string) error {
	defer s.refChanged(ctx)()
	return translate(s.db(ctx).Where("id = ?", id).Delete(&providerRow{}).Error)
}

// RevokeSessionsByIssuer revokes every live session an issuer's sign-in opened.
func (s *Store) RevokeSessionsByIssuer(ctx context.Context, issuer string, at time.Time) (int64, error) {
	res := s.db(ctx).Model(&sessionRow{}).Where("issuer = ? AND revoked_at IS NULL", issuer).Update("revoked_at", at.UTC())
	return res.RowsAffected, translate(res.Error)
}
