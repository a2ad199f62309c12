package lifecycle

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// SessionTTL is how long a browser session lasts.
const SessionTTL = 12 * time.Hour

// loginTTL is how long a started login may take to come back.
const loginTTL = 10 * time.Minute

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

// ErrNoSignIn is the one answer for an unknown domain and for a known
// organisation without a provider, so login reveals no membership.
var ErrNoSignIn = apperr.NotFoundf("no single sign-on is available for this address")

// LoginStart is what the browser needs to go to the provider.
type LoginStart struct {
	Provider      domain.IdentityProvider
	State         string // sent to the provider, echoed back
	Nonce         string
	Verifier      string // PKCE code verifier
	BrowserSecret string // set as a cookie; binds the callback to this browser
}

// BeginLogin finds the provider for an email's organisation (home-realm
// discovery) or for an organisation ID, and records a single-use login state.
func (s *Service) BeginLogin(ctx context.Context, email, organisationID, returnTo string) (LoginStart, error) {
	var org domain.Organisation
	switch {
	case email != "":
		el, err := s.resolveEmail(ctx, email, "email")
		if err != nil {
			if apperr.CodeOf(err) == apperr.BadUserInput && !strings.Contains(err.Error(), "does not belong") {
				return LoginStart{}, err // a malformed address is the client's to fix
			}
			return LoginStart{}, ErrNoSignIn
		}
		org = el.org
	case organisationID != "":
		if !validID(organisationID) {
			return LoginStart{}, ErrNoSignIn
		}
		o, err := s.st.GetOrganisation(ctx, organisationID)
		if err != nil || o.Status != domain.OrgAdmitted {
			return LoginStart{}, ErrNoSignIn
		}
		org = o
	default:
		return LoginStart{}, apperr.Invalid("email", "give email or organisation")
	}
	provs, err := s.st.ProvidersFor(ctx, org.ProgrammeID, org.ID)
	if err != nil {
		return LoginStart{}, err
	}
	var prov *domain.IdentityProvider
	for i := range provs {
		// The organisation's own provider wins over the programme's.
		if prov == nil || provs[i].OrganisationID != nil {
			prov = &provs[i]
		}
	}
	if prov == nil {
		return LoginStart{}, ErrNoSignIn
	}
	if !safeReturnTo(returnTo) {
		returnTo = "/"
	}
	ls := LoginStart{Provider: *prov, State: randomToken(), Nonce: randomToken(), Verifier: randomToken(), BrowserSecret: randomToken()}
	now := s.clock()
	err = s.st.CreateLoginState(ctx, domain.LoginState{ID: hashToken(ls.State), ProviderID: prov.ID, Nonce: ls.Nonce,
		Verifier: ls.Verifier, BrowserHash: hashToken(ls.BrowserSecret), ReturnTo: returnTo, CreatedAt: now, ExpiresAt: now.Add(loginTTL)})
	return ls, err
}

// LoginFinish is a taken login state with its provider's client secret.
type LoginFinish struct {
	Provider     domain.IdentityProvider
	ClientSecret string
	Nonce        string
	Verifier     string
	ReturnTo     string
}

// FinishLogin takes (and so burns) the login state of a callback. A missing,
// reused, expired or other-browser state is UNAUTHENTICATED.
func (s *Service) FinishLogin(ctx context.Context, state, browserSecret string) (LoginFinish, error) {
	bad := apperr.Unauthenticatedf("the sign-in could not be completed; please start again")
	if state == "" || browserSecret == "" || len(state) > 200 {
		return LoginFinish{}, bad
	}
	ls, err := s.st.TakeLoginState(ctx, hashToken(state))
	if err != nil {
		if apperr.CodeOf(err) == apperr.NotFound {
			return LoginFinish{}, bad
		}
		return LoginFinish{}, err
	}
	if s.clock().After(ls.ExpiresAt) || ls.BrowserHash != hashToken(browserSecret) {
		return LoginFinish{}, bad
	}
	p, err := s.st.GetProvider(ctx, ls.ProviderID)
	if err != nil {
		return LoginFinish{}, err
	}
	secret, err := s.clientSecret(p.ClientSecretEnc, p.ClientSecretEnv)
	if err != nil {
		return LoginFinish{}, apperr.Wrap(err, "client secret")
	}
	return LoginFinish{Provider: p, ClientSecret: secret, Nonce: ls.Nonce, Verifier: ls.Verifier, ReturnTo: ls.ReturnTo}, nil
}

