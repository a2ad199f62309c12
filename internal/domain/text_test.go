package domain

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestText_CleanNameRefusesInvisibleAndControlCharacters(t *testing.T) {
	for name, c := range map[string]struct {
		in, reason string
	}{
		"bidi override (RLO)":      {"Ann\u202Egpj.exe", TextBidiControl},
		"bidi isolate":             {"Ann\u2067a", TextBidiControl},
		"right-to-left mark":       {"Ann\u200F", TextBidiControl},
		"only zero-width spaces":   {"\u200B\u200B\u200B", TextInvisible},
		"zero-width joiner":        {"An\u200Dn", TextInvisible},
		"word joiner":              {"An\u2060n", TextInvisible},
		"soft hyphen":              {"An\u00ADn", TextInvisible},
		"byte order mark":          {"\uFEFFAnn", TextInvisible},
		"C1 control (CSI)":         {"Ann\u009B31m", TextControl},
		"NEL inside":               {"An\u0085n", TextControl},
		"NUL":                      {"Ann\x00", TextControl},
		"escape":                   {"Ann\x1b[31m", TextControl},
		"newline":                  {"Ann\nSmith", TextNotOneLine},
		"line separator":           {"Ann\u2028Smith", TextNotOneLine},
		"invalid UTF-8":            {"Ann\xff", TextInvalidUTF8},
		"no letter":                {"--- ...", TextNoLetter},
		"digits only":              {"12345", TextNoLetter},
		"blank":                    {"   ", TextRequired},
		"too long":                 {strings.Repeat("a", MaxNameRunes+1), TextTooLong},
		"private use":              {"Ann\uE000", TextInvisible},
		"replacement (mangled)":    {"Ann\uFFFD", TextInvisible},
		"tab":                      {"Ann\tSmith", TextNotOneLine},
		"interlinear annotation":   {"Ann\uFFF9x", TextInvisible},
		"Mongolian vowel sep (Cf)": {"Ann\u180E", TextInvisible},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := CleanName("givenName", c.in)
			var te *TextError
			if !errors.As(err, &te) || te.Reason != c.reason {
				t.Fatalf("CleanName(%+q) = %q, %v; want reason %s", c.in, got, err, c.reason)
			}
			if strings.Contains(te.Message, c.in) && strings.TrimSpace(c.in) != "" {
				t.Errorf("the message repeats the input: %q", te.Message)
			}
		})
	}
}

func TestText_CleanNameKeepsRealNames(t *testing.T) {
	for in, want := range map[string]string{
		"  Ann  ":                         "Ann",
		"O'Brien":                         "O'Brien",
		"Anne-Marie":                      "Anne-Marie",
		"José":                            "José",
		"Zoë van der Berg":                "Zoë van der Berg",
		"李":                               "李",
		"محمد":                            "محمد",
		"Ng\u0303":                        "Ng\u0303", // a combining mark (Mn) is visible and allowed
		"Ó Súilleabháin":                  "Ó Súilleabháin",
		"J":                               "J",
		"Smith Jr. 3rd":                   "Smith Jr. 3rd",
		strings.Repeat("a", MaxNameRunes): strings.Repeat("a", MaxNameRunes),
	} {
		got, err := CleanName("familyName", in)
		if err != nil || got != want {
			t.Errorf("CleanName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestText_CleanTextAllowsLinesRefusesBidi(t *testing.T) {
	if got, err := CleanText("reason", " left\nthe council\t ", 1, 100); err != nil || got != "left\nthe council" {
		t.Fatalf("multi-line reason: %q, %v", got, err)
	}
	if _, err := CleanText("reason", "emoji family 👨\u200D👩\u200D👧", 1, 100); err != nil {
		t.Fatalf("a zero-width joiner in an emoji sequence refused in free text: %v", err)
	}
	for in, reason := range map[string]string{"a\u202Eb": TextBidiControl, "a\x00b": TextControl, "a\u0090b": TextControl, "a\xc3": TextInvalidUTF8} {
		var te *TextError
		if _, err := CleanText("reason", in, 1, 100); !errors.As(err, &te) || te.Reason != reason {
			t.Errorf("CleanText(%+q) = %v, want %s", in, err, reason)
		}
	}
}

// FuzzCleanName: whatever the input, an accepted name is trimmed, valid
// UTF-8, one line, within the length, holds a letter and no control, format
// (Cf), private-use or bidirectional character, and cleaning it again
// changes nothing; a refusal is a *TextError with a reason.
func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"Ann", " Zoë ", "Ann\u202Egpj.exe", "\u200B", "A\u0085", "\xff", "李", "--", "O'Brien",
		"a\u0300", "\uFEFF", "Ann\u2066x\u2069", "\x00", strings.Repeat("ä", 101)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := CleanName("givenName", in)
		if err != nil {
			var te *TextError
			if !errors.As(err, &te) || te.Reason == "" {
				t.Fatalf("error %T %v, want *TextError with a reason", err, err)
			}
			if out != "" {
				t.Fatalf("result %q alongside an error", out)
			}
			return
		}
		if !utf8.ValidString(out) || out != strings.TrimSpace(out) || utf8.RuneCountInString(out) > MaxNameRunes {
			t.Fatalf("accepted %q: not valid, trimmed and bounded", out)
		}
		letter := false
		for _, r := range out {
			if isControl(r) || IsBidiControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Co, r) || r == '\n' || r == 0x2028 {
				t.Fatalf("accepted %+q holding %U", out, r)
			}
			letter = letter || unicode.IsLetter(r)
		}
		if !letter {
			t.Fatalf("accepted %+q without a letter", out)
		}
		if again, err := CleanName("givenName", out); err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q, %v", out, again, err)
		}
	})
}
