package proxy

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// idleBody is a request body whose every Read must make progress within
// timeout: before each Read the client connection's read deadline is moved
// timeout ahead (http.ResponseController), so a client that trickles or
// stalls its body fails the Read; the forwarded request (or latch's own
// route) ends and, the deadline staying in the past, so does the server's
// drain of the rest of the body. When the body ends (io.EOF) the deadline
// is lifted, so the rest of the exchange is not cut short. Once the handler
// returned (stop), a late Read from the transport's write loop no longer
// touches the connection's deadline.
type idleBody struct {
	body    io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	done    atomic.Bool
}

func newIdleBody(w http.ResponseWriter, body io.ReadCloser, timeout time.Duration) *idleBody {
	return &idleBody{body: body, rc: http.NewResponseController(w), timeout: timeout}
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.done.Load() {
		return b.body.Read(p)
	}
	if err := b.rc.SetReadDeadline(time.Now().Add(b.timeout)); err != nil {
		// The writer cannot set deadlines (a test recorder): read as is.
		b.done.Store(true)
		return b.body.Read(p)
	}
	n, err := b.body.Read(p)
	if err == io.EOF && !b.done.Swap(true) {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// stop ends the deadline handling; the handler calls it before it returns.
func (b *idleBody) stop() { b.done.Store(true) }

func (b *idleBody) Close() error { return b.body.Close() }
