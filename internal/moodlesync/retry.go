package moodlesync

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Retry bounds how one request is retried on transient failures (network
// errors, HTTP 5xx/429, Moodle database errors, Rollcall
// INTERNAL_SERVER_ERROR/RATE_LIMITED): exponential back-off with jitter.
// The zero value means the defaults.
type Retry struct {
	// Attempts is the number of tries per request, the first included
	// (default 5).
	Attempts int
	// BaseDelay is the back-off before the second try (default 500ms); it
	// doubles each time up to MaxDelay (default 30s). Each wait is drawn
	// uniformly from [d/2, d].
	BaseDelay time.Duration
	MaxDelay  time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = 5
	}
	if r.BaseDelay <= 0 {
		r.BaseDelay = 500 * time.Millisecond
	}
	if r.MaxDelay <= 0 {
		r.MaxDelay = 30 * time.Second
	}
	if r.MaxDelay < r.BaseDelay {
		r.MaxDelay = r.BaseDelay
	}
	return r
}

// delay is the wait before try attempt+1.
func (r Retry) delay(attempt int) time.Duration {
	d := r.BaseDelay
	for i := 1; i < attempt && d < r.MaxDelay; i++ {
		d *= 2
	}
	if d > r.MaxDelay {
		d = r.MaxDelay
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// do runs f until it succeeds, fails for good, or runs out of tries.
func (r Retry) do(ctx context.Context, log *slog.Logger, what string, f func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := f(ctx)
		if err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
		if attempt >= r.Attempts {
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
		}
		d := r.delay(attempt)
		log.WarnContext(ctx, "transient failure, retrying", "call", what, "attempt", attempt, "retry_in", d, "err", redact(err.Error()))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
