package proxy

import (
	"bytes"
	_ "embed"
	"errors"
	"html/template"
	"net/http"
)

//go:embed loginpage.html
var loginPageHTML string

var loginTemplate = template.Must(template.New("login").Parse(loginPageHTML))

// loginPageData fills the login page.
type loginPageData struct {
	Style  template.CSS // pageCSS
	Action string       // the form's target, <ns>/login
	RD     string       // where to go after sign-in (safeRedirect'ed)
	Email  string       // what the user typed, kept after a failure
	Error  string       // what went wrong; empty on first load
}

// pageHeaders are the headers of latch's own HTML pages: nothing cached or
// framed, nothing loaded from elsewhere; form posts only to this origin.
func pageHeaders(hd http.Header, csp string) {
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", csp)
}

const loginCSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// renderLogin writes the login page with status.
func (h *Handler) renderLogin(w http.ResponseWriter, status int, d loginPageData) {
	d.Action, d.Style = h.ns+"/login", template.CSS(pageCSS)
	var buf bytes.Buffer
	if err := loginTemplate.Execute(&buf, d); err != nil {
		// The template is fixed and its data plain strings: unreachable.
		panic(err)
	}
	pageHeaders(w.Header(), loginCSP)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // the client went away: nothing to answer
}

// loginPage answers GET <ns>/login?rd=<path>: the sign-in form, which
// returns to rd (a same-origin path; anything else becomes "/").
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) error {
	h.renderLogin(w, http.StatusOK, loginPageData{RD: safeRedirect(r.URL.Query().Get("rd"))})
	return nil
}

// loginForm answers the login page's post: a session and 303 to rd, or the
// page again with the problem and the status the login API would answer.
func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) error {
	result := "error"
	defer func() { h.metrics.logins.WithLabelValues(result).Inc() }()
	again := func(status int, d loginPageData) error {
		h.renderLogin(w, status, d)
		return nil
	}
	if err := h.cop.Check(r); err != nil {
		result = "invalid"
		// The access line names the error; the page says it plainly.
		if st := stateFrom(r.Context()); st != nil {
			st.errorName, st.cause = NameNoAccess, err
		}
		return again(http.StatusForbidden, loginPageData{RD: "/", Error: errCrossOrigin.Message})
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		result = "invalid"
		status, msg := http.StatusBadRequest, "The form could not be read."
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			status, msg = http.StatusRequestEntityTooLarge, "The form is larger than latch accepts."
		}
		return again(status, loginPageData{RD: "/", Error: msg})
	}
	d := loginPageData{RD: safeRedirect(r.PostForm.Get("rd")), Email: r.PostForm.Get("email")}
	password := r.PostForm.Get("password")
	if len(d.Email) > maxEmailLen {
		d.Email = ""
	}
	// Under a flood the hash budget is spent: refuse before any other work.
	if h.login.hashes.TokensAt(h.now()) < 1 {
		result = "busy"
		w.Header().Set("Retry-After", retryAfterValue(errLoginBusy.RetryAfter))
		d.Error = errLoginBusy.Message
		return again(errLoginBusy.Status, d)
	}
	if d.Email == "" || password == "" || !validEmail(d.Email) {
		result = "invalid"
		d.Error = "Enter your email address and your password."
		return again(http.StatusBadRequest, d)
	}
	u, res, err := h.checkLogin(r, d.Email, password)
	result = res
	if err == nil {
		// A new session, never the old cookie's (fixation): the old one,
		// if any, ends.
		if old := h.sessionSecret(r.Header); old != "" {
			_ = h.opts.Store.DeleteBrowserSession(r.Context(), sessionKey(old))
		}
		err = h.startSession(r.Context(), w, u)
		if err != nil {
			result = "error"
		}
	}
	if err != nil {
		e, cause := answerFor(err)
		if st := stateFrom(r.Context()); st != nil {
			st.errorName, st.cause = e.Name, cause
		}
		if e.RetryAfter > 0 {
			w.Header().Set("Retry-After", retryAfterValue(e.RetryAfter))
		}
		d.Error = e.Message
		return again(e.Status, d)
	}
	h.loggedIn(r, u)
	w.Header().Set("Location", d.RD)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusSeeOther)
	return nil
}
