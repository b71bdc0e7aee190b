package proxy

import (
	"net/http"

	"github.com/latch-dev/latch"
)

// passwordError is the 400 for a new password that is empty or breaks the
// rules (latch.PasswordProblems), or nil.
func passwordError(pw string) *Error {
	if pw == "" {
		return &Error{Status: http.StatusBadRequest, Name: NamePasswordUndef, Message: "Password cannot be empty or undefined"}
	}
	problems := latch.PasswordProblems(pw)
	if len(problems) == 0 {
		return nil
	}
	details := make([]Detail, len(problems))
	for i, p := range problems {
		details[i] = Detail{Message: p, Path: ".password"}
	}
	return &Error{Status: http.StatusBadRequest, Name: NameOwasp, Message: problems[0], Details: details}
}
