package latch

import "time"

// BrowserSession is a login kept by a browser: the record a store keeps
// for a session cookie. The store knows it by a key, the SHA-256 of the
// cookie's secret in hex (ValidSessionKey): never by the secret itself, so a
// copy of the store cannot be used to sign in.
type BrowserSession struct {
	// Email is the user's, as the store folds it.
	Email string
	// Generation is the user's Generation when the session began; the
	// session ends when it differs from the user's.
	Generation uint64
	// Created is when the session began.
	Created time.Time
	// LastSeen is when the session was last used, as recorded (the proxy
	// records it at most about once a minute).
	LastSeen time.Time
	// Expires is the absolute end of the session, whatever its use.
	Expires time.Time
}

// A session key is 64 lower-case hex digits (a SHA-256). Stores refuse any
// other key with ErrSessionNotFound.
const SessionKeyLen = 64

// ValidSessionKey reports whether key has the shape of a session key.
func ValidSessionKey(key string) bool {
	if len(key) != SessionKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
