package qemu

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

func TestWaitExit(t *testing.T) {
	cmd := exec.Command("sleep", "1000.5")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep:", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	// Start returns once the exec has closed the child's descriptors, a
	// moment before the kernel sets up the new command line: wait for it.
	for deadline := time.Now().Add(5 * time.Second); !alive(pid, "1000.5"); {
		if time.Now().After(deadline) {
			t.Fatal("sleep never showed its command line")
		}
		time.Sleep(time.Millisecond)
	}

	// A cancelled wait returns the context's error while the process runs.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := waitExit(ctx, pid, "1000.5"); err == nil {
		t.Fatal("waitExit returned nil for a running process")
	}

	done := make(chan error, 1)
	go func() { done <- waitExit(t.Context(), pid, "1000.5") }()
	select {
	case err := <-done:
		t.Fatalf("waitExit returned before the exit: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	_ = cmd.Process.Kill() // stays a zombie until Wait: counts as ended
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waitExit missed the exit")
	}
	// A pid that does not run the expected program is no process to wait for.
	if err := waitExit(t.Context(), pid, "other"); err != nil {
		t.Fatal(err)
	}
}
