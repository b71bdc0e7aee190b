// Package latch holds the vocabulary latch's packages share: a User and a
// BrowserSession as the stores and the API show them, the errors a user,
// token and session store reports, and the rules an email address, a new
// password and a session key follow.
//
// It imports only the standard library. proxy, policy, resetstore (and its
// etcdstore) and config may import it; it imports none of them, so they stay
// independent of each other while speaking the same terms: both stores
// return these types and errors, and proxy's Store interface is declared in
// them, with no adapter in between.
package latch
