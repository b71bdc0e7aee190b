package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"syscall"
	"time"
)

// TransportOptions tunes the upstream transport. Zero fields take the
// defaults noted.
type TransportOptions struct {
	DialTimeout           time.Duration // zero = 5s
	ResponseHeaderTimeout time.Duration // zero = 30s; beyond it the answer is 504
	IdleConnTimeout       time.Duration // zero = 90s
	MaxIdleConnsPerHost   int           // zero = 256
}

// NewTransport returns a transport sized for a busy sidecar: a keep-alive
// pool as large as the expected concurrency, bounded dial and
// response-header waits, and no proxy from the environment (a sidecar talks
// to its backend directly).
func NewTransport(o TransportOptions) *http.Transport {
	def := func(d, v time.Duration) time.Duration {
		if d == 0 {
			return v
		}
		return d
	}
	idle := o.MaxIdleConnsPerHost
	if idle == 0 {
		idle = 256
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = (&net.Dialer{Timeout: def(o.DialTimeout, 5*time.Second), KeepAlive: 30 * time.Second}).DialContext
	t.ResponseHeaderTimeout = def(o.ResponseHeaderTimeout, 30*time.Second)
	t.IdleConnTimeout = def(o.IdleConnTimeout, 90*time.Second)
	t.MaxIdleConns = idle * 2
	t.MaxIdleConnsPerHost = idle
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ExpectContinueTimeout = time.Second
	return t
}

// forwarder builds the reverse proxy to upstream. The outbound path is the
// canonical path the policy decided on; identity headers are injected in
// Rewrite, after the hop-by-hop headers (including any a client named in
// Connection) were already removed, so a client cannot strip them.
func (h *Handler) forwarder(upstream *url.URL, rt http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			st := stateFrom(pr.In.Context())
			if st != nil {
				pr.Out.URL.Path = st.path
				pr.Out.URL.RawPath = st.escaped
				pr.Out.Close = st.closeUpstream
			}
			pr.SetURL(upstream)
			pr.SetXForwarded()
			if st == nil {
				dropSessionCookie(pr.Out.Header)
				return
			}
			// The injected values share one backing array: one allocation
			// for the three headers (keys are canonical, see New).
			vals := make([]string, 1, 3)
			vals[0] = st.requestID
			pr.Out.Header["X-Request-Id"] = vals[0:1:1]
			if st.identity != nil {
				vals = append(vals, st.identity.Subject, rolesValue(st.identity.Roles))
				pr.Out.Header[h.opts.UserHeader] = vals[1:2:2]
				pr.Out.Header[h.opts.RolesHeader] = vals[2:3:3]
			}
			h.handOff(pr.Out.Header, st)
		},
		Transport:  rt,
		BufferPool: copyBuffers,
		ErrorLog:   slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			reason := upstreamReason(r.Context(), err)
			if st := stateFrom(r.Context()); st != nil {
				st.upstreamErr = reason
			}
			h.metrics.upstreamError(reason)
			switch reason {
			case "canceled":
				// The client went away; nobody reads an answer.
				h.log.Info("client canceled", "request_id", requestIDFrom(r.Context()), "cause", err.Error())
				w.WriteHeader(499)
			case "timeout":
				answerError(w, r, &Error{Status: http.StatusGatewayTimeout, Name: NameGatewayTimeout,
					Message: "The upstream server did not answer in time."}, err)
			default:
				answerError(w, r, &Error{Status: http.StatusBadGateway, Name: NameBadGateway,
					Message: "The upstream server could not be reached."}, err)
			}
		},
	}
}

// bufferPool lends ReverseProxy its 32 KiB body-copy buffers. Without one
// it allocates a fresh buffer per request: most of the bytes a proxied
// request allocates, and so most of the garbage collector's work.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) == 32<<10 {
		buf = buf[:cap(buf)]
		b.p.Put(&buf)
	}
}

// copyBuffers is shared by every Handler in the process.
var copyBuffers = new(bufferPool)

// BufferPool returns the buffer pool latch's ReverseProxy uses, for
// baselines that should be tuned the same way (bench/cmd/bareproxy).
func BufferPool() httputil.BufferPool { return copyBuffers }

// upstreamReason sorts a transport error into the bounded set used for the
// metric label: refused, timeout, reset, canceled or other.
func upstreamReason(ctx context.Context, err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	default:
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			return "refused"
		}
		return "other"
	}
}
