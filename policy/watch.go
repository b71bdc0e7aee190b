package policy

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// debounce is how long Watch waits after the last change notification
// before reading the files, so an editor's or kubelet's burst of events
// leads to one read. What it reads is loaded only once settled
// (Options.Settle, watchCheck).
const debounce = 150 * time.Millisecond

// Watch reloads the policy when its files change, until ctx is done; then it
// returns nil. It watches the files' directories, not the files, so it sees
// in-place writes, write-temp-then-rename and the Kubernetes ConfigMap swap
// of the ..data symlink alike, and it also re-reads the files every
// PollInterval in case a notification is missed (network file systems, a
// symlinked file in another directory). Either way a reload happens only
// when the content differs from what the last attempt read, only once it
// has settled (it reads the same again Settle later; until then the policy
// in force stays, see watchCheck), and it goes through the same validation
// as Reload.
//
// If change notifications cannot be set up, Watch logs why and polls; it
// returns an error only when it can neither be notified nor poll.
func (e *Engine) Watch(ctx context.Context) error {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w := e.newWatcher(); w != nil {
		defer w.Close()
		events, errs = w.Events, w.Errors
	} else if e.opts.PollInterval < 0 {
		return errors.New("policy: cannot watch the policy files and polling is disabled")
	}
	var poll <-chan time.Time
	if e.opts.PollInterval > 0 {
		t := time.NewTicker(e.opts.PollInterval)
		defer t.Stop()
		poll = t.C
	}
	// The first tick of quiet catches edits made between Open and Watch.
	quiet := time.NewTimer(debounce)
	defer quiet.Stop()
	// settled fires when changed content has waited Settle (watchCheck);
	// nil when nothing is pending.
	var settled <-chan time.Time
	check := func() {
		if c := e.watchCheck(false); c != nil {
			settled = c
		}
	}
	names := e.watchedNames()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if names[filepath.Base(ev.Name)] {
				quiet.Reset(debounce)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			e.log.Warn("policy file watcher error; polling continues", "err", err)
		case <-quiet.C:
			check()
		case <-poll:
			check()
		case <-settled:
			settled = e.watchCheck(true)
		}
	}
}

// newWatcher starts an fsnotify watcher on the directories holding the
// files and, for files that are symlinks, on their targets' directories as
// they are when Watch starts. It returns nil, after logging why, if no
// directory can be watched.
func (e *Engine) newWatcher() *fsnotify.Watcher {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		e.log.Warn("policy file notifications unavailable; polling only", "err", err)
		return nil
	}
	added := 0
	for dir := range e.watchedDirs() {
		if err := w.Add(dir); err != nil {
			e.log.Warn("cannot watch policy directory; relying on polling", "dir", dir, "err", err)
			continue
		}
		added++
	}
	if added == 0 {
		_ = w.Close()
		return nil
	}
	return w
}

func (e *Engine) paths() []string {
	ps := []string{e.opts.ModelPath, e.opts.RulesPath}
	if e.opts.TestsPath != "" {
		ps = append(ps, e.opts.TestsPath)
	}
	return ps
}

func (e *Engine) watchedDirs() map[string]bool {
	dirs := map[string]bool{}
	for _, p := range e.paths() {
		dirs[filepath.Dir(p)] = true
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs[filepath.Dir(real)] = true
		}
	}
	return dirs
}

// watchedNames are the directory entries whose changes matter: the files
// themselves and Kubernetes' ..data symlink, whose swap replaces them all.
func (e *Engine) watchedNames() map[string]bool {
	names := map[string]bool{"..data": true}
	for _, p := range e.paths() {
		names[filepath.Base(p)] = true
		if real, err := filepath.EvalSymlinks(p); err == nil {
			names[filepath.Base(real)] = true
		}
	}
	return names
}
