// Package lifecycle holds Rollcall's use cases. Every operation follows the
// same shape: authorise the actor, validate the input, then one transaction
// holding the change, its audit entry (and, for learners, its feed event).
// Authorisation lives here, not in resolvers, so GraphQL, the CLI and
// scheduled jobs obey the same rules.
package lifecycle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// Service is the one entry point to the use cases.
type Service struct {
	st        Store
	now       func() time.Time
	log       *slog.Logger
	bootstrap *domain.Identity
	secretKey []byte
	// allowInsecureIssuers mirrors ROLLCALL_ALLOW_INSECURE_ISSUERS for provider registration.
	allowInsecureIssuers bool
	onProviderChange     func(issuer string)
	feedKeep             time.Duration
	getenv               func(string) string // reads clientSecretEnv variables
	feedObs              FeedObserver
	actors               actorCache
	apiKeys              authCache[domain.Identity] // by the key's hash; live keys only
	polls                pollSlots
	feedAhead            readAhead[feedAheadKey, feedAheadPage]
	enrolmentsAhead      readAhead[enrolmentsAheadKey, enrolmentsAheadPage]
}

// Options configure a Service; zero values take defaults.
type Options struct {
	Clock func() time.Time
	Log   *slog.Logger
	// BootstrapAdmin may create programmes and administers every programme
	// (ROLLCALL_BOOTSTRAP_ADMIN); nil: nobody can create programmes over the API.
	BootstrapAdmin *domain.Identity
	// SecretKey (32 bytes) seals identity providers' client secrets.
	SecretKey []byte
	// AllowInsecureIssuers accepts http:// provider issuers on loopback.
	AllowInsecureIssuers bool
	// OnProviderChange is told when a provider registration changes, so a
	// verifier can drop what it cached.
	OnProviderChange func(issuer string)
	// FeedRetention is how long feed rows are kept (default 30 days).
	FeedRetention time.Duration
	// Getenv reads the ROLLCALL_IDP_SECRET_* variables providers name
	// (default os.Getenv).
	Getenv func(string) string
	// FeedObserver, when set, is told of every LMS read of the feed (metrics).
	FeedObserver FeedObserver
}

// FeedObserver is told of each read of the feed by an LMS: an opaque client
// ID (the API key's ID, or the actor ID), the events served, and how far
// behind the head the reader was (0 when it has caught up).
type FeedObserver interface {
	FeedRead(client string, served int, lag time.Duration, at time.Time)
}

func New(st Store, o Options) *Service {
	s := &Service{st: st, now: o.Clock, log: o.Log, bootstrap: o.BootstrapAdmin, secretKey: o.SecretKey,
		allowInsecureIssuers: o.AllowInsecureIssuers, onProviderChange: o.OnProviderChange, feedKeep: o.FeedRetention}
	if s.now == nil {
		s.now = time.Now
	}
	slots := make(chan struct{}, aheadMaxRunning)
	s.feedAhead.ttl, s.enrolmentsAhead.ttl = feedAheadTTL, enrolmentsAheadTTL
	s.feedAhead.slots, s.enrolmentsAhead.slots = slots, slots
	s.feedObs = o.FeedObserver
	if s.getenv = o.Getenv; s.getenv == nil {
		s.getenv = os.Getenv
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

func (s *Service) clock() time.Time { return s.now().UTC() }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// validID makes a malformed ID a plain NOT_FOUND before it reaches SQL.
func validID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil && len(id) == 36
}

func notFound(what string) *apperr.Error { return apperr.NotFoundf("%s not found", what) }

// ActorIDFor gives the opaque ID recorded in audit rows for an identity: a hash
// of issuer and subject, because some providers use an email as the subject.
func ActorIDFor(issuer, subject string) string {
	h := sha256.Sum256([]byte(issuer + "\x00" + subject))
	return "usr_" + hex.EncodeToString(h[:12])
}

type ctxKey int

const (
	identityKey ctxKey = iota
	actorKey
)

type actorCell struct {
	mu    sync.Mutex // gqlgen resolves root fields concurrently
	actor *domain.Actor
	err   error
	done  bool
}

// WithIdentity marks ctx as acting for a verified identity. Reading the
// actor (Actor) loads its grants and the learner already linked to it, once
// per context, and writes nothing: signing in is Authenticate's explicit step.
func WithIdentity(ctx context.Context, id domain.Identity) context.Context {
	ctx = context.WithValue(ctx, identityKey, id)
	return context.WithValue(ctx, actorKey, &actorCell{})
}

// WithSystem marks ctx as a system actor (CLI, seed, scheduler).
func WithSystem(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, actorKey, &actorCell{actor: domain.SystemActor(name), done: true})
}

// Authenticate is the sign-in step of a request, done once, explicitly, by
// the HTTP edge after it verified the identity: it loads the grants and signs
// the identity in as a learner (provisioning, refreshing names, cancelling a
// removal for inactivity, CTL-7). Staff sign in as learners too: a member of
// staff who administers is also a learner of their own organisation. An API
// key never is. The outcome (or a sign-in refusal, kept as SignInErr) is what
// Actor returns for the rest of the request.
func (s *Service) Authenticate(ctx context.Context, id domain.Identity) context.Context {
	ctx = context.WithValue(ctx, identityKey, id)
	cell := &actorCell{done: true}
	cell.actor, cell.err = s.signInActor(ctx, id)
	return context.WithValue(ctx, actorKey, cell)
}

