package latch

import (
	"strings"
	"unicode"
)

// MaxEmailLen is the longest email address NormalizeEmail accepts, in bytes.
const MaxEmailLen = 254

// NormalizeEmail returns email with its ASCII letters lower-cased, the form
// a user is stored under, or ErrInvalidEmail when it is empty, longer than
// MaxEmailLen, or not of the shape local@domain (one '@', neither part
// empty) without spaces, control characters or U+FFFD.
//
// Only ASCII letters fold: Unicode folding would make "admİn@example.com"
// (U+0130) the same user as "admin@example.com" while the policy and the
// logs see two subjects.
func NormalizeEmail(email string) (string, error) {
	if email == "" || len(email) > MaxEmailLen {
		return "", ErrInvalidEmail
	}
	at := strings.IndexByte(email, '@')
	if at <= 0 || at == len(email)-1 || strings.Count(email, "@") != 1 {
		return "", ErrInvalidEmail
	}
	for _, r := range email {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return "", ErrInvalidEmail
		}
	}
	return FoldASCII(email), nil
}

// FoldASCII lower-cases the ASCII letters of s and keeps every other byte:
// the case folding latch applies to emails (strings.ToLower folds with
// Unicode rules).
func FoldASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// PasswordProblems checks a new password against the OWASP rules latch
// follows and returns every failure, in a fixed order, as a sentence a user
// can read; nil means it passes. Length counts characters, not bytes. The
// empty password is the caller's to refuse (the API names it apart).
func PasswordProblems(pw string) []string {
	var problems []string
	n := 0
	var lower, upper, digit, special bool
	var prev rune
	run, maxRun := 0, 0
	for _, c := range pw {
		n++
		if c == prev {
			run++
		} else {
			run = 1
		}
		prev = c
		maxRun = max(maxRun, run)
		switch {
		case unicode.IsLower(c):
			lower = true
		case unicode.IsUpper(c):
			upper = true
		case unicode.IsDigit(c):
			digit = true
		case c != ' ' && !unicode.IsLetter(c):
			special = true
		}
	}
	if n < 10 {
		problems = append(problems, "The password must be at least 10 characters long.")
	}
	if n >= 128 {
		problems = append(problems, "The password must be fewer than 128 characters.")
	}
	if maxRun >= 3 {
		problems = append(problems, "The password may not contain sequences of three or more repeated characters.")
	}
	if !lower {
		problems = append(problems, "The password must contain at least one lowercase letter.")
	}
	if !upper {
		problems = append(problems, "The password must contain at least one uppercase letter.")
	}
	if !digit {
		problems = append(problems, "The password must contain at least one number.")
	}
	if !special {
		problems = append(problems, "The password must contain at least one special character.")
	}
	return problems
}
