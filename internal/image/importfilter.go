package image

// Import URI filtering: which URLs web-download imports and import tasks
// may fetch, as Glance's [import_filtering_opts], checked when the
// request arrives (400) and again on every redirect hop of the fetch.
//
// Glance's rules: for schemes, hosts and ports alike, a non-empty allowed
// list wins and the disallowed list is then ignored; an empty allowed
// list lets through everything the disallowed list does not name. The
// defaults allow http and https on ports 80 and 443, any host.
//
// Kumo is stricter than Glance in three ways:
//   - a URL without a port is checked with its scheme's port (80, 443);
//     Glance skips the port check then;
//   - hosts compare case-insensitively without a trailing dot, and IP
//     addresses in canonical form ("[::FFFF:7f00:1]" is "127.0.0.1");
//   - the fetch refuses to connect to an internal address (loopback,
//     link-local with the 169.254.169.254 metadata service, unspecified,
//     multicast) unless the URL names a host of the allowed list or
//     AllowInternalAddresses is set. The address checked is the one
//     connected to, after DNS resolution, so a name that resolves (or
//     later re-resolves) to 127.0.0.1 is refused too.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ImportFilter is Glance's [import_filtering_opts]. A nil list takes
// Glance's default; an empty non-nil list is empty (so AllowedPorts: []int{}
// allows every port DisallowedPorts does not name).
type ImportFilter struct {
	AllowedSchemes, DisallowedSchemes []string // default allowed: http, https
	AllowedHosts, DisallowedHosts     []string
	AllowedPorts, DisallowedPorts     []int // default allowed: 80, 443
	// AllowInternalAddresses lets imports connect to loopback, link-local
	// (metadata) and other internal addresses whatever the host's name.
	AllowInternalAddresses bool
}

// fetchSchemes are the schemes the fetcher speaks, whatever the filter
// allows.
var fetchSchemes = []string{"http", "https"}

// maxImportRedirects caps the redirects an import follows.
const maxImportRedirects = 5

func (f ImportFilter) withDefaults() ImportFilter {
	if f.AllowedSchemes == nil {
		f.AllowedSchemes = slices.Clone(fetchSchemes)
	}
	if f.AllowedPorts == nil {
		f.AllowedPorts = []int{80, 443}
	}
	lower := func(l []string) []string {
		out := make([]string, len(l))
		for i, s := range l {
			out[i] = strings.ToLower(s)
		}
		return out
	}
	canon := func(l []string) []string {
		out := make([]string, len(l))
		for i, h := range l {
			out[i] = canonHost(h)
		}
		return out
	}
	f.AllowedSchemes, f.DisallowedSchemes = lower(f.AllowedSchemes), lower(f.DisallowedSchemes)
	f.AllowedHosts, f.DisallowedHosts = canon(f.AllowedHosts), canon(f.DisallowedHosts)
	return f
}

func (f ImportFilter) validate() error {
	for _, p := range slices.Concat(f.AllowedPorts, f.DisallowedPorts) {
		if p < 1 || p > 65535 {
			return fmt.Errorf("import filter: port %d out of range", p)
		}
	}
	for _, h := range slices.Concat(f.AllowedHosts, f.DisallowedHosts) {
		if h == "" {
			return errors.New("import filter: empty host name")
		}
	}
	return nil
}

// canonHost is the form hosts are compared in: lower case, no brackets
// or trailing dot, IP addresses canonical with IPv4-mapped IPv6 unmapped.
func canonHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")), ".")
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().String()
	}
	return h
}

// listed applies one allowed/disallowed pair the way Glance does.
func listed[T comparable](v T, allowed, disallowed []T) bool {
	if len(allowed) > 0 {
		return slices.Contains(allowed, v)
	}
	return !slices.Contains(disallowed, v)
}

// check says why u may not be fetched, or nil.
func (f ImportFilter) check(u *url.URL) error {
	scheme := strings.ToLower(u.Scheme)
	if scheme == "" || !listed(scheme, f.AllowedSchemes, f.DisallowedSchemes) || !slices.Contains(fetchSchemes, scheme) {
		return fmt.Errorf("scheme %q is not allowed", u.Scheme)
	}
	host := canonHost(u.Hostname())
	if host == "" || !listed(host, f.AllowedHosts, f.DisallowedHosts) {
		return fmt.Errorf("host %q is not allowed", u.Hostname())
	}
	port, err := urlPort(u)
	if err != nil {
		return err
	}
	if !listed(port, f.AllowedPorts, f.DisallowedPorts) {
		return fmt.Errorf("port %d is not allowed", port)
	}
	if f.trusts(host) {
		return nil
	}
	// Names and literals known to be internal are refused now; the fetch
	// checks the addresses other names resolve to.
	if a, err := netip.ParseAddr(host); err == nil {
		if kind := internalKind(a); kind != "" {
			return fmt.Errorf("%s is a %s address", host, kind)
		}
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("%s is a loopback address", host)
	}
	return nil
}

// checkRaw parses and checks a URI from a request.
func (f ImportFilter) checkRaw(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	return f.check(u)
}

// urlPort is u's port, or its scheme's when it has none.
func urlPort(u *url.URL) (int, error) {
	p := u.Port()
	if p == "" {
		if strings.EqualFold(u.Scheme, "https") {
			return 443, nil
		}
		return 80, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not valid", p)
	}
	return n, nil
}

// trusts reports whether host (canonical) may have internal addresses.
func (f ImportFilter) trusts(host string) bool {
	return f.AllowInternalAddresses || slices.Contains(f.AllowedHosts, host)
}

// metadataAddrs are cloud metadata services outside the link-local range.
var metadataAddrs = []netip.Addr{netip.MustParseAddr("fd00:ec2::254")}

// internalKind names the kind of internal address a is, or "".
func internalKind(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "loopback"
	case a == netip.MustParseAddr("169.254.169.254") || slices.Contains(metadataAddrs, a):
		return "metadata service"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsMulticast():
		return "multicast"
	}
	return ""
}

// errInternalAddress refuses a connection to an internal address.
var errInternalAddress = errors.New("internal address")

// newImportClient is the HTTP client of imports: it checks every redirect
// hop against f and refuses connections to internal addresses of hosts f
// does not trust. It ignores the *_PROXY environment: the address checks
// need the client to connect to the image server itself.
func newImportClient(f ImportFilter) *http.Client {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		d := *dialer
		if !f.trusts(canonHost(host)) {
			d.Control = func(_, address string, _ syscall.RawConn) error {
				ap, err := netip.ParseAddrPort(address)
				if err != nil {
					return fmt.Errorf("%w: cannot parse %q", errInternalAddress, address)
				}
				if kind := internalKind(ap.Addr()); kind != "" {
					return fmt.Errorf("%w: %s resolves to %s, a %s address", errInternalAddress, host, ap.Addr(), kind)
				}
				return nil
			}
		}
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dial,
			TLSHandshakeTimeout:   30 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			// The image is stored as sent: no transparent gunzip.
			DisableCompression: true,
			MaxIdleConns:       4,
			IdleConnTimeout:    30 * time.Second,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxImportRedirects {
				return fmt.Errorf("stopped after %d redirects", maxImportRedirects)
			}
			if err := f.check(req.URL); err != nil {
				return fmt.Errorf("redirect to %s does not pass filtering: %w", req.URL.Redacted(), err)
			}
			return nil
		},
	}
}
