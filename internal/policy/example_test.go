package policy_test

import (
	"errors"
	"fmt"

	"github.com/kumo-cloud/kumo/internal/policy"
)

func Example() {
	defaults := []policy.Rule{
		{Name: "admin_required", Check: "role:admin"},
		{Name: "compute:servers:show", Check: "rule:admin_required or (role:reader and project_id:%(project_id)s)",
			Description: "Show a server."},
	}
	// Normally: overrides, err := policy.LoadOverrides("/etc/kumo/policy.yaml")
	e, err := policy.New(defaults, map[string]string{"admin_required": "role:admin and system_scope:all"})
	if err != nil {
		panic(err)
	}
	creds := policy.Credentials{UserID: "u1", ProjectID: "p1", Roles: []string{"reader"}}
	fmt.Println(e.Authorize("compute:servers:show", creds, map[string]string{"project_id": "p1"}))
	err = e.Authorize("compute:servers:show", creds, map[string]string{"project_id": "p2"})
	fmt.Println(errors.Is(err, policy.ErrForbidden), err)

	_, err = policy.New(defaults, map[string]string{"admin_required": "role:admin or"})
	fmt.Println(err)
	// Output:
	// <nil>
	// true Policy doesn't allow compute:servers:show to be performed.
	// policy: rule "admin_required" (override): at offset 13: expected a check, found end of check string
}
