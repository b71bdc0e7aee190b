package proxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// waitLimit bounds each wait of the tests in this package that could
// otherwise block for ever. It guards against hanging, not slowness:
// nothing asserts how fast a wait ends.
const waitLimit = time.Minute

func TestForwardsCanonicalPathAndQuery(t *testing.T) {
	up := newRecording(t)
	front := newFront(t, up.srv.URL, nil)
	resp := do(t, "GET", front.URL+"/public//a/./b/../c%41?x=%2F..&y=1", nil)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status: got %d", resp.StatusCode)
	}
	got := up.last(t)
	if got.URL.EscapedPath() != "/public/a/cA" {
		t.Errorf("upstream path: got %q, want /public/a/cA", got.URL.EscapedPath())
	}
	if got.URL.RawQuery != "x=%2F..&y=1" {
		t.Errorf("upstream query: got %q, want it untouched", got.URL.RawQuery)
	}
	first := got.Header.Get("X-Request-Id")
	if !validRequestID(first) {
		t.Errorf("X-Request-Id upstream: got %q, want a fresh id", first)
	}
	resp = do(t, "GET", front.URL+"/x", nil)
	resp.Body.Close()
	if second := up.last(t).Header.Get("X-Request-Id"); second == first || !validRequestID(second) {
		t.Errorf("X-Request-Id: got %q then %q, want two different ids", first, second)
	}
}

func TestRefusedPathNeverForwarded(t *testing.T) {
	up := newRecording(t)
	front := newFront(t, up.srv.URL, nil)
	for _, p := range []string{"/api%2Fadmin/x", "/public/..%2f..%2fapi/admin", "/a;b", "/a%00"} {
		wantError(t, do(t, "GET", front.URL+p, nil), 400, NameBadData)
	}
	if n := up.count(); n != 0 {
		t.Errorf("upstream got %d requests, want 0", n)
	}
}

func TestXForwardedReplaced(t *testing.T) {
	up := newRecording(t)
	front := newFront(t, up.srv.URL, nil)
	resp := do(t, "GET", front.URL+"/x", http.Header{
		"X-Forwarded-For":   {"6.6.6.6"},
		"X-Forwarded-Host":  {"evil.example"},
		"X-Forwarded-Proto": {"https"},
		"Forwarded":         {"for=6.6.6.6"},
		"X-Request-Id":      {"client-id-123"},
	})
	resp.Body.Close()
	got := up.last(t)
	if xff := got.Header.Values("X-Forwarded-For"); len(xff) != 1 || xff[0] != "127.0.0.1" {
		t.Errorf("X-Forwarded-For: got %q, want [127.0.0.1]", xff)
	}
	frontHost := strings.TrimPrefix(front.URL, "http://")
	if h := got.Header.Get("X-Forwarded-Host"); h != frontHost {
		t.Errorf("X-Forwarded-Host: got %q, want %q", h, frontHost)
	}
	if p := got.Header.Get("X-Forwarded-Proto"); p != "http" {
		t.Errorf("X-Forwarded-Proto: got %q, want http", p)
	}
	if f := got.Header.Get("Forwarded"); f != "" {
		t.Errorf("Forwarded: got %q, want it removed", f)
	}
	if id := got.Header.Get("X-Request-Id"); id != "client-id-123" {
		t.Errorf("X-Request-Id: got %q, want the client's valid one kept", id)
	}
}

func TestIdentityHeadersCannotBeSpoofed(t *testing.T) {
	up := newRecording(t)
	front := newFront(t, up.srv.URL, nil)
	spoof := http.Header{
		"X-Latch-User":  {"root@example.com"},
		"x-latch-user":  {"root@example.com"},
		"X_Latch_User":  {"root@example.com"},
		"X_LATCH_ROLES": {"admin"},
		"X-Latch-Roles": {"admin"},
		"Connection":    {"X-Latch-User, X-Latch-Roles"},
	}
	tests := []struct {
		name, path, auth string
		wantUser         string
		wantRoles        string
	}{
		{"anonymous open route", "/public", "", "", ""},
		{"invalid credential open route", "/public", "garbage", "", ""},
		{"valid credential open route", "/public", "Bearer alice@example.com:viewer", "alice@example.com", "viewer"},
		{"protected route", "/api/admin/features", "Bearer bob@example.com:admin,ops", "bob@example.com", "admin,ops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := spoof.Clone()
			if tt.auth != "" {
				h.Set("Authorization", tt.auth)
			}
			resp := do(t, "GET", front.URL+tt.path, h)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status: got %d, want 200", resp.StatusCode)
			}
			got := up.last(t)
			for k, v := range got.Header {
				if matchesAny(k, []string{"X-Latch-User", "X-Latch-Roles"}) && !(len(v) == 1 && (k == "X-Latch-User" || k == "X-Latch-Roles")) {
					t.Errorf("upstream got spoofable header %s: %q", k, v)
				}
			}
			if u := got.Header.Values("X-Latch-User"); strings.Join(u, "|") != tt.wantUser {
				t.Errorf("X-Latch-User: got %q, want %q", u, tt.wantUser)
			}
			if r := got.Header.Values("X-Latch-Roles"); strings.Join(r, "|") != tt.wantRoles {
				t.Errorf("X-Latch-Roles: got %q, want %q", r, tt.wantRoles)
			}
		})
	}
}

