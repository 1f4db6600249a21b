package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Defaults for the zero values of the tunables in Config.
const (
	DefaultRequestTimeout = 30 * time.Second
	DefaultDrainTimeout   = 10 * time.Second
	DefaultOpenTimeout    = 30 * time.Second
	DefaultMaxConcurrent  = 64
)

var (
	// ErrNoResponders is returned by Request when nobody subscribes to the
	// subject. Test with errors.Is.
	ErrNoResponders = errors.New("bus: no responders")
	// ErrClosed is returned by operations on a closed Bus or Subscription.
	ErrClosed = errors.New("bus: closed")
)

// Config configures Open.
type Config struct {
	// URL is the external NATS URL(s), comma separated. Empty starts an
	// embedded server in this process.
	URL string
	// Listen is the embedded server's client listen address "host:port"
	// (port 0 picks a free port). Empty means in-process only: no TCP port
	// is opened and only this process can use the bus.
	Listen string
	// StoreDir, for the embedded server only, enables JetStream with its
	// storage in this directory. The bus itself does not need JetStream.
	StoreDir string
	// Name identifies this process on the bus (NATS connection name and
	// the envelope's sender), e.g. "kumo-api@host". Defaults to
	// "kumo@<hostname>".
	Name string

	// RequestTimeout bounds Request when the context has no deadline.
	RequestTimeout time.Duration
	// DrainTimeout bounds how long Close and Unsubscribe wait for queued
	// messages and running handlers before cancelling handler contexts.
	DrainTimeout time.Duration
	// MaxConcurrent is the number of handlers that may run at once per
	// subscription. 1 gives in-order processing.
	MaxConcurrent int
	// ClientOptions are extra nats.go options (credentials, TLS, ...),
	// applied after the bus's own.
	ClientOptions []nats.Option
}

// Bus is a connection to the Kumo message bus, optionally owning the
// embedded NATS server it is connected to. It is safe for concurrent use.
type Bus struct {
	cfg       Config
	log       *slog.Logger
	name      string
	nc        *nats.Conn
	ns        *server.Server // nil when connected to an external server
	clientURL string

	capsMu sync.RWMutex
	caps   map[string]Version

	mu     sync.Mutex
	closed bool
	subs   map[*Subscription]struct{}

	ctx    context.Context // parent of all handler contexts
	cancel context.CancelFunc

	closeOnce sync.Once
}

// Open starts an embedded NATS server if cfg.URL is empty, connects to the
// bus and waits until the connection is usable. When the context has no
// deadline, Open gives up after DefaultOpenTimeout. A nil logger discards.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Bus, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	name := cfg.Name
	if name == "" {
		host, _ := os.Hostname()
		name = "kumo@" + host
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultOpenTimeout)
		defer cancel()
	}

	b := &Bus{
		cfg:  cfg,
		log:  log.With("component", "bus"),
		name: name,
		caps: make(map[string]Version),
		subs: make(map[*Subscription]struct{}),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())

	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.log.Warn("bus disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			b.log.Info("bus reconnected", "url", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subj := ""
			if s != nil {
				subj = s.Subject
			}
			b.log.Error("bus async error", "subject", subj, "err", err)
		}),
	}

	if cfg.URL == "" {
		ns, err := startEmbedded(ctx, cfg, name, b.log)
		if err != nil {
			b.cancel()
			return nil, err
		}
		b.ns = ns
		if addr, ok := ns.Addr().(*net.TCPAddr); ok && addr != nil {
			b.clientURL = clientURL(cfg.Listen, addr.Port)
		}
		opts = append(opts, nats.InProcessServer(ns))
	}
	opts = append(opts, cfg.ClientOptions...)

	nc, err := connect(ctx, cfg.URL, opts, b.log)
	if err != nil {
		b.shutdownServer()
		b.cancel()
		return nil, err
	}
	b.nc = nc
	if b.ns != nil {
		b.log.Info("bus open (embedded server)", "listen", b.clientURL, "name", name)
	} else {
		b.log.Info("bus open", "url", nc.ConnectedUrlRedacted(), "name", name)
	}
	return b, nil
}

