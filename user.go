package latch

import "time"

// User is an account as a store returns it and the user-admin API shows
// it: never a password hash or a token.
type User struct {
	// Email is the address with its ASCII letters lower-cased (see
	// NormalizeEmail): the user's unique key.
	Email string `json:"email"`
	// Roles are the user's roles in the order last set; nil means none.
	Roles []string `json:"roles"`
	// HasPassword is false for a user who can only get in through a reset
	// link.
	HasPassword bool `json:"hasPassword"`
	// Created is when the user was added.
	Created time.Time `json:"createdAt"`
	// PasswordChanged is when the password was last set; zero if never
	// (adding a user with a password counts as setting it).
	PasswordChanged time.Time `json:"passwordChangedAt,omitzero"`
	// Generation is the user's session generation: random, never zero,
	// drawn again when the password is set and when the user is
	// (re-)created. A login token is tied to it. It is never sent.
	Generation uint64 `json:"-"`
}
