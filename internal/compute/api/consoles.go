package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/compute/states"
)

// Consoles: POST /servers/{id}/remote-consoles (2.6+) and the older
// os-getSerialConsole / os-getVNCConsole actions answer a URL to Kumo's
// console proxy with a one-time token. The proxy (GET /compute/console/…,
// no Keystone token: the console token is the credential) upgrades to a
// websocket and joins it to the console's unix socket on the host:
//
//	/compute/console/serial      the serial port, bytes both ways
//	/compute/console/websockify  the VNC (RFB) stream, noVNC's "binary"
//	                             subprotocol
//
// The proxy reaches the console through the host's agent over the bus
// (ConsoleOpener: the agent joins its unix socket to a tunnel), so guests
// on `kumo agent compute` hosts are reachable like local ones; without an
// opener it dials the socket path the agent reported (same host only).
const (
	ruleRemoteConsoles = "os_compute_api:os-remote-consoles"
	consoleSerialPath  = "/console/serial"
	consoleVNCPath     = "/console/websockify"
	consoleTokenTTL    = 10 * time.Minute // Nova's [consoleauth] token_ttl
)

// ConsoleConnector is implemented by a TaskKicker that can locate
// interactive consoles on the hosts.
type ConsoleConnector interface {
	ConsoleConnect(ctx context.Context, host, uuid, typ string) (*rpc.Console, error)
}

// ConsoleOpener is implemented by a TaskKicker that can open a console
// on any host as a stream.
type ConsoleOpener interface {
	OpenConsole(ctx context.Context, host, uuid, typ string) (io.ReadWriteCloser, error)
}

// consoleTarget is what a token opens.
type consoleTarget struct {
	uuid, typ, path, host string
	expires               time.Time
}

// consoleTokens are one-time tokens, kept in memory: a restart
// invalidates them, as it closes the consoles.
type consoleTokens struct {
	mu sync.Mutex
	m  map[string]consoleTarget
}

func (t *consoleTokens) issue(c consoleTarget) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]consoleTarget{}
	}
	now := time.Now()
	for k, v := range t.m {
		if now.After(v.expires) {
			delete(t.m, k)
		}
	}
	c.expires = now.Add(consoleTokenTTL)
	t.m[tok] = c
	return tok
}

// take consumes a token of type typ.
func (t *consoleTokens) take(tok, typ string) (consoleTarget, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.m[tok]
	if !ok || c.typ != typ {
		return consoleTarget{}, false
	}
	delete(t.m, tok)
	return c, time.Now().Before(c.expires)
}

// consoleKinds maps Nova's protocol and type names to Kumo's console types.
var consoleKinds = map[string]map[string]string{
	"serial": {"serial": "serial"},
	"vnc":    {"novnc": "vnc"},
}

// consoleURL opens a console and returns its proxy URL.
func (a *API) consoleURL(r *http.Request, id, protocol, typ string) (string, error) {
	kind, ok := consoleKinds[protocol][typ]
	if !ok {
		return "", apiutil.BadRequest("Unavailable console type %s.", typ)
	}
	i, err := a.loadServer(r, id, ruleRemoteConsoles)
	if err != nil {
		return "", err
	}
	cc, ok := a.servers.(ConsoleConnector)
	if !ok || i.HostName() == "" || i.VMState != states.Active && i.VMState != states.Paused && i.VMState != states.Rescued {
		return "", apiutil.Conflict("Instance %s is not ready.", i.UUID).WithCode("conflictingRequest")
	}
	c, err := cc.ConsoleConnect(ctx(r), i.HostName(), i.UUID, kind)
	if err != nil {
		var be *bus.Error
		if errors.As(err, &be) && be.Code == rpc.CodeUnsupported {
			return "", apiutil.BadRequest("Unavailable console type %s.", typ)
		}
		return "", apiutil.Conflict("Instance %s is not ready.", i.UUID).WithCode("conflictingRequest")
	}
	tok := a.consoles.issue(consoleTarget{uuid: i.UUID, typ: kind, path: c.Path, host: i.HostName()})
	base := apiutil.PublicURL(r)
	switch {
	case strings.HasPrefix(base, "https://"):
		base = "wss://" + strings.TrimPrefix(base, "https://")
	case strings.HasPrefix(base, "http://"):
		base = "ws://" + strings.TrimPrefix(base, "http://")
	}
	path := consoleSerialPath
	if kind == "vnc" {
		path = consoleVNCPath
	}
	return base + Prefix + path + "?token=" + tok, nil
}

