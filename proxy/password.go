package proxy

import "unicode"

// PasswordProblems checks a new password against the OWASP rules the API
// follows and returns every failure, in a fixed order; nil means it passes.
// Length counts characters, not bytes.
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

// passwordError is the 400 for a password that breaks the rules, or nil.
func passwordError(pw string) *Error {
	if pw == "" {
		return &Error{Status: 400, Name: NamePasswordUndef, Message: "Password cannot be empty or undefined"}
	}
	problems := PasswordProblems(pw)
	if len(problems) == 0 {
		return nil
	}
	details := make([]Detail, len(problems))
	for i, p := range problems {
		details[i] = Detail{Message: p, Path: ".password"}
	}
	return &Error{Status: 400, Name: NameOwasp, Message: problems[0], Details: details}
}
