package proxy

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
)

// overrideHeaders are the request headers with which frameworks let a POST
// run as another method (express's method-override, Rails' and Laravel's
// Rack or Symfony middleware, ASP.NET, Google APIs). Any case and '_' for
// '-' match (see matchesAny).
var overrideHeaders = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// overrideParam is the query (and form) parameter with the same use.
const overrideParam = "_method"

// Errors for methods and method overrides latch refuses.
var (
	errMethodCase = &Error{Status: http.StatusBadRequest, Name: NameBadData,
		Message: "The request method must be an upper-case token."}
	errMethodTunnel = &Error{Status: http.StatusMethodNotAllowed, Name: NameMethodNotAllowed,
		Message: "latch does not forward CONNECT or TRACE requests."}
	errOverride = &Error{Status: http.StatusBadRequest, Name: NameBadData,
		Message: "A method override (X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override or _method) must name a method."}
	errOverrides = &Error{Status: http.StatusBadRequest, Name: NameBadData,
		Message: fmt.Sprintf("A request may name at most %d methods in method overrides.", maxOverrides)}
	errFormTooLarge = &Error{Status: http.StatusRequestEntityTooLarge, Name: NamePayloadTooLarge,
		Message: "A form body on a protected path may be at most 1 MiB: latch reads it for a _method override."}
	errFormMalformed = &Error{Status: http.StatusBadRequest, Name: NameBadData,
		Message: "The multipart form body could not be read."}
	errBodyUnread = &Error{Status: http.StatusBadRequest, Name: NameBadData,
		Message: "The request body could not be read."}
)

// CheckMethod is checkMethod for `latch policy explain`: nil, or the
// *Error the proxy answers with.
func CheckMethod(m string) error {
	if e := checkMethod(m); e != nil {
		return e
	}
	return nil
}

// checkMethod refuses a method that is not an upper-case token, so no
// backend runs a method that a case-sensitive policy rule did not see
// (Werkzeug runs "delete" as DELETE), and CONNECT and TRACE, which a sidecar
// has no reason to forward.
func checkMethod(m string) *Error {
	if m == "" {
		return errMethodCase
	}
	for i := 0; i < len(m); i++ {
		if !isTokenByte(m[i]) || 'a' <= m[i] && m[i] <= 'z' {
			return errMethodCase
		}
	}
	if m == http.MethodConnect || m == http.MethodTrace {
		return errMethodTunnel
	}
	return nil
}

// methods returns every method the upstream might run for r: r.Method and
// each method a method-override header, a _method query parameter or a
// _method field of a POST's form body (see formOverrides) names,
// upper-cased as the frameworks do. A protected request is allowed only if
// the policy allows all of them. An override that is not a token, or names
// CONNECT or TRACE, is refused. The result is appended to buf (the
// request's own storage, see reqState.methodsOf).
func methods(r *http.Request, buf []string) ([]string, *Error) {
	ms := append(buf, r.Method)
	add := func(v string) *Error {
		if len(v) > 64 {
			return errOverride
		}
		v = strings.TrimSpace(v)
		if v == "" {
			return nil // frameworks ignore an empty override
		}
		for i := 0; i < len(v); i++ {
			if !isTokenByte(v[i]) {
				return errOverride
			}
		}
		v = strings.ToUpper(v) // a token is ASCII, so this is ASCII folding
		if v == http.MethodConnect || v == http.MethodTrace {
			return errOverride
		}
		for _, m := range ms {
			if m == v {
				return nil
			}
		}
		if len(ms) > maxOverrides {
			return errOverrides
		}
		ms = append(ms, v)
		return nil
	}
	for k, vs := range r.Header {
		if !matchesAny(k, overrideHeaders) {
			continue
		}
		for _, v := range vs {
			// Some frameworks take the first of a list, some the last.
			for _, part := range strings.Split(v, ",") {
				if err := add(part); err != nil {
					return nil, err
				}
			}
		}
	}
	if q := r.URL.RawQuery; q != "" {
		if err := queryOverrides(q, add); err != nil {
			return nil, err
		}
	}
	if r.Method == http.MethodPost && hasBody(r) {
		if err := formOverrides(r, add); err != nil {
			return nil, err
		}
	}
	return ms, nil
}

