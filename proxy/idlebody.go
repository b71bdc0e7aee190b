package proxy

import (
	"io"
	"net/http"
	"time"
)

// idleBody is a forwarded request body whose every Read must make progress
// within timeout: before each Read the client connection's read deadline is
// moved timeout ahead (http.ResponseController), so a client that trickles
// or stalls its body fails the Read, the forwarded request ends and its
// upstream connection is freed. When the body ends, the deadline is lifted
// so the rest of the exchange is not cut short.
type idleBody struct {
	body    io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	done    bool
}

func newIdleBody(w http.ResponseWriter, body io.ReadCloser, timeout time.Duration) io.ReadCloser {
	return &idleBody{body: body, rc: http.NewResponseController(w), timeout: timeout}
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.done {
		return b.body.Read(p)
	}
	if err := b.rc.SetReadDeadline(time.Now().Add(b.timeout)); err != nil {
		// The writer cannot set deadlines (a test recorder): read as is.
		b.done = true
		return b.body.Read(p)
	}
	n, err := b.body.Read(p)
	if err != nil {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (b *idleBody) Close() error { return b.body.Close() }