// connect dials until it succeeds or ctx is done, so agents may start
// before the NATS cluster is reachable.
func connect(ctx context.Context, urls string, opts []nats.Option, log *slog.Logger) (*nats.Conn, error) {
	backoff := 100 * time.Millisecond
	for {
		dl, _ := ctx.Deadline()
		o := append(opts[:len(opts):len(opts)], nats.Timeout(max(min(time.Until(dl), 5*time.Second), 10*time.Millisecond)))
		nc, err := nats.Connect(urls, o...)
		if err == nil {
			return nc, nil
		}
		log.Debug("bus connect failed, retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bus: connect: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

func startEmbedded(ctx context.Context, cfg Config, name string, log *slog.Logger) (*server.Server, error) {
	opts := &server.Options{
		ServerName: serverName(name),
		NoLog:      true,
		NoSigs:     true,
		DontListen: cfg.Listen == "",
	}
	if cfg.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("bus: listen address %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("bus: listen address %q: bad port", cfg.Listen)
		}
		if p == 0 {
			p = server.RANDOM_PORT // nats-server treats 0 as "default port"
		}
		if host == "" {
			host = "0.0.0.0"
		}
		opts.Host, opts.Port = host, p
	}
	if cfg.StoreDir != "" {
		opts.JetStream = true
		opts.StoreDir = cfg.StoreDir
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded server: %w", err)
	}
	ns.SetLoggerV2(&natsLogger{log: log.With("subcomponent", "nats-server")}, false, false, false)
	ns.Start()

	wait := DefaultOpenTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	if !ns.ReadyForConnections(wait) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("bus: embedded server not ready after %v (listen %q)", wait.Round(time.Millisecond), cfg.Listen)
	}
	return ns, nil
}

// serverName makes a NATS server name out of the connection name (server
// names may not contain spaces).
func serverName(name string) string {
	return strings.Join(strings.Fields(name), "_")
}

// clientURL builds the URL other processes use to reach the embedded server.
// An unspecified listen host is replaced by loopback; agents on other hosts
// must be given a routable address explicitly.
func clientURL(listen string, port int) string {
	host, _, _ := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	u := url.URL{Scheme: "nats", Host: net.JoinHostPort(host, strconv.Itoa(port))}
	return u.String()
}

// ClientURL returns the URL agents can connect to when the embedded server
// listens on TCP (Config.Listen set). It is empty for an in-process-only or
// external bus.
func (b *Bus) ClientURL() string { return b.clientURL }

// Name returns this bus client's name (the envelope sender).
func (b *Bus) Name() string { return b.name }

// Conn exposes the underlying NATS connection for uses the bus does not
// cover. Messages sent on it bypass envelopes and versioning.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// SetVersionCap caps the version sent for msgType: Publish and Request use
// min(their version, cap). Used during rolling upgrades until every
// receiver understands the newer version.
func (b *Bus) SetVersionCap(msgType string, v Version) {
	b.capsMu.Lock()
	b.caps[msgType] = v
	b.capsMu.Unlock()
}

// ClearVersionCap removes the cap for msgType.
func (b *Bus) ClearVersionCap(msgType string) {
	b.capsMu.Lock()
	delete(b.caps, msgType)
	b.capsMu.Unlock()
}

// VersionFor returns the version to send for msgType given that the sender
// speaks v: min(v, cap) if a cap is set, else v. Senders whose payload
// shape depends on the version call it before building the payload.
func (b *Bus) VersionFor(msgType string, v Version) Version {
	b.capsMu.RLock()
	c, ok := b.caps[msgType]
	b.capsMu.RUnlock()
	if ok && c.Less(v) {
		return c
	}
	return v
}

// Close drains all subscriptions (queued messages are handled and replied
// to, bounded by Config.DrainTimeout), closes the connection and shuts the
// embedded server down. It is safe to call more than once.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		subs := make([]*Subscription, 0, len(b.subs))
		for s := range b.subs {
			subs = append(subs, s)
		}
		b.mu.Unlock()

		var wg sync.WaitGroup
		for _, s := range subs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.stop()
			}()
		}
		wg.Wait()

		if b.nc.IsConnected() {
			if err := b.nc.FlushTimeout(time.Second); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				b.log.Debug("bus flush on close", "err", err)
			}
		}
		b.nc.Close()
		b.cancel()
		b.shutdownServer()
		b.log.Info("bus closed")
	})
	return nil
}

func (b *Bus) shutdownServer() {
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
	}
}

func (b *Bus) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// natsLogger adapts nats-server logging to slog.
type natsLogger struct{ log *slog.Logger }

func (l *natsLogger) Noticef(f string, a ...any) { l.log.Info(fmt.Sprintf(f, a...)) }
func (l *natsLogger) Warnf(f string, a ...any)   { l.log.Warn(fmt.Sprintf(f, a...)) }
func (l *natsLogger) Fatalf(f string, a ...any)  { l.log.Error(fmt.Sprintf(f, a...)) }
func (l *natsLogger) Errorf(f string, a ...any)  { l.log.Error(fmt.Sprintf(f, a...)) }
func (l *natsLogger) Debugf(f string, a ...any)  { l.log.Debug(fmt.Sprintf(f, a...)) }
func (l *natsLogger) Tracef(f string, a ...any)  { l.log.Debug(fmt.Sprintf(f, a...)) }
