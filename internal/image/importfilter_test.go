package image

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// trustServers lets imports fetch from local test servers: the host of
// each URL goes to the allowed hosts (which also lets it be loopback) and
// its port to the allowed ports.
func trustServers(cfg Config, urls ...string) Config {
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			panic(err)
		}
		port, _ := strconv.Atoi(u.Port())
		cfg.ImportFilter.AllowedHosts = append(cfg.ImportFilter.AllowedHosts, u.Hostname())
		cfg.ImportFilter.AllowedPorts = append(cfg.ImportFilter.AllowedPorts, port)
	}
	return cfg
}

func TestImportFilter(t *testing.T) {
	def := ImportFilter{}
	for _, c := range []struct {
		name   string
		filter ImportFilter
		uri    string
		want   string // "" passes, else a substring of the reason
	}{
		// Glance's defaults: http and https on 80 and 443, any host.
		{"http", def, "http://example.com/cirros.img", ""},
		{"https", def, "https://example.com/cirros.img", ""},
		{"scheme in capitals", def, "HTTPS://Example.COM/x", ""},
		{"ftp", def, "ftp://example.com/x", `scheme "ftp"`},
		{"file", def, "file:///etc/shadow", `scheme "file"`},
		{"no scheme", def, "//example.com/x", `scheme ""`},
		{"relative", def, "cirros.img", `scheme ""`},
		{"explicit 80", def, "http://example.com:80/x", ""},
		{"https on 80", def, "https://example.com:80/x", ""},
		{"http on 443", def, "http://example.com:443/x", ""},
		{"other port", def, "http://example.com:8080/x", "port 8080"},
		{"empty port is the default", def, "http://example.com:/x", ""},
		{"port 0", def, "http://example.com:0/x", `port "0" is not valid`},
		{"port too big", def, "http://example.com:65616/x", `port "65616" is not valid`},
		{"no host", def, "http:///x", `host ""`},
		{"private address (allowed, as in Glance)", def, "http://10.0.0.8/x", ""},
		{"public IPv6", def, "http://[2001:db8::1]/x", ""},
		{"IPv6 with port", def, "https://[2001:db8::1]:8443/x", "port 8443"},
		// Internal addresses are refused unless their host is trusted.
		{"loopback", def, "http://127.0.0.1/x", "127.0.0.1 is a loopback address"},
		{"loopback range", def, "http://127.8.9.10/x", "loopback"},
		{"IPv6 loopback", def, "http://[::1]/x", "::1 is a loopback address"},
		{"IPv4-mapped loopback", def, "http://[::ffff:127.0.0.1]/x", "127.0.0.1 is a loopback address"},
		{"metadata", def, "http://169.254.169.254/latest/meta-data/", "metadata service"},
		{"AWS IPv6 metadata", def, "http://[fd00:ec2::254]/latest/", "metadata service"},
		{"link-local", def, "http://169.254.10.1/x", "link-local"},
		{"IPv6 link-local with zone", def, "http://[fe80::1%25eth0]/x", "link-local"},
		{"unspecified", def, "http://0.0.0.0/x", "unspecified"},
		{"multicast", def, "http://224.0.0.1/x", "multicast"},
		{"localhost", def, "http://localhost/x", "localhost is a loopback address"},
		{"localhost, capitals and dot", def, "http://LocalHost./x", "loopback"},
		{"under .localhost", def, "http://kumo.localhost/x", "loopback"},
		{"internal allowed", ImportFilter{AllowInternalAddresses: true}, "http://169.254.169.254/x", ""},
		{"internal allowed, ports still apply", ImportFilter{AllowInternalAddresses: true}, "http://127.0.0.1:5000/x", "port 5000"},
		// The host is what follows the userinfo.
		{"userinfo", def, "https://user:secret@example.com/x", ""},
		{"userinfo naming a good host", def, "http://example.com@127.0.0.1/x", "loopback"},
		{"userinfo naming a bad host", ImportFilter{DisallowedHosts: []string{"evil.example"}}, "http://127.0.0.1@evil.example/x", `host "evil.example"`},
		{"userinfo naming an allowed host", ImportFilter{AllowedHosts: []string{"good.example"}}, "http://good.example:x@evil.example/x", `host "evil.example"`},
		// Schemes: an allowed list wins over the disallowed one.
		{"disallowed scheme", ImportFilter{AllowedSchemes: []string{}, DisallowedSchemes: []string{"HTTP"}}, "http://example.com/x", `scheme "http"`},
		{"not disallowed scheme", ImportFilter{AllowedSchemes: []string{}, DisallowedSchemes: []string{"http"}}, "https://example.com/x", ""},
		{"allowed beats disallowed", ImportFilter{AllowedSchemes: []string{"http"}, DisallowedSchemes: []string{"http"}}, "http://example.com/x", ""},
		{"not in allowed", ImportFilter{AllowedSchemes: []string{"http"}}, "https://example.com/x", `scheme "https"`},
		{"allowed scheme Kumo cannot fetch", ImportFilter{AllowedSchemes: []string{"ftp"}, AllowedPorts: []int{21}}, "ftp://example.com/x", `scheme "ftp"`},
		{"empty allowed schemes: http(s) only", ImportFilter{AllowedSchemes: []string{}}, "gopher://example.com/x", `scheme "gopher"`},
		// Hosts.
		{"allowed host", ImportFilter{AllowedHosts: []string{"mirror.example"}}, "https://mirror.example/x", ""},
		{"allowed host, other case and dot", ImportFilter{AllowedHosts: []string{"Mirror.Example."}}, "https://MIRROR.example./x", ""},
		{"host not allowed", ImportFilter{AllowedHosts: []string{"mirror.example"}}, "https://other.example/x", `host "other.example"`},
		{"subdomain is another host", ImportFilter{AllowedHosts: []string{"example.com"}}, "https://a.example.com/x", `host "a.example.com"`},
		{"allowed host beats disallowed", ImportFilter{AllowedHosts: []string{"mirror.example"}, DisallowedHosts: []string{"mirror.example"}}, "https://mirror.example/x", ""},
		{"disallowed host", ImportFilter{DisallowedHosts: []string{"evil.example"}}, "https://evil.example/x", `host "evil.example"`},
		{"disallowed host with trailing dot", ImportFilter{DisallowedHosts: []string{"evil.example"}}, "https://EVIL.example./x", "host"},
		{"disallowed IPv6, other spelling", ImportFilter{DisallowedHosts: []string{"[2001:DB8::1]"}}, "http://[2001:db8:0:0::1]/x", "host"},
		{"disallowed IPv4, mapped spelling", ImportFilter{DisallowedHosts: []string{"192.0.2.7"}}, "http://[::ffff:192.0.2.7]/x", "host"},
		{"allowed loopback is trusted", ImportFilter{AllowedHosts: []string{"127.0.0.1"}}, "http://127.0.0.1/x", ""},
		{"allowed IPv6 loopback", ImportFilter{AllowedHosts: []string{"::1"}}, "http://[::1]:443/x", ""},
		{"allowed localhost", ImportFilter{AllowedHosts: []string{"localhost"}}, "https://localhost/x", ""},
		{"one loopback allowed, another not", ImportFilter{AllowedHosts: []string{"127.0.0.1"}}, "http://[::1]/x", `host "::1"`},
		// Ports: an absent port is the scheme's (Glance skips the check).
		{"allowed port", ImportFilter{AllowedPorts: []int{8080}}, "http://example.com:8080/x", ""},
		{"default port not allowed", ImportFilter{AllowedPorts: []int{8080}}, "http://example.com/x", "port 80 "},
		{"https default port not allowed", ImportFilter{AllowedPorts: []int{80}}, "https://example.com/x", "port 443 "},
		{"disallowed port", ImportFilter{AllowedPorts: []int{}, DisallowedPorts: []int{8080}}, "http://example.com:8080/x", "port 8080"},
		{"other port when only some are disallowed", ImportFilter{AllowedPorts: []int{}, DisallowedPorts: []int{8080}}, "http://example.com:8081/x", ""},
		{"disallowed default port", ImportFilter{AllowedPorts: []int{}, DisallowedPorts: []int{80}}, "http://example.com/x", "port 80 "},
		{"allowed port beats disallowed", ImportFilter{AllowedPorts: []int{443}, DisallowedPorts: []int{443}}, "https://example.com/x", ""},
		{"disallowed ignored beside the default allowed", ImportFilter{DisallowedPorts: []int{443}}, "https://example.com/x", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.filter.withDefaults().checkRaw(c.uri)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("%s refused: %v", c.uri, err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("%s: got %v, want %q", c.uri, err, c.want)
			}
		})
	}
}

