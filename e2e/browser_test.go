//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is one headless Chromium with a fresh profile, so its own cookie
// jar, and one tab. Every step saves a screenshot in the test's output
// folder, numbered in order.
type browser struct {
	t       *testing.T
	name    string          // prefix of the screenshots: one browser per user
	ctx     context.Context // the tab
	steps   context.Context // ctx ending a little before it, for steps
	shot    int
	out     *syncBuffer
	console *consoleLog
}

// newBrowser starts Chromium as the repository's other browser tests do
// (cmd/latch/browser_test.go): headless, no sandbox, no GPU, no QUIC, no
// first-run, background networking, component updates or sync, and a
// fresh --user-data-dir. extra options come after these.
func newBrowser(t *testing.T, name string, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	bin := need(t, "Chromium (Debian's chromium)", "/usr/bin/chromium", "chromium", "chromium-browser")
	b := &browser{t: t, name: name, out: &syncBuffer{}}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(b.out),
	)
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(testContext(t), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	// Registered after t.TempDir, so they run before its removal.
	t.Cleanup(cancelAlloc)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v\n%s", bin, err, b.out.String())
	}
	b.ctx = ctx
	dl, _ := ctx.Deadline()
	steps, cancelSteps := context.WithDeadline(ctx, dl.Add(-min(10*time.Second, time.Until(dl)/4)))
	t.Cleanup(cancelSteps)
	b.steps = steps
	b.console = collectConsole(ctx)
	t.Cleanup(func() {
		if t.Failed() {
			path := filepath.Join(outDir(t), name+"-browser.log")
			text := "console:\n" + strings.Join(b.console.lines(), "\n") + "\n\nbrowser output:\n" + b.out.String()
			if err := os.WriteFile(path, []byte(text), 0o644); err == nil {
				t.Logf("%s's browser console and output: %s", name, path)
			}
		}
	})
	return b
}

// within is a context for one browser call: it ends after d, or a little
// before the test's deadline. Every call has one, so a call that a
// navigation leaves unanswered fails (or is retried) instead of hanging.
func (b *browser) within(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.steps, d)
}

// do runs steps (within a minute), then saves a screenshot named after
// what; on failure it saves one too and fails the test.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.within(time.Minute)
	defer cancel()
	err := chromedp.Do(ctx, steps...)
	b.screenshot(what)
	if err != nil {
		b.t.Fatalf("%s: %s: %v (at %s)", b.name, what, err, b.location())
	}
}

// waitFor waits until the JavaScript expression is true. It evaluates it
// every 250ms, across navigations (an evaluation that a navigation
// interrupts is retried).
func (b *browser) waitFor(what, expr string, timeout time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.steps, timeout)
	defer cancel()
	var err error
	for {
		var ok bool
		one, cancelOne := context.WithTimeout(ctx, 10*time.Second)
		ok, err = chromedp.Run(one, chromedp.Evaluate[bool](expr, chromedp.EvalAwaitPromise))
		cancelOne()
		if err == nil && ok {
			b.screenshot(what)
			return
		}
		if err == nil {
			err = errors.New("false")
		}
		select {
		case <-ctx.Done():
			b.screenshot(what)
			b.t.Fatalf("%s: waiting for %s (%s): %v; at %s, the page says:\n%s", b.name, what, expr, err, b.location(), tail(b.text(), 1500))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitText waits until the page's text contains want.
func (b *browser) waitText(what, want string, timeout time.Duration) {
	b.t.Helper()
	b.waitFor(what, fmt.Sprintf(`(document.body && document.body.innerText || "").includes(%s)`, jsString(want)), timeout)
}

// eval evaluates a JavaScript expression (awaiting a promise) into T.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := b.within(30 * time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: evaluating %s: %v", b.name, expr, err)
	}
	return v
}

