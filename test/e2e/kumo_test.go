package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
)

// kumoBin is the binary under test, built once by TestMain.
var kumoBin string

// Bounds that keep a stuck server from hanging the suite.
const (
	startTimeout = 30 * time.Second // process start to a healthy /healthz
	stopTimeout  = 20 * time.Second // SIGTERM to exit
	testTimeout  = 90 * time.Second // one test's API calls
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	flag.Parse()
	if bin := os.Getenv("KUMO_E2E_BIN"); bin != "" {
		kumoBin = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "kumo-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	kumoBin = filepath.Join(dir, "kumo")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", kumoBin, "github.com/kumo-cloud/kumo/cmd/kumo")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build kumo:", err)
		return 1
	}
	return m.Run()
}

// requireOrSkip skips the test because something it needs is missing,
// except under CI=true, where the dependency is mandatory and the test
// fails instead.
func requireOrSkip(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (mandatory under CI=true)", msg)
	}
	t.Skip(msg)
}

// testContext bounds the API calls of one test.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// Options tune one kumo process.
type Options struct {
	DataDir  string   // default: a fresh temporary directory
	Password string   // admin password; default: random
	Args     []string // extra `kumo serve` flags
	// Netns runs kumo in this named network namespace (ip netns exec);
	// Listen is then its API address and Transport reaches it.
	Netns     string
	Listen    string
	Transport http.RoundTripper
}

// Kumo is one running `kumo serve`.
type Kumo struct {
	t        testing.TB
	DataDir  string
	Addr     string // 127.0.0.1:PORT
	URL      string // http://127.0.0.1:PORT
	Password string // the admin password
	LogPath  string

	cmd       *exec.Cmd
	transport http.RoundTripper // nil: the default
	exited    chan struct{}
	waitErr   error
	stopped   bool
}

// Start runs `kumo serve` on a free port and waits until it is healthy.
// The process is stopped with SIGTERM when the test ends, and must then
// exit cleanly; its log is dumped if the test failed.
func Start(t testing.TB, o Options) *Kumo {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.Password == "" {
		o.Password = randomString("pw-", 12)
	}
	// Another process may take the free port between our probe and kumo's
	// listen; retry on a new port then.
	for attempt := 1; ; attempt++ {
		k, err := start(t, o)
		if err == nil {
			return k
		}
		if errors.Is(err, errPortTaken) && attempt < 3 {
			t.Logf("port taken, retrying: %v", err)
			continue
		}
		t.Fatalf("start kumo: %v", err)
	}
}

var errPortTaken = errors.New("address already in use")

