package resetstore

import (
	"context"
	"errors"
	"time"

	"github.com/latch-dev/latch"
	bolt "go.etcd.io/bbolt"
)

// Group commit for IssueResetToken.
//
// One goroutine (runIssuer) owns a queue of issuance requests. It blocks for
// the first request, then takes whatever else is already queued (up to
// maxIssueBatch) and runs them all in one bbolt write transaction, so one
// fsync covers the whole group. While that commit runs, new requests pile up
// in the queue and form the next group: there is no timer, so a lone request
// waits for nothing but its own commit, and the group grows exactly when
// commits are the bottleneck.
//
// Inside the transaction each request is checked before anything is written
// for it; a request refused for its own reason (unknown user, rate limited,
// caller gone) gets its own error and the others go on. Only a storage
// failure aborts the transaction, and then every request in the group gets
// that error. Each request is answered only after the commit returns.
//
// db.Batch is not used: it may re-run a function after a failure, and
// retrying is not what a caller who asked for one token wants.

// maxIssueBatch caps one group, bounding a transaction's size and the queue.
const maxIssueBatch = 256

type issueRequest struct {
	ctx   context.Context
	email string
	hash  TokenHash
	res   chan issueResult // buffered: the issuer never blocks answering
}

type issueResult struct {
	expires time.Time
	err     error
}

// submitIssue queues one issuance and waits for its commit. The caller must
// hold the gate (enter), which keeps the issuer running until it returns.
func (s *Store) submitIssue(ctx context.Context, email string, h TokenHash) (time.Time, error) {
	req := &issueRequest{ctx: ctx, email: email, hash: h, res: make(chan issueResult, 1)}
	select {
	case s.issueq <- req:
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
	// Once queued, wait for the answer whatever ctx does: the issuer skips a
	// cancelled request at the start of its transaction, and after that the
	// outcome is decided and must be reported.
	res := <-req.res
	return res.expires, res.err
}

func (s *Store) runIssuer() {
	defer close(s.issuerDone)
	batch := make([]*issueRequest, 0, maxIssueBatch)
	for {
		select {
		case r := <-s.issueq:
			batch = append(batch[:0], r)
		case <-s.stop:
			return
		}
	fill:
		for len(batch) < maxIssueBatch {
			select {
			case r := <-s.issueq:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.commitIssues(batch)
		clear(batch)
	}
}

func (s *Store) commitIssues(batch []*issueRequest) {
	if s.testHookBatch != nil {
		s.testHookBatch(len(batch))
	}
	results := make([]issueResult, len(batch))
	now := s.now()
	err := s.update(func(tx *bolt.Tx) error {
		for i, r := range batch {
			if err := r.ctx.Err(); err != nil {
				results[i] = issueResult{err: err}
				continue
			}
			exp, reqErr, txErr := s.issueInTx(tx, r.email, r.hash, now)
			if txErr != nil {
				return txErr
			}
			results[i] = issueResult{expires: exp, err: reqErr}
		}
		return nil
	})
	// Count before answering, so a caller that returns sees its metrics.
	issued := 0
	for i := range results {
		switch res := &results[i]; {
		case res.err != nil:
			var rl *latch.RateLimitError
			if errors.As(res.err, &rl) {
				s.metrics.RateLimited.Inc()
			}
		case err != nil:
			*res = issueResult{err: err}
		default:
			issued++
		}
	}
	s.metrics.Issued.Add(float64(issued))
	for i, r := range batch {
		r.res <- results[i]
	}
	if err != nil {
		s.log.Error("reset token commit failed", "requests", len(batch), "err", err)
	} else {
		s.log.Debug("reset tokens committed", "requests", len(batch), "issued", issued)
	}
}
