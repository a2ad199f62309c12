package model

import (
	"io"
	"strconv"
	"time"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

// Duration is the ISO 8601 Duration scalar.
type Duration time.Duration

func (d Duration) MarshalGQL(w io.Writer) {
	_, _ = io.WriteString(w, strconv.Quote(domain.FormatDuration(time.Duration(d))))
}

func (d *Duration) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return apperr.Invalid("", "a Duration is an ISO 8601 string such as \"P21D\"")
	}
	p, err := domain.ParseDuration(s)
	if err != nil {
		return apperr.Invalid("", "%s", err.Error())
	}
	*d = Duration(p)
	return nil
}
