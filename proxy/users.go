package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"

	"github.com/latch-dev/latch"
)

// roleName is what a role may be called: it becomes "role:<name>" in the
// policy and a comma-separated header value upstream.
var roleName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

func rolesError(roles []string) *Error {
	if len(roles) > 32 {
		return schemaError("The .roles property may hold at most 32 roles.", ".roles")
	}
	for _, r := range roles {
		if !roleName.MatchString(r) {
			return schemaError(fmt.Sprintf("The .roles property holds %q, which is not a role name (lower-case letters, digits, '.', '_', '-').", truncate(r, 64)), ".roles")
		}
	}
	return nil
}

// listUsers answers GET <ns>/users; it never includes a hash or
// a token.
func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request) error {
	users, err := h.opts.Store.ListUsers(r.Context())
	if err != nil {
		return err
	}
	if users == nil {
		users = []latch.User{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": users})
	return nil
}

// createUser answers POST <ns>/users {email, roles?, password?}:
// 201, 400, or 409 when the email is taken.
func (h *Handler) createUser(w http.ResponseWriter, r *http.Request) error {
	b, e := h.readObject(w, r, []field{
		{name: "email", required: true, email: true},
		{name: "roles", kind: "strings"},
		{name: "password"},
	})
	if e == nil {
		if _, err := latch.NormalizeEmail(b.strs["email"]); err != nil {
			// An address mail.ParseAddress takes but no user can have
			// (a Unicode space, a control character).
			e = schemaError("The .email property must be an email address.", ".email")
		}
	}
	if e == nil {
		e = rolesError(b.arrays["roles"])
	}
	if e == nil && b.has["password"] {
		e = passwordError(b.strs["password"])
	}
	if e != nil {
		return e
	}
	email := b.strs["email"]
	u, err := h.opts.Store.AddUser(r.Context(), email, b.arrays["roles"], b.strs["password"])
	if err != nil {
		return about(email, err)
	}
	w.Header().Set("Location", h.ns+"/users/"+url.PathEscape(u.Email))
	writeJSON(w, http.StatusCreated, u)
	return nil
}

// getUser answers GET <ns>/users/{id}: 200 or 404.
func (h *Handler) getUser(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	u, err := h.opts.Store.GetUser(r.Context(), id)
	if err != nil {
		return about(id, err)
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

// putUser answers PUT <ns>/users/{id} {roles}: 200, 400 or 404.
func (h *Handler) putUser(w http.ResponseWriter, r *http.Request) error {
	b, e := h.readObject(w, r, []field{{name: "roles", kind: "strings", required: true}})
	if e == nil {
		e = rolesError(b.arrays["roles"])
	}
	if e != nil {
		return e
	}
	id := r.PathValue("id")
	u, err := h.opts.Store.SetRoles(r.Context(), id, b.arrays["roles"])
	if err != nil {
		return about(id, err)
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

// deleteUser answers DELETE <ns>/users/{id}: 204 or 404.
func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := h.opts.Store.DeleteUser(r.Context(), id); err != nil {
		return about(id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