func TestServerSentEventsStream(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release // the second event waits until the client saw the first
		io.WriteString(w, "data: second\n\n")
	}))
	defer up.Close()
	defer close(release)
	front := newFront(t, up.URL, nil)
	resp := do(t, "GET", front.URL+"/events", nil)
	defer resp.Body.Close()
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if line != "data: first\n" {
			t.Fatalf("first line: got %q", line)
		}
	case <-time.After(waitLimit):
		t.Fatalf("the first event had not arrived after %v (the response cannot end before then): latch buffered it", waitLimit)
	}
}

func TestLargeBodyStreams(t *testing.T) {
	const size = 64 << 20
	firstChunk := make(chan struct{})
	type result struct {
		n   int64
		sum [32]byte
	}
	results := make(chan result, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		buf := make([]byte, 1<<16)
		n, err := io.ReadFull(r.Body, buf[:1<<16])
		h.Write(buf[:n])
		if err != nil {
			t.Errorf("reading first chunk: %v", err)
		}
		close(firstChunk)
		m, _ := io.Copy(h, r.Body)
		var s [32]byte
		copy(s[:], h.Sum(nil))
		results <- result{int64(n) + m, s}
	}))
	defer up.Close()
	front := newFront(t, up.URL, nil)

	pr, pw := io.Pipe()
	sent := sha256.New()
	go func() {
		chunk := make([]byte, 1<<16)
		for i := range chunk {
			chunk[i] = byte(i * 7)
		}
		sent.Write(chunk)
		pw.Write(chunk)
		<-firstChunk // the upstream reads before the client has sent the rest
		for written := len(chunk); written < size; written += len(chunk) {
			sent.Write(chunk)
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", front.URL+"/upload", pr)
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err) // after waitLimit, a context deadline error
	}
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	var r result
	select {
	case r = <-results:
	case <-time.After(waitLimit):
		t.Fatalf("the upstream had not finished reading the body %v after latch answered", waitLimit)
	}
	if r.n != size {
		t.Errorf("upstream got %d bytes, want %d", r.n, size)
	}
	var want [32]byte
	copy(want[:], sent.Sum(nil))
	if r.sum != want {
		t.Error("upstream got different bytes than were sent")
	}
	// Client, latch and upstream share this process; a buffered body
	// would allocate at least its size.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/4 {
		t.Errorf("allocated %d bytes while streaming %d: the body was buffered", alloc, size)
	}
}

func TestWebSocketPassesThrough(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	}))
	defer up.Close()
	front := newFront(t, up.URL, nil)
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit) // each call fails after it
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(front.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial through latch: %v", err)
	}
	defer c.CloseNow()
	for _, m := range []string{"hello", "again"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo: "+m {
			t.Errorf("got %q, want %q", got, "echo: "+m)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
}

func TestUpstreamDownIs502(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	front := newFront(t, "http://"+addr, nil)
	body := wantError(t, do(t, "GET", front.URL+"/x", nil), 502, NameBadGateway)
	if strings.Contains(body["message"].(string), addr) {
		t.Errorf("message %q leaks the upstream address", body["message"])
	}
}

func TestUpstreamSlowIs504(t *testing.T) {
	unblock := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-unblock:
		case <-r.Context().Done():
		}
	}))
	defer up.Close()
	defer close(unblock)
	front := newFront(t, up.URL, func(o *Options) {
		o.Transport = NewTransport(TransportOptions{ResponseHeaderTimeout: 50 * time.Millisecond})
	})
	wantError(t, do(t, "GET", front.URL+"/slow", nil), 504, NameGatewayTimeout)
}

func TestUpstreamReason(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		ctx  context.Context
		err  error
		want string
	}{
		{context.Background(), context.DeadlineExceeded, "timeout"},
		{canceled, context.Canceled, "canceled"},
		{context.Background(), &net.OpError{Op: "dial", Err: errors.New("x")}, "other"},
		{context.Background(), &net.DNSError{Err: "no such host"}, "refused"},
	}
	for _, tt := range tests {
		if got := upstreamReason(tt.ctx, tt.err); got != tt.want {
			t.Errorf("upstreamReason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
