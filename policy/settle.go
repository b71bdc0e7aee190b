package policy

import "time"

// maxReloadWaits bounds how many settle times Reload waits for files that
// keep changing before it gives up (ErrUnsettled). Watch has no bound: it
// is a background loop and keeps waiting, holding one digest.
const maxReloadWaits = 10

// watchCheck is Watch's look at the files: after change notifications went
// quiet or on a poll tick (settled false), or when a settle wait it asked
// for ends (settled true). Content that differs from what the last load
// attempt read is not loaded when first seen: it becomes pending and
// watchCheck returns a channel for Watch to wait on (Options.Settle). It is
// loaded when that wait ends and the files still read the same; if they read
// differently, the new content becomes pending and the wait starts again.
// Only the pending content's digest is kept, so a file that keeps changing
// costs one read per notification burst, poll or settle time, and no
// memory. watchCheck returns nil when Watch need not start a new wait: no
// change, a load, or pending content whose wait is already running.
func (e *Engine) watchCheck(settled bool) <-chan time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	src, digest, err := e.read()
	switch {
	case digest == e.tried:
		// Unchanged, or changed back to what was last loaded or refused
		// (or a Reload loaded the pending content meanwhile).
		e.hasPending = false
		return nil
	case e.opts.Settle < 0, settled && e.hasPending && digest == e.pending:
		e.hasPending = false
		_ = e.reloadLocked(src, digest, err) // logged and counted there
		return nil
	case e.hasPending && digest == e.pending:
		return nil // as first seen; its wait is running
	}
	if e.hasPending {
		e.log.Debug("policy files changed again; waiting for them to settle", "settle", e.opts.Settle)
	} else {
		e.log.Info("policy files changed; loading them once they settle", "settle", e.opts.Settle)
	}
	e.pending, e.hasPending = digest, true
	return e.after(e.opts.Settle)
}
