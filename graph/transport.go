package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"

	"github.com/rollcall-dev/rollcall/internal/apperr"
)

// postJSON is the POST transport. It behaves as gqlgen's transport.POST
// (same content negotiation, same status codes) except in two ways:
//   - a successful response is written as gqlgen marshalled it. The stock
//     transport passes the finished body through encoding/json, which
//     validates and compacts it: a second full scan and copy of every
//     response: about a tenth of the CPU profile of a 1,000-row
//     enrolments page;
//   - a body that is not valid JSON is not echoed back in the error.
type postJSON struct {
	log *slog.Logger
}

var _ graphql.Transport = postJSON{}

func (postJSON) Supports(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" || r.Method != http.MethodPost {
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

func (t postJSON) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	contentType := responseContentType(r.Header.Get("Accept"))
	w.Header().Set("Content-Type", contentType)
	start := graphql.Now()
	params, err := ReadParams(r)
	if err != nil {
		apperr.WriteHTTP(w, 0, err)
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	rc, opErr := exec.CreateOperationContext(ctx, params)
	if opErr != nil {
		status := http.StatusOK
		if errcode.GetErrorKind(opErr) == errcode.KindProtocol {
			status = http.StatusUnprocessableEntity
			if contentType == graphqlResponseJSON {
				status = http.StatusBadRequest
			}
		}
		w.WriteHeader(status)
		writeResponse(w, exec.DispatchError(graphql.WithOperationContext(ctx, rc), opErr))
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, rc)
	resp := responses(ctx)
	if r.Context().Err() != nil {
		// The client went away: nothing to answer and nothing wrong with the
		// service. One line for the request, not one per field.
		t.log.InfoContext(r.Context(), "client disconnected before the response")
		return
	}
	if unavailable(resp) {
		// Retryable: the database could not be reached and nothing changed.
		t.log.WarnContext(r.Context(), "database unavailable: answered 503")
		w.Header().Set("Retry-After", strconv.Itoa(apperr.RetryAfter))
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	writeResponse(w, resp)
	releaseResponse(resp)
}

func unavailable(resp *graphql.Response) bool {
	if resp == nil {
		return false
	}
	for _, e := range resp.Errors {
		if e.Extensions["code"] == string(apperr.Unavailable) {
			return true
		}
	}
	return false
}

// MaxJSONDepth bounds how deeply the request body's JSON may nest. The
// deepest legitimate variables (an import row inside its list inside the
// variables) are four levels down.
const MaxJSONDepth = 32

// ReadParams is the edge's one reader of a /graphql request body (the server
// has already bounded its size by what authentication found). The body must
// be valid UTF-8 (encoding/json would otherwise replace bad bytes silently),
// one JSON object (no batch) nested at most MaxJSONDepth deep, and nothing
// may follow it. Numbers stay json.Number, so a variable's type is checked
// against what the client sent (strictInputs).
func ReadParams(r *http.Request) (*graphql.RawParams, error) {
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(min(r.ContentLength, 64<<20)))
	}
	if _, err := buf.ReadFrom(r.Body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errBodyTooLarge(tooBig.Limit)
		}
		return nil, apperr.Invalid("", "could not read the request body").WithReason("BODY_UNREADABLE")
	}
	body := buf.Bytes()
	if !utf8.Valid(body) {
		return nil, apperr.Invalid("", "the request body is not valid UTF-8").WithReason("INVALID_UTF8")
	}
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, apperr.Invalid("", "the body must be one JSON object {\"query\": …}; batches are not accepted").WithReason("NOT_ONE_OBJECT")
	}
	if jsonDepth(body) > MaxJSONDepth {
		return nil, apperr.Invalid("", "the request body nests deeper than %d levels", MaxJSONDepth).WithReason("TOO_DEEP")
	}
	var params graphql.RawParams
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&params); err != nil {
		return nil, apperr.Invalid("", "json request body could not be decoded").WithReason("INVALID_JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, apperr.Invalid("", "the request body has data after its JSON object").WithReason("INVALID_JSON")
	}
	return &params, nil
}

func errBodyTooLarge(limit int64) *apperr.Error {
	return &apperr.Error{Code: apperr.BadUserInput, Reason: apperr.ReasonBodyTooLarge,
		Message: fmt.Sprintf("request body too large: at most %d bytes here", limit)}
}

// ErrBodyTooLarge is the refusal of a body over limit bytes.
func ErrBodyTooLarge(limit int64) error { return errBodyTooLarge(limit) }

// jsonDepth is the deepest nesting of objects and arrays in b, skipping
// strings; it does not validate (the decoder does).
func jsonDepth(b []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			deepest = max(deepest, depth)
		case '}', ']':
			depth--
		}
	}
	return deepest
}

const graphqlResponseJSON = "application/graphql-response+json"

// responseContentType negotiates as gqlgen's POST transport does by default.
func responseContentType(accept string) string {
	if accept == "" {
		return "application/json"
	}
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "*/*", "application/*", "application/json":
			return "application/json"
		case graphqlResponseJSON:
			return graphqlResponseJSON
		}
	}
	return graphqlResponseJSON
}

// writeResponse writes data verbatim when it is all there is: gqlgen's
// marshallers produce compact, valid JSON already.
func writeResponse(w io.Writer, resp *graphql.Response) {
	if resp == nil { // the request's context ended before execution
		_, _ = w.Write([]byte("null"))
		return
	}
	if len(resp.Data) > 0 && len(resp.Errors) == 0 && len(resp.Extensions) == 0 && resp.Label == "" &&
		resp.Path == nil && resp.HasNext == nil {
		_, _ = io.WriteString(w, `{"data":`)
		_, _ = w.Write(resp.Data)
		_, _ = io.WriteString(w, "}")
		return
	}
	b, err := json.Marshal(resp)
	if err != nil {
		b = []byte(`{"errors":[{"message":"internal error","extensions":{"code":"` + string(apperr.Internal) + `"}}],"data":null}`)
	}
	_, _ = w.Write(b)
}
