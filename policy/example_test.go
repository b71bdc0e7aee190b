package policy_test

import (
	"fmt"

	"github.com/latch-dev/latch/policy"
)

func ExampleEngine_Decide() {
	e, err := policy.Open(policy.Options{
		ModelPath: "../policies/model.conf",
		RulesPath: "../policies/policy.csv",
		TestsPath: "../policies/policy.tests",
	})
	if err != nil {
		fmt.Println(err) // names the file, the line and the reason
		return
	}
	d, err := e.Decide("bob@example.com", []string{"editor"}, "POST", "/api/admin/user-admin/reset-password")
	if err != nil {
		fmt.Println("deciding failed, deny:", err)
		return
	}
	if !d.Allow && d.Permission != "" {
		fmt.Printf("You need the %q permission to perform this action.\n", d.Permission)
	}
	d, _ = e.Decide("alice@example.com", []string{"admin"}, "POST", "/api/admin/user-admin/reset-password")
	fmt.Println("admin allowed:", d.Allow)
	// Output:
	// You need the "ADMIN" permission to perform this action.
	// admin allowed: true
}
