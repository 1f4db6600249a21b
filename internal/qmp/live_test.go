package qmp

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeSource is the state of a source QEMU during a live migration, as
// far as MigrateLive can see it: NBD client nodes, mirror jobs that become
// ready after a few polls, and a migration that pauses before the
// switch-over when asked to.
type fakeSource struct {
	mu      sync.Mutex
	log     []string // commands, polls folded (query-* once per change)
	nodes   map[string]bool
	jobs    map[string]*BlockJob
	polls   int
	pbs     bool // pause-before-switchover
	mig     string
	failJob string // this job vanishes instead of getting ready
	failMig bool   // the migration fails
	// dirty: the memory copy never converges while the guest runs.
	dirty, stopped bool
	lastPoll       string
}

func (s *fakeSource) handle(cmd string, args json.RawMessage) (any, *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var a map[string]any
	_ = json.Unmarshal(args, &a)
	if strings.HasPrefix(cmd, "query-") {
		if s.lastPoll != cmd {
			s.log = append(s.log, cmd)
		}
		s.lastPoll = cmd
	} else {
		s.lastPoll = ""
		entry := cmd
		switch cmd {
		case "blockdev-add":
			entry += " " + a["node-name"].(string) + " export=" + a["export"].(string)
		case "blockdev-mirror":
			entry += " " + a["device"].(string) + " sync=" + a["sync"].(string)
		case "block-job-cancel":
			entry += " " + a["device"].(string)
			if f, _ := a["force"].(bool); f {
				entry += " force"
			}
		case "migrate":
			entry += " " + a["uri"].(string)
		case "migrate-set-capabilities":
			c := a["capabilities"].([]any)[0].(map[string]any)
			entry += " " + c["capability"].(string) + "=" + map[bool]string{true: "on", false: "off"}[c["state"].(bool)]
		case "blockdev-del":
			entry += " " + a["node-name"].(string)
		}
		s.log = append(s.log, entry)
	}
	switch cmd {
	case "blockdev-add":
		s.nodes[a["node-name"].(string)] = true
	case "blockdev-del":
		delete(s.nodes, a["node-name"].(string))
	case "blockdev-mirror":
		if !s.nodes[a["target"].(string)] {
			return nil, &Error{Class: "GenericError", Desc: "no target"}
		}
		id := a["job-id"].(string)
		s.jobs[id] = &BlockJob{Device: id, Type: "mirror", Len: 1 << 20, Status: "running"}
	case "query-block-jobs":
		s.polls++
		out := []BlockJob{}
		for id, j := range s.jobs {
			if id == s.failJob && s.polls > 1 {
				delete(s.jobs, id)
				continue
			}
			if s.polls > 2 && id != s.failJob {
				j.Ready, j.Status, j.Offset = true, "ready", j.Len
			}
			out = append(out, *j)
		}
		return out, nil
	case "block-job-cancel":
		delete(s.jobs, a["device"].(string))
	case "migrate-set-capabilities":
		c := a["capabilities"].([]any)[0].(map[string]any)
		s.pbs = c["state"].(bool)
	case "migrate":
		s.mig = "active"
	case "query-migrate":
		ram := &RAMStats{Total: 128 << 20, Transferred: 64 << 20, Remaining: 64 << 20}
		switch {
		case s.mig == "active" && s.failMig:
			s.mig = "failed"
			return MigrationInfo{Status: "failed", ErrorDesc: "connection refused"}, nil
		case s.mig == "active" && s.dirty && !s.stopped:
		case s.mig == "active" && s.pbs:
			s.mig = "pre-switchover"
		case s.mig == "active":
			s.mig = "completed"
		}
		return MigrationInfo{Status: s.mig, RAM: ram}, nil
	case "migrate-continue":
		if s.mig != "pre-switchover" {
			return nil, &Error{Class: "GenericError", Desc: "not paused"}
		}
		if len(s.jobs) > 0 {
			return nil, &Error{Class: "GenericError", Desc: "mirrors still running"}
		}
		s.mig = "completed"
	case "migrate_cancel":
		if s.mig != "completed" {
			s.mig = "cancelled"
		}
	case "stop":
		s.stopped = true
	case "migrate-set-parameters":
	default:
		return nil, &Error{Class: "CommandNotFound", Desc: cmd}
	}
	return nil, nil
}

