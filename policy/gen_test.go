package policy

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// genSpec shapes a synthetic policy, written like a real admin API's: many
// roles, each with a few dozen rules over resource routes with :id params
// and * tails, method regexes, some deny rules, role chains, users granted
// roles in the policy and users with rules of their own.
type genSpec struct {
	rules        int    // p rules, about
	rulesPerRole int    // p rules per role, about
	resources    int    // distinct resources under /api/admin/
	denyPercent  int    // of p rules
	perm         bool   // the model has the perm column
	pathStyle    string // "keyMatch2" (default), "regex" (anchored and not), "glob" (keyMatch)
}

// genPolicy is a synthetic policy and the names a request generator draws
// from.
type genPolicy struct {
	csv       string
	users     []string // users known to the policy (granted roles or owning rules) and strangers
	roles     []string // bare role names, plus some the policy does not know
	resources []string
	fewIDs    bool // genPath draws IDs from a small set
	p, g      int  // rule counts
}

var genMethods = []string{"^(GET|HEAD)$", "^POST$", "^(PUT|PATCH)$", "^DELETE$", ".*", "^(POST|PUT|PATCH|DELETE)$", "GET", "^GET$"}

// resourceName makes names where one is a prefix of another (res1, res10,
// res1x), which a prefix index must not confuse.
func resourceName(i int) string {
	switch i % 7 {
	case 3:
		return fmt.Sprintf("res%dx", i/7)
	case 5:
		return fmt.Sprintf("res%d.json", i/7) // a regexp dot in keyMatch2
	}
	return fmt.Sprintf("res%d", i)
}

func (s genSpec) pathPattern(rng *rand.Rand, res string) string {
	switch s.pathStyle {
	case "regex":
		switch rng.IntN(6) {
		case 0:
			return "^/api/admin/" + res + "$"
		case 1:
			return "^/api/admin/" + res + "/[0-9]+$"
		case 2:
			return "^/api/admin/" + res + "/.*"
		case 3:
			return "/api/admin/" + res // unanchored: anywhere in the path
		case 4:
			return "^(?i)/api/admin/" + res + "(/.*)?$"
		default:
			return "^/api/(admin|internal)/" + res + "/[^/]+/items$"
		}
	case "glob":
		switch rng.IntN(3) {
		case 0:
			return "/api/admin/" + res
		case 1:
			return "/api/admin/" + res + "/*"
		default:
			return "/api/admin/*"
		}
	}
	switch rng.IntN(10) {
	case 0, 1:
		return "/api/admin/" + res
	case 2, 3, 4:
		return "/api/admin/" + res + "/:id"
	case 5:
		return "/api/admin/" + res + "/:id/items/:item"
	case 6, 7:
		return "/api/admin/" + res + "/*"
	case 8:
		return "/api/admin/" + res + "/:id/*"
	default:
		if rng.IntN(10) == 0 {
			return "/api/admin/*"
		}
		return "/api/admin/" + res + "*" // keyMatch2 leaves x* as a regexp star
	}
}

func generatePolicy(seed uint64, s genSpec) genPolicy {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	if s.rulesPerRole == 0 {
		s.rulesPerRole = 75
	}
	nRoles := max(s.rules/s.rulesPerRole, 2)
	gp := genPolicy{}
	for i := 0; i < s.resources; i++ {
		gp.resources = append(gp.resources, resourceName(i))
	}
	for i := 0; i < nRoles; i++ {
		gp.roles = append(gp.roles, fmt.Sprintf("r%d", i))
	}
	var b strings.Builder
	rule := func(sub string) {
		res := gp.resources[rng.IntN(len(gp.resources))]
		eft := "allow"
		if rng.IntN(100) < s.denyPercent {
			eft = "deny"
		}
		fmt.Fprintf(&b, "p, %s, %s, %s, %s", sub, s.pathPattern(rng, res), genMethods[rng.IntN(len(genMethods))], eft)
		if s.perm {
			perm := ""
			if eft == "allow" && rng.IntN(10) < 6 {
				perm = fmt.Sprintf("PERM_%d", rng.IntN(20))
			}
			fmt.Fprintf(&b, ", %s", perm)
		}
		b.WriteByte('\n')
		gp.p++
	}
	link := func(member, role string) {
		fmt.Fprintf(&b, "g, %s, %s\n", member, role)
		gp.g++
	}
	for gp.p < s.rules {
		rule(RolePrefix + gp.roles[rng.IntN(nRoles)])
	}
	// Role chains: about a third of the roles inherit one or two others,
	// sometimes in a cycle.
	for i := range nRoles {
		if rng.IntN(3) == 0 {
			for range 1 + rng.IntN(2) {
				if j := rng.IntN(nRoles); j != i {
					link(RolePrefix+gp.roles[i], RolePrefix+gp.roles[j])
				}
			}
		}
	}
	// A chain longer than Casbin's role depth (10), with rules at the end.
	for i := range 14 {
		link(fmt.Sprintf("role:deep%d", i), fmt.Sprintf("role:deep%d", i+1))
	}
	for range 3 {
		rule("role:deep14")
		rule("role:deep9")
	}
	gp.roles = append(gp.roles, "deep0", "deep5", "nobody", "", "role:r1")
	// Users: granted roles in the policy, owning rules, both, or strangers;
	// one is named like a role.
	for i := range 12 {
		u := fmt.Sprintf("u%d@example.com", i)
		gp.users = append(gp.users, u)
		if i%3 == 0 {
			link(u, RolePrefix+gp.roles[rng.IntN(nRoles)])
		}
		if i%4 == 0 {
			for range 3 {
				rule(u)
			}
		}
	}
	gp.users = append(gp.users, "r1", "stranger@example.com")
	gp.csv = b.String()
	return gp
}

