package graph

import (
	"bytes"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/rollcall-dev/rollcall/graph/model"
)

// Plain scalar fields (a scalar or enum read from a struct field: no
// resolver, no method, no directive) are marshalled straight from the
// field, where graphql.ResolveField (gqlgen graphql/resolve_field.go) first
// builds the field's FieldContext, a context carrying it, three closures
// and a deferred panic handler, boxes the value twice and wraps it in a
// marshaller closure. For such a field none of that can matter: the value
// is already there, reading it cannot fail or panic, and nothing below a
// scalar asks for its field context. On `enrolments` and the feed (1,000
// objects of 5–8 such fields a page) that work was about half of gqlgen's
// CPU and most of its allocations (docs/performance.md).
//
// `make generate` (graph/internal/genpatch) gives each such field function
// a first branch, taken when plainFields says so:
//
//	if ec.plainFields() {
//		return plainString{&obj.Name} // or plainInt, plainTime, …
//	}
//	return graphql.ResolveField(…) // as gqlgen generated it
//
// For the common scalar types the value returned points at the field and
// is written when the response is (plainString and its kind below): no
// allocation per value. A read model therefore must not change after its
// resolver returned it; Rollcall's are built for the request and never
// written again. An enum's value comes from a table of its values
// (plainEnums). Other types (JSON, Duration) call gqlgen's own marshaller
// directly, unless their value may marshal to null (mayMarshalNull).
//
// One thing could need gqlgen's way: an extension that intercepts fields
// (tracing, per-field metrics). NewHandler records whether one is
// installed (Resolver.fieldInterceptors), and then every field goes through
// graphql.ResolveField as gqlgen generated it, so no interceptor misses a
// field (TestPlainFields_AFieldInterceptorStillSeesEveryField).
func (ec *executionContext) plainFields() bool {
	r, ok := ec.Resolvers.(*Resolver)
	return ok && !r.fieldInterceptors
}

// mayMarshalNull reports a value its marshaller may write as null or fail
// on: the zero time (Time), a nil map (JSON) or list, a float that is not
// finite (gqlgen refuses NaN and infinities when it writes the response). On a non-null field the marshaller
// then reports the error against the field context it finds, which the
// plain branch does not build, so such a value takes gqlgen's way and the
// error names the field and its path
// (TestPlainFields_ANullErrorNamesTheFieldAsGqlgenDoes). genpatch leaves
// non-null fields of pointer types to gqlgen for the same reason.
func mayMarshalNull(v any) bool {
	switch x := v.(type) {
	case time.Time:
		return x.IsZero()
	case map[string]any:
		return x == nil
	case []string:
		return x == nil
	case float64:
		return math.IsNaN(x) || math.IsInf(x, 0)
	}
	return false
}

// plainEnums is the table of an enum's values as plain values, built once
// from the map gqlgen writes an enum bound to Go values from (its value's
// name, then graphql.MarshalString): the same bytes, without a marshaller
// allocated per value.
func plainEnums[T comparable](names map[T]string) map[T]plainString {
	out := make(map[T]plainString, len(names))
	for v, name := range names {
		out[v] = plainString{&name}
	}
	return out
}

// The plain values. Each holds one pointer, so it is stored in the
// Marshaler interface without an allocation, and writes exactly the bytes
// gqlgen's marshaller of its type writes (TestPlainValues_SameBytesAsGqlgen).
// Numbers and times are appended to the response's bytes.Buffer (the
// generated Exec writes the response into one) rather than formatted into a
// string or a buffer of their own first.
type (
	plainString    struct{ p *string }    // String!, ID!: graphql.MarshalString, MarshalID
	plainOptString struct{ p *string }    // String, ID: null when nil
	plainInt       struct{ p *int }       // Int! bound to int: graphql.MarshalInt
	plainInt64     struct{ p *int64 }     // Int! bound to int64: graphql.MarshalInt64
	plainBool      struct{ p *bool }      // Boolean!: graphql.MarshalBoolean
	plainTime      struct{ p *time.Time } // Time!, not zero (checked first): model.MarshalTime
	plainOptTime   struct{ p *time.Time } // Time: null when nil or zero
)

func (v plainString) MarshalGQL(w io.Writer) { writeString(w, *v.p) }

func (v plainOptString) MarshalGQL(w io.Writer) {
	if v.p == nil {
		graphql.Null.MarshalGQL(w)
		return
	}
	writeString(w, *v.p)
}

func (v plainInt) MarshalGQL(w io.Writer) { writeInt(w, int64(*v.p)) }

func (v plainInt64) MarshalGQL(w io.Writer) { writeInt(w, *v.p) }

var jsonTrue, jsonFalse = []byte("true"), []byte("false")

func (v plainBool) MarshalGQL(w io.Writer) {
	if *v.p {
		_, _ = w.Write(jsonTrue)
	} else {
		_, _ = w.Write(jsonFalse)
	}
}

func (v plainTime) MarshalGQL(w io.Writer) { writeTime(w, *v.p) }

func (v plainOptTime) MarshalGQL(w io.Writer) {
	if v.p == nil || v.p.IsZero() {
		graphql.Null.MarshalGQL(w)
		return
	}
	writeTime(w, *v.p)
}

// writeString writes s as a JSON string, byte for byte as gqlgen's
// graphql.MarshalString does (graphql/string.go, writeQuotedString): `"`
// and `\` escaped with a backslash, tab, CR and LF as \t, \r, \n, the other
// bytes below 0x20 as \u00XX in upper-case hex, and every other byte as it
// is (bytes of 0x80 and above, invalid UTF-8 included: gqlgen writes the
// input's bytes between escapes, never the rune it decoded). gqlgen makes
// up to three io.WriteString calls through the interface per string and
// decodes its runes; here the string is scanned byte by byte and appended
// to the response buffer in one piece. Strings are most of the bytes of the
// two LMS reads (IDs, e-mail addresses, names, cursors), and gqlgen's
// writer was about a fifth of the service's CPU in a feed drain.
// TestAppendQuoted_SameBytesAsGqlgen checks every byte value and random
// strings against gqlgen.
func writeString(w io.Writer, s string) {
	b, ok := w.(*bytes.Buffer)
	if !ok {
		graphql.MarshalString(s).MarshalGQL(w)
		return
	}
	b.Grow(len(s) + 2) // the common case, nothing to escape, then fits
	_, _ = b.Write(appendQuoted(b.AvailableBuffer(), s))
}

const upperHex = "0123456789ABCDEF"

func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '\t':
			dst = append(dst, '\\', 't')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\\', '"':
			dst = append(dst, '\\', c)
		default:
			dst = append(dst, '\\', 'u', '0', '0', upperHex[c>>4], upperHex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func writeInt(w io.Writer, i int64) {
	if b, ok := w.(*bytes.Buffer); ok {
		_, _ = b.Write(strconv.AppendInt(b.AvailableBuffer(), i, 10))
		return
	}
	graphql.MarshalInt64(i).MarshalGQL(w)
}

func writeTime(w io.Writer, t time.Time) {
	if b, ok := w.(*bytes.Buffer); ok {
		_, _ = b.Write(model.AppendTime(b.AvailableBuffer(), t))
		return
	}
	model.MarshalTime(t).MarshalGQL(w)
}
