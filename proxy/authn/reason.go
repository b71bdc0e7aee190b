package authn

// Reason says why a credential was denied. The set is closed, so a Reason is
// safe to use as a metric label; the zero value means "not denied".
type Reason string

// The reasons Authenticate can deny a request for.
const (
	ReasonMissing      Reason = "missing"       // no Authorization header
	ReasonMultiple     Reason = "multiple"      // more than one Authorization header
	ReasonEmpty        Reason = "empty"         // header present but no token in it
	ReasonTooLong      Reason = "too_long"      // token longer than 8 KiB
	ReasonMalformed    Reason = "malformed"     // not a parseable credential
	ReasonBadSignature Reason = "bad_signature" // signature or algorithm not acceptable
	ReasonUnknownKey   Reason = "unknown_key"   // the kid names no known key
	ReasonExpired      Reason = "expired"       // exp is in the past (beyond leeway)
	ReasonNotYetValid  Reason = "not_yet_valid" // nbf is in the future (beyond leeway)
	ReasonBadIssuer    Reason = "bad_issuer"    // iss is not Options.Issuer
	ReasonBadAudience  Reason = "bad_audience"  // aud does not contain Options.Audience
	ReasonBadClaims    Reason = "bad_claims"    // exp missing, no subject, roles not strings...
	ReasonUnknownToken Reason = "unknown_token" // API token not in the tokens file
)

// Reasons lists every Reason Authenticate can return, in a stable order.
func Reasons() []Reason {
	return []Reason{
		ReasonMissing, ReasonMultiple, ReasonEmpty, ReasonTooLong, ReasonMalformed,
		ReasonBadSignature, ReasonUnknownKey, ReasonExpired, ReasonNotYetValid,
		ReasonBadIssuer, ReasonBadAudience, ReasonBadClaims, ReasonUnknownToken,
	}
}

var reasonMessages = map[Reason]string{
	ReasonMissing:      "No credential was provided in the Authorization header.",
	ReasonMultiple:     "More than one Authorization header was provided.",
	ReasonEmpty:        "The Authorization header is empty.",
	ReasonTooLong:      "The token is too long.",
	ReasonMalformed:    "The token is malformed.",
	ReasonBadSignature: "The token signature is invalid.",
	ReasonUnknownKey:   "The token was signed with an unknown key.",
	ReasonExpired:      "The token has expired.",
	ReasonNotYetValid:  "The token is not valid yet.",
	ReasonBadIssuer:    "The token was issued by an untrusted issuer.",
	ReasonBadAudience:  "The token is not meant for this service.",
	ReasonBadClaims:    "The token's claims are missing or invalid.",
	ReasonUnknownToken: "The API token is not recognised.",
}

// Message returns a sentence for the client saying what was wrong with the
// credential. It never includes the credential itself. The zero Reason and
// unknown values get a generic message.
func (r Reason) Message() string {
	if m, ok := reasonMessages[r]; ok {
		return m
	}
	return "The request could not be authenticated."
}
