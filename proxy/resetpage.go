package proxy

import (
	"bytes"
	_ "embed"
	"net/http"
)

//go:embed resetpage.html
var resetPageRaw []byte

// pageCSS is the style latch's pages share (inline: their CSP allows no
// stylesheet from elsewhere).
//
//go:embed page.css
var pageCSS string

// resetPageHTML is the reset page with the shared style in place.
var resetPageHTML = bytes.Replace(resetPageRaw, []byte("/*PAGE_CSS*/"), []byte(pageCSS), 1)

// resetPage serves the page a reset link opens: a form for the new
// password that validates the token, shows the rules, and submits to
// <ns>/reset/redeem. It loads nothing from elsewhere.
func (h *Handler) resetPage(w http.ResponseWriter, r *http.Request) error {
	pageHeaders(w.Header(), "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(h.resetHTML) // the client went away: nothing to answer
	return nil
}