// remoteConsole serves POST /servers/{id}/remote-consoles (2.6+).
func (a *API) remoteConsole(r *http.Request) (*apiutil.Response, error) {
	if !atLeast(r, V2_6) {
		return nil, apiutil.NotFound("The resource could not be found.")
	}
	var body struct {
		RC *struct {
			Protocol string `json:"protocol"`
			Type     string `json:"type"`
		} `json:"remote_console"`
	}
	b, err := apiutil.ReadBody(r)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &body); err != nil || body.RC == nil {
		return nil, apiutil.BadRequest("Invalid input for field/attribute remote_console. 'remote_console' is a required property")
	}
	switch body.RC.Protocol {
	case "vnc", "spice", "rdp", "serial", "mks":
	default:
		return nil, apiutil.BadRequest("Invalid input for field/attribute protocol. Value: %s. '%s' is not one of ['vnc', 'spice', 'rdp', 'serial', 'mks']", body.RC.Protocol, body.RC.Protocol)
	}
	url, err := a.consoleURL(r, r.PathValue("server_id"), body.RC.Protocol, body.RC.Type)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"remote_console": map[string]any{
		"protocol": body.RC.Protocol, "type": body.RC.Type, "url": url}}), nil
}

// legacyConsole serves os-getSerialConsole and os-getVNCConsole.
func (a *API) legacyConsole(action, protocol string) actionHandler {
	return func(r *http.Request, id string, arg json.RawMessage) (*apiutil.Response, error) {
		m, err := args(arg, "type")
		if err != nil {
			return nil, err
		}
		typ, ok := str(m["type"])
		if !ok {
			return nil, apiutil.BadRequest("Invalid input for field/attribute %s. 'type' is a required property", action)
		}
		url, err := a.consoleURL(r, id, protocol, typ)
		if err != nil {
			return nil, err
		}
		return apiutil.JSON(200, map[string]any{"console": map[string]any{"type": typ, "url": url}}), nil
	}
}

// consoleProxy upgrades a request with a valid token to a websocket and
// relays it to the console's socket until either side closes.
func (a *API) consoleProxy(kind string) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		c, ok := a.consoles.take(r.URL.Query().Get("token"), kind)
		if !ok {
			return nil, apiutil.Unauthorized("The token is invalid or has expired.")
		}
		return &apiutil.Response{Takeover: func(w http.ResponseWriter, r *http.Request) {
			a.relay(w, r, c)
		}}, nil
	}
}

func (a *API) relay(w http.ResponseWriter, r *http.Request, c consoleTarget) {
	log := a.log.With("instance", c.uuid, "console", c.typ, "host", c.host)
	var conn io.ReadWriteCloser
	var err error
	if o, ok := a.servers.(ConsoleOpener); ok {
		conn, err = o.OpenConsole(r.Context(), c.host, c.uuid, c.typ)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(r.Context(), "unix", c.path)
	}
	if err != nil {
		log.Warn("console socket", "err", err)
		http.Error(w, "console unavailable", http.StatusBadGateway)
		return
	}
	defer conn.Close()
	// noVNC asks for the "binary" subprotocol; serial clients may ask for
	// none. Origins are not checked: the one-time token is the credential.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"binary"}, InsecureSkipVerify: true})
	if err != nil {
		log.Info("console websocket", "err", err)
		return
	}
	defer ws.CloseNow()
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	log.Info("console opened")
	done := make(chan struct{}, 2)
	go func() { // socket → websocket
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				if werr := ws.Write(ctx, websocket.MessageBinary, buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() { // websocket → socket
		defer func() { done <- struct{}{} }()
		for {
			_, rd, err := ws.Reader(ctx)
			if err != nil {
				return
			}
			if _, err := io.Copy(conn, rd); err != nil {
				return
			}
		}
	}()
	<-done
	cancel()
	conn.Close()
	ws.Close(websocket.StatusNormalClosure, "")
	log.Info("console closed")
}