func TestMigrateLiveSequence(t *testing.T) {
	disks := []MirrorDisk{{Node: "root", Sync: "top"}, {Node: "eph0", Sync: "full"}}
	setup := []string{
		"blockdev-add migrate-nbd-root export=root", "blockdev-mirror root sync=top",
		"blockdev-add migrate-nbd-eph0 export=eph0", "blockdev-mirror eph0 sync=full",
		"query-block-jobs",
	}
	cleanup := []string{"blockdev-del migrate-nbd-root", "blockdev-del migrate-nbd-eph0", "migrate-set-capabilities pause-before-switchover=off"}
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		failJob string
		failMig bool
		want    []string
		wantErr string
	}{
		{name: "mirror, pause before switch-over, end mirrors, complete",
			want: cat(setup, []string{
				"migrate-set-parameters", "migrate-set-capabilities pause-before-switchover=on",
				"migrate tcp:192.0.2.7:49152", "query-migrate",
				"block-job-cancel migrate-root", "block-job-cancel migrate-eph0", "query-block-jobs",
				"migrate-continue", "query-migrate",
			}, cleanup)},
		{name: "a mirror job fails: nothing migrates, other mirrors cancelled", failJob: "migrate-eph0",
			wantErr: "mirror job migrate-eph0 ended",
			want: cat(setup, []string{
				"migrate_cancel", "block-job-cancel migrate-root force", "block-job-cancel migrate-eph0 force", "query-block-jobs",
			}, cleanup)},
		{name: "the migration fails: mirrors cancelled", failMig: true, wantErr: "connection refused",
			want: cat(setup, []string{
				"migrate-set-parameters", "migrate-set-capabilities pause-before-switchover=on",
				"migrate tcp:192.0.2.7:49152", "query-migrate",
				"migrate_cancel", "block-job-cancel migrate-root force", "block-job-cancel migrate-eph0 force", "query-block-jobs",
			}, cleanup)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &fakeSource{nodes: map[string]bool{}, jobs: map[string]*BlockJob{}, failJob: tc.failJob, failMig: tc.failMig}
			_, conn := startFake(t, src.handle)
			ctx := ctxT(t)
			c, err := New(ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var last Progress
			err = c.MigrateLive(ctx, LiveMigration{Host: "192.0.2.7", NBDPort: 10809, MigrationPort: 49152, Disks: disks,
				Poll: time.Millisecond, Progress: func(p Progress) { last = p }})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("migrate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("migrate: %v, want an error with %q", err, tc.wantErr)
			}
			src.mu.Lock()
			defer src.mu.Unlock()
			if d := cmp.Diff(tc.want, src.log); d != "" {
				t.Errorf("commands (-want +got):\n%s", d)
			}
			if len(src.nodes) != 0 || len(src.jobs) != 0 || src.pbs {
				t.Errorf("left on the source: nodes %v jobs %v pause-before-switchover %v", src.nodes, src.jobs, src.pbs)
			}
			if tc.wantErr == "" && (last.DiskTotal != 2<<20 || last.DiskRemaining != 0 || last.MemoryTotal != 128<<20) {
				t.Errorf("last progress %+v", last)
			}
		})
	}
}

// Without disks to mirror (a volume-backed guest) only memory moves and
// the switch-over does not pause.
func TestMigrateLiveMemoryOnly(t *testing.T) {
	src := &fakeSource{nodes: map[string]bool{}, jobs: map[string]*BlockJob{}}
	_, conn := startFake(t, src.handle)
	ctx := ctxT(t)
	c, err := New(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.MigrateLive(ctx, LiveMigration{Host: "2001:db8::1", MigrationPort: 5, Poll: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	want := []string{"query-block-jobs", "migrate-set-parameters", "migrate tcp:[2001:db8::1]:5", "query-migrate",
		"migrate-set-capabilities pause-before-switchover=off"}
	if d := cmp.Diff(want, src.log); d != "" {
		t.Errorf("commands (-want +got):\n%s", d)
	}
}

func TestIncoming(t *testing.T) {
	var (
		mu   sync.Mutex
		log  []string
		stat = StatusInMigrate
	)
	_, conn := startFake(t, func(cmd string, args json.RawMessage) (any, *Error) {
		mu.Lock()
		defer mu.Unlock()
		if cmd != "query-status" {
			log = append(log, cmd+" "+string(args))
		}
		switch cmd {
		case "query-status":
			s := stat
			stat = StatusPaused // loaded after the first poll
			return Status{Status: s}, nil
		case "query-migrate":
			return MigrationInfo{Status: "completed"}, nil
		}
		return nil, nil
	})
	ctx := ctxT(t)
	c, err := New(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.PrepareIncoming(ctx, "192.0.2.7", 10809, 49152, []string{"root"}); err != nil {
		t.Fatal(err)
	}
	if err := c.FinishIncoming(ctx, false, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`nbd-server-start {"addr":{"data":{"host":"192.0.2.7","port":"10809"},"type":"inet"}}`,
		`block-export-add {"id":"root","name":"root","node-name":"root","type":"nbd","writable":true}`,
		`migrate-incoming {"uri":"tcp:192.0.2.7:49152"}`,
		"query-migrate ", "nbd-server-stop ", "cont ",
	}
	mu.Lock()
	defer mu.Unlock()
	if d := cmp.Diff(want, log); d != "" {
		t.Errorf("commands (-want +got):\n%s", d)
	}
}

// A guest dirtying memory faster than it is copied: force-complete pauses
// it once, and the migration then ends.
func TestMigrateLiveForceComplete(t *testing.T) {
	src := &fakeSource{nodes: map[string]bool{}, jobs: map[string]*BlockJob{}, dirty: true}
	f, conn := startFake(t, src.handle)
	go func() { // the fake blocks once its log of commands is full
		for range f.got {
		}
	}()
	ctx := ctxT(t)
	c, err := New(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	force := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c.MigrateLive(ctx, LiveMigration{Host: "192.0.2.7", NBDPort: 1, MigrationPort: 2,
			Disks: []MirrorDisk{{Node: "root", Sync: "top"}}, Poll: time.Millisecond, ForceComplete: force})
	}()
	select {
	case err := <-done:
		t.Fatalf("a migration that cannot converge ended: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(force)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	stops := 0
	for _, c := range src.log {
		if c == "stop" {
			stops++
		}
	}
	if stops != 1 || src.mig != "completed" {
		t.Errorf("stops %d, migration %s; commands %v", stops, src.mig, src.log)
	}
}
