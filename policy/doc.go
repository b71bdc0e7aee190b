// Package policy owns latch's authorisation decisions: it loads the Casbin
// model and policy files that ops edit (policies/model.conf and
// policies/policy.csv), validates them, decides requests with them, and
// replaces them safely while latch runs.
//
// # Subjects
//
// A caller is a user plus roles. Decide asks Casbin once per subject: the
// user as given (alice@example.com) and each role as "role:<name>"; callers
// pass bare role names. Because roles always carry the prefix, a user named
// "admin" is never the role "role:admin", and Decide refuses (with an error,
// denying) a user that starts with "role:". A request is allowed when at
// least one subject is allowed and none is denied: a deny rule matching any
// subject of the caller wins. Role inheritance ("g, role:editor,
// role:viewer") is Casbin's own, up to its default depth of 10.
//
// # Files
//
// The model must have r = sub, obj, act; p = sub, obj, act, eft[, perm];
// g = _, _; the allow-and-no-deny effect; and a matcher that starts with
// "g(r.sub, p.sub) &&". The optional perm column of an allow rule names the
// permission a denied caller lacks (Decision.Permission): the first allow
// rule in file order that covers the route and method, for any subject,
// supplies it. The rest of the matcher, evaluated without the subject, finds
// that rule. The files' own comments explain the formats for ops.
//
// The optional tests file holds known answers, one per line:
//
//	allow, alice@example.com role:admin, POST, /api/admin/user-admin/reset-password
//	deny, bob@example.com role:editor, POST, /api/admin/user-admin/reset-password, ADMIN
//
// (user, then roles as role:<name>; on deny lines an optional permission
// name the denial must report). A policy failing any of them is refused.
//
// # Loading and reloading
//
// Every load (Open, Reload, Watch, Check) builds a complete new Casbin
// enforcer from the files and validates it before use: the model's shape,
// every policy line, a non-empty policy, every pattern a matcher function
// applies to a rule column (Casbin compiles them only while enforcing, so a
// bad regular expression would otherwise load and then fail every request),
// one trial evaluation of the matcher per rule, and the known answers.
// Reloads also refuse to lose more than Options.MaxRuleDrop of the rules at
// once. A refused reload leaves the running policy in force, logs the file,
// line and reason, and returns a *FileError. An accepted one is swapped in
// with an atomic pointer, so a decision uses exactly one policy, and gets a
// new generation number (Engine.Generation) that a decision cache can key on.
//
// Watch reacts to in-place writes, rename-over and the Kubernetes ConfigMap
// ..data symlink swap by watching the files' directories, and polls as a
// fallback; it reloads only when the content changed since the last attempt.
// SIGHUP handling belongs to the caller: it calls Reload.
//
// # Metrics
//
// Registered on Options.Registerer when set: latch_policy_reloads_total
// {result="success|failure"} (start-up not counted),
// latch_policy_last_reload_successful, latch_policy_last_reload_success_timestamp_seconds,
// latch_policy_rules, latch_policy_info{hash} (one series, the policy in
// force; the hash is the first 12 hex digits of sha256 of the model file
// followed by the policy file, as `cat model.conf policy.csv | sha256sum`
// prints) and latch_authz_decisions_total{decision="allow|deny|error"}.
//
// # Caveats
//
// Casbin evaluates the matcher against every rule on every request, so a
// decision costs time proportional to the rule count times the caller's
// subjects, and Casbin's keyMatch2 and regexMatch compile a regular
// expression on every call (about 15µs each): an editor's decision on the
// shipped policy costs about 0.3ms (BenchmarkDecide). Keep the role check
// first in the matcher so rules of other subjects are skipped cheaply.
// Decisions are not cached yet; Engine.Generation is there to key a cache.
//
// Watch sees a symlinked file whose target lives in another directory only
// through polling if the link is later pointed elsewhere.
package policy
