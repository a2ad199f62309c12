package domain

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// emailReason returns the reason of an *EmailError, or "" if err is not one.
func emailReason(err error) EmailErrorReason {
	var ee *EmailError
	if errors.As(err, &ee) {
		return ee.Reason
	}
	return ""
}

func TestParseEmail_CTL3_AcceptsWorkAddresses(t *testing.T) {
	local64 := strings.Repeat("a", 64)
	tests := []struct {
		name, in, want string
	}{
		{"plain", "bob@kent.gov.uk", "bob@kent.gov.uk"},
		{"case folded", "Bob.Smith@Kent.Gov.UK", "bob.smith@kent.gov.uk"},
		{"surrounding whitespace", " \talice@medway.gov.uk\r\n", "alice@medway.gov.uk"},
		{"police", "PC.Jones@KENT.POLICE.UK", "pc.jones@kent.police.uk"},
		{"university", "j.doe@kent.ac.uk", "j.doe@kent.ac.uk"},
		{"fire service", "crew@kent.fire-uk.org", "crew@kent.fire-uk.org"},
		{"hyphenated domain", "x@folkestone-hythe.gov.uk", "x@folkestone-hythe.gov.uk"},
		{"apostrophe", "o'brien@tmbc.gov.uk", "o'brien@tmbc.gov.uk"},
		{"plus tag kept", "bob+training@kent.gov.uk", "bob+training@kent.gov.uk"},
		{"all atext", "!#$%&'*+-/=?^_`{|}~@kent.gov.uk", "!#$%&'*+-/=?^_`{|}~@kent.gov.uk"},
		{"digits", "123@kent.gov.uk", "123@kent.gov.uk"},
		{"root dot dropped", "bob@kent.gov.uk.", "bob@kent.gov.uk"},
		{"unicode domain to punycode", "Hans@München.de", "hans@xn--mnchen-3ya.de"},
		{"subdomain", "a@schools.kent.gov.uk", "a@schools.kent.gov.uk"},
		{"64-octet local", local64 + "@kent.gov.uk", local64 + "@kent.gov.uk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseEmail(tt.in)
			if err != nil {
				t.Fatalf("ParseEmail(%q) error: %v", tt.in, err)
			}
			if e.String() != tt.want {
				t.Fatalf("ParseEmail(%q) = %q, want %q", tt.in, e.String(), tt.want)
			}
			if e.Local+"@"+e.Domain != e.String() {
				t.Fatalf("String() %q disagrees with fields %+v", e.String(), e)
			}
		})
	}
}

func TestParseEmail_CTL3_RefusesNonWorkAddresses(t *testing.T) {
	tests := []struct {
		in   string
		want DomainErrorReason
	}{
		{"bob@gmail.com", DomainWebmail},
		{"Bob@GoogleMail.com", DomainWebmail},
		{"bob@hotmail.co.uk", DomainWebmail},
		{"bob@mail.yahoo.co.uk", DomainWebmail},
		{"bob@btinternet.com", DomainWebmail},
		{"bob@icloud.com", DomainWebmail},
		{"bob@proton.me", DomainWebmail},
		{"bob@gov.uk", DomainPublicSuffix},
		{"bob@police.uk", DomainPublicSuffix},
		{"bob@ac.uk", DomainPublicSuffix},
		{"bob@co.uk", DomainPublicSuffix},
		{"bob@kent.sch.uk", DomainPublicSuffix},
		{"bob@[127.0.0.1]", DomainIPLiteral},
		{"bob@[IPv6:::1]", DomainIPLiteral},
		{"bob@127.0.0.1", DomainIPLiteral},
		{"bob@localhost", DomainSingleLabel},
		{"bob@uk", DomainSingleLabel},
		{"bob@", DomainEmpty},
		{"bob@kent..gov.uk", DomainInvalid},
		{"bob@kent_cc.gov.uk", DomainInvalid},
		{"bob@ｋｅｎｔ.gov.uk", DomainInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := ParseEmail(tt.in)
			if err == nil {
				t.Fatalf("ParseEmail(%q) = %q, want refusal", tt.in, e)
			}
			if r := emailReason(err); r != EmailDomainRefused {
				t.Fatalf("ParseEmail(%q) reason = %q (%v), want %q", tt.in, r, err, EmailDomainRefused)
			}
			if r := domainReason(err); r != tt.want {
				t.Fatalf("ParseEmail(%q) domain reason = %q, want %q", tt.in, r, tt.want)
			}
			if e != (Email{}) {
				t.Fatalf("ParseEmail(%q) returned %+v alongside an error", tt.in, e)
			}
		})
	}
}

