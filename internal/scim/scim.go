// Package scim serves SCIM 2.0 (RFC 7643, RFC 7644) at /scim/v2, so that a
// partner's directory (Microsoft Entra ID, Okta) provisions its staff as
// learners and reports leavers as they happen (CTL-9).
//
// The protocol is github.com/elimity-com/scim: it routes, serves the
// discovery endpoints, validates bodies against the core User schema and
// hands over PATCH operations and filters already parsed (by
// github.com/scim2/filter-parser/v2). It fits what the two directories send:
// operations in any case ("Replace"), booleans as strings ("False", with
// schema.SetAllowStringValues), path-less operations whose keys are dotted
// paths ("name.givenName") and value paths (emails[type eq "work"].value).
// Filters are not applied in memory: GetAll receives the parsed expression
// and this package reduces it to equality conditions that the store runs as
// SQL. What the library lacks is done here: bearer tokens, If-Match, and a
// ServiceProviderConfig that says ETags are supported.
//
// This package only translates. Who may do what is decided in lifecycle,
// where a SCIM token is an actor scoped to its organisation.
//
// Client behaviour this relies on is documented by the vendors:
//   - Entra: https://learn.microsoft.com/en-us/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups
//     ("Tutorial: Develop and plan provisioning for a SCIM endpoint") and
//     https://learn.microsoft.com/en-us/entra/identity/app-provisioning/application-provisioning-config-problem-scim-compatibility
//     (the aadOptscim062020 flag: lower-case ops, real booleans, path-less
//     replaces with dotted keys).
//   - Okta: https://developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20
//     ("Okta and SCIM Version 2.0").
package scim

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	escim "github.com/elimity-com/scim"
	scimerr "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
)

// Prefix is where the endpoint is mounted: {ROLLCALL_PUBLIC_URL}/scim/v2.
const Prefix = "/scim/v2"

// MaxBody bounds a SCIM request body: one user is a few kilobytes.
const MaxBody = 1 << 20

func init() {
	// Entra sends booleans as the strings "True" and "False" before the
	// aadOptscim062020 flag (see the compatibility page above). A global
	// switch in the library; nothing else in the process uses it.
	schema.SetAllowStringValues(true)
}

// Options configure the handler.
type Options struct {
	// PublicURL is the service's external URL (ROLLCALL_PUBLIC_URL): resource
	// locations are absolute under it.
	PublicURL string
	Log       *slog.Logger
	// RequestID names the request in logs (the server's request ID).
	RequestID func(r *http.Request) string
}

// New returns the /scim/v2 handler. Every request needs a live SCIM token.
func New(svc *lifecycle.Service, o Options) http.Handler {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	users := &users{svc: svc, log: o.Log, reqID: o.RequestID}
	srv, err := escim.NewServer(&escim.ServerArgs{
		ServiceProviderConfig: &escim.ServiceProviderConfig{
			MaxResults:       lifecycle.MaxDirectoryPage,
			SupportFiltering: true,
			SupportPatch:     true,
		},
		ResourceTypes: []escim.ResourceType{
			{
				ID: optional.NewString("User"), Name: "User", Endpoint: "/Users",
				Description: optional.NewString("A learner of the token's organisation"),
				Schema:      schema.CoreUserSchema(),
				// Entra's default mappings write the enterprise extension
				// (employeeNumber, department, manager): accepted, and dropped
				// like every attribute but name and work email (CTL-3).
				SchemaExtensions: []escim.SchemaExtension{{Schema: schema.ExtensionEnterpriseUser()}},
				Handler:          users,
			},
			{
				ID: optional.NewString("Group"), Name: "Group", Endpoint: "/Groups",
				Description: optional.NewString("Not provisioned: always an empty list"),
				Schema:      schema.CoreGroupSchema(),
				Handler:     groups{},
			},
		},
	}, escim.WithBaseURL(strings.TrimRight(o.PublicURL, "/")+Prefix))
	if err != nil {
		panic("scim: " + err.Error()) // the arguments above are constants
	}
	lib := http.StripPrefix("/scim", srv) // the library expects paths from /v2
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, ok := bearer(r)
		if !ok {
			unauthorised(w)
			return
		}
		ctx, ok, err := svc.WithScimToken(r.Context(), secret)
		if err != nil {
			o.Log.ErrorContext(r.Context(), "scim token lookup", "err", err.Error())
			writeError(w, scimerr.ScimErrorInternal)
			return
		}
		if !ok {
			unauthorised(w)
			return
		}
		r = r.WithContext(ctx)
		if r.Body != nil && r.Method != http.MethodGet && r.Method != http.MethodDelete {
			if ct := mediaType(r.Header.Get("Content-Type")); ct != "" && ct != "application/scim+json" && ct != "application/json" {
				writeError(w, scimerr.ScimError{Status: http.StatusUnsupportedMediaType,
					Detail: "send application/scim+json (application/json is accepted too)"})
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		}
		if r.Method == http.MethodGet && strings.TrimSuffix(r.URL.Path, "/") == Prefix+"/ServiceProviderConfig" {
			serviceProviderConfig(w, o.PublicURL)
			return
		}
		lib.ServeHTTP(w, r)
	})
}

