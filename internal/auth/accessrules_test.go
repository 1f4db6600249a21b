package auth

import "testing"

func TestAppCredPermits(t *testing.T) {
	ac := &AppCred{AccessRules: []AccessRule{
		{Service: "compute", Path: "/v2.1/servers", Method: "GET"},
		{Service: "compute", Path: "/v2.1/servers/*/action", Method: "POST"},
		{Service: "image", Path: "/v2/images/**", Method: "GET"},
	}}
	cases := []struct {
		types        []string
		path, method string
		want         bool
	}{
		{[]string{"compute"}, "/v2.1/servers", "GET", true},
		{[]string{"compute"}, "/v2.1/servers/", "GET", true},
		{[]string{"compute"}, "/v2.1/servers", "POST", false},
		{[]string{"compute"}, "/v2.1/servers/detail", "GET", false},
		{[]string{"compute"}, "/v2.1/servers/abc/action", "POST", true},
		{[]string{"compute"}, "/v2.1/servers//action", "POST", false},
		{[]string{"compute"}, "/v2.1/servers/a/b/action", "POST", false},
		{[]string{"image"}, "/v2/images", "GET", true},
		{[]string{"image"}, "/v2/images/x/file", "GET", true},
		{[]string{"image"}, "/v2/imagesx", "GET", false},
		{[]string{"network"}, "/v2.1/servers", "GET", false},
		{[]string{"block-storage", "compute"}, "/v2.1/servers", "GET", true},
	}
	for _, c := range cases {
		if got := ac.Permits(c.types, c.path, c.method); got != c.want {
			t.Errorf("Permits(%v, %s, %s) = %v, want %v", c.types, c.path, c.method, got, c.want)
		}
	}
	// No rules (nil) permit everything; an empty list permits nothing.
	var none *AppCred
	if !none.Permits(nil, "/", "GET") || !(&AppCred{}).Permits(nil, "/x", "GET") {
		t.Error("credential without rules refused a request")
	}
	if (&AppCred{AccessRules: []AccessRule{}}).Permits([]string{"compute"}, "/", "GET") {
		t.Error("empty rule list permitted a request")
	}
}
