package domain

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// EmailErrorReason is a stable, machine-readable reason for refusing an email
// address, for callers to map to their own error codes.
type EmailErrorReason string

// Reasons an email address can be refused.
const (
	// EmailEmpty: nothing left after trimming surrounding whitespace.
	EmailEmpty EmailErrorReason = "email_empty"
	// EmailSyntax: not a plain local@domain address (missing or repeated
	// '@', whitespace, control characters, comments, characters outside the
	// RFC 5322 dot-atom set, non-ASCII local part, bad dots...).
	EmailSyntax EmailErrorReason = "email_syntax"
	// EmailDisplayName: a display-name form such as "Bob <bob@kent.gov.uk>",
	// or any angle bracket.
	EmailDisplayName EmailErrorReason = "email_display_name"
	// EmailQuoted: a quoted local part or any double quote.
	EmailQuoted EmailErrorReason = "email_quoted"
	// EmailTooLong: local part over 64 octets or address over 254 octets.
	EmailTooLong EmailErrorReason = "email_too_long"
	// EmailDomainRefused: the domain was refused; Unwrap gives the *DomainError.
	EmailDomainRefused EmailErrorReason = "email_domain_refused"
)

// maxRawEmailBytes bounds work on hostile input before any parsing. The real
// 254-octet limit is checked on the normalised address, since punycode can be
// shorter than the UTF-8 a user typed.
const maxRawEmailBytes = 1024

// EmailError explains why an email address was refused.
type EmailError struct {
	Reason EmailErrorReason
	// Input is the offending input, truncated to its first 64 runes.
	Input string
	// DomainErr is set when Reason is EmailDomainRefused.
	DomainErr *DomainError
}

// Error returns a plain English message, quoting at most the first 64 runes
// of the input, escaped.
func (e *EmailError) Error() string {
	var why string
	switch e.Reason {
	case EmailEmpty:
		return "no email address was given"
	case EmailSyntax:
		why = "this is not a valid email address (expected name@organisation.domain)"
	case EmailDisplayName:
		why = "enter only the email address, without a name or angle brackets"
	case EmailQuoted:
		why = "email addresses with quotes are not accepted"
	case EmailTooLong:
		why = "the email address is too long"
	case EmailDomainRefused:
		if e.DomainErr != nil {
			return "the email domain is not accepted: " + e.DomainErr.Error()
		}
		why = "the email domain is not accepted"
	default:
		why = "the email address was refused"
	}
	if e.Input == "" {
		return why
	}
	return fmt.Sprintf("%s: %q", why, e.Input)
}

// Unwrap exposes the underlying *DomainError, so errors.As works through it.
func (e *EmailError) Unwrap() error {
	if e.DomainErr == nil {
		return nil
	}
	return e.DomainErr
}

func emailErr(reason EmailErrorReason, input string) *EmailError {
	return &EmailError{Reason: reason, Input: truncateRunes(input, maxErrorInputRunes)}
}

// Email is a normalised work email address. Its String form is the
// uniqueness key for a learner's identity.
type Email struct {
	Local  string
	Domain string
}

// String returns local@domain.
func (e Email) String() string { return e.Local + "@" + e.Domain }

// ParseEmail accepts only a bare addr-spec in dot-atom form and returns it
// normalised:
//
//   - Only surrounding whitespace is trimmed. Display names, angle brackets,
//     quoted local parts, comments, internal whitespace and control or
//     invisible (format) characters are refused, because every one of them
//     lets two different-looking strings mean the same mailbox, or the same
//     string mean different mailboxes to different parsers.
//   - The local part is lower-cased. RFC 5321 allows case-sensitive local
//     parts, but the councils and partners we serve treat them as
//     case-insensitive, and the normalised address is the uniqueness key:
//     Bob@ and bob@ must not become two learners.
//   - Non-ASCII local parts are refused: SMTPUTF8 (RFC 6531) is not supported
//     end to end, and Unicode local parts would reopen lookalike problems.
//   - The domain goes through NormaliseDomain, so Unicode domains become
//     punycode and IP literals, public suffixes, webmail and single-label
//     names are refused (as EmailDomainRefused, wrapping the *DomainError).
func ParseEmail(raw string) (Email, error) { return parseEmail(raw, nil) }

// EmailParser is ParseEmail for many addresses: it normalises each distinct
// domain spelling once (NormaliseDomain, most of ParseEmail's cost, is a
// function of the spelling alone), for the rows of one import, which mostly
// share a few domains. It remembers at most maxParserDomains spellings, the
// normalised ones only. The zero value is ready; not for concurrent use.
type EmailParser struct{ domains map[string]string }

const maxParserDomains = 64

// Parse is ParseEmail(raw).
func (p *EmailParser) Parse(raw string) (Email, error) { return parseEmail(raw, p) }

// domain is NormaliseDomain(raw), remembered when p is not nil.
func (p *EmailParser) domain(raw string) (string, error) {
	if p == nil {
		return NormaliseDomain(raw)
	}
	if d, ok := p.domains[raw]; ok {
		return d, nil
	}
	d, err := NormaliseDomain(raw)
	if err == nil && len(p.domains) < maxParserDomains {
		if p.domains == nil {
			p.domains = make(map[string]string)
		}
		p.domains[raw] = d
	}
	return d, err
}

func parseEmail(raw string, p *EmailParser) (Email, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return Email{}, emailErr(EmailEmpty, raw)
	}
	if len(s) > maxRawEmailBytes {
		return Email{}, emailErr(EmailTooLong, raw)
	}
	if strings.ContainsAny(s, "<>") {
		return Email{}, emailErr(EmailDisplayName, raw)
	}
	if strings.ContainsRune(s, '"') {
		return Email{}, emailErr(EmailQuoted, raw)
	}
	if !utf8.ValidString(s) || strings.ContainsAny(s, "()") {
		return Email{}, emailErr(EmailSyntax, raw)
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return Email{}, emailErr(EmailSyntax, raw)
		}
	}
	if strings.Count(s, "@") != 1 {
		return Email{}, emailErr(EmailSyntax, raw)
	}
	local, rawDomain, _ := strings.Cut(s, "@")
	if local == "" {
		return Email{}, emailErr(EmailSyntax, raw)
	}
	if len(local) > 64 {
		return Email{}, emailErr(EmailTooLong, raw)
	}
	if !isDotAtom(local) {
		return Email{}, emailErr(EmailSyntax, raw)
	}
	d, err := p.domain(rawDomain)
	if err != nil {
		e := emailErr(EmailDomainRefused, raw)
		var de *DomainError
		if errors.As(err, &de) {
			e.DomainErr = de
		}
		return Email{}, e
	}
	email := Email{Local: strings.ToLower(local), Domain: d}
	if len(email.Local)+1+len(email.Domain) > 254 {
		return Email{}, emailErr(EmailTooLong, raw)
	}
	return email, nil
}

// isDotAtom reports whether s is an RFC 5322 dot-atom: runs of atext joined
// by single dots, with no leading or trailing dot. ASCII only.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && !isAtext(c) {
			return false
		}
	}
	return true
}

// isAtext reports whether c is in the RFC 5322 atext set.
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}
