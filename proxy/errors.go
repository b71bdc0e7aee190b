package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/latch-dev/latch"
)

// Error is an answer latch gives itself, in the API page's error shape. It
// holds only what a client may see; causes go to the log.
type Error struct {
	Status  int
	Name    string
	Message string
	Details []Detail
	// Path, on a 401, is the login page's path: the seed's server names
	// its login there, and Unleash's UI reads it (with Type) to offer the
	// sign-in.
	Path string
	Type string
	// RetryAfter, when positive, is sent as a Retry-After header (seconds).
	RetryAfter time.Duration
}

// Detail is one entry of an error body's details array.
type Detail struct {
	Message string `json:"message"`
	Path    string `json:"path,omitempty"`
}

func (e *Error) Error() string { return e.Name + ": " + e.Message }

// Error names from the API page and the design card, and latch's own for
// the answers the page does not cover.
const (
	NameValidation       = "ValidationError"
	NameAuthRequired     = "AuthenticationRequired"
	NameNoAccess         = "NoAccessError"
	NameNotFound         = "NotFoundError"
	NameRateLimit        = "RateLimitError"
	NameContentType      = "ContentTypeError"
	NamePayloadTooLarge  = "PayloadTooLargeError"
	NameBadData          = "BadDataError"
	NameMethodNotAllowed = "MethodNotAllowedError"
	NameInvalidToken     = "InvalidTokenError"
	NameUsedToken        = "UsedTokenError"
	NameOwasp            = "OwaspValidationError"
	NamePasswordUndef    = "PasswordUndefinedError"
	NamePasswordMismatch = "PasswordMismatch"
	NameConflict         = "NameExistsError"
	NameBadGateway       = "BadGatewayError"
	NameGatewayTimeout   = "GatewayTimeoutError"
	NameUnavailable      = "ServiceUnavailableError"
	NameInternal         = "InternalError"
)

// errorBody is the JSON written for an Error.
type errorBody struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Message string   `json:"message"`
	Details []Detail `json:"details"`
	Path    string   `json:"path,omitempty"`
	Type    string   `json:"type,omitempty"`
}

// answerError writes e, the one place error bodies are written. Every body
// carries a fresh UUID v4. The id, the error name and the internal cause
// go on the request's access line (see finish), so an operator can find
// the line a client quotes; the cause never reaches the client.
func answerError(w http.ResponseWriter, r *http.Request, e *Error, cause error) {
	id := uuid.NewString()
	if st := stateFrom(r.Context()); st != nil {
		st.errorID, st.errorName, st.cause = id, e.Name, cause
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterValue(e.RetryAfter))
	}
	details := e.Details
	if len(details) == 0 {
		// Every body carries details, as the seed's server writes them:
		// the message at least.
		details = []Detail{{Message: e.Message}}
	}
	writeJSON(w, e.Status, errorBody{ID: id, Name: e.Name, Message: e.Message, Details: details, Path: e.Path, Type: e.Type})
}

