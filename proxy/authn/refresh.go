package authn

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

const (
	jwksFetchTimeout     = 10 * time.Second // one fetch, whoever asked for it
	earlyRefreshInterval = time.Minute      // unknown kids trigger at most this often
	jwksRetryInterval    = 15 * time.Second // after a failed scheduled fetch
	maxJWKSBytes         = 1 << 20
)

// jwksKeys is one fetched JWKS, swapped in whole.
type jwksKeys struct {
	fetched bool
	keys    []verifyKey
	byKid   map[string][]verifyKey
}

// flight is a JWKS fetch that several callers may wait for.
type flight struct {
	done chan struct{}
	err  error
}

// refreshJWKS fetches the JWKS, or joins the fetch already under way, and
// waits for it until ctx is done. The fetch itself runs under its own timeout
// and is not cancelled when ctx is, so a caller giving up never wastes it.
func (a *Authenticator) refreshJWKS(ctx context.Context) error {
	a.refreshMu.Lock()
	f := a.startFetchLocked()
	a.refreshMu.Unlock()
	return f.wait(ctx)
}

// refreshEarly is refreshJWKS for a token with an unknown kid: it starts a
// fetch only if none started early in the last minute, joins one under way,
// and otherwise returns at once.
func (a *Authenticator) refreshEarly(ctx context.Context) {
	a.refreshMu.Lock()
	f := a.inflight
	if f == nil {
		now := a.now()
		if !a.lastEarly.IsZero() && now.Sub(a.lastEarly) < earlyRefreshInterval {
			a.refreshMu.Unlock()
			return
		}
		a.lastEarly = now
		f = a.startFetchLocked()
	}
	a.refreshMu.Unlock()
	_ = f.wait(ctx) // failures are logged and counted by the fetch itself
}

// startFetchLocked returns the fetch in flight, starting one if needed.
// a.refreshMu must be held.
func (a *Authenticator) startFetchLocked() *flight {
	if a.inflight != nil {
		return a.inflight
	}
	f := &flight{done: make(chan struct{})}
	a.inflight = f
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), jwksFetchTimeout)
		f.err = a.fetchAndSwap(ctx)
		cancel()
		a.refreshMu.Lock()
		a.inflight = nil
		a.refreshMu.Unlock()
		close(f.done)
	}()
	return f
}

func (f *flight) wait(ctx context.Context) error {
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fetchAndSwap fetches the JWKS and, on success, replaces the keys in use.
// A failure keeps the last good keys.
func (a *Authenticator) fetchAndSwap(ctx context.Context) error {
	keys, err := a.fetchJWKS(ctx)
	if err != nil {
		a.metrics.jwksFailures.Inc()
		a.log.LogAttrs(ctx, slog.LevelWarn, "JWKS refresh failed",
			slog.String("url", a.opts.JWKSURL), slog.String("error", err.Error()))
		return err
	}
	next := &jwksKeys{fetched: true, keys: keys, byKid: map[string][]verifyKey{}}
	for _, k := range keys {
		next.byKid[k.kid] = append(next.byKid[k.kid], k)
	}
	prev := a.jwks.Swap(next)
	if lost := removedKeys(prev.keys, keys); lost > 0 {
		// A verified token must not outlive the key that verified it.
		a.cache.clear()
		a.log.LogAttrs(ctx, slog.LevelInfo, "JWKS keys removed", slog.Int("removed", lost))
	}
	a.metrics.jwksKeys.Set(float64(len(keys)))
	a.metrics.jwksLastSuccess.Set(float64(a.now().UnixNano()) / 1e9)
	a.log.LogAttrs(ctx, slog.LevelDebug, "JWKS refreshed", slog.Int("keys", len(keys)))
	return nil
}

func (a *Authenticator) fetchJWKS(ctx context.Context) ([]verifyKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.opts.JWKSURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET JWKS: status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read JWKS: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, errors.New("JWKS is larger than 1 MiB")
	}
	keys, skipped, err := parseJWKS(body)
	for _, s := range skipped {
		a.log.LogAttrs(ctx, slog.LevelWarn, "JWKS key ignored", slog.String("why", s))
	}
	return keys, err
}

// removedKeys counts keys of prev that are not in next with the same kid and
// the same key material.
func removedKeys(prev, next []verifyKey) int {
	n := 0
	for _, p := range prev {
		kept := false
		for _, q := range next {
			if p.kid == q.kid && sameKey(p.key, q.key) {
				kept = true
				break
			}
		}
		if !kept {
			n++
		}
	}
	return n
}

func sameKey(a, b any) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
}

// runJWKS fetches the JWKS now and then on schedule until ctx is done.
func (a *Authenticator) runJWKS(ctx context.Context) {
	for {
		next := a.opts.JWKSRefresh
		if err := a.refreshJWKS(ctx); err != nil && next > jwksRetryInterval {
			next = jwksRetryInterval
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
