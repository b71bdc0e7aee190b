// Package proxy is latch's HTTP front on the proxy port.
//
// For each request it makes one canonical path (Canonical), strips
// client-sent identity headers, authenticates the caller through an
// Authenticator, asks a Decider about paths under the protected prefixes,
// answers latch's own routes, and forwards everything else upstream with
// httputil.ReverseProxy. The order is written down on Handler.ServeHTTP.
//
// The package declares the small interfaces it consumes (Authenticator,
// Decider, Sessions) and never imports the policy or store packages;
// cmd/latch joins them.
//
// Every answer latch gives itself goes through answerError or writeJSON, in
// the API page's shape ({id, name, message, details}); causes are logged
// with the error id, never sent to the client.
//
// Logging is log/slog only. Each request writes one access line (the
// decision log on protected paths) through Options.Logger, or, when
// Options.AccessLog is set, through a small encoder of the line's fixed
// fields that writes the same bytes as slog's JSONHandler in one Write
// from a pooled buffer, with no allocation (BenchmarkAccessLine).
//
// Caveats: the path the policy decides on is the path forwarded, byte for
// byte; a path that backends could read in two ways (encoded '/', '\',
// ';', double encoding, ".." above the root) is refused with 400.
// Forwarded request and response bodies stream and are not limited.
package proxy
