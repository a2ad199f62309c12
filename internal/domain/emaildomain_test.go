package domain

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// domainReason returns the reason of a *DomainError, or "" if err is not one.
func domainReason(err error) DomainErrorReason {
	var de *DomainError
	if errors.As(err, &de) {
		return de.Reason
	}
	return ""
}

// kentConnectsDomains are the partner domains in examples/connect-to-learn.yaml;
// every one must be accepted unchanged.
var kentConnectsDomains = []string{
	"ashford.gov.uk", "canterbury.ac.uk", "canterbury.gov.uk", "dartford.gov.uk",
	"dover.gov.uk", "folkestone-hythe.gov.uk", "gravesham.gov.uk", "kent.ac.uk",
	"kent.fire-uk.org", "kent.gov.uk", "kent.police.uk", "maidstone.gov.uk",
	"medway.gov.uk", "midkent.ac.uk", "sevenoaks.gov.uk", "swale.gov.uk",
	"thanet.gov.uk", "tmbc.gov.uk", "tunbridgewells.gov.uk", "uca.ac.uk",
	"westsussex.gov.uk",
}

func TestNormaliseDomain_CTL2_AcceptsKentConnectsDomains(t *testing.T) {
	for _, d := range kentConnectsDomains {
		got, err := NormaliseDomain(d)
		if err != nil || got != d {
			t.Errorf("NormaliseDomain(%q) = %q, %v; want %q, nil", d, got, err, d)
		}
	}
}

