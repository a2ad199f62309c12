// Email-domain normalisation and matching.
//
// Because an email domain alone grants organisation membership (for example
// kent.gov.uk vs kent.police.uk), everything here is deliberately strict:
// anything ambiguous, spoofable or shared between unrelated people is refused
// rather than guessed at.

package domain

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// DomainErrorReason is a stable, machine-readable reason for refusing a domain,
// so that callers (GraphQL resolvers, admin tools) can map it to their own
// error codes without parsing messages.
type DomainErrorReason string

// Reasons a domain can be refused.
const (
	// DomainEmpty: nothing left after trimming whitespace and the root dot.
	DomainEmpty DomainErrorReason = "domain_empty"
	// DomainTooLong: over 253 octets in total, or a label over 63 octets,
	// after conversion to punycode (the DNS limits).
	DomainTooLong DomainErrorReason = "domain_too_long"
	// DomainInvalid: not a syntactically valid hostname, or rejected by IDNA
	// (disallowed or unnormalised runes, bad hyphens, bidi violations...).
	DomainInvalid DomainErrorReason = "domain_invalid"
	// DomainIPLiteral: an IP address (bare, bracketed or numeric-looking).
	DomainIPLiteral DomainErrorReason = "domain_ip_literal"
	// DomainSingleLabel: a name with no dot, such as "localhost" or "com".
	DomainSingleLabel DomainErrorReason = "domain_single_label"
	// DomainPublicSuffix: a registry-level name such as gov.uk or co.uk that
	// many unrelated organisations register under.
	DomainPublicSuffix DomainErrorReason = "domain_public_suffix"
	// DomainWebmail: a consumer mailbox provider, which says nothing about
	// the holder's employer.
	DomainWebmail DomainErrorReason = "domain_webmail"
)

// maxErrorInputRunes bounds how much caller input is kept in errors, so that
// errors are safe to log and show (no megabyte payloads echoed back).
const maxErrorInputRunes = 64

// maxRawDomainBytes bounds the work done on hostile input before IDNA runs.
// It is generous because Unicode labels are longer in UTF-8 than in punycode.
const maxRawDomainBytes = 1024

// DomainError explains why a domain was refused.
type DomainError struct {
	Reason DomainErrorReason
	// Input is the offending input, truncated to its first 64 runes.
	Input string
}

// Error returns a plain English message. It quotes at most the first 64
// runes of the input, escaped, so it cannot be used for log injection.
func (e *DomainError) Error() string {
	var why string
	switch e.Reason {
	case DomainEmpty:
		why = "no domain was given"
	case DomainTooLong:
		why = "the domain is too long (at most 253 characters, and 63 per part)"
	case DomainInvalid:
		why = "this is not a valid domain name"
	case DomainIPLiteral:
		why = "IP addresses are not accepted, a domain name is required"
	case DomainSingleLabel:
		why = "the domain needs at least two parts, such as kent.gov.uk"
	case DomainPublicSuffix:
		why = "this is a shared public suffix (such as gov.uk or co.uk), not one organisation's domain"
	case DomainWebmail:
		why = "personal webmail domains are not accepted, use a work email domain"
	default:
		why = "the domain was refused"
	}
	if e.Input == "" {
		return why
	}
	return fmt.Sprintf("%s: %q", why, e.Input)
}

func domainErr(reason DomainErrorReason, input string) *DomainError {
	return &DomainError{Reason: reason, Input: truncateRunes(input, maxErrorInputRunes)}
}

// truncateRunes returns at most the first n runes of s. Invalid UTF-8 bytes
// count as one rune each.
func truncateRunes(s string, n int) string {
	i := 0
	for count := 0; i < len(s) && count < n; count++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i]
}

// idnaProfile converts Unicode domains to punycode. It is the registration
// profile (RFC 5891 §4) rather than lookup: input must already be in
// canonical form, so full-width letters, invisible "ignored" characters (soft
// hyphen, zero-width space) and unnormalised (non-NFC) text are refused
// instead of silently mapped to something that might look like another
// organisation's domain. Length checks are done by NormaliseDomain itself so
// that over-long names get DomainTooLong rather than a generic failure.
var idnaProfile = idna.New(
	idna.ValidateForRegistration(), // STD3 (LDH), label validation, hyphens, joiners, bidi
	idna.Transitional(false),       // keep ß and ς distinct, as registries do
	idna.VerifyDNSLength(false),    // checked below with a precise reason
)

// webmailDomains are large consumer mailbox providers. An address at one of
// them (or any subdomain) proves nothing about employment, so it must never
// grant organisation membership.
var webmailDomains = map[string]struct{}{
	"gmail.com":       {},
	"googlemail.com":  {},
	"outlook.com":     {},
	"hotmail.com":     {},
	"hotmail.co.uk":   {},
	"live.com":        {},
	"live.co.uk":      {},
	"msn.com":         {},
	"yahoo.com":       {},
	"yahoo.co.uk":     {},
	"ymail.com":       {},
	"icloud.com":      {},
	"me.com":          {},
	"mac.com":         {},
	"aol.com":         {},
	"protonmail.com":  {},
	"proton.me":       {},
	"gmx.com":         {},
	"gmx.co.uk":       {},
	"mail.com":        {},
	"btinternet.com":  {},
	"sky.com":         {},
	"virginmedia.com": {},
	"talktalk.net":    {},
	"zoho.com":        {},
	"yandex.com":      {},
	"qq.com":          {},
}