func TestParseEmail_RefusesMalformed(t *testing.T) {
	long := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 55) + ".gov.uk"
	if len(long) != 255 {
		t.Fatalf("test setup: len(long) = %d", len(long))
	}
	tests := []struct {
		name, in string
		want     EmailErrorReason
	}{
		{"empty", "", EmailEmpty},
		{"whitespace", " \t\n ", EmailEmpty},

		{"display name", "Bob <bob@kent.gov.uk>", EmailDisplayName},
		{"quoted display name", "\"Bob Smith\" <bob@kent.gov.uk>", EmailDisplayName},
		{"angle brackets only", "<bob@kent.gov.uk>", EmailDisplayName},
		{"stray bracket", "bob>@kent.gov.uk", EmailDisplayName},

		{"quoted local", "\"bob\"@kent.gov.uk", EmailQuoted},
		{"quoted local with space", "\"bob smith\"@kent.gov.uk", EmailQuoted},
		{"quoted at", "\"bob@x\"@kent.gov.uk", EmailQuoted},

		{"comment in local", "bob(work)@kent.gov.uk", EmailSyntax},
		{"comment in domain", "bob@kent.gov.uk(work)", EmailSyntax},
		{"no at", "bob.kent.gov.uk", EmailSyntax},
		{"two ats", "bob@@kent.gov.uk", EmailSyntax},
		{"at in domain", "bob@kent@gov.uk", EmailSyntax},
		{"empty local", "@kent.gov.uk", EmailSyntax},
		{"inner space", "bob smith@kent.gov.uk", EmailSyntax},
		{"space before at", "bob @kent.gov.uk", EmailSyntax},
		{"tab", "bob\t@kent.gov.uk", EmailSyntax},
		{"header injection", "bob@kent.gov.uk\r\nBcc: eve@evil.com", EmailSyntax},
		{"nul", "bob\x00@kent.gov.uk", EmailSyntax},
		{"del", "bob\x7f@kent.gov.uk", EmailSyntax},
		{"zero-width space", "bo\u200bb@kent.gov.uk", EmailSyntax},
		{"zero-width space in domain", "bob@ke\u200bnt.gov.uk", EmailSyntax},
		{"bidi override", "bob\u202e@kent.gov.uk", EmailSyntax},
		{"no-break space", "bob\u00a0@kent.gov.uk", EmailSyntax},
		{"invalid utf-8", "bob\xff@kent.gov.uk", EmailSyntax},
		{"leading dot", ".bob@kent.gov.uk", EmailSyntax},
		{"trailing dot", "bob.@kent.gov.uk", EmailSyntax},
		{"double dot", "bo..b@kent.gov.uk", EmailSyntax},
		{"only dot", ".@kent.gov.uk", EmailSyntax},
		{"backslash", "bob\\x@kent.gov.uk", EmailSyntax},
		{"comma", "bob,alice@kent.gov.uk", EmailSyntax},
		{"semicolon", "bob;x@kent.gov.uk", EmailSyntax},
		{"colon", "bob:x@kent.gov.uk", EmailSyntax},
		{"square bracket in local", "bob[x]@kent.gov.uk", EmailSyntax},
		{"non-ascii local (no SMTPUTF8)", "björn@kent.gov.uk", EmailSyntax},
		{"cyrillic local", "b\u043eb@kent.gov.uk", EmailSyntax},

		{"65-octet local", strings.Repeat("a", 65) + "@kent.gov.uk", EmailTooLong},
		{"255-octet address", long, EmailTooLong},
		{"huge input", strings.Repeat("a", 5000) + "@kent.gov.uk", EmailTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseEmail(tt.in)
			if err == nil {
				t.Fatalf("ParseEmail(%q) = %q, want %s", tt.in, e, tt.want)
			}
			if r := emailReason(err); r != tt.want {
				t.Fatalf("ParseEmail(%q) reason = %q (%v), want %q", tt.in, r, err, tt.want)
			}
		})
	}
}

// The 254-octet limit applies to the normalised address, so the longest
// legal address is accepted.
func TestParseEmail_Accepts254Octets(t *testing.T) {
	in := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 54) + ".gov.uk"
	if len(in) != 254 {
		t.Fatalf("test setup: len = %d", len(in))
	}
	if _, err := ParseEmail(in); err != nil {
		t.Fatalf("ParseEmail(254 octets) = %v", err)
	}
}