func TestNormaliseDomain_CTL3_Normalises(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	// 63+1+63+1+63+1+57+1+3 = 253 octets.
	name253 := label63 + "." + label63 + "." + label63 + "." + strings.Repeat("b", 57) + ".com"
	tests := []struct {
		name, in, want string
	}{
		{"plain", "kent.gov.uk", "kent.gov.uk"},
		{"upper case and root dot", "KENT.GOV.UK.", "kent.gov.uk"},
		{"mixed case with spaces", "  Kent.Gov.Uk \t\n", "kent.gov.uk"},
		{"hyphenated council", "Folkestone-Hythe.gov.uk", "folkestone-hythe.gov.uk"},
		{"police", "KENT.POLICE.UK", "kent.police.uk"},
		{"university", "kent.ac.uk.", "kent.ac.uk"},
		{"fire service", "kent.fire-uk.org", "kent.fire-uk.org"},
		{"subdomain", "Staff.Kent.Gov.Uk", "staff.kent.gov.uk"},
		{"school under wildcard suffix", "oakwood.kent.sch.uk", "oakwood.kent.sch.uk"},
		{"nhs mail", "nhs.net", "nhs.net"},
		{"digits in labels", "3rivers.gov.uk", "3rivers.gov.uk"},
		{"unicode to punycode", "münchen.de", "xn--mnchen-3ya.de"},
		{"unicode upper case", "MÜNCHEN.DE", "xn--mnchen-3ya.de"},
		{"punycode passes through", "xn--mnchen-3ya.de", "xn--mnchen-3ya.de"},
		{"punycode upper case", "XN--MNCHEN-3YA.DE", "xn--mnchen-3ya.de"},
		{"sharp s kept (non-transitional)", "straße.de", "xn--strae-oqa.de"},
		{"registrable under private suffix", "council.github.io", "council.github.io"},
		{"63-octet label", label63 + ".gov.uk", label63 + ".gov.uk"},
		{"253-octet name", name253, name253},
		{"253-octet name with root dot", name253 + ".", name253},
		// U+212A KELVIN SIGN lower-cases to ASCII k: the same DNS name, so
		// the same key (and mail still goes to the real kent.gov.uk).
		{"kelvin sign lower-cases to k", "\u212Aent.gov.uk", "kent.gov.uk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormaliseDomain(tt.in)
			if err != nil {
				t.Fatalf("NormaliseDomain(%q) error: %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("NormaliseDomain(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNormaliseDomain_CTL3_Refuses(t *testing.T) {
	tests := []struct {
		name, in string
		want     DomainErrorReason
	}{
		{"empty", "", DomainEmpty},
		{"spaces", "  \t ", DomainEmpty},
		{"root only", ".", DomainEmpty},

		{"ipv4", "10.0.0.1", DomainIPLiteral},
		{"loopback", "127.0.0.1", DomainIPLiteral},
		{"loopback with root dot", "127.0.0.1.", DomainIPLiteral},
		{"bracketed ipv4", "[127.0.0.1]", DomainIPLiteral},
		{"bracketed ipv6", "[::1]", DomainIPLiteral},
		{"smtp ipv6 literal", "[IPv6:::1]", DomainIPLiteral},
		{"bare ipv6", "::1", DomainIPLiteral},
		{"ipv6 full", "2001:db8::8a2e:370:7334", DomainIPLiteral},
		{"ipv6 with zone", "fe80::1%eth0", DomainIPLiteral},
		{"short ipv4", "127.1", DomainIPLiteral},
		{"integer ipv4", "2130706433", DomainIPLiteral},
		{"hex ipv4", "0x7f.0.0.1", DomainIPLiteral},
		{"hex final label", "10.0.0.0x1", DomainIPLiteral},
		{"numeric tld", "kent.gov.123", DomainIPLiteral},

		{"localhost", "localhost", DomainSingleLabel},
		{"localhost root", "LOCALHOST.", DomainSingleLabel},
		{"bare tld com", "com", DomainSingleLabel},
		{"bare tld uk", "uk", DomainSingleLabel},
		{"unicode single label", "münchen", DomainSingleLabel},

		{"gov.uk", "gov.uk", DomainPublicSuffix},
		{"gov.uk upper with root", "GOV.UK.", DomainPublicSuffix},
		{"police.uk", "police.uk", DomainPublicSuffix},
		{"ac.uk", "ac.uk", DomainPublicSuffix},
		{"co.uk", "co.uk", DomainPublicSuffix},
		{"org.uk", "org.uk", DomainPublicSuffix},
		{"nhs.uk", "nhs.uk", DomainPublicSuffix},
		{"wildcard suffix kent.sch.uk", "kent.sch.uk", DomainPublicSuffix},
		{"parent of wildcard sch.uk", "sch.uk", DomainPublicSuffix},
		{"private suffix github.io", "github.io", DomainPublicSuffix},
		{"private suffix service.gov.uk", "service.gov.uk", DomainPublicSuffix},

		{"gmail", "gmail.com", DomainWebmail},
		{"gmail upper root", "GMAIL.COM.", DomainWebmail},
		{"gmail subdomain", "mail.gmail.com", DomainWebmail},
		{"hotmail uk", "hotmail.co.uk", DomainWebmail},
		{"btinternet", "btinternet.com", DomainWebmail},
		{"proton.me", "proton.me", DomainWebmail},
		{"deep subdomain", "a.b.outlook.com", DomainWebmail},

		{"empty label", "kent..gov.uk", DomainInvalid},
		{"leading dot", ".kent.gov.uk", DomainInvalid},
		{"two root dots", "kent.gov.uk..", DomainInvalid},
		{"leading hyphen", "-kent.gov.uk", DomainInvalid},
		{"trailing hyphen", "kent-.gov.uk", DomainInvalid},
		{"hyphens in 3rd and 4th", "ke--nt.gov.uk", DomainInvalid},
		{"underscore", "kent_cc.gov.uk", DomainInvalid},
		{"inner space", "kent .gov.uk", DomainInvalid},
		{"wildcard", "*.kent.gov.uk", DomainInvalid},
		{"port", "kent.gov.uk:443", DomainInvalid},
		{"path", "kent.gov.uk/x", DomainInvalid},
		{"at sign", "bob@kent.gov.uk", DomainInvalid},
		{"nul byte", "kent.gov.uk\x00", DomainInvalid},
		{"invalid utf-8", "k\xffent.gov.uk", DomainInvalid},
		{"full-width letters", "ｋｅｎｔ．ｇｏｖ．ｕｋ", DomainInvalid},
		{"ideographic full stop", "kent。gov.uk", DomainInvalid},
		{"soft hyphen", "ke\u00adnt.gov.uk", DomainInvalid},
		{"zero-width space", "ke\u200bnt.gov.uk", DomainInvalid},
		{"not NFC", "mu\u0308nchen.de", DomainInvalid},
		{"bad punycode", "xn--abc.com", DomainInvalid},
		{"punycode of ascii", "xn--kent-.gov.uk", DomainInvalid},
		{"full-width digits", "１２７.０.０.１", DomainInvalid},
		{"bidi rule", "a\u05d0.com", DomainInvalid},

		{"64-octet label", strings.Repeat("a", 64) + ".gov.uk", DomainTooLong},
		{"254-octet name", strings.Repeat("a.", 125) + "gov.uk", DomainTooLong},
		{"huge input", strings.Repeat("a", 5000) + ".com", DomainTooLong},
		{"unicode label over 63 after punycode", strings.Repeat("ü", 60) + ".de", DomainTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormaliseDomain(tt.in)
			if err == nil {
				t.Fatalf("NormaliseDomain(%q) = %q, want error %s", tt.in, got, tt.want)
			}
			if got != "" {
				t.Errorf("NormaliseDomain(%q) returned %q alongside an error", tt.in, got)
			}
			if r := domainReason(err); r != tt.want {
				t.Fatalf("NormaliseDomain(%q) reason = %q (%v), want %q", tt.in, r, err, tt.want)
			}
		})
	}
}

func TestNormaliseDomain_CTL3_RefusesEveryWebmailDomain(t *testing.T) {
	for d := range webmailDomains {
		for _, in := range []string{d, strings.ToUpper(d) + ".", "x." + d} {
			if _, err := NormaliseDomain(in); domainReason(err) != DomainWebmail {
				t.Errorf("NormaliseDomain(%q) = %v, want %s", in, err, DomainWebmail)
			}
		}
	}
	// Only the exact domain or a subdomain: lookalike registrable names are
	// separate organisations and not webmail.
	for _, d := range []string{"notgmail.com", "gmail.com.kent.gov.uk", "mygmail.co.uk"} {
		if _, err := NormaliseDomain(d); err != nil {
			t.Errorf("NormaliseDomain(%q) = %v, want accepted", d, err)
		}
	}
}

// Confusable Unicode must never collapse onto a real partner domain.
func TestNormaliseDomain_CTL3_LookalikesStayDistinct(t *testing.T) {
	lookalikes := []string{
		"k\u0435nt.gov.uk",      // Cyrillic е
		"\u043aent.gov.uk",      // Cyrillic к
		"kent.g\u03bfv.uk",      // Greek ο
		"kent.p\u043elice.uk",   // Cyrillic о
		"k\u0435nt.ac.uk",       // Cyrillic е
		"m\u0435dway.gov.uk",    // Cyrillic е
		"kent.fire-uk.\u043erg", // Cyrillic о in TLD
	}
	for _, in := range lookalikes {
		got, err := NormaliseDomain(in)
		if err != nil {
			// Refusal is also safe.
			continue
		}
		if !strings.Contains(got, "xn--") {
			t.Errorf("NormaliseDomain(%q) = %q, want a punycode label", in, got)
		}
		for _, real := range kentConnectsDomains {
			if got == real || DomainCovers(real, true, got) {
				t.Errorf("lookalike %q normalised to %q, which matches %q", in, got, real)
			}
		}
	}
	if got, err := NormaliseDomain("k\u0435nt.gov.uk"); err != nil || got != "xn--knt-rdd.gov.uk" {
		t.Errorf("Cyrillic kеnt.gov.uk = %q, %v; want xn--knt-rdd.gov.uk", got, err)
	}
}

func TestDomainError_MessageIsBoundedAndEscaped(t *testing.T) {
	in := strings.Repeat("é", 100) + "\n"
	_, err := NormaliseDomain(in)
	var de *DomainError
	if !errors.As(err, &de) {
		t.Fatalf("want *DomainError, got %T %v", err, err)
	}
	if n := utf8.RuneCountInString(de.Input); n != 64 {
		t.Errorf("Input kept %d runes, want 64", n)
	}
	msg := de.Error()
	if strings.Count(msg, "é") > 64 {
		t.Errorf("message echoes more than 64 runes of input: %q", msg)
	}
	_, err = NormaliseDomain("kent.gov.uk\r\nX-Injected: 1 .")
	if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
		t.Errorf("message contains raw control characters: %q", msg)
	}
	for _, r := range []DomainErrorReason{DomainEmpty, DomainTooLong, DomainInvalid, DomainIPLiteral, DomainSingleLabel, DomainPublicSuffix, DomainWebmail} {
		msg := (&DomainError{Reason: r}).Error()
		if msg == "" || msg == "the domain was refused" {
			t.Errorf("reason %q has no specific message", r)
		}
	}
}

func TestDomainCovers_CTL4_MatchesOnLabelBoundaries(t *testing.T) {
	tests := []struct {
		rule      string
		sub       bool
		candidate string
		want      bool
	}{
		{"kent.gov.uk", false, "kent.gov.uk", true},
		{"kent.gov.uk", true, "kent.gov.uk", true},
		{"kent.gov.uk", false, "staff.kent.gov.uk", false},
		{"kent.gov.uk", true, "staff.kent.gov.uk", true},
		{"kent.gov.uk", true, "a.b.kent.gov.uk", true},
		{"kent.gov.uk", true, "evilkent.gov.uk", false},
		{"kent.gov.uk", true, "kent.gov.uk.evil.com", false},
		{"kent.gov.uk", true, "gov.uk", false},
		{"kent.gov.uk", true, "kent.police.uk", false},
		{"kent.gov.uk", true, "kent.ac.uk", false},
		{"kent.gov.uk", true, "kent.fire-uk.org", false},
		{"kent.gov.uk", true, "medway.gov.uk", false},
		{"kent.ac.uk", true, "midkent.ac.uk", false},
		{"kent.gov.uk", true, "xn--knt-rdd.gov.uk", false},
		{"", true, "kent.gov.uk", false},
		{"kent.gov.uk", true, "", false},
		{"", true, "", false},
	}
	for _, tt := range tests {
		if got := DomainCovers(tt.rule, tt.sub, tt.candidate); got != tt.want {
			t.Errorf("DomainCovers(%q, %v, %q) = %v, want %v", tt.rule, tt.sub, tt.candidate, got, tt.want)
		}
	}
}

func TestDomainCovers_CTL4_KentOrganisationsAreDistinct(t *testing.T) {
	kent := []string{"kent.gov.uk", "kent.police.uk", "kent.ac.uk", "kent.fire-uk.org"}
	for _, rule := range kent {
		for _, cand := range kent {
			for _, sub := range []bool{false, true} {
				if got := DomainCovers(rule, sub, cand); got != (rule == cand) {
					t.Errorf("DomainCovers(%q, %v, %q) = %v", rule, sub, cand, got)
				}
				if got := DomainsOverlap(rule, sub, cand, sub); got != (rule == cand) {
					t.Errorf("DomainsOverlap(%q, %q, sub=%v) = %v", rule, cand, sub, got)
				}
			}
		}
	}
}

func TestDomainsOverlap_CTL2_DetectsSharedAddresses(t *testing.T) {
	tests := []struct {
		a    string
		aSub bool
		b    string
		bSub bool
		want bool
	}{
		{"kent.gov.uk", false, "kent.gov.uk", false, true},
		{"kent.gov.uk", true, "kent.gov.uk", false, true},
		{"kent.gov.uk", true, "staff.kent.gov.uk", false, true},
		{"kent.gov.uk", false, "staff.kent.gov.uk", false, false},
		{"kent.gov.uk", false, "staff.kent.gov.uk", true, false},
		{"kent.gov.uk", true, "a.b.kent.gov.uk", true, true},
		{"kent.gov.uk", true, "evilkent.gov.uk", true, false},
		{"kent.gov.uk", true, "kent.gov.uk.evil.com", true, false},
		{"kent.gov.uk", true, "medway.gov.uk", true, false},
		{"a.kent.gov.uk", true, "b.kent.gov.uk", true, false},
		{"", true, "kent.gov.uk", true, false},
	}
	for _, tt := range tests {
		if got := DomainsOverlap(tt.a, tt.aSub, tt.b, tt.bSub); got != tt.want {
			t.Errorf("DomainsOverlap(%q, %v, %q, %v) = %v, want %v", tt.a, tt.aSub, tt.b, tt.bSub, got, tt.want)
		}
		if got := DomainsOverlap(tt.b, tt.bSub, tt.a, tt.aSub); got != tt.want {
			t.Errorf("DomainsOverlap is not symmetric for %q/%q", tt.a, tt.b)
		}
	}
}

// DomainsOverlap must agree with DomainCovers: two rules overlap exactly when
// one of the two rule domains, or a host under the deeper one, is covered by
// both.
func TestDomainsOverlap_CTL2_AgreesWithDomainCovers(t *testing.T) {
	names := []string{"kent.gov.uk", "staff.kent.gov.uk", "a.staff.kent.gov.uk", "evilkent.gov.uk", "medway.gov.uk", "kent.police.uk"}
	for _, a := range names {
		for _, b := range names {
			for _, aSub := range []bool{false, true} {
				for _, bSub := range []bool{false, true} {
					want := false
					for _, h := range []string{a, b, "x." + a, "x." + b} {
						if DomainCovers(a, aSub, h) && DomainCovers(b, bSub, h) {
							want = true
						}
					}
					if got := DomainsOverlap(a, aSub, b, bSub); got != want {
						t.Errorf("DomainsOverlap(%q,%v,%q,%v) = %v, want %v", a, aSub, b, bSub, got, want)
					}
				}
			}
		}
	}
}

func FuzzNormaliseDomain(f *testing.F) {
	for _, s := range []string{
		"kent.gov.uk", "KENT.GOV.UK.", " kent.police.uk ", "kent.ac.uk", "kent.fire-uk.org",
		"münchen.de", "xn--mnchen-3ya.de", "k\u0435nt.gov.uk", "gov.uk", "kent.sch.uk",
		"gmail.com", "[127.0.0.1]", "127.0.0.1", "::1", "0x7f.1", "localhost", "",
		"a..b", "xn--abc.com", "ｋｅｎｔ．ｇｏｖ．ｕｋ", "straße.de", "\u212Aent.gov.uk",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormaliseDomain(in)
		if err != nil {
			var de *DomainError
			if !errors.As(err, &de) {
				t.Fatalf("error is %T, want *DomainError", err)
			}
			if out != "" {
				t.Fatalf("output %q alongside error", out)
			}
			if utf8.RuneCountInString(de.Input) > maxErrorInputRunes {
				t.Fatalf("error keeps more than %d runes", maxErrorInputRunes)
			}
			_ = err.Error()
			return
		}
		if out == "" || len(out) > 253 {
			t.Fatalf("bad length %d: %q", len(out), out)
		}
		for i := 0; i < len(out); i++ {
			c := out[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
				t.Fatalf("output %q has byte %q outside lower-case LDH", out, c)
			}
		}
		if !strings.Contains(out, ".") || strings.HasPrefix(out, ".") || strings.HasSuffix(out, ".") || strings.Contains(out, "..") {
			t.Fatalf("output %q has bad dots", out)
		}
		again, err := NormaliseDomain(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
		if !DomainCovers(out, false, out) {
			t.Fatalf("DomainCovers(%q, false, itself) = false", out)
		}
	})
}
