package authn_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/latch-dev/latch/proxy/authn"
)

// Mint a token with latch's own HMAC key and authenticate a request with it.
func Example() {
	dir, err := os.MkdirTemp("", "authn-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	keyFile := filepath.Join(dir, "hmac.secret")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("s3cret-", 6)), 0o600); err != nil {
		log.Fatal(err)
	}
	tokensFile := filepath.Join(dir, "tokens.txt")
	line := authn.HashAPIToken("*:*.abc123") + " ci-deploy admin\n"
	if err := os.WriteFile(tokensFile, []byte(line), 0o600); err != nil {
		log.Fatal(err)
	}

	a, err := authn.New(authn.Options{
		SigningKeyFile: keyFile,
		APITokensFile:  tokensFile,
		Issuer:         "https://latch.example",
		Audience:       "app",
	})
	if err != nil {
		log.Fatal(err)
	}
	token, _, err := a.Mint("ada@example.com", []string{"editor"}, time.Hour)
	if err != nil {
		log.Fatal(err)
	}

	for _, value := range []string{"Bearer " + token, "*:*.abc123", "*:*.nope"} {
		id, reason, err := a.Authenticate(context.Background(), http.Header{"Authorization": {value}})
		switch {
		case err != nil:
			fmt.Println("error:", err) // fail closed
		case reason != "":
			fmt.Println("denied:", reason, reason.Message())
		default:
			fmt.Println("allowed:", id.Kind, id.Subject, id.Roles)
		}
	}
	// Output:
	// allowed: jwt ada@example.com [editor]
	// allowed: api_token ci-deploy [admin]
	// denied: unknown_token The API token is not recognised.
}