// StartSession signs the identity in as a learner and opens a server-side
// session; the returned token goes in an HttpOnly cookie and is stored only
// as a hash.
func (s *Service) StartSession(ctx context.Context, id domain.Identity) (string, domain.Learner, error) {
	// Staff (a role grant, or the bootstrap admin) get a session without being
	// provisioned as learners, as Actor treats them: the admin console runs on
	// it. A learner record already linked to them stays linked.
	grants, err := s.st.GrantsForIdentity(ctx, id.Issuer, id.Subject)
	if err != nil {
		return "", domain.Learner{}, err
	}
	if len(grants) > 0 || (s.bootstrap != nil && s.bootstrap.Issuer == id.Issuer && s.bootstrap.Subject == id.Subject) {
		var learnerID *string
		if l, err := s.st.LearnerByIdentity(ctx, id.Issuer, id.Subject); err == nil {
			learnerID = &l.ID
		}
		tok := randomToken()
		now := s.clock()
		err = s.st.CreateSession(ctx, domain.Session{ID: hashToken(tok), LearnerID: learnerID, Issuer: id.Issuer, Subject: id.Subject,
			CreatedAt: now, ExpiresAt: now.Add(SessionTTL)})
		return tok, domain.Learner{}, err
	}
	l, err := s.SignIn(ctx, id)
	if err != nil {
		return "", l, err
	}
	if l.Status == domain.StatusWithdrawn || l.Status == domain.StatusErased {
		return "", l, errNoSignIn.WithReason("ACCESS_ENDED")
	}
	tok := randomToken()
	now := s.clock()
	err = s.st.CreateSession(ctx, domain.Session{ID: hashToken(tok), LearnerID: &l.ID, Issuer: id.Issuer, Subject: id.Subject,
		CreatedAt: now, ExpiresAt: now.Add(SessionTTL)})
	return tok, l, err
}

// SessionIdentity resolves a session cookie to its identity.
func (s *Service) SessionIdentity(ctx context.Context, token string) (domain.Identity, bool, error) {
	if token == "" || len(token) > 200 {
		return domain.Identity{}, false, nil
	}
	se, err := s.st.GetSession(ctx, hashToken(token))
	if apperr.CodeOf(err) == apperr.NotFound {
		return domain.Identity{}, false, nil
	}
	if err != nil {
		return domain.Identity{}, false, err
	}
	if se.RevokedAt != nil || !s.clock().Before(se.ExpiresAt) {
		return domain.Identity{}, false, nil
	}
	return domain.Identity{Issuer: se.Issuer, Subject: se.Subject}, true, nil
}

// EndSession revokes a session (logout).
func (s *Service) EndSession(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	return s.st.RevokeSession(ctx, hashToken(token), s.clock())
}

// safeReturnTo accepts only a same-site path: it starts with one "/", and
// holds no characters a browser might drop or reinterpret (tabs, newlines,
// backslashes, spaces), so "/\t/evil.example" cannot become //evil.example.
func safeReturnTo(p string) bool {
	if len(p) == 0 || len(p) > 500 || p[0] != '/' || (len(p) > 1 && (p[1] == '/' || p[1] == '\\')) {
		return false
	}
	for _, r := range p {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/-._~?=&%+#", r)
		if !ok {
			return false
		}
	}
	return true
}