// NormaliseDomain returns the canonical ASCII (punycode, lower-case, no
// trailing dot) form of a work email domain, or a *DomainError.
//
// The canonical form is what organisation rules are matched against, so two
// inputs normalise to the same string exactly when DNS would treat them as the
// same name. Unicode lookalikes (e.g. a Cyrillic "е" in kеnt.gov.uk) become a
// distinct xn-- label and can never equal the ASCII domain.
//
// Refused: empty input, over-long names, invalid hostnames, IP literals,
// single-label names, public suffixes (gov.uk, police.uk, kent.sch.uk,
// github.io...) and consumer webmail domains including their subdomains.
func NormaliseDomain(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", domainErr(DomainEmpty, raw)
	}
	if len(s) > maxRawDomainBytes {
		return "", domainErr(DomainTooLong, raw)
	}
	if !utf8.ValidString(s) {
		return "", domainErr(DomainInvalid, raw)
	}
	s = strings.ToLower(s)
	// One trailing dot is the DNS root and means the same name; more would
	// be an empty label and is left for the label checks to refuse.
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", domainErr(DomainEmpty, raw)
	}

	// Address literals: "[10.0.0.1]", "[ipv6:::1]" and bare IPs (including
	// IPv6 with zones) get a specific reason rather than a generic syntax one.
	if strings.HasPrefix(s, "[") {
		return "", domainErr(DomainIPLiteral, raw)
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return "", domainErr(DomainIPLiteral, raw)
	}

	ascii, err := idnaProfile.ToASCII(s)
	if err != nil {
		return "", domainErr(DomainInvalid, raw)
	}
	// Re-running the conversion must be a no-op. This refuses non-canonical
	// punycode (several xn-- spellings of one name) so that the output is a
	// unique key and NormaliseDomain is idempotent.
	if again, err := idnaProfile.ToASCII(ascii); err != nil || again != ascii {
		return "", domainErr(DomainInvalid, raw)
	}

	if len(ascii) > 253 {
		return "", domainErr(DomainTooLong, raw)
	}
	labels := strings.Split(ascii, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return "", domainErr(DomainInvalid, raw)
		case len(l) > 63:
			return "", domainErr(DomainTooLong, raw)
		case !isLDHLabel(l):
			return "", domainErr(DomainInvalid, raw)
		}
	}

	// IDNA maps e.g. full-width digits, so check for IPs again on the
	// result. A numeric (or 0x-hex) final label is how browsers and
	// resolvers recognise legacy IPv4 forms such as 127.1 or 0x7f.0.0.1; no
	// real TLD looks like that.
	if _, err := netip.ParseAddr(ascii); err == nil || isNumericLabel(labels[len(labels)-1]) {
		return "", domainErr(DomainIPLiteral, raw)
	}
	if len(labels) < 2 {
		return "", domainErr(DomainSingleLabel, raw)
	}

	// A name that is itself a public suffix is a registry, not an
	// organisation. Private suffixes (github.io, service.gov.uk) are refused
	// too: their owners hand out subdomains to unrelated parties, so the
	// suffix cannot stand for one organisation either.
	if ps, _ := publicsuffix.PublicSuffix(ascii); ps == ascii {
		return "", domainErr(DomainPublicSuffix, raw)
	}
	// A parent of an ICANN wildcard rule (sch.uk for *.sch.uk) is a registry
	// whose every child is a public suffix. Only ICANN rules count here:
	// private wildcards are often under a company's own mail domain.
	probe := "x." + ascii
	if ps, icann := publicsuffix.PublicSuffix(probe); ps == probe && icann {
		return "", domainErr(DomainPublicSuffix, raw)
	}

	if isWebmail(ascii) {
		return "", domainErr(DomainWebmail, raw)
	}
	return ascii, nil
}

// isLDHLabel reports whether l is letters-digits-hyphen only, with no hyphen
// at either end (RFC 952/1123 hostname rules, applied after punycode).
func isLDHLabel(l string) bool {
	if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isNumericLabel reports whether l is all decimal digits, or "0x" followed by
// hex digits: the shapes that make resolvers parse a name as IPv4.
func isNumericLabel(l string) bool {
	if l == "" {
		return false
	}
	digits, hex := l, false
	if strings.HasPrefix(l, "0x") {
		digits, hex = l[2:], true
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if '0' <= c && c <= '9' || hex && 'a' <= c && c <= 'f' {
			continue
		}
		return false
	}
	return true
}

// isWebmail reports whether d is a webmail domain or a subdomain of one.
func isWebmail(d string) bool {
	for {
		if _, ok := webmailDomains[d]; ok {
			return true
		}
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return false
		}
		d = d[i+1:]
	}
}

// DomainCovers reports whether a rule for ruleDomain matches candidate. Both
// must already be normalised by NormaliseDomain. Subdomain matching is on a
// label boundary, so kent.gov.uk never covers evilkent.gov.uk, and a suffix
// match is required, so it never covers kent.gov.uk.evil.com.
func DomainCovers(ruleDomain string, includeSubdomains bool, candidate string) bool {
	if ruleDomain == "" || candidate == "" {
		return false
	}
	if candidate == ruleDomain {
		return true
	}
	return includeSubdomains && strings.HasSuffix(candidate, "."+ruleDomain)
}

// DomainsOverlap reports whether some hostname would be covered by both rules
// (a, aSub) and (b, bSub). It lets admin tools refuse two organisations
// claiming the same addresses, which would make membership ambiguous.
// Inputs must already be normalised.
func DomainsOverlap(a string, aSub bool, b string, bSub bool) bool {
	if a == "" || b == "" {
		return false
	}
	return a == b ||
		aSub && strings.HasSuffix(b, "."+a) ||
		bSub && strings.HasSuffix(a, "."+b)
}