// A Cyrillic "е" in kеnt.gov.uk must yield a different identity from the
// real council, and no kent.gov.uk rule may cover it.
func TestParseEmail_CTL3_LookalikeDomainNeverEqualsKent(t *testing.T) {
	real, err := ParseEmail("bob@kent.gov.uk")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{
		"bob@k\u0435nt.gov.uk", // Cyrillic е (U+0435)
		"bob@\u043aent.gov.uk", // Cyrillic к (U+043A)
		"bob@kent.g\u03bfv.uk", // Greek ο (U+03BF)
	} {
		fake, err := ParseEmail(in)
		if err != nil {
			continue // refusing is also safe
		}
		if !strings.HasPrefix(fake.Domain, "xn--") && !strings.Contains(fake.Domain, ".xn--") {
			t.Errorf("ParseEmail(%q).Domain = %q, want punycode", in, fake.Domain)
		}
		if fake == real || fake.String() == real.String() || fake.Domain == "kent.gov.uk" {
			t.Errorf("lookalike %q collapsed onto %q", in, real)
		}
		if DomainCovers("kent.gov.uk", true, fake.Domain) {
			t.Errorf("kent.gov.uk rule covers lookalike %q (%q)", in, fake.Domain)
		}
	}
	fake, err := ParseEmail("bob@k\u0435nt.gov.uk")
	if err != nil || fake.Domain != "xn--knt-rdd.gov.uk" {
		t.Errorf("Cyrillic е: got %+v, %v; want domain xn--knt-rdd.gov.uk", fake, err)
	}
}

// kent.gov.uk, kent.police.uk, kent.ac.uk and kent.fire-uk.org are four
// organisations: an address at one is covered by that rule only.
func TestParseEmail_CTL4_KentOrganisationsAreDistinct(t *testing.T) {
	rules := []string{"kent.gov.uk", "kent.police.uk", "kent.ac.uk", "kent.fire-uk.org"}
	for _, owner := range rules {
		e, err := ParseEmail("Jo.Bloggs@" + strings.ToUpper(owner))
		if err != nil {
			t.Fatalf("ParseEmail at %s: %v", owner, err)
		}
		for _, rule := range rules {
			if got := DomainCovers(rule, true, e.Domain); got != (rule == owner) {
				t.Errorf("rule %s covers %s = %v", rule, e, got)
			}
		}
	}
}

func TestEmailError_UnwrapsDomainError(t *testing.T) {
	_, err := ParseEmail("bob@gmail.com")
	var ee *EmailError
	if !errors.As(err, &ee) || ee.Reason != EmailDomainRefused {
		t.Fatalf("want *EmailError %s, got %T %v", EmailDomainRefused, err, err)
	}
	var de *DomainError
	if !errors.As(err, &de) || de.Reason != DomainWebmail {
		t.Fatalf("errors.As to *DomainError failed: %v", err)
	}
	if errors.Unwrap(err) != error(de) {
		t.Fatalf("Unwrap did not return the DomainError")
	}
	if !strings.Contains(err.Error(), "webmail") {
		t.Errorf("message %q does not explain the domain refusal", err.Error())
	}
	_, err = ParseEmail("bob smith@kent.gov.uk")
	if errors.Unwrap(err) != nil {
		t.Errorf("syntax error unwraps to %v, want nil", errors.Unwrap(err))
	}
}

func TestEmailError_MessageIsBoundedAndEscaped(t *testing.T) {
	in := strings.Repeat("ü", 100) + " x@kent.gov.uk"
	_, err := ParseEmail(in)
	var ee *EmailError
	if !errors.As(err, &ee) {
		t.Fatalf("want *EmailError, got %T", err)
	}
	if n := utf8.RuneCountInString(ee.Input); n != 64 {
		t.Errorf("Input kept %d runes, want 64", n)
	}
	if strings.Count(err.Error(), "ü") > 64 {
		t.Errorf("message echoes more than 64 runes: %q", err.Error())
	}
	_, err = ParseEmail("bob@kent.gov.uk\r\nBcc: eve@evil.com")
	if strings.ContainsAny(err.Error(), "\r\n") {
		t.Errorf("message contains raw control characters: %q", err.Error())
	}
	for _, r := range []EmailErrorReason{EmailEmpty, EmailSyntax, EmailDisplayName, EmailQuoted, EmailTooLong, EmailDomainRefused} {
		if msg := (&EmailError{Reason: r}).Error(); msg == "" || msg == "the email address was refused" {
			t.Errorf("reason %q has no specific message", r)
		}
	}
}

