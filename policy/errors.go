package policy

import (
	"errors"
	"fmt"
)

// FileError is a problem found in one of the policy files. Every error that
// Open, Reload and Check return for bad file content is (or wraps) a
// *FileError, so callers can print it as "path:line: reason".
type FileError struct {
	Path   string // the file as configured in Options
	Line   int    // 1-based line number; 0 when the problem is about the whole file
	Reason string // what is wrong, in words an operator can act on
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Reason)
}

func fileErr(path string, line int, format string, args ...any) *FileError {
	return &FileError{Path: path, Line: line, Reason: fmt.Sprintf(format, args...)}
}

// ErrSubject is returned by Decide when the caller's user subject cannot be
// used: it is empty, or it starts with the role prefix and could be mistaken
// for a role.
var ErrSubject = errors.New("policy: invalid subject")

// ErrUnsettled is returned by Reload when the files kept changing for 10
// settle times (Options.Settle): nothing was loaded and the policy in force
// stays.
var ErrUnsettled = errors.New("policy: files still changing")
