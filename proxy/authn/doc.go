// Package authn turns the credential on an HTTP request into an Identity.
//
// It owns credential parsing and verification only: the proxy package wires
// it into the request path, decides what a denial looks like on the wire and
// asks the policy engine what the identity may do.
//
// # Where the credential comes from
//
// Exactly one place is looked at: the Authorization header. Its value is
// either "Bearer <token>" (the scheme is matched case-insensitively) or the
// bare token, the form Unleash clients send ("authorization: *:*.abc123").
// Two Authorization headers, an empty one, or "Bearer" with no token are
// denied; authn never guesses which of several credentials was meant.
// Tokens longer than 8 KiB are denied before any parsing.
//
// A token with exactly two dots whose first two segments are non-empty
// base64url (the third may be empty) is treated as a JWT; anything else is an
// API token, looked up in the API tokens file when one is configured. An API
// token must therefore never have the shape of a JWT.
//
// # JWTs
//
// JWTs are verified with github.com/golang-jwt/jwt/v5 against three sources
// of keys:
//
//   - latch's own signing key (Options.SigningKeyFile): an Ed25519 private
//     key in PKCS#8 PEM (EdDSA) or a file holding an HMAC secret of at least
//     32 bytes (HS256). Mint signs with it; Authenticate verifies with it.
//   - public key files (Options.PublicKeyFiles): RSA (RS256/384/512,
//     PS256/384/512, at least 2048 bits), ECDSA P-256/P-384/P-521
//     (ES256/ES384/ES512) or Ed25519 (EdDSA), as PKIX "PUBLIC KEY",
//     PKCS#1 "RSA PUBLIC KEY" or "CERTIFICATE" PEM blocks. A certificate's
//     validity period and chain are not checked; only its key is used.
//   - a JWKS document (Options.JWKSURL, RFC 7517), refreshed periodically
//     and early when a token names an unknown kid (at most once a minute).
//     Only signature keys of type RSA, EC and OKP/Ed25519 are used; symmetric
//     ("oct") keys are ignored, so a JWKS can never make HS256 acceptable.
//
// The accepted algorithms are derived from the configured keys, and every key
// is only ever offered for the algorithms its type allows, so "alg":"none"
// and HS256 tokens signed with an RSA public key's bytes are rejected. A token
// whose kid names a key is verified with that key only. A token without a kid
// is tried against every key that suits its alg. A token whose kid matches no
// key, even after an early JWKS refresh, is tried against the static keys
// (own key and public key files) that suit its alg, since issuers using a
// PEM key often name it with a kid of their own; if none verifies it, the
// denial is unknown_key. Own and PEM keys are named by their RFC 7638
// thumbprint (an HMAC-derived id for an HMAC secret).
//
// exp is required. iss and aud are checked when Options.Issuer and
// Options.Audience are set. An iat in the future beyond the leeway is
// refused (not_yet_valid). A token with a crit header is refused
// (malformed): RFC 7515 §4.1.11 requires it of a recipient that does not
// understand the extensions named, and authn understands none. The subject
// is taken from Options.SubjectClaim ("email" by default) and falls back to
// "sub"; when it is taken from a claim named "email", an email_verified
// claim of false (or "false") refuses the token (bad_claims), as does one
// that is neither true nor false. Roles come from Options.RolesClaim
// ("roles" by default), which must be an array of strings when present.
//
// # latch's own tokens
//
// Identity.Own says latch's own key verified the token. Mint signs a token
// not tied to any stored user (`latch token`, for operators). MintSession
// signs a login token: it also carries the user's session generation in the
// gen claim (a decimal string), and Authenticate reports it as Bound with
// that Generation. The caller (the proxy's session check) compares it with
// the user's stored generation, refuses the token once they differ or the
// user is gone, and takes the user's roles from the store. A gen claim is
// only read from Own tokens; in another issuer's token it means nothing.
//
// # Tokens for the upstream
//
// MintUpstream signs the short-lived token latch hands to the upstream in
// place of the credential it consumed (iss, sub, aud = [audience], iat,
// nbf, exp, jti, roles, email when sub is an address, latch_handoff), and
// JWKS returns the JSON Web Key Set the upstream verifies it with. Both
// need an Ed25519 signing key: a secret cannot be published, so with an
// HMAC secret they return ErrHMACSigningKey (CanPublish asks beforehand).
// A token is reused for the same subject, roles, audience and ttl until
// half its lifetime has passed (at most 10,000 are remembered), so calling
// MintUpstream on every request costs a map lookup. Authenticate refuses
// latch's own tokens carrying latch_handoff (bad_audience): a token handed
// to an upstream is never a credential for latch itself.
//
// Successful JWT verifications are cached by the SHA-256 of the whole token
// (at most 10,000 entries) until the token's exp; the cache is cleared when a
// JWKS key disappears, and Invalidate drops a subject's entries. Invalidate
// does not revoke tokens: the next request simply verifies the token again.
//
// # API tokens file
//
// Static API tokens live in a text file, one token per line:
//
//	# comment lines and blank lines are ignored
//	# sha256-hex                                                       subject   roles (optional, comma-separated)
//	9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 ci-deploy admin,deployer
//	60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752 grafana
//
// Fields are separated by spaces or tabs. The first field is the lowercase
// hex SHA-256 of the token, as printed by HashAPIToken; the token itself
// never appears in the file and only the hashes are held in memory. A
// malformed line or a repeated hash makes the whole file invalid: New
// returns an error naming the file and line, and Run keeps the previous
// table and logs the problem. Run re-reads the file every
// Options.APITokensReload and swaps the table in when its content changed.
//
// # Metrics
//
// Registered on Options.Registerer:
//
//	latch_authn_total{result, reason}                     counter; result is success, failure or error,
//	                                                      reason a Reason for failures and "none" otherwise
//	latch_jwks_last_refresh_success_timestamp_seconds     gauge
//	latch_jwks_refresh_failures_total                     counter
//	latch_jwks_keys                                       gauge
//
// The JWKS metrics exist (at zero) even when no JWKS is configured.
//
// # Denials and errors
//
// Authenticate returns a Reason for a denial and an error only when something
// broke (for example no JWKS has ever been fetched and the token needs it);
// the caller must fail closed on an error. Reason.Message is safe to show to
// clients and never repeats the token. Tokens are never logged.
package authn
