package etcdstore

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestZapToSlog(t *testing.T) {
	var buf bytes.Buffer
	lg := zapToSlog(slog.New(slog.NewTextHandler(&buf, nil)), slog.LevelWarn)
	lg.Debug("dropped")
	lg.Info("dropped too")
	lg.With(zap.String("target", "etcd-endpoints://x")).Warn("retrying", zap.Uint("attempt", 2), zap.Error(errors.New("boom")))
	got := strings.TrimSpace(buf.String())
	if strings.Contains(got, "dropped") {
		t.Errorf("entries below warn reached slog: %s", got)
	}
	for _, want := range []string{"level=WARN", `msg="etcd client: retrying"`, "target=etcd-endpoints://x", "attempt=2", "error=boom"} {
		if !strings.Contains(got, want) {
			t.Errorf("log line %q lacks %q", got, want)
		}
	}
}
