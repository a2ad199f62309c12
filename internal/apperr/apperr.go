// Package apperr is the one error type that crosses package boundaries. Storage
// errors are translated into it in store, and it is presented to clients in
// graph: a code a client can act on, never internals.
package apperr

import (
	"errors"
	"fmt"
)

// Code is the machine-readable error class exposed as extensions.code.
type Code string

const (
	Unauthenticated Code = "UNAUTHENTICATED"
	Forbidden       Code = "FORBIDDEN"
	NotFound        Code = "NOT_FOUND"
	BadUserInput    Code = "BAD_USER_INPUT"
	Conflict        Code = "CONFLICT"
	CursorExpired   Code = "CURSOR_EXPIRED"
	RateLimited     Code = "RATE_LIMITED"
	// Unavailable: a dependency (the database) cannot be reached; the
	// request changed nothing and may be retried after Retry-After.
	Unavailable Code = "SERVICE_UNAVAILABLE"
	Internal    Code = "INTERNAL_SERVER_ERROR"
)

// Error carries a code, a message safe to show a client, and optionally the
// offending input field and the rule ID (docs/rules.md) that the input breached.
type Error struct {
	Code    Code
	Message string
	Field   string
	Rule    string
	Reason  string // a finer machine-readable reason, e.g. "PUBLIC_SUFFIX"
	Err     error  // internal cause; never shown to clients
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// WithField returns a copy naming the input field at fault.
func (e *Error) WithField(f string) *Error { c := *e; c.Field = f; return &c }

// WithRule returns a copy naming the rule breached.
func (e *Error) WithRule(r string) *Error { c := *e; c.Rule = r; return &c }

// WithReason returns a copy with a finer reason code.
func (e *Error) WithReason(r string) *Error { c := *e; c.Reason = r; return &c }

func New(code Code, msg string) *Error { return &Error{Code: code, Message: msg} }

func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func Unauthenticatedf(format string, args ...any) *Error {
	return Errorf(Unauthenticated, format, args...)
}
func Forbiddenf(format string, args ...any) *Error { return Errorf(Forbidden, format, args...) }
func NotFoundf(format string, args ...any) *Error  { return Errorf(NotFound, format, args...) }
func Conflictf(format string, args ...any) *Error  { return Errorf(Conflict, format, args...) }

// Invalid reports bad input in one field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: BadUserInput, Message: fmt.Sprintf(format, args...), Field: field}
}

// Wrap marks an unexpected failure: the client sees only the code.
func Wrap(err error, msg string) *Error {
	if err == nil {
		return nil
	}
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	return &Error{Code: Internal, Message: msg, Err: err}
}

// CodeOf returns the code of err, Internal for foreign errors and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return Internal
}

// As returns err as *Error if it is one.
func As(err error) (*Error, bool) {
	var ae *Error
	ok := errors.As(err, &ae)
	return ae, ok
}
