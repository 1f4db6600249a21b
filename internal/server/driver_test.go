package server

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestComputeDriverAuto(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if got := ComputeDriver("fake", log); got != "fake" || !strings.Contains(logs.String(), "servers are simulated") {
		t.Errorf("fake: %q, log %s", got, logs.String())
	}
	if got := ComputeDriver("qemu", log); got != "qemu" {
		t.Errorf("qemu: %q", got)
	}

	// Without QEMU on PATH, auto falls back to fake and says why.
	t.Setenv("PATH", t.TempDir())
	logs.Reset()
	if got := ComputeDriver("auto", log); got != "fake" || !strings.Contains(logs.String(), "qemu-system-x86_64 is not installed") {
		t.Errorf("auto without qemu: %q, log %s", got, logs.String())
	}

	// A QEMU that does not run is not used either.
	dir := t.TempDir()
	for _, bin := range []string{"qemu-system-x86_64", "qemu-img"} {
		if err := os.WriteFile(filepath.Join(dir, bin), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")
	logs.Reset()
	if got := ComputeDriver("auto", log); got != "fake" || !strings.Contains(logs.String(), "-version") {
		t.Errorf("auto with a broken qemu: %q, log %s", got, logs.String())
	}
}

func TestComputeDriverAutoFindsQEMU(t *testing.T) {
	for _, bin := range []string{"qemu-system-x86_64", "qemu-img"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed", bin)
		}
	}
	if got := ComputeDriver("auto", slog.New(slog.DiscardHandler)); got != "qemu" {
		t.Errorf("auto with QEMU installed: %q", got)
	}
}