func TestImportFilterConfig(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown method", Config{ImportMethods: []string{"glance-direct", "copy-image"}}, `unknown import method "copy-image"`},
		{"port 0", Config{ImportFilter: ImportFilter{AllowedPorts: []int{0}}}, "port 0 out of range"},
		{"port too big", Config{ImportFilter: ImportFilter{DisallowedPorts: []int{70000}}}, "port 70000 out of range"},
		{"empty host", Config{ImportFilter: ImportFilter{DisallowedHosts: []string{""}}}, "empty host name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.withDefaults(t.TempDir()).validateImport()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	if err := (Config{}).withDefaults(t.TempDir()).validateImport(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

// TestImportClientAddresses checks the addresses the client connects to,
// after name resolution, whatever the URL filter said.
func TestImportClientAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "data") }))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	for _, c := range []struct {
		name   string
		filter ImportFilter
		uri    string
		want   string // "" connects
	}{
		{"loopback literal", ImportFilter{}, "http://127.0.0.1:" + port + "/", "127.0.0.1 resolves to 127.0.0.1, a loopback address"},
		{"name resolving to loopback", ImportFilter{}, "http://localhost:" + port + "/", "localhost resolves to"},
		{"trusted literal", ImportFilter{AllowedHosts: []string{"127.0.0.1"}}, "http://127.0.0.1:" + port + "/", ""},
		{"trusted name", ImportFilter{AllowedHosts: []string{"LOCALHOST"}}, "http://localhost:" + port + "/", ""},
		{"internal addresses allowed", ImportFilter{AllowInternalAddresses: true}, "http://127.0.0.1:" + port + "/", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := newImportClient(c.filter.withDefaults()).Get(c.uri)
			if err == nil {
				res.Body.Close()
			}
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !errors.Is(err, errInternalAddress) || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

// TestImportClientRedirects follows redirects through the filter: each
// hop must pass it, and there may be at most maxImportRedirects.
func TestImportClientRedirects(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "other") }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == "/data":
			fmt.Fprint(w, "data")
		case strings.HasPrefix(p, "/hops/"):
			n, _ := strconv.Atoi(strings.TrimPrefix(p, "/hops/"))
			next := "/data"
			if n > 1 {
				next = fmt.Sprintf("/hops/%d", n-1)
			}
			http.Redirect(w, r, next, http.StatusFound)
		case p == "/to":
			http.Redirect(w, r, r.URL.Query().Get("u"), http.StatusMovedPermanently)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	client := newImportClient(trustServers(Config{}, srv.URL).ImportFilter.withDefaults())
	to := func(u string) string { return srv.URL + "/to?u=" + url.QueryEscape(u) }
	for _, c := range []struct {
		name, uri, want string
	}{
		{"same server", srv.URL + "/hops/1", ""},
		{"five hops", srv.URL + "/hops/5", ""},
		{"six hops", srv.URL + "/hops/6", "stopped after 5 redirects"},
		{"port not allowed", to(other.URL + "/x"), "does not pass filtering: port"},
		{"metadata service", to("http://169.254.169.254/latest/meta-data/"), `does not pass filtering: host "169.254.169.254"`},
		{"file", to("file:///etc/shadow"), `does not pass filtering: scheme "file"`},
		{"host not allowed", to("https://example.com/x"), `host "example.com" is not allowed`},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := client.Get(c.uri)
			if err == nil {
				res.Body.Close()
			}
			switch {
			case c.want == "" && (err != nil || res.StatusCode != 200):
				t.Fatalf("got %v %v", res, err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}
