package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
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

// listUsers answers GET /api/admin/user-admin; it never includes a hash or
// a token.
func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request) {
	users, err := h.opts.Store.ListUsers(r.Context())
	if err != nil {
		h.storeFailure(w, r, err)
		return
	}
	if users == nil {
		users = []User{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": users})
}

// createUser answers POST /api/admin/user-admin {email, roles?, password?}.
func (h *Handler) createUser(w http.ResponseWriter, r *http.Request) {
	b, e := h.readObject(w, r, []field{
		{name: "email", required: true, email: true},
		{name: "roles", kind: "strings"},
		{name: "password"},
	})
	if e == nil {
		e = rolesError(b.arrays["roles"])
	}
	if e == nil && b.has["password"] {
		e = passwordError(b.strs["password"])
	}
	if e != nil {
		writeError(w, r, h.log, e, nil)
		return
	}
	u, err := h.opts.Store.AddUser(r.Context(), b.strs["email"], b.arrays["roles"], b.strs["password"])
	switch {
	case errors.Is(err, ErrUserExists):
		writeError(w, r, h.log, &Error{Status: http.StatusConflict, Name: NameConflict,
			Message: fmt.Sprintf("A user with the email %q already exists.", b.strs["email"])}, nil)
	case err != nil:
		h.storeFailure(w, r, err)
	default:
		w.Header().Set("Location", "/api/admin/user-admin/"+url.PathEscape(u.Email))
		writeJSON(w, http.StatusCreated, u)
	}
}

// userAnswer answers a request about user id: 404 for an unknown user, a
// store failure, or ok.
func (h *Handler) userAnswer(w http.ResponseWriter, r *http.Request, id string, err error, ok func()) {
	switch {
	case errors.Is(err, ErrUserNotFound):
		writeError(w, r, h.log, &Error{Status: http.StatusNotFound, Name: NameNotFound,
			Message: fmt.Sprintf("Could not find the user with ID %q.", truncate(id, 254))}, nil)
	case err != nil:
		h.storeFailure(w, r, err)
	default:
		ok()
	}
}

func (h *Handler) getUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	u, err := h.opts.Store.GetUser(r.Context(), id)
	h.userAnswer(w, r, id, err, func() { writeJSON(w, http.StatusOK, u) })
}

// putUser answers PUT /api/admin/user-admin/{id} {roles}.
func (h *Handler) putUser(w http.ResponseWriter, r *http.Request) {
	b, e := h.readObject(w, r, []field{{name: "roles", kind: "strings", required: true}})
	if e == nil {
		e = rolesError(b.arrays["roles"])
	}
	if e != nil {
		writeError(w, r, h.log, e, nil)
		return
	}
	id := r.PathValue("id")
	u, err := h.opts.Store.SetRoles(r.Context(), id, b.arrays["roles"])
	h.userAnswer(w, r, id, err, func() { writeJSON(w, http.StatusOK, u) })
}

func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := h.opts.Store.DeleteUser(r.Context(), id)
	h.userAnswer(w, r, id, err, func() { w.WriteHeader(http.StatusNoContent) })
}
