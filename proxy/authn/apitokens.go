package authn

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"
)

// HashAPIToken returns the lowercase hex SHA-256 of token, the form the API
// tokens file stores.
func HashAPIToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

type apiToken struct {
	subject string
	roles   []string
}

// tokenTable is one load of the API tokens file. Only hashes are kept.
type tokenTable struct {
	byHash map[[32]byte]apiToken
}

// lookup finds the token whose SHA-256 is sum.
func (t *tokenTable) lookup(sum [32]byte) (Identity, Reason) {
	e, ok := t.byHash[sum]
	if !ok {
		return Identity{}, ReasonUnknownToken
	}
	return Identity{Subject: e.subject, Roles: slices.Clone(e.roles), Kind: KindAPIToken}, ""
}

// parseAPITokens reads the file format described in the package documentation.
// Errors name the file and line.
func parseAPITokens(path string, data []byte) (*tokenTable, error) {
	t := &tokenTable{byHash: map[[32]byte]apiToken{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) < 2 || len(fields) > 3 {
			return nil, fmt.Errorf("API tokens file %s:%d: want \"sha256hex subject [role,role...]\", got %d fields", path, line, len(fields))
		}
		raw, err := hex.DecodeString(fields[0])
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("API tokens file %s:%d: first field is not a 64-digit hex SHA-256", path, line)
		}
		key := [32]byte(raw)
		if _, dup := t.byHash[key]; dup {
			return nil, fmt.Errorf("API tokens file %s:%d: hash listed twice", path, line)
		}
		e := apiToken{subject: fields[1]}
		if len(fields) == 3 {
			e.roles = strings.Split(fields[2], ",")
			if slices.Contains(e.roles, "") {
				return nil, fmt.Errorf("API tokens file %s:%d: empty role in %q", path, line, fields[2])
			}
		}
		t.byHash[key] = e
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("API tokens file %s: %w", path, err)
	}
	return t, nil
}

// reloadAPITokens loads the API tokens file if its content changed since the
// last load. On any error the table in use is kept. Once the metrics exist
// (after New), latch_api_tokens_last_reload_successful records the result.
func (a *Authenticator) reloadAPITokens() (changed bool, err error) {
	changed, err = a.loadAPITokens()
	if a.metrics != nil {
		if err != nil {
			a.metrics.apiTokensOK.Set(0)
		} else {
			a.metrics.apiTokensOK.Set(1)
		}
	}
	return changed, err
}

// loadAPITokens is reloadAPITokens without the metric.
func (a *Authenticator) loadAPITokens() (changed bool, err error) {
	path := a.opts.APITokensFile
	data, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("API tokens file %s: %w", path, err)
	}
	sum := sha256.Sum256(data)
	a.tokensMu.Lock()
	defer a.tokensMu.Unlock()
	if a.tokens.Load() != nil && sum == a.tokensHash {
		return false, nil
	}
	// A file being rewritten in place is empty for a moment: reading it
	// then must not revoke every token. To revoke them all on purpose,
	// leave a comment line.
	if a.tokens.Load() != nil && len(bytes.TrimSpace(data)) == 0 {
		return false, fmt.Errorf("API tokens file %s is empty; keeping the tokens in use (to revoke every token, leave a comment line)", path)
	}
	t, err := parseAPITokens(path, data)
	if err != nil {
		return false, err
	}
	a.tokens.Store(t)
	a.tokensHash = sum
	return true, nil
}

// runAPITokens polls the API tokens file until ctx is done.
func (a *Authenticator) runAPITokens(ctx context.Context) {
	tick := time.NewTicker(a.opts.APITokensReload)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		changed, err := a.reloadAPITokens()
		switch {
		case err != nil:
			a.log.LogAttrs(ctx, slog.LevelError, "API tokens file not reloaded; keeping the previous tokens", slog.String("error", err.Error()))
		case changed:
			a.log.LogAttrs(ctx, slog.LevelInfo, "API tokens file reloaded", slog.Int("tokens", len(a.tokens.Load().byHash)))
		}
	}
}
