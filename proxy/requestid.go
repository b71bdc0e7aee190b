package proxy

import (
	"context"

	"github.com/google/uuid"
)

type requestIDKey struct{}

// withRequestID keeps the client's X-Request-Id when it is a short token of
// safe characters, and makes a new UUID otherwise.
func withRequestID(ctx context.Context, sent string) context.Context {
	if !validRequestID(sent) {
		sent = uuid.NewString()
	}
	return context.WithValue(ctx, requestIDKey{}, sent)
}

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
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
