package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// Middleware verifies an `Authorization: Bearer` token and hands the identity
// to attach (lifecycle.WithIdentity) so use cases can authorise. A request
// without a token goes on anonymous; one with a bad token is refused here with
// UNAUTHENTICATED, before any GraphQL work.
func Middleware(v *Verifier, attach func(context.Context, domain.Identity) context.Context, sessions, apiKeys SessionLookup, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" {
			// A browser session: the cookie is HttpOnly and SameSite=Lax, and
			// /graphql only takes POST JSON, so no cross-site form can use it.
			if c, err := r.Cookie(SessionCookie); err == nil && sessions != nil {
				id, ok, err := sessions(r.Context(), c.Value)
				if err != nil {
					writeGraphQLError(w, http.StatusInternalServerError, apperr.New(apperr.Internal, "internal error"))
					return
				}
				if ok {
					next.ServeHTTP(w, r.WithContext(attach(r.Context(), id)))
					return
				}
			}
			next.ServeHTTP(w, r)
			return
		}
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			writeGraphQLError(w, http.StatusUnauthorized, apperr.Unauthenticatedf("use Authorization: Bearer <token>"))
			return
		}
		tok = strings.TrimSpace(tok)
		if strings.HasPrefix(tok, APIKeyPrefix) && apiKeys != nil {
			id, ok, err := apiKeys(r.Context(), tok)
			switch {
			case err != nil:
				writeGraphQLError(w, http.StatusInternalServerError, apperr.New(apperr.Internal, "internal error"))
			case !ok:
				writeGraphQLError(w, http.StatusUnauthorized, errUnauth)
			default:
				next.ServeHTTP(w, r.WithContext(attach(r.Context(), id)))
			}
			return
		}
		id, err := v.Verify(r.Context(), tok)
		if err != nil {
			status := http.StatusUnauthorized
			if apperr.CodeOf(err) != apperr.Unauthenticated {
				status = http.StatusInternalServerError
				err = apperr.New(apperr.Internal, "internal error")
			}
			writeGraphQLError(w, status, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(attach(r.Context(), id)))
	})
}

// APIKeyPrefix starts every Rollcall API key (never a JWT).
const APIKeyPrefix = "rk_"

// SessionCookie holds the browser session token.
const SessionCookie = "rollcall_session"

// SessionLookup resolves a session cookie to an identity.
type SessionLookup func(ctx context.Context, token string) (domain.Identity, bool, error)

// writeGraphQLError answers in the GraphQL response shape so clients parse
// one format whatever refused them.
func writeGraphQLError(w http.ResponseWriter, status int, err error) {
	ae, _ := apperr.As(err)
	msg, code := "internal error", string(apperr.Internal)
	if ae != nil {
		msg, code = ae.Message, string(ae.Code)
	}
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": msg, "extensions": map[string]any{"code": code}}},
		"data":   nil,
	})
}

// WriteError is writeGraphQLError for other HTTP handlers of the service.
func WriteError(w http.ResponseWriter, status int, err error) { writeGraphQLError(w, status, err) }
