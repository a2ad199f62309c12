package lifecycle

import (
	"context"
	"strings"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

type GoverningBodyInput struct {
	Name string
	Role domain.GoverningBodyRole
}

// RuleSettingsPatch changes some rule settings; nil fields stay as they are.
// ClearInactivityLimit / ClearContractEnd switch those rules off (ONC-6).
type RuleSettingsPatch struct {
	MinimumAge             *int
	ErasureNeedsApproval   *bool
	WithdrawalErasureDelay *time.Duration
	LeaverGracePeriod      *time.Duration
	AutomatedRemovalGrace  *time.Duration
	InactivityLimit        *time.Duration
	ClearInactivityLimit   bool
	ContractEndsAt         *time.Time
	ClearContractEnd       bool
	ContractEndWarning     *time.Duration
	RosterRemovalThreshold *float64
	LMSURL                 *string // "" clears it
}

func (p RuleSettingsPatch) apply(s domain.RuleSettings) domain.RuleSettings {
	if p.MinimumAge != nil {
		s.MinimumAge = *p.MinimumAge
	}
	if p.ErasureNeedsApproval != nil {
		s.ErasureNeedsApproval = *p.ErasureNeedsApproval
	}
	if p.WithdrawalErasureDelay != nil {
		s.WithdrawalErasureDelay = *p.WithdrawalErasureDelay
	}
	if p.LeaverGracePeriod != nil {
		s.LeaverGracePeriod = *p.LeaverGracePeriod
	}
	if p.AutomatedRemovalGrace != nil {
		s.AutomatedRemovalGrace = *p.AutomatedRemovalGrace
	}
	if p.InactivityLimit != nil {
		s.InactivityLimit = ptr(*p.InactivityLimit)
	}
	if p.ClearInactivityLimit {
		s.InactivityLimit = nil
	}
	if p.ContractEndsAt != nil {
		s.ContractEndsAt = ptr(p.ContractEndsAt.UTC())
	}
	if p.ClearContractEnd {
		s.ContractEndsAt = nil
	}
	if p.ContractEndWarning != nil {
		s.ContractEndWarning = *p.ContractEndWarning
	}
	if p.RosterRemovalThreshold != nil {
		s.RosterRemovalThreshold = *p.RosterRemovalThreshold
	}
	if p.LMSURL != nil {
		s.LMSURL = strings.TrimSpace(*p.LMSURL)
	}
	return s
}

type CreateProgrammeInput struct {
	Name            string
	Preset          domain.Preset
	GoverningBodies []GoverningBodyInput
	Rules           *RuleSettingsPatch
}

// CreateProgramme sets up a programme from a preset. Only the bootstrap admin
// (or a system actor) may do it; the creator becomes a programme admin.
func (s *Service) CreateProgramme(ctx context.Context, in CreateProgrammeInput) (domain.Programme, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.Programme{}, err
	}
	if !a.Bootstrap && !a.System {
		return domain.Programme{}, apperr.Forbiddenf("only the installation's bootstrap admin can create programmes")
	}
	name, err := cleanText("name", in.Name, 1, 200)
	if err != nil {
		return domain.Programme{}, err
	}
	if !in.Preset.Valid() {
		return domain.Programme{}, apperr.Invalid("preset", "unknown preset")
	}
	if len(in.GoverningBodies) == 0 || len(in.GoverningBodies) > 10 {
		return domain.Programme{}, apperr.Invalid("governingBodies", "a programme needs between 1 and 10 governing bodies").WithRule("CTL-1")
	}
	now := s.clock()
	p := domain.Programme{ID: newID(), Name: name, Preset: in.Preset, CreatedAt: now, UpdatedAt: now,
		Settings: domain.PresetSettings(in.Preset, now)}
	if in.Rules != nil {
		p.Settings = in.Rules.apply(p.Settings)
	}
	if f, msg, ok := p.Settings.Validate(); !ok {
		return domain.Programme{}, apperr.Invalid("rules."+f, "%s %s", f, msg)
	}
	seen := map[string]bool{}
	bodies := make([]domain.GoverningBody, 0, len(in.GoverningBodies))
	for i, b := range in.GoverningBodies {
		bn, err := cleanText("governingBodies.name", b.Name, 1, 200)
		if err != nil {
			return domain.Programme{}, err
		}
		if seen[bn] {
			return domain.Programme{}, apperr.Invalid("governingBodies", "governing body %d repeats a name", i+1)
		}
		seen[bn] = true
		if !b.Role.Valid() {
			return domain.Programme{}, apperr.Invalid("governingBodies.role", "unknown governing body role")
		}
		bodies = append(bodies, domain.GoverningBody{ID: newID(), ProgrammeID: p.ID, Name: bn, Role: b.Role, CreatedAt: now})
	}
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.CreateProgramme(ctx, p, bodies); err != nil {
			if apperr.CodeOf(err) == apperr.Conflict {
				return apperr.Conflictf("a programme with this name already exists").WithField("name")
			}
			return err
		}
		if !a.System {
			g := domain.RoleGrant{ID: newID(), Issuer: a.Identity.Issuer, Subject: a.Identity.Subject,
				Role: domain.RoleProgrammeAdmin, ProgrammeID: p.ID, CreatedAt: now, CreatedBy: a.ID}
			if err := s.st.CreateGrant(ctx, g); err != nil {
				return err
			}
		}
		return s.audit(ctx, a, &p.ID, "programme.create", "programme", p.ID, "", map[string]any{"preset": string(p.Preset)})
	})
	return p, err
}

