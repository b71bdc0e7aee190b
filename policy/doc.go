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
// # Requests
//
// The proxy decides a request with DecideAll: the caller must be allowed
// every method the upstream might run (the request's own and any method
// override) on every reading of the path (proxy.Target.Readings: the
// canonical path, its ASCII lower-case form, its Unicode reading), because
// a case-insensitive or Unicode-folding upstream may act on any of them.
// DecideAll asks about each pair as Decide does, all with the same policy,
// and allows only if every pair is allowed; the first pair denied or
// failed decides, and its Verdict names that method and path (for the
// proxy's 403 message and explain's "denied reading"). It counts one
// decision, whatever the number of pairs. The readings themselves are the
// proxy's: proxy.Resolve is the one canonical path, so `latch policy
// explain` (cmd/latch) still imports proxy for Resolve, CheckMethod and
// ProtectedPrefixes, and for the 403 message, and then calls DecideAll as
// the proxy's Decider does. This package does not fold case itself: a
// path's case is kept, and the rules match the readings they are given.
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
// Every load (Open, Reload, Watch, Check) builds a complete new policy from
// the files and validates it before use: the model's shape, every policy
// line, a non-empty policy, every pattern a matcher function applies to a
// rule column (Casbin compiles them only while enforcing, so a bad regular
// expression would otherwise load and then fail every request), one trial
// evaluation of the matcher per rule, and the known answers. Reloads also
// refuse to lose more than Options.MaxRuleDrop of the rules at once.
//
// A reload costs what changed (reuse.go). The pattern and trial checks of a
// rule the policy in force already held under the same model file are not
// made again; compiled patterns are looked up by their text; unchanged g
// rules keep the role manager and the table of roles each subject reaches.
// Those parts are read-only once built, so the policy in force keeps
// deciding with them. The rest (parsing, the index) is rebuilt in a few
// allocations. A refused reload leaves the running policy in force, logs the file,
// line and reason, and returns a *FileError. An accepted one is swapped in
// with an atomic pointer, so a decision uses exactly one policy, and gets a
// new generation number (Engine.Generation), with an empty decision cache.
//
// Watch reacts to in-place writes, rename-over and the Kubernetes ConfigMap
// ..data symlink swap by watching the files' directories, and polls as a
// fallback; it reloads only when the content changed since the last attempt,
// and only once that content has settled (below). SIGHUP handling belongs to
// the caller: it calls Reload, which settles changed files too.
//
// # Writing the files
//
// Write a policy file atomically: write the new content to a temporary file
// in the same directory (same file system), fsync it, and rename it over
// the old name. A reader then sees the old file or the new one, never part
// of one. The kubelet does this for a ConfigMap volume (it writes a new
// timestamped directory and renames a new ..data symlink over the old one),
// and so do tools that save through a temporary file (sed -i, editors'
// atomic-save settings); update all three files in one such swap when they
// change together.
//
// A file written in place (truncate, then write, as `cat > policy.csv`, a
// shell loop, or a tool writing line by line does) is half-written for a
// while, and a half-written policy can be valid and allow what the rest of
// the file denies. So changed files are loaded only once settled
// (Options.Settle, 1s by default): Watch, on a change notification or a
// poll, reads the files and keeps the policy in force; when Settle has
// passed it reads them again and loads them only if they read the same, and
// otherwise waits Settle again from the new content, for as long as they
// keep changing (it keeps one digest, not the content). Reload (SIGHUP)
// does the same for files that differ from the policy in force, because a
// signal cannot tell an operator who has finished from a tool still
// writing; it returns after one Settle when the files were complete, and
// gives up with ErrUnsettled after maxReloadWaits (10) settle times of
// changes. Settle < 0 loads a change when first read, as latch did before
// Settle existed. Settling is a safety net, not a guarantee: a writer that
// pauses for longer than Settle mid-file still gets its partial file
// validated and, if valid, loaded. Only the atomic rename guarantees a
// complete file; with it, settling only delays a change by Settle.
//
// # Deciding fast, with Casbin's answers
//
// Casbin alone evaluates the matcher against every rule on every request,
// and its keyMatch2 and regexMatch compile a regular expression per call:
// 13–23 ms per decision at 10,000 rules (BenchmarkCasbinEnforce). Casbin still
// gives every answer, but three things make that cheap:
//
//   - Candidates. Because the matcher is "g(r.sub, p.sub) && rest" with
//     nothing in rest binding more loosely than && (|| and ?: are refused), a
//     rule can only match subject X if its p.sub is X or a role X reaches
//     through g rules. And when rest has a top-level conjunct
//     keyMatch2(r.obj, p.col) or regexMatch(r.obj, p.col), a rule can only
//     match a path that starts with the literal prefix of the rule's anchored
//     regular expression (regexp/syntax's parse, up to the first operator;
//     "" when unsure). At load, rules are grouped by prefix and subject
//     (index.go); a request's candidates are the rules under the prefixes of
//     its path for the subjects it reaches, in file order. Without such a
//     conjunct every rule has the prefix "" and only the subject narrows.
//   - Casbin on the candidates. A pool of Casbin enforcers with the same
//     model and the policy's role manager runs EnforceEx with the candidates
//     as the whole policy (subset.go). Leaving out rules that cannot match
//     changes neither the effect nor the rule it names, so the answer is the
//     one Casbin gives on the whole policy. No candidate means no rule
//     matches: a refusal naming no rule, as Casbin answers. Denials are
//     explained the same way, with the candidates of any subject.
//   - Compiled patterns. Those enforcers' matchers call stand-ins for
//     keyMatch2 and regexMatch that look the pattern up in a table compiled
//     once per policy from the rules' values (patterns.go), building the
//     expression exactly as Casbin does; anything else goes to Casbin's own
//     functions, errors and panics included. The usual keyMatch2 patterns
//     (literal segments, :name, a /* tail) are matched without a regexp,
//     by a walk that gives the regexp's answer (keypattern.go).
//
// On top, each policy has a decision cache (cache.go): Options.CacheEntries
// decisions (32768 by default) keyed by the user, the roles in the order
// given, the method and the path; requests over 1 KiB are not cached. It
// belongs to the policy's state, so a reload starts an empty one and an
// answer can never come from an older policy. It is sharded; each shard
// keeps a current and a previous map and drops the previous one when the
// current fills, so a flood of paths full of IDs only displaces the rest,
// and requests asked again move to the current map. Cache hits count in
// latch_authz_decisions_total like any decision; DecideAll looks each pair
// up in the cache and counts the request once.
//
// TestDifferential compares Decide, Explain and cached answers with plain
// Casbin enforcers on thousands of random requests, for several models and
// policies; -diff.seed reproduces a failure and -diff.scale runs more. The
// benchmarks (bench_test.go) measure a repeated request, a new one against
// Casbin on the same requests, and reloads with their memory.
//
// # Metrics
//
// Registered on Options.Registerer when set: latch_policy_reloads_total
// {result="success|failure"} (start-up not counted),
// latch_policy_last_reload_successful, latch_policy_last_reload_success_timestamp_seconds,
// latch_policy_rules, latch_policy_info{hash} (one series, the policy in
// force; the hash is the first 12 hex digits of sha256 of the model file
// followed by the policy file, as `cat model.conf policy.csv | sha256sum`
// prints) and latch_authz_decisions_total{decision="allow|deny|error"}: one
// per Decide or DecideAll call (a request, however many readings it has);
// Explain is not counted.
//
// # Caveats
//
// A request the cache has not seen costs tens of microseconds on a 10,000
// rule policy, more when a subject reaches many roles or a path prefix
// gathers many rules (a matcher without a keyMatch2 or regexMatch conjunct
// on r.obj, or many rules on patterns like "/api/*" or ":tenant/..."): the
// work is Casbin's on the candidates. Every policy keeps the compiled
// form of its distinct patterns: a literal walk for the usual keyMatch2
// pattern, a regexp otherwise; a 10,000-rule policy holds about 4 MB in all
// (BenchmarkReload's policy-heap-MB).
//
// The role manager is Casbin's, shared by the pooled enforcers; Casbin
// serialises its lookups with a mutex.
//
// An enforce error (which validation makes unlikely) may differ from the one
// Casbin would meet on the whole policy: Casbin stops at the first matching
// deny rule, while latch evaluates each subject's candidates. Either way the
// request is denied.
//
// A start-up, or a reload that replaces every rule, evaluates the matcher on
// every rule and compiles every pattern: about 30ms and 0.4s for 10,000 and
// 100,000 rules. A reload that changes a rule takes about 10ms and 0.12s,
// mostly parsing and indexing. The old policy decides meanwhile
// (BenchmarkReload).
//
// Watch sees a symlinked file whose target lives in another directory only
// through polling if the link is later pointed elsewhere.
//
// # Casbin versions
//
// This package is the only one that imports Casbin (`go list -deps` and
// `go list -f '{{.Imports}} {{.TestImports}}'` over ./... find
// github.com/casbin only here; bench/cmd/harness names Casbin functions in
// profile summaries, as strings). go.mod pins github.com/casbin/casbin/v2
// v2.135.0 and github.com/casbin/govaluate v1.3.0, and latch leans on
// details of that version: the matcher is evaluated by govaluate with
// stand-ins for keyMatch2 and regexMatch that must build Casbin's
// expressions exactly (patterns.go, keypattern.go); the subset enforcers set
// a model's p rules and its g assertion's RM directly (subset.go); the role
// manager is taken from an enforcer built on a model holding only the g
// rules (load.go). A new Casbin version is taken only when TestDifferential
// passes on it.
//
// Moving to github.com/casbin/casbin/v3 (v3.10.0 read and tried) changes:
//
//   - Imports only: every package path gains /v3; the APIs latch calls
//     (NewEnforcer(model), EnforceEx, AddFunction, SetRoleManager,
//     BuildRoleLinks, GetModel, model.NewModelFromString, Model.AddPolicy,
//     model.LoadFunctionMap, util.KeyMatch2Func, util.RegexMatchFunc,
//     constant.AllowAndDenyEffect, rbac.RoleManager) keep their signatures,
//     and util's matching functions, the effector and the default role
//     manager decide as in v2.135.0. govaluate stays v1.3.0. The policy
//     package builds and vets on v3 with no other change.
//   - Role cycles: v3's LoadPolicy runs detectors, and the default one
//     refuses a g graph with a cycle ("cycle detected: role:a -> role:b ->
//     role:a"). latch never calls LoadPolicy (load.go adds the g rules to
//     the model and calls BuildRoleLinks), so it keeps accepting such a
//     policy, as v2 does; but TestDifferential's reference, loaded with
//     NewEnforcer(model, policy), fails on the generated 200-rule policy,
//     which has cycles. The reference must load without detectors
//     (SetDetectors with an empty list, then SetAdapter and LoadPolicy), or
//     latch must refuse cycles too (Enforcer.RunDetections in roleEnforcer,
//     a behaviour change for policies that load today).
//   - Logging: NewEnforcer no longer takes the trailing enableLog and
//     log.Logger arguments; EnableLog, IsLogEnabled, Model.SetLogger and
//     RoleManager.SetLogger are gone (a new log.Logger interface is set
//     with Enforcer.SetLogger). latch uses none of them.
//   - New features latch does not use: a [constraint_definition] model
//     section checked when the model loads (parseModel refuses unknown
//     sections, so it cannot appear), AI policy helpers, transactions,
//     GetAllUsers. Model.Copy now copies an assertion's RM and CondRM;
//     latch copies no model. With EnableAcceptJsonRequest, a request value
//     that looks like JSON and does not parse is now an error; latch does
//     not enable it.
//
// Tried on a throwaway worktree: with the imports changed and the reference
// loading without detectors (25 lines added, 20 removed in 9 files, go.mod and go.sum
// included), `go test -race ./policy` passes on v3.10.0, TestDifferential
// included; with the imports changed only, TestDifferential/generated_200_rules
// fails on the cycle and every other test passes.
package policy