func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	return tok, ok && strings.EqualFold(scheme, "Bearer") && tok != ""
}

func mediaType(v string) string {
	mt, _, _ := strings.Cut(v, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

func unauthorised(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="scim", error="invalid_token"`)
	writeError(w, scimerr.ScimError{Status: http.StatusUnauthorized,
		Detail: "a valid SCIM token is required: Authorization: Bearer <token>"})
}

func writeError(w http.ResponseWriter, e scimerr.ScimError) {
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e) // ScimError marshals status as a string (RFC 7644 section 3.12)
}

// serviceProviderConfig answers RFC 7643 section 5 itself: the library's
// says ETags are unsupported, and this endpoint supports them.
func serviceProviderConfig(w http.ResponseWriter, publicURL string) {
	w.Header().Set("Content-Type", "application/scim+json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"schemas":        []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"patch":          map[string]any{"supported": true},
		"bulk":           map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":         map[string]any{"supported": true, "maxResults": lifecycle.MaxDirectoryPage},
		"changePassword": map[string]any{"supported": false},
		"sort":           map[string]any{"supported": false},
		"etag":           map[string]any{"supported": true},
		"authenticationSchemes": []map[string]any{{
			"type": "oauthbearertoken", "name": "Bearer token", "primary": true,
			"description": "A SCIM token issued to the organisation with issueScimToken, sent as Authorization: Bearer <token>",
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig",
			"location": strings.TrimRight(publicURL, "/") + Prefix + "/ServiceProviderConfig"},
	})
}

// scimError maps a use case's error to the SCIM error schema. Internals
// never reach the client: the library would echo err.Error() for anything
// that is not a ScimError.
func (u *users) scimError(r *http.Request, err error) error {
	ae, ok := apperr.As(err)
	if !ok {
		ae = &apperr.Error{Code: apperr.Internal}
	}
	detail := ae.Message
	if ae.Field != "" {
		detail = ae.Field + ": " + detail
	}
	if ae.Rule != "" {
		detail += " (" + ae.Rule + ")"
	}
	switch ae.Code {
	case apperr.NotFound:
		return scimerr.ScimError{Status: http.StatusNotFound, Detail: detail}
	case apperr.BadUserInput:
		return scimerr.ScimError{Status: http.StatusBadRequest, ScimType: scimerr.ScimTypeInvalidValue, Detail: detail}
	case apperr.Conflict:
		if ae.Reason == lifecycle.ReasonPreconditionFailed {
			return scimerr.ScimError{Status: http.StatusPreconditionFailed, Detail: detail}
		}
		return scimerr.ScimError{Status: http.StatusConflict, ScimType: scimerr.ScimTypeUniqueness, Detail: detail}
	case apperr.Forbidden:
		return scimerr.ScimError{Status: http.StatusForbidden, Detail: detail}
	case apperr.Unauthenticated:
		return scimerr.ScimError{Status: http.StatusUnauthorized, Detail: detail}
	}
	attrs := []any{"err", err.Error()}
	if u.reqID != nil {
		attrs = append(attrs, "request_id", u.reqID(r))
	}
	u.log.ErrorContext(r.Context(), "scim request failed", attrs...)
	return scimerr.ScimError{Status: http.StatusInternalServerError, Detail: "internal error"}
}

var errNotSupported = scimerr.ScimError{Status: http.StatusNotImplemented,
	Detail: "groups are not provisioned: only GET /Groups is answered, with an empty list"}

// groups answers connection tests (Entra's and Okta's read GET /Groups) with
// an empty list; groups as access groups are a later step.
type groups struct{}

func (groups) Create(*http.Request, escim.ResourceAttributes) (escim.Resource, error) {
	return escim.Resource{}, errNotSupported
}
func (groups) Get(_ *http.Request, id string) (escim.Resource, error) {
	return escim.Resource{}, scimerr.ScimErrorResourceNotFound(id)
}
func (groups) GetAll(*http.Request, escim.ListRequestParams) (escim.Page, error) {
	return escim.Page{Resources: []escim.Resource{}}, nil
}
func (groups) Replace(*http.Request, string, escim.ResourceAttributes) (escim.Resource, error) {
	return escim.Resource{}, errNotSupported
}
func (groups) Delete(*http.Request, string) error { return errNotSupported }
func (groups) Patch(*http.Request, string, []escim.PatchOperation) (escim.Resource, error) {
	return escim.Resource{}, errNotSupported
}
