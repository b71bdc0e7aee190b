package proxy

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Error is an answer latch gives itself, in the API page's error shape. It
// holds only what a client may see; causes go to the log.
type Error struct {
	Status  int
	Name    string
	Message string
	Details []Detail
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
	Details []Detail `json:"details,omitempty"`
}

// writeError renders e: the one place error bodies are written. Every body
// carries a fresh UUID v4. On the proxy port the id, the error name and the
// internal cause go on the request's access line (see finish), so an
// operator can find the line a client quotes; elsewhere they are logged
// here.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, e *Error, cause error) {
	id := uuid.NewString()
	if st := stateFrom(r.Context()); st != nil {
		st.errorID, st.errorName, st.cause = id, e.Name, cause
	} else if log != nil {
		attrs := []any{"error_id", id, "status", e.Status, "name", e.Name, "method", r.Method}
		if cause != nil {
			attrs = append(attrs, "cause", cause.Error())
		}
		log.Log(r.Context(), slog.LevelWarn, "answered with an error", attrs...)
	}
	if e.RetryAfter > 0 {
		secs := int64((e.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	writeJSON(w, e.Status, errorBody{ID: id, Name: e.Name, Message: e.Message, Details: e.Details})
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
	msgNoAuthHeader = "You must log in to use Unleash. Your request had no authorization header, so we could not authorize you. Try logging in at /auth/simple/login."
	msgNotFound     = "The requested resource was not found."
)
