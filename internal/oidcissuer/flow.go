package oidcissuer

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// User is the identity an authorization request logs in as.
type User struct {
	Subject       string
	Email         string
	EmailVerified bool
	GivenName     string
	FamilyName    string
}

type client struct {
	secret       string
	redirectURIs []string
}

type authCode struct {
	clientID      string
	redirectURI   string
	nonce         string
	scope         string
	codeChallenge string
	user          User
	expires       time.Time
}

// RegisterClient registers (or replaces) an OAuth client. Authorization
// requests must use one of redirectURIs exactly; no prefix or wildcard
// matching, as in any provider worth testing against.
//
// An empty secret registers a public client: it authenticates to the token
// endpoint with client_id alone (PKCE is mandatory for everyone anyway) and
// may not use client_credentials.
func (i *Issuer) RegisterClient(id, secret string, redirectURIs ...string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.clients[id] = &client{secret: secret, redirectURIs: slices.Clone(redirectURIs)}
}

// QueueLogin makes the next successful /authorize request log in as u.
// Logins are consumed in FIFO order, one per authorization. With nothing
// queued, /authorize answers 400: a test that forgot to choose a user should
// fail loudly rather than get a default identity.
func (i *Issuer) QueueLogin(u User) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.logins = append(i.logins, u)
}

// SetNextLogin drops any queued logins and queues u alone. Dev mode's
// sign-in page uses it: a person chosen and then abandoned must not sign in
// whoever is chosen next.
func (i *Issuer) SetNextLogin(u User) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.logins = []User{u}
}

// serveAuthorize implements the authorization endpoint (RFC 6749 §4.1.1,
// OIDC Core §3.1.2) for response_type=code with mandatory PKCE S256.
//
// Errors about the client or redirect_uri are answered with 400 and never
// redirected (RFC 6749 §4.1.2.1), since redirecting to an unverified URI
// would make this an open redirector. Other request errors are redirected
// back to the client with error/error_description/state.
func (i *Issuer) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed request", http.StatusBadRequest)
		return
	}
	q := r.Form
	clientID := q.Get("client_id")
	redirectURI := q.Get("redirect_uri")
	state := q.Get("state")

	i.mu.Lock()
	c := i.clients[clientID]
	i.mu.Unlock()
	if c == nil {
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	}
	if redirectURI == "" || !slices.Contains(c.redirectURIs, redirectURI) {
		http.Error(w, "redirect_uri is not registered for this client", http.StatusBadRequest)
		return
	}
	target, err := url.Parse(redirectURI)
	if err != nil {
		http.Error(w, "malformed redirect_uri", http.StatusBadRequest)
		return
	}

	redirectError := func(code, desc string) {
		v := target.Query()
		v.Set("error", code)
		v.Set("error_description", desc)
		if state != "" {
			v.Set("state", state)
		}
		u := *target
		u.RawQuery = v.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	}

	if rt := q.Get("response_type"); rt != "code" {
		redirectError("unsupported_response_type", "only response_type=code is supported")
		return
	}
	if !slices.Contains(strings.Fields(q.Get("scope")), "openid") {
		redirectError("invalid_scope", "scope must include openid")
		return
	}
	challenge := q.Get("code_challenge")
	if challenge == "" || q.Get("code_challenge_method") != "S256" {
		redirectError("invalid_request", "PKCE with code_challenge_method=S256 is required")
		return
	}

	i.mu.Lock()
	if len(i.logins) == 0 {
		i.mu.Unlock()
		http.Error(w, "no login queued: call Issuer.QueueLogin before authorizing", http.StatusBadRequest)
		return
	}
	user := i.logins[0]
	i.logins = i.logins[1:]
	now := i.now()
	for k, ac := range i.codes { // opportunistic cleanup
		if now.After(ac.expires) {
			delete(i.codes, k)
		}
	}
	code := randomToken()
	i.codes[code] = &authCode{
		clientID:      clientID,
		redirectURI:   redirectURI,
		nonce:         q.Get("nonce"),
		scope:         q.Get("scope"),
		codeChallenge: challenge,
		user:          user,
		expires:       now.Add(CodeTTL),
	}
	i.mu.Unlock()

	v := target.Query()
	v.Set("code", code)
	if state != "" {
		v.Set("state", state)
	}
	u := *target
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// tokenError is an RFC 6749 §5.2 error response.
type tokenError struct {
	status int
	code   string
	desc   string
}