// retryAfterValue is d in whole seconds, rounded up, for Retry-After.
func retryAfterValue(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// authRequired is the 401 for a request without a usable credential:
// msg, then where to log in, in the message, the details and path.
func (h *Handler) authRequired(msg string) *Error {
	if h.opts.Store == nil {
		// No login page without a store: nothing to point at.
		return &Error{Status: http.StatusUnauthorized, Name: NameAuthRequired, Message: msg}
	}
	login := h.ns + "/login"
	return &Error{Status: http.StatusUnauthorized, Name: NameAuthRequired, Message: msg + " Try logging in at " + login + ".",
		Details: []Detail{{Message: msg}, {Message: "Log in at " + login + "."}}, Path: login, Type: "custom"}
}

// fail answers err, the error a route of latch's own returned (see
// handle): what the client sees comes from answerFor.
func fail(w http.ResponseWriter, r *http.Request, err error) {
	e, cause := answerFor(err)
	answerError(w, r, e, cause)
}

// failure is an answer together with the internal cause behind it, which
// goes to the log.
type failure struct {
	e     *Error
	cause error
}

func (f *failure) Error() string { return f.e.Error() + ": " + f.cause.Error() }
func (f *failure) Unwrap() error { return f.cause }

// withCause returns e as a route's error, with cause logged behind it.
func withCause(e *Error, cause error) error { return &failure{e: e, cause: cause} }

// aboutUser names the user a store error is about, for the message.
type aboutUser struct {
	id  string
	err error
}

func (a *aboutUser) Error() string { return a.err.Error() }
func (a *aboutUser) Unwrap() error { return a.err }

// about returns err (nil if nil) noting that it is about the user id.
func about(id string, err error) error {
	if err == nil {
		return nil
	}
	return &aboutUser{id: id, err: err}
}

// storeAnswers is the one table from the store's errors (the root
// package's) to answers. message gets the user the error is about (see
// about), if known. Only an unavailable store's error is logged: the
// others are refusals.
var storeAnswers = []struct {
	err        error
	status     int
	name       string
	message    func(id string) string
	retryAfter time.Duration
	log        bool
}{
	{err: latch.ErrUserNotFound, status: http.StatusNotFound, name: NameNotFound, message: userNotFound},
	// No user can have an address the store refuses: it is not found.
	{err: latch.ErrInvalidEmail, status: http.StatusNotFound, name: NameNotFound, message: userNotFound},
	{err: latch.ErrUserExists, status: http.StatusConflict, name: NameConflict, message: func(id string) string {
		return fmt.Sprintf("A user with the email %q already exists.", truncate(id, 254))
	}},
	{err: latch.ErrInvalidToken, status: http.StatusUnauthorized, name: NameInvalidToken, message: text("Token was not valid")},
	{err: latch.ErrUsedToken, status: http.StatusForbidden, name: NameUsedToken, message: text("Token was already used")},
	// A session could not start: the user changed (password, deletion)
	// while the login was checked.
	{err: latch.ErrSessionNotFound, status: http.StatusUnauthorized, name: NameAuthRequired,
		message: text("The account changed while you signed in; sign in again.")},
	{err: latch.ErrUnavailable, status: http.StatusServiceUnavailable, name: NameUnavailable,
		message: text("The user store is unavailable; try again later."), retryAfter: 5 * time.Second, log: true},
}

func userNotFound(id string) string {
	return fmt.Sprintf("Could not find the user with ID %q.", truncate(id, 254))
}

func text(s string) func(string) string { return func(string) string { return s } }

// answerFor is what the client sees for err, a route's error, and the
// cause to log (nil for a refusal): an *Error as it is (withCause adds a
// cause), a store error by storeAnswers, a *latch.RateLimitError as 429
// with Retry-After, and anything else as a 500 that says nothing of it.
func answerFor(err error) (*Error, error) {
	var f *failure
	if errors.As(err, &f) {
		return f.e, f.cause
	}
	var e *Error
	if errors.As(err, &e) {
		return e, nil
	}
	var rl *latch.RateLimitError
	if errors.As(err, &rl) {
		return &Error{Status: http.StatusTooManyRequests, Name: NameRateLimit,
			Message:    "You can only send one new reset password email per minute, per user. Please try again later.",
			RetryAfter: rl.RetryAfter}, nil
	}
	var id string
	var a *aboutUser
	if errors.As(err, &a) {
		id = a.id
	}
	for _, s := range storeAnswers {
		if !errors.Is(err, s.err) {
			continue
		}
		var cause error
		if s.log {
			cause = err
		}
		return &Error{Status: s.status, Name: s.name, Message: s.message(id), RetryAfter: s.retryAfter}, cause
	}
	return &Error{Status: http.StatusInternalServerError, Name: NameInternal,
		Message: "latch could not complete this request."}, err
}

// writeJSON writes v as an application/json answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Messages in the API page's form.
const (
	msgNoCredential = "You must log in to use this service. Your request had no authorization header or session, so we could not authorize you."
	msgNotFound     = "The requested resource was not found."
)