func start(t testing.TB, o Options) (*Kumo, error) {
	addr := o.Listen
	if addr == "" {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addr = fmt.Sprintf("127.0.0.1:%d", port)
	}
	k := &Kumo{
		t: t, DataDir: o.DataDir, Password: o.Password,
		Addr:      addr,
		LogPath:   filepath.Join(t.TempDir(), "kumo.log"),
		transport: o.Transport,
		exited:    make(chan struct{}),
	}
	k.URL = "http://" + k.Addr
	logf, err := os.Create(k.LogPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--data-dir", k.DataDir, "--listen", k.Addr}, o.Args...)
	// Servers are simulated unless a test asks for a driver: the default
	// (auto) would boot real VMs wherever QEMU is installed.
	if !slices.Contains(o.Args, "--compute-driver") {
		args = append(args, "--compute-driver", "fake")
	}
	if o.Netns != "" {
		k.cmd = exec.Command("ip", append([]string{"netns", "exec", o.Netns, kumoBin}, args...)...)
	} else {
		k.cmd = exec.Command(kumoBin, args...)
	}
	k.cmd.Env = append(envWithout("KUMO_"), "KUMO_ADMIN_PASSWORD="+k.Password)
	k.cmd.Stdout, k.cmd.Stderr = logf, logf
	k.cmd.SysProcAttr = sysProcAttr()
	if err := k.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() {
		k.waitErr = k.cmd.Wait()
		logf.Close()
		close(k.exited)
	}()
	if err := k.waitHealthy(); err != nil {
		k.stopped = true
		_ = k.cmd.Process.Kill()
		<-k.exited
		if strings.Contains(k.log(), "address already in use") {
			return nil, fmt.Errorf("%w: %s", errPortTaken, k.Addr)
		}
		k.dumpLog()
		return nil, err
	}
	t.Cleanup(func() {
		k.Stop()
		if t.Failed() {
			k.dumpLog()
		}
	})
	t.Logf("kumo serving at %s, data dir %s, log %s", k.URL, k.DataDir, k.LogPath)
	return k, nil
}

// waitHealthy polls /healthz until it answers 200, the process exits or
// the start timeout passes. The log must say that this process listens on
// the address, so that another server on a reused port can't pass for it.
func (k *Kumo) waitHealthy() error {
	c := &http.Client{Timeout: time.Second, Transport: k.transport}
	deadline := time.Now().Add(startTimeout)
	serving := `msg="kumo is serving" listen=` + k.Addr + " "
	for {
		resp, err := c.Get(k.URL + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(k.log(), serving) {
				return nil
			}
		}
		select {
		case <-k.exited:
			return fmt.Errorf("kumo exited before becoming healthy: %v", k.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kumo not healthy at %s after %v (last error: %v)", k.URL, startTimeout, err)
		}
	}
}

// Stop sends SIGTERM and checks that the process exits cleanly in time,
// without panics or errors in its log. It is idempotent.
func (k *Kumo) Stop() {
	k.t.Helper()
	if k.stopped {
		return
	}
	k.stopped = true
	select {
	case <-k.exited:
		k.t.Errorf("kumo exited before it was stopped: %v", k.waitErr)
		return
	default:
	}
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(stopTimeout):
		_ = k.cmd.Process.Kill()
		<-k.exited
		k.t.Errorf("kumo did not exit within %v of SIGTERM", stopTimeout)
		return
	}
	if k.waitErr != nil {
		k.t.Errorf("kumo exit after SIGTERM: %v", k.waitErr)
	}
	if bad := badLogLines.FindAllString(k.log(), 5); len(bad) > 0 {
		k.t.Errorf("kumo log has errors:\n%s", strings.Join(bad, "\n"))
	}
}

var badLogLines = regexp.MustCompile(`(?m)^.*(level=ERROR|panic:|DATA RACE).*$`)

func (k *Kumo) log() string {
	b, _ := os.ReadFile(k.LogPath)
	return string(b)
}

// dumpLog writes the end of the process log to the test log.
func (k *Kumo) dumpLog() {
	const max = 64 << 10
	s := k.log()
	if len(s) > max {
		s = "…" + s[len(s)-max:]
	}
	k.t.Logf("kumo log (%s):\n%s", k.LogPath, s)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// envWithout returns the environment minus variables with the given
// prefixes, so that the caller's settings don't leak into the processes
// under test.
func envWithout(prefixes ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		keep := true
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

func randomString(prefix string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)[:n]
}

// ---- clients ----

// AdminAuth returns password credentials of the bootstrap admin, scoped to
// the admin project.
func (k *Kumo) AdminAuth() gophercloud.AuthOptions {
	return gophercloud.AuthOptions{
		IdentityEndpoint: k.URL + "/v3",
		Username:         "admin", Password: k.Password, DomainName: "Default",
		Scope: &gophercloud.AuthScope{ProjectName: "admin", DomainName: "Default"},
	}
}

// Authenticate returns a gophercloud provider authenticated with o.
func (k *Kumo) Authenticate(ctx context.Context, o gophercloud.AuthOptions) (*gophercloud.ProviderClient, error) {
	if o.IdentityEndpoint == "" {
		o.IdentityEndpoint = k.URL + "/v3"
	}
	p, err := openstack.NewClient(o.IdentityEndpoint)
	if err != nil {
		return nil, err
	}
	p.HTTPClient = http.Client{Timeout: 15 * time.Second, Transport: k.transport}
	if err := openstack.Authenticate(ctx, p, o); err != nil {
		return nil, err
	}
	return p, nil
}

// Identity returns the identity v3 client of p, found through the catalog.
func identityClient(t *testing.T, p *gophercloud.ProviderClient) *gophercloud.ServiceClient {
	t.Helper()
	c, err := openstack.NewIdentityV3(p, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatalf("identity client: %v", err)
	}
	return c
}

// adminIdentity authenticates as the admin and returns the identity client.
func (k *Kumo) adminIdentity(t *testing.T, ctx context.Context) *gophercloud.ServiceClient {
	t.Helper()
	p, err := k.Authenticate(ctx, k.AdminAuth())
	if err != nil {
		t.Fatalf("authenticate as admin: %v", err)
	}
	return identityClient(t, p)
}

// tokenClient returns an identity client that sends token as is and never
// re-authenticates, to see how the API treats that token.
func (k *Kumo) tokenClient(t *testing.T, token string) *gophercloud.ServiceClient {
	t.Helper()
	p, err := openstack.NewClient(k.URL + "/v3")
	if err != nil {
		t.Fatal(err)
	}
	p.HTTPClient = http.Client{Timeout: 15 * time.Second}
	p.SetToken(token)
	return &gophercloud.ServiceClient{ProviderClient: p, Endpoint: k.URL + "/v3/", Type: "identity"}
}

// rawResponse is an HTTP answer read whole.
type rawResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends one raw HTTP request; token, when set, goes in X-Auth-Token.
func (k *Kumo) do(t *testing.T, ctx context.Context, method, path, token, body string) rawResponse {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, k.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// keystoneError is Keystone's error body.
type keystoneError struct {
	Error struct {
		Code    int    `json:"code"`
		Title   string `json:"title"`
		Message string `json:"message"`
	} `json:"error"`
}

// checkKeystoneError checks that err is an HTTP error with the given
// status whose body is Keystone's {"error": {code, title, message}} and,
// when message is not empty, that message is the one Keystone sends (a
// message ending in "…" is a prefix).
func checkKeystoneError(t *testing.T, what string, err error, status int, message string) {
	t.Helper()
	var ue gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &ue) {
		t.Errorf("%s: got error %v, want HTTP %d", what, err, status)
		return
	}
	checkKeystoneBody(t, what, ue.Actual, ue.ResponseHeader, ue.Body, status, message)
}

func checkKeystoneBody(t *testing.T, what string, gotStatus int, h http.Header, body []byte, status int, message string) {
	t.Helper()
	if gotStatus != status {
		t.Errorf("%s: status %d, want %d; body %s", what, gotStatus, status, body)
		return
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	var e keystoneError
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&e); err != nil {
		t.Errorf("%s: error body %q is not JSON: %v", what, body, err)
		return
	}
	if e.Error.Code != status || e.Error.Title != http.StatusText(status) || e.Error.Message == "" {
		t.Errorf("%s: error body %s, want {\"error\": {\"code\": %d, \"title\": %q, \"message\": …}}", what, body, status, http.StatusText(status))
	}
	if prefix, ok := strings.CutSuffix(message, "…"); ok {
		if !strings.HasPrefix(e.Error.Message, prefix) {
			t.Errorf("%s: error message %q, want Keystone's %q", what, e.Error.Message, message)
		}
	} else if message != "" && e.Error.Message != message {
		t.Errorf("%s: error message %q, want Keystone's %q", what, e.Error.Message, message)
	}
	if h.Get("X-Openstack-Request-Id") == "" {
		t.Errorf("%s: no X-Openstack-Request-Id header", what)
	}
}

// serviceClient is the client newClient (openstack.NewComputeV2 and the
// like) makes for p from the catalog's RegionOne endpoints; the test
// fails when the catalog has no such service.
func serviceClient(t testing.TB, newClient func(*gophercloud.ProviderClient, gophercloud.EndpointOpts) (*gophercloud.ServiceClient, error),
	p *gophercloud.ProviderClient) *gophercloud.ServiceClient {
	t.Helper()
	c, err := newClient(p, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
