package graph

import (
	"bytes"
	"sync"

	"github.com/99designs/gqlgen/graphql"
)

// responseBuffers holds the buffers responses are marshalled into.
//
// gqlgen's generated Exec marshals each response into a new bytes.Buffer
// (genpatch points it at responseBuffer). A feed page of 1,000 events is
// about 150 KB, so that buffer grew by doubling through every size up to
// it, each new array cleared and the old copied: a tenth of the Go CPU of a
// feed drain. A buffer from the pool already has the room.
var responseBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledResponse bounds the buffers kept: a rare large answer (an
// import's result, a 5,000-row page) is not held for the next small one.
const maxPooledResponse = 1 << 20

func responseBuffer() *bytes.Buffer {
	b := responseBuffers.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

// releaseResponse gives resp's data back to the pool. Only the transport
// calls it, once it has written resp, and nothing reads resp.Data after:
// the executor has handed the response over, and Rollcall installs no
// extension that keeps responses.
func releaseResponse(resp *graphql.Response) {
	if resp == nil || cap(resp.Data) == 0 || cap(resp.Data) > maxPooledResponse {
		return
	}
	data := resp.Data[:0]
	resp.Data = nil
	responseBuffers.Put(bytes.NewBuffer(data))
}
