package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/rollcall-dev/rollcall/internal/apperr"
)

// presentError turns every error into one a client can act on:
// extensions.code always, field/rule/reason where known, and nothing internal.
func presentError(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		if ae, ok := apperr.As(err); ok {
			if ae.Code == apperr.Unavailable {
				// Retryable; the transport answers 503 with Retry-After and
				// logs once for the request.
				gqlErr.Message = apperr.UnavailableMessage
				gqlErr.Extensions = map[string]any{"code": string(apperr.Unavailable)}
				return gqlErr
			}
			if ae.Code == apperr.Internal {
				return internal(ctx, log, gqlErr, err)
			}
			gqlErr.Message = ae.Message
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
			gqlErr.Extensions = ext
			return gqlErr
		}
		// Introspection is off outside dev mode; gqlgen reports it as a plain
		// resolver error, which is the client's to fix, not ours.
		if err.Error() == "introspection disabled" || errors.Unwrap(err) != nil && errors.Unwrap(err).Error() == "introspection disabled" {
			gqlErr.Message = "introspection is disabled"
			gqlErr.Extensions = map[string]any{"code": string(apperr.BadUserInput), "reason": "INTROSPECTION_DISABLED"}
			return gqlErr
		}
		var ge *gqlerror.Error
		if errors.As(err, &ge) && ge.Extensions != nil {
			// Parse, validation and complexity failures come from gqlgen with
			// its own code; clients get BAD_USER_INPUT and the original as reason.
			if c, ok := ge.Extensions["code"].(string); ok {
				gqlErr.Message = noSuggestion(gqlErr.Message)
				gqlErr.Extensions = map[string]any{"code": string(apperr.BadUserInput), "reason": c}
				return gqlErr
			}
		}
		// gqlgen's own protocol errors (an undecodable body, a batch, a bad
		// variable) wrap no cause: they are the client's to fix.
		if errors.As(err, &ge) && (ge.Rule != "" || ge.Err == nil) {
			gqlErr.Message = noSuggestion(gqlErr.Message)
			gqlErr.Extensions = map[string]any{"code": string(apperr.BadUserInput), "reason": "GRAPHQL_VALIDATION_FAILED"}
			return gqlErr
		}
		return internal(ctx, log, gqlErr, err)
	}
}

func internal(ctx context.Context, log *slog.Logger, gqlErr *gqlerror.Error, err error) *gqlerror.Error {
	// A client that went away cancels the request's context and with it every
	// query still running: not a fault of the service. The transport logs
	// it once, at info.
	if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		log.ErrorContext(ctx, "internal error", "err", err.Error(), "path", gqlErr.Path.String())
	}
	gqlErr.Message = "internal error"
	gqlErr.Extensions = map[string]any{"code": string(apperr.Internal)}
	return gqlErr
}

// recoverPanic logs a resolver panic and answers INTERNAL_SERVER_ERROR.
func recoverPanic(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in resolver", "panic", fmt.Sprint(p))
		return &apperr.Error{Code: apperr.Internal, Message: "internal error", Err: fmt.Errorf("panic: %v", p)}
	}
}

// didYouMean matches the suggestions some validation rules add even with
// suggestions disabled; they would let a client enumerate the schema.
var didYouMean = regexp.MustCompile(`\s*Did you mean [^?]*\?`)

func noSuggestion(msg string) string { return didYouMean.ReplaceAllString(msg, "") }
