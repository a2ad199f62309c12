package domain

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text rules: what a stored name or free text may hold. A name is shown to
// people (admin pages, the LMS, exports), so nothing in it may be invisible
// or change how the text around it is shown:
//
//   - no control characters: C0 (including NUL, newline and tab: a name is
//     one line), DEL and C1 (U+0080-U+009F);
//   - no format characters (Unicode category Cf): the bidirectional
//     controls that make "Ann\u202Egpj.exe" display as "Annexe.jpg", the
//     zero-width space, joiners and word joiner, the soft hyphen, the BOM;
//   - no line or paragraph separators, surrogates or private-use characters;
//   - at least one letter, so a name of spaces, punctuation or invisible
//     characters is not a name;
//   - valid UTF-8, at most MaxNameRunes characters after trimming.
//
// Free text (reasons, notes, policy text) is looser: it may hold newlines,
// tabs and the joiners some scripts and emoji need, but no other control
// characters and no bidirectional controls.

// MaxNameRunes bounds a person's given or family name.
const MaxNameRunes = 100

// Text problem reasons (extensions.reason).
const (
	TextRequired    = "REQUIRED"
	TextTooLong     = "TOO_LONG"
	TextTooShort    = "TOO_SHORT"
	TextInvalidUTF8 = "INVALID_UTF8"
	TextControl     = "CONTROL_CHARACTER"
	TextBidiControl = "BIDI_CONTROL"
	TextInvisible   = "INVISIBLE_CHARACTER"
	TextNoLetter    = "NO_LETTER"
	TextNotOneLine  = "NOT_ONE_LINE"
)

// TextError says why a text was refused; it never repeats the text.
type TextError struct {
	Reason  string
	Message string
}

func (e *TextError) Error() string { return e.Message }

func textErr(reason, format string, args ...any) *TextError {
	return &TextError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// IsBidiControl reports the bidirectional formatting characters: LRM, RLM,
// ALM, the embeddings and overrides (U+202A-U+202E) and the isolates
// (U+2066-U+2069).
func IsBidiControl(r rune) bool {
	switch {
	case r == 0x200E, r == 0x200F, r == 0x061C:
		return true
	case r >= 0x202A && r <= 0x202E:
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7F || (r >= 0x80 && r <= 0x9F) }

// CleanName checks a person's name and returns it trimmed. what names the
// field in messages ("givenName").
func CleanName(what, s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", textErr(TextInvalidUTF8, "%s is not valid UTF-8", what)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", textErr(TextRequired, "%s is required", what)
	}
	if n := utf8.RuneCountInString(s); n > MaxNameRunes {
		return "", textErr(TextTooLong, "%s must be at most %d characters", what, MaxNameRunes)
	}
	letter := false
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == '\t' || r == 0x2028 || r == 0x2029:
			return "", textErr(TextNotOneLine, "%s must be one line", what)
		case isControl(r):
			return "", textErr(TextControl, "%s contains control characters", what)
		case IsBidiControl(r):
			return "", textErr(TextBidiControl, "%s contains bidirectional control characters, which change how text is displayed", what)
		case unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Co, r) || unicode.Is(unicode.Cs, r) || r == utf8.RuneError:
			return "", textErr(TextInvisible, "%s contains invisible or formatting characters (such as zero-width spaces)", what)
		case unicode.IsLetter(r):
			letter = true
		}
	}
	if !letter {
		return "", textErr(TextNoLetter, "%s must contain at least one letter", what)
	}
	return s, nil
}

// CleanText checks free text and returns it trimmed: between min and max
// characters, valid UTF-8, newlines and tabs allowed, other control
// characters and bidirectional controls not.
func CleanText(what, s string, min, max int) (string, error) {
	if !utf8.ValidString(s) {
		return "", textErr(TextInvalidUTF8, "%s is not valid UTF-8", what)
	}
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	if n < min {
		if min == 1 {
			return "", textErr(TextRequired, "%s is required", what)
		}
		return "", textErr(TextTooShort, "%s must be at least %d characters", what, min)
	}
	if n > max {
		return "", textErr(TextTooLong, "%s must be at most %d characters", what, max)
	}
	for _, r := range s {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
		case isControl(r):
			return "", textErr(TextControl, "%s contains control characters", what)
		case IsBidiControl(r):
			return "", textErr(TextBidiControl, "%s contains bidirectional control characters, which change how text is displayed", what)
		}
	}
	return s, nil
}
