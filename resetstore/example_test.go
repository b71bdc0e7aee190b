package resetstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/resetstore"
)

func Example() {
	dir, err := os.MkdirTemp("", "latch-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := resetstore.Open(filepath.Join(dir, "latch.db"), resetstore.Options{})
	if err != nil {
		log.Fatal(err) // errors.Is(err, resetstore.ErrLocked) if latch serve holds it
	}
	defer s.Close()
	ctx := context.Background()

	// An admin adds a user without a password, then sends a reset link.
	if _, err := s.AddUser(ctx, "Ada@Example.com", []string{"admin"}, ""); err != nil {
		log.Fatal(err)
	}
	token, _, err := s.IssueResetToken(ctx, "ada@example.com")
	if err != nil {
		log.Fatal(err)
	}
	_, _, err = s.IssueResetToken(ctx, "ada@example.com")
	var rl *latch.RateLimitError
	fmt.Println("second link within a minute:", errors.As(err, &rl))

	// The user follows the link and sets a password.
	email, err := s.RedeemResetToken(ctx, token, "Correct-Horse-9")
	fmt.Println("redeemed for", email, err)
	_, err = s.RedeemResetToken(ctx, token, "Another-Pass-9")
	fmt.Println("again:", errors.Is(err, latch.ErrUsedToken))

	_, ok, err := s.VerifyPassword(ctx, "ada@example.com", "Correct-Horse-9")
	fmt.Println("login:", ok, err)
	// Output:
	// second link within a minute: true
	// redeemed for ada@example.com <nil>
	// again: true
	// login: true <nil>
}
