package resetstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/latch-dev/latch/resetstore"
)

func TestPing(t *testing.T) {
	s, _ := openStore(t, resetstore.Options{})
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping on an open store: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, resetstore.ErrClosed) {
		t.Errorf("Ping after Close: got %v, want ErrClosed", err)
	}
}
