package proxy

import (
	_ "embed"
	"net/http"
)

//go:embed resetpage.html
var resetPageHTML []byte

// resetPage serves the page a reset link opens: a form for the new
// password that validates the token, shows the rules, and submits to
// /auth/reset/password. It loads nothing from elsewhere.
func (h *Handler) resetPage(w http.ResponseWriter, r *http.Request) error {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resetPageHTML) // the client went away: nothing to answer
	return nil
}
