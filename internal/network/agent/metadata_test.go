package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

type fakeSource struct {
	mu  sync.Mutex
	md  map[string]*rpc.InstanceMetadata
	pw  map[string]string
	get int
}

func (f *fakeSource) Instance(ctx context.Context, id string) (*rpc.InstanceMetadata, error) {
	if err := ctx.Err(); err != nil { // as a bus request would
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.get++
	md, ok := f.md[id]
	if !ok {
		return nil, ErrNotFound
	}
	return md, nil
}

func (f *fakeSource) SetPassword(_ context.Context, id, pw string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pw[id] = pw
	return nil
}

func (f *fakeSource) Password(_ context.Context, id string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pw[id], nil
}

func newTestMetadata() (*Metadata, *fakeSource) {
	a := &Agent{desired: map[string]*rpc.NetworkState{"net-1": sampleNetwork()}, log: slog.New(slog.DiscardHandler)}
	src := &fakeSource{pw: map[string]string{}, md: map[string]*rpc.InstanceMetadata{
		"vm-b": {UUID: "vm-b", Name: "web", Hostname: "web", ProjectID: "proj", AvailabilityZone: "nova", LaunchIndex: 0,
			InstanceName: "instance-0000000b", InstanceType: "m1.nano", ImageID: "a1b2c3d4-0000", ReservationID: "r-xyz",
			PublicKeys: map[string]string{"mykey": "ssh-ed25519 AAAA test@kumo"}, UserData: []byte("#cloud-config\n"),
			Meta: map[string]string{"role": "web"}, LocalDevices: map[string]string{"ephemeral0": "/dev/vdb", "ephemeral1": "/dev/vdc"}},
	}}
	return &Metadata{a: a, Source: src, cache: map[string]cached{}}, src
}

func get(t *testing.T, h http.Handler, from, path string) (int, string) {
	t.Helper()
	r := httptest.NewRequest("GET", "http://169.254.169.254"+path, nil)
	r.RemoteAddr = from + ":40000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

func TestMetadataOpenStack(t *testing.T) {
	m, src := newTestMetadata()
	h := m.Handler("net-1")
	code, body := get(t, h, "10.0.0.11", "/openstack/latest/meta_data.json")
	if code != 200 {
		t.Fatalf("meta_data.json: %d %s", code, body)
	}
	var md map[string]any
	if err := json.Unmarshal([]byte(body), &md); err != nil {
		t.Fatal(err)
	}
	if md["uuid"] != "vm-b" || md["hostname"] != "web" || md["project_id"] != "proj" ||
		md["public_keys"].(map[string]any)["mykey"] != "ssh-ed25519 AAAA test@kumo" || md["meta"].(map[string]any)["role"] != "web" {
		t.Fatalf("meta_data.json: %s", body)
	}
	keys := md["keys"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["type"] != "ssh" {
		t.Fatalf("keys: %v", keys)
	}
	if code, body := get(t, h, "10.0.0.11", "/openstack/latest/user_data"); code != 200 || body != "#cloud-config\n" {
		t.Fatalf("user_data: %d %q", code, body)
	}
	if code, body := get(t, h, "10.0.0.11", "/openstack/latest/vendor_data2.json"); code != 200 || body != "{}" {
		t.Fatalf("vendor_data2.json: %d %q", code, body)
	}
	if code, body := get(t, h, "10.0.0.11", "/openstack"); code != 200 || !strings.HasSuffix(body, "\nlatest") || !strings.HasPrefix(body, "2012-08-10\n") {
		t.Fatalf("versions: %d %q", code, body)
	}
	if code, body := get(t, h, "10.0.0.11", "/openstack/latest"); code != 200 || !strings.Contains(body, "network_data.json") || !strings.Contains(body, "user_data") {
		t.Fatalf("listing: %d %q", code, body)
	}
	code, body = get(t, h, "10.0.0.11", "/openstack/2018-08-27/network_data.json")
	var nd struct {
		Links    []map[string]any `json:"links"`
		Networks []map[string]any `json:"networks"`
		Services []map[string]any `json:"services"`
	}
	if err := json.Unmarshal([]byte(body), &nd); code != 200 || err != nil {
		t.Fatalf("network_data.json: %d %s", code, body)
	}
	if len(nd.Links) != 1 || nd.Links[0]["ethernet_mac_address"] != "fa:16:3e:00:00:0b" || nd.Links[0]["mtu"].(float64) != 1450 ||
		len(nd.Networks) != 1 || nd.Networks[0]["type"] != "ipv4_dhcp" || nd.Networks[0]["ip_address"] != "10.0.0.11" ||
		nd.Networks[0]["netmask"] != "255.255.255.0" || len(nd.Services) != 1 || nd.Services[0]["address"] != "9.9.9.9" {
		t.Fatalf("network_data.json: %s", body)
	}
	routes := nd.Networks[0]["routes"].([]any)
	if len(routes) != 2 || routes[0].(map[string]any)["gateway"] != "10.0.0.1" || routes[1].(map[string]any)["netmask"] != "255.255.0.0" {
		t.Fatalf("routes: %v", routes)
	}
	// Unknown source address, unknown path.
	if code, _ := get(t, h, "10.0.0.99", "/openstack/latest/meta_data.json"); code != 404 {
		t.Fatalf("unknown source: %d", code)
	}
	if code, _ := get(t, h, "10.0.0.11", "/openstack/latest/nope"); code != 404 {
		t.Fatalf("unknown file: %d", code)
	}
	// The same address on another network is another instance (or none).
	if code, _ := get(t, m.Handler("net-2"), "10.0.0.11", "/openstack/latest/meta_data.json"); code != 404 {
		t.Fatalf("other network: %d", code)
	}
	// Many requests, one lookup (cloud-init asks a lot).
	if src.get != 1 {
		t.Fatalf("instance looked up %d times", src.get)
	}
}

func TestMetadataPassword(t *testing.T) {
	m, src := newTestMetadata()
	h := m.Handler("net-1")
	r := httptest.NewRequest("POST", "http://169.254.169.254/openstack/latest/password", strings.NewReader("c2VjcmV0"))
	r.RemoteAddr = "10.0.0.11:1234"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || src.pw["vm-b"] != "c2VjcmV0" {
		t.Fatalf("post password: %d %v", w.Code, src.pw)
	}
	if code, body := get(t, h, "10.0.0.11", "/openstack/latest/password"); code != 200 || body != "c2VjcmV0" {
		t.Fatalf("get password: %d %q", code, body)
	}
	r = httptest.NewRequest("POST", "http://169.254.169.254/openstack/latest/meta_data.json", nil)
	r.RemoteAddr = "10.0.0.11:1234"
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 405 {
		t.Fatalf("post elsewhere: %d", w.Code)
	}
}

func TestMetadataEC2(t *testing.T) {
	m, _ := newTestMetadata()
	h := m.Handler("net-1")
	for path, want := range map[string]string{
		"/latest/meta-data/instance-id":                     "i-0000000b",
		"/latest/meta-data/local-ipv4":                      "10.0.0.11",
		"/latest/meta-data/hostname":                        "web",
		"/latest/meta-data/instance-type":                   "m1.nano",
		"/latest/meta-data/placement/availability-zone":     "nova",
		"/latest/meta-data/public-keys/":                    "0=mykey",
		"/latest/meta-data/public-keys/0/openssh-key":       "ssh-ed25519 AAAA test@kumo",
		"/2009-04-04/meta-data/ami-launch-index":            "0",
		"/latest/user-data":                                 "#cloud-config\n",
		"/latest/meta-data/block-device-mapping/root":       "/dev/vda",
		"/latest/meta-data/reservation-id":                  "r-xyz",
		"/latest":                                           "meta-data/\nuser-data",
		"/latest/meta-data/ami-id":                          "ami-a1b2c3d4",
		"/2009-04-04/meta-data/placement/":                  "availability-zone",
		"/latest/meta-data/public-keys/0/":                  "openssh-key",
		"/latest/meta-data/block-device-mapping/":           "ami\nephemeral0\nephemeral1\nroot",
		"/latest/meta-data/block-device-mapping/ephemeral1": "/dev/vdc",
		"/latest/meta-data/mac":                             "fa:16:3e:00:00:0b",
		"/latest/meta-data/security-groups":                 "",
		"/latest/meta-data/local-hostname":                  "web",
		"/latest/meta-data/instance-action":                 "none",
		"/latest/meta-data/public-ipv4":                     "",
		"/latest/meta-data/public-hostname":                 "web",
		"/latest/meta-data/ami-manifest-path":               "FIXME",
		"/latest/meta-data/placement/availability-zone/":    "nova",
		"/latest/meta-data/hostname/":                       "web",
		"/1.0/meta-data/instance-id":                        "i-0000000b",
		"/2007-01-19/meta-data/local-ipv4":                  "10.0.0.11",
		"/latest/meta-data/public-keys/0/openssh-key/":      "ssh-ed25519 AAAA test@kumo",
		"/latest/meta-data/block-device-mapping/ami":        "vda",
		"/2008-02-01/meta-data/public-keys/0/openssh-key":   "ssh-ed25519 AAAA test@kumo",
	} {
		code, body := get(t, h, "10.0.0.11", path)
		if code != 200 || body != want {
			t.Errorf("%s: %d %q, want %q", path, code, body, want)
		}
	}
	code, body := get(t, h, "10.0.0.11", "/latest/meta-data/")
	if code != 200 || !strings.Contains(body, "public-keys/\n") || !strings.Contains(body, "instance-id\n") {
		t.Fatalf("listing: %d %q", code, body)
	}
	if code, _ := get(t, h, "10.0.0.11", "/latest/meta-data/nothing"); code != 404 {
		t.Fatalf("missing key: %d", code)
	}
}

// TestMetadataClientHalfClosed: a client that shuts its sending side after
// the request (busybox nc, as the test guest does) cancels the request's
// context at once; the answer must still come.
func TestMetadataClientHalfClosed(t *testing.T) {
	m, _ := newTestMetadata()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest("GET", "http://169.254.169.254/openstack/latest/meta_data.json", nil).WithContext(ctx)
	r.RemoteAddr = "10.0.0.11:40000"
	w := httptest.NewRecorder()
	m.Handler("net-1").ServeHTTP(w, r)
	if b, _ := io.ReadAll(w.Result().Body); w.Code != 200 || !strings.Contains(string(b), `"uuid":"vm-b"`) {
		t.Fatalf("half-closed client: %d %s", w.Code, b)
	}
}