func (b *browser) location() string {
	ctx, cancel := b.within(10 * time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return loc
}

func (b *browser) text() string {
	ctx, cancel := b.within(10 * time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return s
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// screenshot saves the visible page as NN-<browser>-<what>.png.
func (b *browser) screenshot(what string) {
	b.shot++
	ctx, cancel := b.within(10 * time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("%s: screenshot %q: %v", b.name, what, err)
		return
	}
	name := fmt.Sprintf("%02d-%s-%s.png", b.shot, b.name, strings.Trim(unsafeName.ReplaceAllString(what, "-"), "-"))
	if err := os.WriteFile(filepath.Join(outDir(b.t), name), buf, 0o644); err != nil {
		b.t.Logf("%s: saving screenshot: %v", b.name, err)
	}
}

// fetchResult is what pageFetch returns: status, body and the headers
// asked for.
type fetchResult struct {
	Status int               `json:"status"`
	Body   string            `json:"body"`
	Header map[string]string `json:"header"`
}

// pageFetch runs fetch() in the page, with its cookies (same origin).
func (b *browser) pageFetch(method, path string, body any) fetchResult {
	b.t.Helper()
	init := map[string]any{"method": method, "credentials": "same-origin", "headers": map[string]string{"Accept": "application/json"}}
	if body != nil {
		j, _ := json.Marshal(body)
		init["body"] = string(j)
		init["headers"] = map[string]string{"Accept": "application/json", "Content-Type": "application/json"}
	}
	initJSON, _ := json.Marshal(init)
	expr := fmt.Sprintf(`fetch(%s, %s).then(async r => ({status: r.status, body: await r.text(), header: {etag: r.headers.get("etag") || "", "content-type": r.headers.get("content-type") || ""}}))`, jsString(path), initJSON)
	return eval[fetchResult](b, expr)
}

// testContext is t.Context ending a little before the test's deadline, so
// a hang fails with the processes' logs saved rather than as a panic.
func testContext(t *testing.T) context.Context {
	t.Helper()
	dl, ok := t.Deadline()
	if !ok {
		dl = time.Now().Add(9 * time.Minute)
	}
	ctx, cancel := context.WithDeadline(t.Context(), dl.Add(-min(20*time.Second, time.Until(dl)/4)))
	t.Cleanup(cancel)
	return ctx
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// consoleLog gathers the browser console until its context ends.
type consoleLog struct {
	mu   sync.Mutex
	msgs []string
}

func collectConsole(ctx context.Context) *consoleLog {
	c := &consoleLog{}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, m.String())
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *consoleLog) lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

// clickFinder is a JavaScript function expression that clicks the first
// visible, enabled button, link or menu item whose text or aria-label is
// its argument, after the evaluation returns (so a navigation it starts
// cannot leave the evaluation unanswered), and says whether it found one.
const clickFinder = `((want) => {
		for (const el of document.querySelectorAll('button, a, [role=button], [role=menuitem], [role=tab], input[type=checkbox], input[type=submit], input[type=button]')) {
			const text = (el.tagName === 'INPUT' ? el.value || '' : el.innerText || '').trim(), aria = el.getAttribute('aria-label') || '';
			if ((text === want || aria === want) && el.getClientRects().length > 0 && !el.disabled) { setTimeout(() => el.click(), 0); return true; }
		}
		return false;
	})`

// click clicks the element labelled label (see clickFinder), waiting up
// to timeout for one to appear.
func (b *browser) click(label string, timeout time.Duration) {
	b.t.Helper()
	b.waitFor("click "+label, fmt.Sprintf(`%s(%s)`, clickFinder, jsString(label)), timeout)
}

// clickUntil clicks label until the JavaScript expression ready is true,
// again every 3 s while it is not: a click that lands before the page's
// script listens for it (as on a loaded machine) is not lost.
func (b *browser) clickUntil(label, ready string, timeout time.Duration) {
	b.t.Helper()
	b.waitFor("click "+label+" until "+ready, fmt.Sprintf(`(() => {
		if (%s) return true;
		const last = window.__e2eClickAt || 0;
		if (Date.now() - last > 3000 && %s(%s)) window.__e2eClickAt = Date.now();
		return false;
	})()`, ready, clickFinder, jsString(label)), timeout)
}

// typeInto types value into the text field labelled label (a <label for>),
// as a user would: focus, then insertText, which React sees as input.
func (b *browser) typeInto(label, value string, timeout time.Duration) {
	b.t.Helper()
	expr := fmt.Sprintf(`(() => {
		for (const l of document.querySelectorAll('label')) {
			if (l.textContent.trim().toLowerCase() !== %s.toLowerCase()) continue;
			const input = l.htmlFor && document.getElementById(l.htmlFor);
			if (!input || input.getClientRects().length === 0) continue;
			input.focus();
			input.select();
			document.execCommand('insertText', false, %s);
			return input.value === %s;
		}
		return false;
	})()`, jsString(label), jsString(value), jsString(value))
	b.waitFor("type into "+label, expr, timeout)
}
