package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

// TestReadyz: /readyz runs every check with the request's context and
// names the failing ones with their errors.
func TestReadyz(t *testing.T) {
	t.Parallel()
	type ctxKey struct{}
	var sawCtx bool
	checks := []Check{
		{Name: "ok", Err: func(ctx context.Context) error {
			sawCtx = ctx.Value(ctxKey{}) == "readyz"
			return nil
		}},
		{Name: "down", Err: func(context.Context) error { return errors.New("store unreachable") }},
		{Name: "keys", Err: func(context.Context) error { return errors.New("no keys") }},
	}
	for _, c := range []struct {
		name   string
		checks []Check
		status int
		want   map[string]any
	}{
		{"all hold", checks[:1], http.StatusOK, map[string]any{"status": "ready"}},
		{"two fail", checks, http.StatusServiceUnavailable, map[string]any{"status": "not ready",
			"failing": map[string]any{"down": "store unreachable", "keys": "no keys"}}},
	} {
		sawCtx = false
		req := httptest.NewRequest("GET", "/readyz", nil)
		req = req.WithContext(context.WithValue(req.Context(), ctxKey{}, "readyz"))
		w := httptest.NewRecorder()
		Admin(c.checks, nil, AdminOptions{}).ServeHTTP(w, req)
		var got map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatalf("%s: body %q: %v", c.name, w.Body.String(), err)
		}
		if w.Code != c.status || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %d %v, want %d %v", c.name, w.Code, got, c.status, c.want)
		}
		if !sawCtx {
			t.Errorf("%s: the check did not get the request's context", c.name)
		}
	}
}