func FuzzParseEmail(f *testing.F) {
	for _, s := range []string{
		"bob@kent.gov.uk", "Bob.Smith@KENT.GOV.UK.", " a+b@kent.police.uk ", "x@kent.ac.uk",
		"crew@kent.fire-uk.org", "hans@münchen.de", "bob@k\u0435nt.gov.uk", "bob@gmail.com",
		"bob@gov.uk", "bob@[127.0.0.1]", "Bob <bob@kent.gov.uk>", "\"bob\"@kent.gov.uk",
		"bob(c)@kent.gov.uk", "bob@@kent.gov.uk", "@", "", ".a@b.c", "!#$%&'*+-/=?^_`{|}~@tmbc.gov.uk",
		"björn@kent.gov.uk", "bob@xn--mnchen-3ya.de",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		e, err := ParseEmail(in)
		// An EmailParser, the second time it sees the domain, answers the same.
		var p EmailParser
		for range 2 {
			pe, perr := p.Parse(in)
			if pe != e || (perr == nil) != (err == nil) || (err != nil && perr.Error() != err.Error()) {
				t.Fatalf("EmailParser.Parse(%q) = %+v, %v; ParseEmail: %+v, %v", in, pe, perr, e, err)
			}
		}
		if err != nil {
			var ee *EmailError
			if !errors.As(err, &ee) {
				t.Fatalf("error is %T, want *EmailError", err)
			}
			if e != (Email{}) {
				t.Fatalf("result %+v alongside error", e)
			}
			if utf8.RuneCountInString(ee.Input) > maxErrorInputRunes {
				t.Fatalf("error keeps more than %d runes", maxErrorInputRunes)
			}
			if (ee.Reason == EmailDomainRefused) != (ee.DomainErr != nil) {
				t.Fatalf("reason %s with DomainErr %v", ee.Reason, ee.DomainErr)
			}
			_ = err.Error()
			return
		}
		s := e.String()
		if strings.Count(s, "@") != 1 {
			t.Fatalf("%q has %d '@'", s, strings.Count(s, "@"))
		}
		if len(s) > 254 || len(e.Local) == 0 || len(e.Local) > 64 {
			t.Fatalf("bad lengths: %q", s)
		}
		for i := 0; i < len(s); i++ {
			if c := s[i]; c >= utf8.RuneSelf || c <= ' ' || 'A' <= c && c <= 'Z' {
				t.Fatalf("%q has byte %q (non-ASCII, control, space or upper case)", s, c)
			}
		}
		again, err := ParseEmail(s)
		if err != nil || again != e {
			t.Fatalf("not idempotent: %q -> %q -> %+v, %v", in, s, again, err)
		}
		if d, err := NormaliseDomain(e.Domain); err != nil || d != e.Domain {
			t.Fatalf("domain %q not normalised: %q, %v", e.Domain, d, err)
		}
	})
}

// An EmailParser remembers each domain spelling's normalisation: the same
// results as ParseEmail for every row, whether its domain was seen before,
// refused, or one past what it remembers. Each pair's second spelling would
// share the first's entry under a plausible wrong key (folded case, a
// trailing dot trimmed, non-ASCII dropped, punycode), so a memo keyed on
// anything but the exact spelling answers one of them wrongly.
func TestEmailParser_CTL3_SameAsParseEmail(t *testing.T) {
	same := func(p *EmailParser, raw string) {
		t.Helper()
		want, wantErr := ParseEmail(raw)
		got, err := p.Parse(raw)
		if got != want || (err == nil) != (wantErr == nil) {
			t.Fatalf("Parse(%q) = %+v, %v; ParseEmail: %+v, %v", raw, got, err, want, wantErr)
		}
		if err != nil {
			var e, w *EmailError
			if !errors.As(err, &e) || !errors.As(wantErr, &w) || e.Reason != w.Reason || e.Input != w.Input ||
				(e.DomainErr == nil) != (w.DomainErr == nil) || err.Error() != wantErr.Error() {
				t.Fatalf("Parse(%q) refused with %#v; ParseEmail with %#v", raw, err, wantErr)
			}
		}
	}
	for _, pair := range [][2]string{
		{"a@kent.gov.uk", "b@kent.gov.uk.."}, {"a@kent.gov.uk.", "b@kent.gov.uk"}, {"a@KENT.GOV.UK", "b@kent.gov.uk"},
		{"a@mnchen.de", "b@münchen.de"}, {"a@münchen.de", "b@MÜNCHEN.DE"}, {"a@xn--mnchen-3ya.de", "b@münchen.de"},
		{"a@kent.gov.uk", "b@k\u0435nt.gov.uk"}, {"a@kent.gov.uk", "b@kent.gov.uk\u200b"}, {"a@gmail.com", "b@gmail.com"},
		{"a@[127.0.0.1]", "b@[127.0.0.1]"},
	} {
		var p EmailParser
		for _, raw := range []string{pair[0], pair[1], pair[0], pair[1]} {
			same(&p, raw)
		}
	}
	var p EmailParser
	var in []string
	for i := range maxParserDomains + 10 {
		in = append(in, fmt.Sprintf("a%d@Team%d.Kent.gov.uk", i, i), fmt.Sprintf("b%d@team%d.kent.gov.uk.", i, i%3))
	}
	for _, raw := range append(in, in...) {
		same(&p, raw)
	}
	if len(p.domains) != maxParserDomains {
		t.Fatalf("remembers %d domain spellings, want at most %d (and here that many)", len(p.domains), maxParserDomains)
	}
	var fresh EmailParser
	if _, err := fresh.Parse("x@gmail.com"); err == nil || len(fresh.domains) != 0 {
		t.Fatalf("a refused domain: %v, %d remembered", err, len(fresh.domains))
	}
}
