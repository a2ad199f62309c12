package graph

import (
	"bytes"
	"testing"
)

// gqlgen hands the transport no response when the request's context ended
// before execution; the stock transport then writes null, and so must this one.
func TestWriteResponse_NoResponseIsNull(t *testing.T) {
	var b bytes.Buffer
	writeResponse(&b, nil)
	if b.String() != "null" {
		t.Fatalf("wrote %q", b.String())
	}
}