func (e *tokenError) write(w http.ResponseWriter) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="oidcissuer"`)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.desc})
}

func badRequest(code, desc string) *tokenError {
	return &tokenError{status: http.StatusBadRequest, code: code, desc: desc}
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	IDToken     string `json:"id_token,omitempty"`
	Scope       string `json:"scope,omitempty"`
}

// serveToken implements the token endpoint for the authorization_code and
// client_credentials grants.
func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		badRequest("invalid_request", "malformed form body").write(w)
		return
	}
	// Parameters must come from the body (RFC 6749 §3.2), not the query.
	form := r.PostForm

	clientID, c, terr := i.authenticateClient(r, form)
	if terr != nil {
		terr.write(w)
		return
	}

	var resp *tokenResponse
	switch form.Get("grant_type") {
	case "authorization_code":
		resp, terr = i.redeemCode(clientID, form)
	case "client_credentials":
		resp, terr = i.clientCredentials(clientID, c, form)
	case "":
		terr = badRequest("invalid_request", "grant_type is required")
	default:
		terr = badRequest("unsupported_grant_type", "supported: authorization_code, client_credentials")
	}
	if terr != nil {
		terr.write(w)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

// authenticateClient accepts client_secret_basic (credentials form-encoded
// inside Basic, per RFC 6749 §2.3.1), client_secret_post, or — for public
// clients only — a bare client_id. Using two methods at once is rejected as
// the RFC requires.
func (i *Issuer) authenticateClient(r *http.Request, form url.Values) (string, *client, *tokenError) {
	invalid := &tokenError{status: http.StatusUnauthorized, code: "invalid_client", desc: "client authentication failed"}

	var id, secret string
	if user, pass, ok := r.BasicAuth(); ok {
		if form.Has("client_secret") {
			return "", nil, badRequest("invalid_request", "multiple client authentication methods")
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(user)
		secret, err2 = url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return "", nil, invalid
		}
		if fid := form.Get("client_id"); fid != "" && fid != id {
			return "", nil, invalid
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" {
		return "", nil, invalid
	}

	i.mu.Lock()
	c := i.clients[id]
	i.mu.Unlock()
	if c == nil || subtle.ConstantTimeCompare([]byte(secret), []byte(c.secret)) != 1 {
		return "", nil, invalid
	}
	return id, c, nil
}

func (i *Issuer) redeemCode(clientID string, form url.Values) (*tokenResponse, *tokenError) {
	code := form.Get("code")
	if code == "" {
		return nil, badRequest("invalid_request", "code is required")
	}

	// The code is deleted on first presentation whatever the outcome, so a
	// code is single-use even if the first attempt fails (e.g. a wrong
	// code_verifier from an attacker who intercepted it).
	i.mu.Lock()
	ac := i.codes[code]
	delete(i.codes, code)
	now := i.now()
	i.mu.Unlock()

	switch {
	case ac == nil:
		return nil, badRequest("invalid_grant", "unknown or already used authorization code")
	case now.After(ac.expires):
		return nil, badRequest("invalid_grant", "authorization code expired")
	case ac.clientID != clientID:
		return nil, badRequest("invalid_grant", "authorization code was issued to another client")
	case form.Get("redirect_uri") != ac.redirectURI:
		return nil, badRequest("invalid_grant", "redirect_uri does not match the authorization request")
	}
	verifier := form.Get("code_verifier")
	if !validVerifier(verifier) {
		return nil, badRequest("invalid_grant", "code_verifier missing or malformed")
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(ac.codeChallenge)) != 1 {
		return nil, badRequest("invalid_grant", "code_verifier does not match code_challenge")
	}

	u := ac.user
	exp := now.Add(DefaultTokenTTL)
	access, err := i.Mint(Claims{
		Subject:  u.Subject,
		Audience: []string{clientID},
		IssuedAt: now,
		Expiry:   exp,
		Extra:    map[string]any{"scope": ac.scope, "client_id": clientID},
	})
	if err != nil {
		return nil, &tokenError{status: http.StatusInternalServerError, code: "server_error", desc: err.Error()}
	}
	verified := u.EmailVerified
	idToken, err := i.Mint(Claims{
		Subject:       u.Subject,
		Audience:      []string{clientID},
		Email:         u.Email,
		EmailVerified: &verified,
		Name:          strings.TrimSpace(u.GivenName + " " + u.FamilyName),
		GivenName:     u.GivenName,
		FamilyName:    u.FamilyName,
		Nonce:         ac.nonce,
		IssuedAt:      now,
		Expiry:        exp,
		Extra: map[string]any{
			"azp":     clientID,
			"at_hash": atHash(access),
		},
	})
	if err != nil {
		return nil, &tokenError{status: http.StatusInternalServerError, code: "server_error", desc: err.Error()}
	}
	return &tokenResponse{
		AccessToken: access,
		TokenType:   "Bearer",
		ExpiresIn:   int64(DefaultTokenTTL / time.Second),
		IDToken:     idToken,
		Scope:       ac.scope,
	}, nil
}

// clientCredentials issues a JWT access token naming the client itself as
// the subject, for service-to-service tests.
func (i *Issuer) clientCredentials(clientID string, c *client, form url.Values) (*tokenResponse, *tokenError) {
	if c.secret == "" {
		return nil, badRequest("unauthorized_client", "public clients may not use client_credentials")
	}
	aud := form.Get("audience")
	if aud == "" {
		aud = clientID
	}
	extra := map[string]any{"client_id": clientID, "azp": clientID}
	scope := form.Get("scope")
	if scope != "" {
		extra["scope"] = scope
	}
	now := i.now()
	access, err := i.Mint(Claims{
		Subject:  clientID,
		Audience: []string{aud},
		IssuedAt: now,
		Expiry:   now.Add(DefaultTokenTTL),
		Extra:    extra,
	})
	if err != nil {
		return nil, &tokenError{status: http.StatusInternalServerError, code: "server_error", desc: err.Error()}
	}
	return &tokenResponse{
		AccessToken: access,
		TokenType:   "Bearer",
		ExpiresIn:   int64(DefaultTokenTTL / time.Second),
		Scope:       scope,
	}, nil
}

// validVerifier checks the RFC 7636 §4.1 code_verifier syntax.
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for _, r := range v {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r >= '0' && r <= '9',
			r == '-', r == '.', r == '_', r == '~':
		default:
			return false
		}
	}
	return true
}

// atHash is the OIDC Core §3.1.3.6 access-token hash for RS256, letting
// clients bind the access token to the ID token.
func atHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return base64.RawURLEncoding.EncodeToString(b)
}