func (s *Service) signInActor(ctx context.Context, id domain.Identity) (*domain.Actor, error) {
	a, err := s.loadActor(ctx, id)
	if err != nil || id.Issuer == APIKeyIssuer {
		return a, err
	}
	l, err := s.SignIn(ctx, id)
	switch {
	case err == nil:
		a.Learner = &l
	case apperr.CodeOf(err) == apperr.Forbidden:
		// Staff signing in through an issuer that is no learner provider
		// (the admin issuer) are simply not learners.
		if ae, _ := apperr.As(err); len(a.Grants) == 0 && !a.Bootstrap || ae == nil || ae.Reason != "ISSUER_NOT_A_PROVIDER" {
			a.SignInErr = err
		}
	default:
		return nil, err
	}
	return a, nil
}

// loadActor reads the identity's grants (from the actor cache while the
// store's AuthGeneration has not moved); it writes nothing.
func (s *Service) loadActor(ctx context.Context, id domain.Identity) (*domain.Actor, error) {
	key, gen, now := identityCacheKey(id), s.st.AuthGeneration(), s.clock()
	grants, hit := s.actors.get(key, gen, now)
	if !hit {
		var err error
		if grants, err = s.st.GrantsForIdentity(ctx, id.Issuer, id.Subject); err != nil {
			return nil, apperr.Wrap(err, "load grants")
		}
		s.actors.put(key, gen, now, grants)
	}
	a := &domain.Actor{ID: ActorIDFor(id.Issuer, id.Subject), Identity: id, Grants: grants}
	if s.bootstrap != nil && s.bootstrap.Issuer == id.Issuer && s.bootstrap.Subject == id.Subject {
		a.Bootstrap = true
	}
	return a, nil
}

// Actor returns the caller, or UNAUTHENTICATED. It has no side effects: on a
// context Authenticate did not prepare (tests, Refresh) it reads the grants
// and the learner already linked to the identity.
func (s *Service) Actor(ctx context.Context) (*domain.Actor, error) {
	cell, _ := ctx.Value(actorKey).(*actorCell)
	if cell == nil {
		return nil, apperr.Unauthenticatedf("authentication required")
	}
	cell.mu.Lock()
	defer cell.mu.Unlock()
	if cell.done {
		return cell.actor, cell.err
	}
	id, _ := ctx.Value(identityKey).(domain.Identity)
	a, err := s.loadActor(ctx, id)
	if err != nil {
		return nil, err
	}
	if id.Issuer != APIKeyIssuer {
		switch l, err := s.st.LearnerByIdentity(ctx, id.Issuer, id.Subject); apperr.CodeOf(err) {
		case "":
			if err := s.stampContract(ctx, &l); err != nil {
				return nil, err
			}
			a.Learner = &l
		case apperr.NotFound:
		default:
			return nil, err
		}
	}
	cell.actor, cell.done = a, true
	return a, nil
}

// isProgrammeAdmin: the bootstrap admin administers every programme.
func isProgrammeAdmin(a *domain.Actor, programmeID string) bool {
	return a.Bootstrap || a.ProgrammeAdmin(programmeID)
}

func canReadProgramme(a *domain.Actor, programmeID string) bool {
	return a.Bootstrap || a.HasRoleIn(programmeID,
		domain.RoleProgrammeAdmin, domain.RoleOrganisationAdmin, domain.RoleAuditor, domain.RoleLMS)
}

// canReadOrganisation: programme staff see every partner; an organisation
// admin sees only their own (CTL-10: others are NOT_FOUND, not filtered).
func canReadOrganisation(a *domain.Actor, o domain.Organisation) bool {
	return a.Bootstrap || a.HasRoleIn(o.ProgrammeID, domain.RoleProgrammeAdmin, domain.RoleAuditor) ||
		a.OrganisationAdmin(o.ID) || a.DirectoryFor(o.ID)
}

func canManageOrganisation(a *domain.Actor, o domain.Organisation) bool {
	return isProgrammeAdmin(a, o.ProgrammeID) || a.OrganisationAdmin(o.ID)
}

// audit appends an entry inside the caller's transaction (invariant 5).
func (s *Service) audit(ctx context.Context, a *domain.Actor, programmeID *string, action, targetType, targetID, reason string, details map[string]any) error {
	return s.st.AppendAudit(ctx, domain.AuditEntry{
		ProgrammeID: programmeID, ActorID: a.ID, Action: action, TargetType: targetType,
		TargetID: targetID, Reason: reason, Details: details, OccurredAt: s.clock(),
	})
}

func ptr[T any](v T) *T { return &v }

// cleanText trims and bounds free text an admin supplies (reasons, notes,
// titles): domain.CleanText's rules, as BAD_USER_INPUT on field.
func cleanText(field, v string, min, max int) (string, error) {
	v, err := domain.CleanText(field, v, min, max)
	return v, textInvalid(field, err)
}

// textInvalid presents a domain text refusal as BAD_USER_INPUT on field.
func textInvalid(field string, err error) error {
	if err == nil {
		return nil
	}
	var te *domain.TextError
	if errors.As(err, &te) {
		return apperr.Invalid(field, "%s", te.Message).WithReason(te.Reason)
	}
	return err
}

// Refresh returns a context whose actor is loaded again on next use (after a
// change to the caller's own learner record).
func Refresh(ctx context.Context) context.Context {
	id, ok := ctx.Value(identityKey).(domain.Identity)
	if !ok {
		return ctx
	}
	return WithIdentity(ctx, id)
}
