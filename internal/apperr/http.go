package apperr

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// RetryAfter is the Retry-After (seconds) sent with SERVICE_UNAVAILABLE.
const RetryAfter = 5

// UnavailableMessage is what a client is told while the database is down
// (store's translation of a connection failure carries it).
const UnavailableMessage = "the service cannot reach its database; nothing was changed, retry after a few seconds"

// ReasonBodyTooLarge is the reason of a request body over its limit (413).
const ReasonBodyTooLarge = "BODY_TOO_LARGE"

// Status is the HTTP status an error answers with outside GraphQL execution
// (the edge's own refusals, /auth/*).
func Status(err error) int {
	if ae, ok := As(err); ok && ae.Reason == ReasonBodyTooLarge {
		return http.StatusRequestEntityTooLarge
	}
	switch CodeOf(err) {
	case Unauthenticated:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case NotFound:
		return http.StatusNotFound
	case BadUserInput:
		return http.StatusBadRequest
	case Conflict, CursorExpired:
		return http.StatusConflict
	case RateLimited:
		return http.StatusTooManyRequests
	case Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// WriteHTTP is the service's one writer of error responses that do not come
// out of GraphQL execution: the GraphQL response shape ({"errors":[…],
// "data":null}) so a client parses one format whatever refused it.
// status 0 takes Status(err). An error that is not an *Error is written as
// INTERNAL_SERVER_ERROR with no internals. SERVICE_UNAVAILABLE carries
// Retry-After; 401 carries WWW-Authenticate.
func WriteHTTP(w http.ResponseWriter, status int, err error) {
	ae, ok := As(err)
	if !ok || ae.Code == Internal {
		ae = New(Internal, "internal error")
	}
	if status == 0 {
		status = Status(ae)
	}
	ext := map[string]any{"code": string(ae.Code)}
	if ae.Field != "" {
		ext["field"] = ae.Field
	}
	if ae.Rule != "" {
		ext["rule"] = ae.Rule
	}
	if ae.Reason != "" {
		ext["reason"] = ae.Reason
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	switch status {
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", strconv.Itoa(RetryAfter))
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": ae.Message, "extensions": ext}},
		"data":   nil,
	})
}

// Unreachable is the error of a database (or other dependency) that cannot
// be reached: SERVICE_UNAVAILABLE, retryable, cause kept for logs.
func Unreachable(cause error) *Error {
	return &Error{Code: Unavailable, Message: UnavailableMessage, Err: cause}
}
