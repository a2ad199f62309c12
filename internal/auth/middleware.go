package auth

import (
	"context"
	"net/http"
	"strings"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// Middleware verifies the credential in the request's headers (an
// `Authorization: Bearer` token, an API key, or the session cookie) and hands
// the identity to attach (lifecycle.WithIdentity) so use cases can authorise.
// It reads headers only, never the body: the edge sizes the body by what it
// learns here (Authenticated). A request without a credential goes on
// anonymous; one with a bad token is refused here with UNAUTHENTICATED,
// before any body is read or GraphQL work done. A database that cannot be
// reached answers 503 SERVICE_UNAVAILABLE, which a client may retry.
func Middleware(v *Verifier, attach func(context.Context, domain.Identity) context.Context, sessions, apiKeys SessionLookup, next http.Handler) http.Handler {
	known := func(w http.ResponseWriter, r *http.Request, id domain.Identity) {
		ctx := context.WithValue(attach(r.Context(), id), authenticatedKey{}, true)
		next.ServeHTTP(w, r.WithContext(ctx))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" {
			// A browser session: the cookie is HttpOnly and SameSite=Lax, and
			// /graphql only takes POST JSON, so no cross-site form can use it.
			if c, err := r.Cookie(SessionCookie); err == nil && sessions != nil {
				id, ok, err := sessions(r.Context(), c.Value)
				if err != nil {
					apperr.WriteHTTP(w, 0, err)
					return
				}
				if ok {
					known(w, r, id)
					return
				}
			}
			next.ServeHTTP(w, r)
			return
		}
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			apperr.WriteHTTP(w, http.StatusUnauthorized, apperr.Unauthenticatedf("use Authorization: Bearer <token>"))
			return
		}
		tok = strings.TrimSpace(tok)
		if strings.HasPrefix(tok, APIKeyPrefix) && apiKeys != nil {
			id, ok, err := apiKeys(r.Context(), tok)
			switch {
			case err != nil:
				apperr.WriteHTTP(w, 0, err)
			case !ok:
				apperr.WriteHTTP(w, http.StatusUnauthorized, errUnauth)
			default:
				known(w, r, id)
			}
			return
		}
		id, err := v.Verify(r.Context(), tok)
		if err != nil {
			apperr.WriteHTTP(w, 0, err)
			return
		}
		known(w, r, id)
	})
}

type authenticatedKey struct{}

// Authenticated reports whether Middleware verified a credential for the
// request of ctx (the edge then allows a full-size body).
func Authenticated(ctx context.Context) bool {
	ok, _ := ctx.Value(authenticatedKey{}).(bool)
	return ok
}

// APIKeyPrefix starts every Rollcall API key (never a JWT).
const APIKeyPrefix = "rk_"

// SessionCookie holds the browser session token.
const SessionCookie = "rollcall_session"

// SessionLookup resolves a session cookie to an identity.
type SessionLookup func(ctx context.Context, token string) (domain.Identity, bool, error)
