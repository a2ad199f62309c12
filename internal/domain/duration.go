package domain

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration reads an ISO 8601 duration of weeks, days, hours, minutes and
// seconds ("P21D", "PT12H", "P1DT30M"). Years and months are refused: their
// length varies, and a retention period must mean one exact span.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	bad := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("invalid ISO 8601 duration %q: %s", clip(orig, 40), why)
	}
	if !strings.HasPrefix(s, "P") || len(s) < 3 {
		return bad("must start with P and have at least one component")
	}
	s = s[1:]
	var total time.Duration
	inTime := false
	seen := ""
	for len(s) > 0 {
		if s[0] == 'T' {
			if inTime {
				return bad("repeated T")
			}
			inTime = true
			s = s[1:]
			if s == "" {
				return bad("T without a time component")
			}
			continue
		}
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i == len(s) || i > 6 {
			return bad("each component is a whole number of at most 6 digits followed by a unit")
		}
		n, _ := strconv.Atoi(s[:i])
		unit := s[i]
		s = s[i+1:]
		key := string(unit)
		if inTime {
			key = "T" + key
		}
		if strings.Contains(seen, key+",") {
			return bad("repeated unit")
		}
		seen += key + ","
		var d time.Duration
		switch {
		case !inTime && unit == 'W':
			d = 7 * day
		case !inTime && unit == 'D':
			d = day
		case inTime && unit == 'H':
			d = time.Hour
		case inTime && unit == 'M':
			d = time.Minute
		case inTime && unit == 'S':
			d = time.Second
		case !inTime && (unit == 'Y' || unit == 'M'):
			return bad("years and months are not exact; use days")
		default:
			return bad("unknown unit")
		}
		total += time.Duration(n) * d
	}
	return total, nil
}

// FormatDuration writes d as ISO 8601 with days, hours, minutes and seconds.
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "PT0S"
	}
	d = d.Truncate(time.Second)
	days := d / day
	d -= days * day
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	d -= m * time.Minute
	sec := d / time.Second
	var b strings.Builder
	b.WriteString("P")
	if days > 0 {
		fmt.Fprintf(&b, "%dD", days)
	}
	if h > 0 || m > 0 || sec > 0 {
		b.WriteString("T")
		if h > 0 {
			fmt.Fprintf(&b, "%dH", h)
		}
		if m > 0 {
			fmt.Fprintf(&b, "%dM", m)
		}
		if sec > 0 {
			fmt.Fprintf(&b, "%dS", sec)
		}
	}
	return b.String()
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