// Programme returns a programme the actor may read; otherwise NOT_FOUND.
func (s *Service) Programme(ctx context.Context, id string) (domain.Programme, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.Programme{}, err
	}
	if !validID(id) || !canReadProgramme(a, id) {
		return domain.Programme{}, notFound("programme")
	}
	p, err := s.st.GetProgramme(ctx, id)
	if apperr.CodeOf(err) == apperr.NotFound {
		return p, notFound("programme")
	}
	return p, err
}

// Programmes lists the programmes the actor holds any grant in.
func (s *Service) Programmes(ctx context.Context) ([]domain.Programme, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return nil, err
	}
	if a.Bootstrap || a.System {
		return s.st.ListProgrammes(ctx, nil)
	}
	ids := a.ProgrammeIDs()
	if ids == nil {
		ids = []string{}
	}
	return s.st.ListProgrammes(ctx, ids)
}

// UpdateProgrammeRules changes rule settings (programme admins; audited with
// the before and after values).
func (s *Service) UpdateProgrammeRules(ctx context.Context, programmeID string, patch RuleSettingsPatch, reason string) (domain.Programme, error) {
	a, err := s.Actor(ctx)
	if err != nil {
		return domain.Programme{}, err
	}
	p, err := s.Programme(ctx, programmeID)
	if err != nil {
		return p, err
	}
	if !isProgrammeAdmin(a, p.ID) {
		return domain.Programme{}, apperr.Forbiddenf("only a programme admin can change the rules")
	}
	reason, err = cleanText("reason", reason, 0, 1000)
	if err != nil {
		return p, err
	}
	next := patch.apply(p.Settings)
	if f, msg, ok := next.Validate(); !ok {
		return p, apperr.Invalid(f, "%s %s", f, msg)
	}
	now := s.clock()
	err = s.st.InTx(ctx, func(ctx context.Context) error {
		if err := s.st.UpdateProgrammeSettings(ctx, p.ID, next, now); err != nil {
			return err
		}
		return s.audit(ctx, a, &p.ID, "programme.rules.update", "programme", p.ID, reason,
			map[string]any{"before": settingsMap(p.Settings), "after": settingsMap(next)})
	})
	if err != nil {
		return p, err
	}
	p.Settings, p.UpdatedAt = next, now
	return p, nil
}

func settingsMap(s domain.RuleSettings) map[string]any {
	m := map[string]any{
		"minimumAge": s.MinimumAge, "erasureNeedsApproval": s.ErasureNeedsApproval,
		"withdrawalErasureDelay": domain.FormatDuration(s.WithdrawalErasureDelay),
		"leaverGracePeriod":      domain.FormatDuration(s.LeaverGracePeriod),
		"automatedRemovalGrace":  domain.FormatDuration(s.AutomatedRemovalGrace),
		"contractEndWarning":     domain.FormatDuration(s.ContractEndWarning),
		"rosterRemovalThreshold": s.RosterRemovalThreshold,
	}
	if s.InactivityLimit != nil {
		m["inactivityLimit"] = domain.FormatDuration(*s.InactivityLimit)
	}
	if s.ContractEndsAt != nil {
		m["contractEndsAt"] = s.ContractEndsAt.Format(time.RFC3339)
	}
	if s.LMSURL != "" {
		m["lmsUrl"] = s.LMSURL
	}
	return m
}

// Rules lists the rulebook entries in force for a programme.
func (s *Service) Rules(ctx context.Context, programmeID string) ([]domain.Rule, error) {
	p, err := s.Programme(ctx, programmeID)
	if err != nil {
		return nil, err
	}
	return domain.RulesInForce(p.Preset, p.Settings), nil
}

// GoverningBodiesByProgrammes is the batch read behind Programme.governingBodies.
func (s *Service) GoverningBodiesByProgrammes(ctx context.Context, ids []string) (map[string][]domain.GoverningBody, error) {
	bodies, err := s.st.GoverningBodiesByProgrammes(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := map[string][]domain.GoverningBody{}
	for _, b := range bodies {
		out[b.ProgrammeID] = append(out[b.ProgrammeID], b)
	}
	return out, nil
}

// LinkGoverningBody records which partner organisation governs a body (CTL-1:
// KCC governs Kent Connects, TWBC Smarter Digital Services).
func (s *Service) LinkGoverningBody(ctx context.Context, bodyID, organisationID string) error {
	a, err := s.Actor(ctx)
	if err != nil {
		return err
	}
	o, err := s.readOrganisation(ctx, a, organisationID)
	if err != nil {
		return err
	}
	if !isProgrammeAdmin(a, o.ProgrammeID) {
		return apperr.Forbiddenf("only a programme admin can link governing bodies")
	}
	bodies, err := s.st.GoverningBodies(ctx, o.ProgrammeID)
	if err != nil {
		return err
	}
	for _, b := range bodies {
		if b.ID == bodyID {
			return s.st.InTx(ctx, func(ctx context.Context) error {
				if err := s.st.SetGoverningBodyOrganisation(ctx, bodyID, o.ID); err != nil {
					return err
				}
				return s.audit(ctx, a, &o.ProgrammeID, "governing_body.link", "governing_body", bodyID, "",
					map[string]any{"organisationId": o.ID})
			})
		}
	}
	return notFound("governing body")
}

// GoverningBodies lists a programme's governing bodies.
func (s *Service) GoverningBodies(ctx context.Context, programmeID string) ([]domain.GoverningBody, error) {
	p, err := s.Programme(ctx, programmeID)
	if err != nil {
		return nil, err
	}
	return s.st.GoverningBodies(ctx, p.ID)
}

// ProgrammeByName finds a programme by its unique name (seeding, CLI).
func (s *Service) ProgrammeByName(ctx context.Context, name string) (domain.Programme, error) {
	p, err := s.st.ProgrammeByName(ctx, name)
	if err != nil {
		return p, err
	}
	return s.Programme(ctx, p.ID)
}
