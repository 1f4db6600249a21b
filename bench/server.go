package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is a `kumo serve` started for the benchmark.
type server struct {
	dir      string
	dataDir  string
	dsn      string // PostgreSQL DSN, or "" for SQLite in dataDir
	natsURL  string // embedded NATS for remote agents, when opened
	url      string
	password string
	logPath  string
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// exitErr reports whether the server has exited, with the end of its log.
func (s *server) exitErr() error {
	select {
	case <-s.exited:
	default:
		return nil
	}
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return fmt.Errorf("kumo exited during the benchmark: %v; log %s ends:\n%s", s.waitErr, s.logPath, b)
}

// serverConfig is how the benchmark starts its own kumo serve.
type serverConfig struct {
	bin        string   // kumo binary; empty builds ./cmd/kumo
	extra      []string // more kumo serve flags
	dsn        string   // --db-dsn (empty: SQLite in the data dir)
	natsListen bool     // open the embedded NATS on a free port (remote agents)
	hosts      int      // in-process compute hosts (0: the default, 1)
}

// startServer builds kumo unless cfg.bin is given, and starts it on a
// fresh data directory and a free port.
func startServer(ctx context.Context, cfg serverConfig, progress io.Writer) (*server, error) {
	dir, err := os.MkdirTemp("", "kumo-bench-")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "kumo.log"), exited: make(chan struct{})}
	bin := cfg.bin
	if bin == "" {
		bin = filepath.Join(dir, "kumo")
		fmt.Fprintln(progress, "bench: building kumo")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/kumo-cloud/kumo/cmd/kumo")
		build.Stdout, build.Stderr = progress, progress
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("build kumo: %w", err)
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s.url = "http://" + addr
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	s.password = hex.EncodeToString(b)

	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return nil, err
	}
	args := []string{"serve", "--data-dir", s.dataDir, "--listen", addr}
	if cfg.hosts > 1 {
		yaml := fmt.Sprintf("compute:\n  hosts: %d\n", cfg.hosts)
		if err := os.WriteFile(filepath.Join(s.dataDir, "kumo.yaml"), []byte(yaml), 0o600); err != nil {
			return nil, err
		}
	}
	if cfg.dsn != "" {
		args = append(args, "--db-dsn", cfg.dsn)
		s.dsn = cfg.dsn
	}
	if cfg.natsListen {
		na, err := freeAddr()
		if err != nil {
			return nil, err
		}
		args = append(args, "--nats-listen", na)
		s.natsURL = "nats://" + na
	}
	args = append(args, cfg.extra...)
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(cfg.extra, "--compute-driver") {
		args = append(args, "--compute-driver", "fake") // benchmarks of the control plane
	}
	s.cmd = exec.Command(bin, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUMO_") && !strings.HasPrefix(kv, "OS_") {
			env = append(env, kv)
		}
	}
	s.cmd.Env = append(env, "KUMO_ADMIN_PASSWORD="+s.password)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = sysProcAttr()
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		logf.Close()
		close(s.exited)
	}()
	fmt.Fprintf(progress, "bench: kumo %s at %s (pid %d), log %s\n", strings.Join(args, " "), s.url, s.pid(), s.logPath)
	deadline := time.Now().Add(60 * time.Second)
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("kumo exited: %v (log: %s)", s.waitErr, s.logPath)
		case <-ctx.Done():
			_ = s.stop(true)
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.stop(true)
			return nil, fmt.Errorf("kumo not healthy after 60s (log: %s)", s.logPath)
		}
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// stop sends SIGTERM, waits for a clean exit, and removes the data
// directory unless keep.
func (s *server) stop(keep bool) error {
	if err := s.exitErr(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: server data and log kept in %s\n", s.dir)
		return err
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-s.exited:
		err = s.waitErr
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		err = errors.New("kumo did not exit within 20s of SIGTERM")
	}
	if err != nil || keep {
		fmt.Fprintf(os.Stderr, "bench: server data and log kept in %s\n", s.dir)
		return err
	}
	return os.RemoveAll(s.dir)
}

// procStats are one process's CPU time and memory, from /proc (Linux).
type procStats struct {
	CPU     time.Duration // user+system since start
	RSS     int64         // bytes resident now
	PeakRSS int64         // bytes resident at most (VmHWM)
}

// readProc returns the stats of process pid (0: this process); zero
// values where /proc is unavailable.
func readProc(pid int) procStats {
	p := "self"
	if pid != 0 {
		p = strconv.Itoa(pid)
	}
	var st procStats
	if b, err := os.ReadFile("/proc/" + p + "/stat"); err == nil {
		// The command name (field 2) may hold spaces; fields after it
		// are fixed: utime and stime are fields 14 and 15.
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			if fs := strings.Fields(s[i+1:]); len(fs) >= 13 {
				ut, _ := strconv.ParseInt(fs[11], 10, 64)
				stime, _ := strconv.ParseInt(fs[12], 10, 64)
				const clkTck = 100 // USER_HZ on Linux
				st.CPU = time.Duration(ut+stime) * time.Second / clkTck
			}
		}
	}
	if b, err := os.ReadFile("/proc/" + p + "/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			switch k {
			case "VmRSS":
				st.RSS = kb << 10
			case "VmHWM":
				st.PeakRSS = kb << 10
			}
		}
	}
	return st
}

// resetPeak restarts the peak RSS measurement of pid (Linux
// clear_refs); false if not possible.
func resetPeak(pid int) bool {
	p := "self"
	if pid != 0 {
		p = strconv.Itoa(pid)
	}
	return os.WriteFile("/proc/"+p+"/clear_refs", []byte("5"), 0) == nil
}

// machineBusy returns the CPU time all processes on the machine have
// used (every state but idle and iowait), from /proc/stat (Linux); zero
// if unavailable.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fs := strings.Fields(line)
	if len(fs) < 5 || fs[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, f := range fs[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already counted in user
			break
		}
		v, _ := strconv.ParseInt(f, 10, 64)
		busy += v
	}
	const clkTck = 100
	return time.Duration(busy) * time.Second / clkTck
}
