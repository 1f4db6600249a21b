package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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

// startServer builds kumo unless bin is given, and starts it on a fresh
// data directory and a free port.
func startServer(ctx context.Context, bin string, extra []string) (*server, error) {
	dir, err := os.MkdirTemp("", "kumo-bench-")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, logPath: filepath.Join(dir, "kumo.log"), exited: make(chan struct{})}
	if bin == "" {
		bin = filepath.Join(dir, "kumo")
		fmt.Fprintln(os.Stderr, "bench: building kumo")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/kumo-cloud/kumo/cmd/kumo")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("build kumo: %w", err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	s.url = "http://" + addr
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	s.password = hex.EncodeToString(b)

	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--data-dir", filepath.Join(dir, "data"), "--listen", addr}, extra...)
	if !slices.Contains(extra, "--compute-driver") {
		args = append(args, "--compute-driver", "fake") // benchmarks of the control plane
	}
	s.cmd = exec.Command(bin, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUMO_") {
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
	fmt.Fprintf(os.Stderr, "bench: kumo %s at %s (pid %d), log %s\n", strings.Join(args, " "), s.url, s.pid(), s.logPath)
	deadline := time.Now().Add(30 * time.Second)
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
			return nil, fmt.Errorf("kumo not healthy after 30s (log: %s)", s.logPath)
		}
	}
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

// cpuTime returns the user+system CPU time of process pid, from
// /proc/PID/stat (Linux); zero if unavailable.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; fields after it are
	// fixed: utime and stime are fields 14 and 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	fs := strings.Fields(s[i+1:])
	if len(fs) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(fs[11], 10, 64)
	st, _ := strconv.ParseInt(fs[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck
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
