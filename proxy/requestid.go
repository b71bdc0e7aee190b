package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
)

// requestIDs makes request ids: a random per-process prefix and a counter,
// unique across processes and far cheaper than a random UUID per request.
// (Error bodies still get a UUID v4 each: that is the API's contract.)
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &requestIDs{prefix: hex.EncodeToString(b) + "-"}
}

func (g *requestIDs) next() string {
	var b [40]byte
	return string(strconv.AppendUint(append(b[:0], g.prefix...), g.n.Add(1), 36)) // one allocation
}

// requestIDFrom is the request's id: the client's X-Request-Id when it
// was a short token of safe characters, else one latch made.
func requestIDFrom(ctx context.Context) string {
	if st := stateFrom(ctx); st != nil {
		return st.requestID
	}
	return ""
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