// maxFormScan bounds the form body latch reads to find a _method field.
const maxFormScan = 1 << 20

// maxOverrides bounds the distinct methods overrides may name in one
// request: each is decided on every reading.
const maxOverrides = 4

// formOverrides finds _method fields in the body of a POST, where Rails
// (Rack), Laravel and express's method-override (with a body getter) read
// them. Like Rack, it takes the media type as the Content-Type's text before
// the first ';' or ',', whatever its parameters; a POST with no
// Content-Type counts as a form too. It reads an
// application/x-www-form-urlencoded, typeless or multipart/* body of up to
// maxFormScan bytes and puts it back for the upstream; a larger one is
// refused, since latch could not see all of it, and so is a multipart body
// it cannot parse. Other bodies (JSON among them) are not read.
func formOverrides(r *http.Request, add func(string) *Error) *Error {
	ct := r.Header.Get("Content-Type")
	mt := ct
	if i := strings.IndexAny(mt, ";,"); i >= 0 {
		mt = mt[:i]
	}
	mt = strings.ToLower(strings.TrimSpace(mt))
	multi := strings.HasPrefix(mt, "multipart/")
	if mt != "" && mt != "application/x-www-form-urlencoded" && !multi {
		return nil
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, maxFormScan+1))
	if err != nil {
		return errBodyUnread
	}
	if len(buf) > maxFormScan {
		return errFormTooLarge
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{bytes.NewReader(buf), r.Body}
	// Rack reads a body it cannot parse as multipart as a query string:
	// every body read here is scanned that way too.
	if err := queryOverrides(string(buf), add); err != nil {
		return err
	}
	if !multi {
		return nil
	}
	_, params, err := mime.ParseMediaType(ct)
	if err != nil || params["boundary"] == "" {
		return errFormMalformed
	}
	mr := multipart.NewReader(bytes.NewReader(buf), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return errFormMalformed
		}
		if !isOverrideKey(p.FormName()) {
			continue
		}
		v, err := io.ReadAll(io.LimitReader(p, 65))
		if err != nil {
			return errFormMalformed
		}
		if err := add(string(v)); err != nil {
			return err
		}
	}
}

// isOverrideKey reports whether a framework could read the decoded
// parameter name k as _method: compared without regard to ASCII case, with
// any "[...]" suffix (qs and PHP arrays) removed, leading spaces trimmed,
// and '.' and ' ' read as '_' (PHP's mangling of $_GET and $_POST keys).
func isOverrideKey(k string) bool {
	if i := strings.IndexByte(k, '['); i >= 0 {
		k = k[:i]
	}
	k = strings.TrimSpace(k)
	if len(k) != len(overrideParam) {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := lowerByte(k[i])
		if c == '.' || c == ' ' {
			c = '_'
		}
		if c != overrideParam[i] {
			return false
		}
	}
	return true
}

// queryOverrides calls add for every value of a query parameter that a
// framework could read as _method (see isOverrideKey), the key compared
// after percent-decoding. Keys are split on '&' and ';' alike.
func queryOverrides(q string, add func(string) *Error) *Error {
	for q != "" {
		var kv string
		if i := strings.IndexAny(q, "&;"); i >= 0 {
			kv, q = q[:i], q[i+1:]
		} else {
			kv, q = q, ""
		}
		k, v, _ := strings.Cut(kv, "=")
		if len(k) < len(overrideParam) {
			continue // too short to read as _method
		}
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if !isOverrideKey(k) {
			continue
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return errOverride
		}
		if err := add(dv); err != nil {
			return err
		}
	}
	return nil
}

// isTokenByte reports whether c may appear in an HTTP token (RFC 9110
// section 5.6.2).
func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// noBodyMethod reports whether a backend may leave a body of method m
// unread: every method but POST, PUT and PATCH, whose bodies backends read
// (GET, HEAD, DELETE and OPTIONS define no body semantics, RFC 9110 section
// 9.3; extension methods are unknown to many backends). An unread body
// could be parsed as the next request on the connection, so such a request
// is forwarded on a connection that is closed after it (see forwarder).
func noBodyMethod(m string) bool {
	switch m {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return false
	}
	return true
}

// hasBody reports whether r carries a request body.
func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody
}