// genRequest draws a random request: a user, zero to three roles, a
// method and a path full of IDs, often near a rule's route, sometimes not.
func (gp genPolicy) genRequest(rng *rand.Rand) (string, []string, string, string) {
	user := gp.users[rng.IntN(len(gp.users))]
	var roles []string
	for range rng.IntN(4) {
		roles = append(roles, gp.roles[rng.IntN(len(gp.roles))])
	}
	methods := []string{"GET", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get", "XGETX"}
	return user, roles, methods[rng.IntN(len(methods))], gp.genPath(rng)
}

func (gp genPolicy) genPath(rng *rand.Rand) string {
	res := gp.resources[rng.IntN(len(gp.resources))]
	if rng.IntN(10) == 0 {
		res = resourceName(rng.IntN(len(gp.resources)*2 + 3)) // perhaps unknown
	}
	id := func() string {
		if gp.fewIDs { // paths repeat, so a slow reference can remember answers
			return []string{"1", "42", "007", "me", "9f86d081-884c", "18446744073709551615", "x.y", "%2F"}[rng.IntN(8)]
		}
		switch rng.IntN(4) {
		case 0:
			return fmt.Sprint(rng.IntN(1000))
		case 1:
			return fmt.Sprintf("%08x-%04x", rng.Uint32(), rng.IntN(1<<16))
		case 2:
			return "me"
		default:
			return fmt.Sprint(rng.Int64())
		}
	}
	switch rng.IntN(14) {
	case 0:
		return "/api/admin/" + res
	case 1, 2:
		return "/api/admin/" + res + "/" + id()
	case 3:
		return "/api/admin/" + res + "/" + id() + "/items/" + id()
	case 4:
		return "/api/admin/" + res + "/" + id() + "/deep/" + id() + "/x"
	case 5:
		return "/api/admin/" + res + "/"
	case 6:
		return []string{"/api/admin", "/api/admin/", "/", "", "/api", "/api/internal/" + res + "/1/items"}[rng.IntN(6)]
	case 7:
		return "/API/admin/" + res + "/" + id()
	case 8:
		return "/api/admin/" + res + "s/" + id()
	case 9:
		return "/x/api/admin/" + res + "/" + id()
	case 10:
		return "/api/admin/" + strings.TrimSuffix(res, ".json") + "xjson/" + id()
	default:
		return "/api/admin/" + res + "/" + id()
	}
}

// writePolicy writes model and rules to a temporary directory and returns
// Options naming them.
func writePolicy(tb testing.TB, modelText, csv string) Options {
	tb.Helper()
	return writePolicyIn(tb, tb.TempDir(), modelText, csv)
}

func writePolicyIn(tb testing.TB, dir, modelText, csv string) Options {
	tb.Helper()
	// Settle -1: these tests and benchmarks edit and Reload at once, and
	// measure or check the load itself; settle_test.go tests settling.
	o := Options{ModelPath: filepath.Join(dir, "model.conf"), RulesPath: filepath.Join(dir, "policy.csv"), PollInterval: -1, MaxRuleDrop: 1, Settle: -1}
	for path, content := range map[string]string{o.ModelPath: modelText, o.RulesPath: csv} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return o
}
