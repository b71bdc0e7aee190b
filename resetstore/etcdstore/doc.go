// Package etcdstore keeps latch's users, reset tokens and browser sessions
// in etcd, so that several latch replicas (one beside each replica of a
// backend) share them: a reset link issued through one replica works
// through every other, a new password works everywhere, a token still
// works exactly once, and a browser session ended through one replica is
// ended in all.
//
// It has the methods, the types (latch.User, resetstore.Record) and the
// sentinel errors of the bbolt store in package resetstore, hashes passwords
// with the same argon2id code, and passes the same conformance suite
// (resetstore/storetest).
//
// # Keys
//
// Every key starts with Options.Prefix (default "/latch/"):
//
//	users/<email>                 JSON user: email, roles, password_hash, created,
//	                              password_changed, reset_issued (the rate limit)
//	tokens/<hex sha256(token)>    JSON token: email, purpose, created, expires, used
//	usertokens/<email>/<hex>      the user's tokens: "" while live, "used" once redeemed
//	sessions/<key>                JSON browser session: email, gen, created, last_seen, expires
//	usersessions/<email>/<key>    the user's browser sessions: ""
//
// <email> is lowercased; in usertokens and usersessions it is path-escaped,
// so one user's prefix never holds another's keys. Only the SHA-256 of a
// token is stored; a session's <key> is already the SHA-256 of its cookie's
// secret (latch.ValidSessionKey).
//
// # Transactions
//
// Every change is one etcd transaction guarded by the ModRevision of the
// keys it was decided on, retried from a fresh read when another writer got
// there first:
//
//   - Issuing compares the user key's ModRevision, then writes the token and
//     its index entry, deletes the user's live tokens and stores the issue
//     time in the user, so replicas agree on the per-user rate limit.
//   - Redeeming compares the token's and the user's ModRevision (the token
//     read as unused), then marks the token used, writes the new password
//     hash and deletes the user's other live tokens. Of any number of
//     replicas racing for one token, one transaction succeeds; the others
//     re-read and get latch.ErrUsedToken.
//   - Adding a user requires the key not to exist; deleting one deletes the
//     user, the index and every token in it.
//   - Setting a user's password (either way), roles or existence also
//     deletes the user's session index (one range delete) in the same
//     transaction. A browser session is live only while both its record and
//     its index entry exist, so that ends every session of the user however
//     many there are; the records are deleted after the commit (and by
//     their leases if that fails). Reading a session therefore costs two
//     reads: the record, then its index entry.
//   - Creating a session compares the user key's ModRevision and requires
//     the session's Generation to be the user's (else
//     resetstore.ErrStaleSession), so a session never begins for a user
//     changed since the login was checked. Touching one compares the
//     record's ModRevision and requires its index entry.
//
// # Expiry and leases
//
// Expiry is checked on every read against the injected clock. Keys are
// removed by etcd leases, one per hour of expiry (a token expiring in
// [h, h+1h) is attached to the lease of bucket h, whose TTL runs to h+1h
// plus ten minutes of grace), granted lazily by each Store and reused for
// every token of that hour: a burst of issuances grants no more than one
// lease per hour bucket. Browser sessions use the same leases, by the hour
// of their Expires: etcd removes an expired session's keys, Touch keeps the
// lease, and nothing needs sweeping. Export carries no sessions. A used token's record stays until its lease
// expires, so a replay answers ErrUsedToken until the token's own expiry.
// RunSweeper therefore sweeps nothing: it probes etcd so that the
// latch_store_etcd_up gauge stays current.
//
// # Failures
//
// Every call is bounded by Options.RequestTimeout. When etcd cannot be
// reached, has no leader or does not answer in time, methods return an
// error wrapping latch.ErrUnavailable (latch answers 503). A write
// that timed out may still have been applied: a redemption retried after a
// 503 may then answer ErrUsedToken although its password was set.
//
// # Caveats
//
//   - GetUser is a network read. latch checks each JWT's issue time against
//     the user's last password change through it, so every request carrying
//     a latch JWT reads etcd (linearizably), and such requests answer 503
//     while etcd is down.
//   - ListUsers and ActiveTokens read their whole prefix in one request.
//   - With Options.Username set, Open needs etcd reachable (the client
//     authenticates while connecting); without, Open succeeds while etcd is
//     down and calls fail with ErrUnavailable until it is back.
package etcdstore
