package qmp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Live migration without shared storage, as libvirt drives QEMU for it:
//
//	destination (started with -incoming defer, vCPUs stopped)
//	  nbd-server-start, block-export-add (writable) per disk   PrepareIncoming
//	  migrate-incoming tcp:ADDR:PORT
//	source
//	  blockdev-add (NBD client) + blockdev-mirror per disk     MigrateLive
//	  wait until every mirror job is ready (in sync)
//	  migrate-set-capabilities pause-before-switchover, migrate
//	  query-migrate … pre-switchover: the source is paused and no guest
//	  write can happen any more: block-job-cancel each mirror (a cancel
//	  of a ready mirror finishes the copy and leaves the target as is)
//	  migrate-continue, query-migrate … completed
//	destination
//	  wait for the incoming state, nbd-server-stop, cont       FinishIncoming
//
// Any failure on the source cancels the migration and the mirrors
// (forcibly) and leaves the source guest in its state; the destination is
// simply killed.

// BlockJob is one entry of query-block-jobs.
type BlockJob struct {
	Device string `json:"device"` // the job id
	Type   string `json:"type"`
	Len    int64  `json:"len"`
	Offset int64  `json:"offset"`
	Ready  bool   `json:"ready"`
	Status string `json:"status"` // created, running, ready, concluded, ...
}

// QueryBlockJobs lists the running block jobs.
func (c *Client) QueryBlockJobs(ctx context.Context) ([]BlockJob, error) {
	var jobs []BlockJob
	err := c.Execute(ctx, "query-block-jobs", nil, &jobs)
	return jobs, err
}

// RAMStats is the ram part of query-migrate.
type RAMStats struct {
	Transferred int64 `json:"transferred"`
	Remaining   int64 `json:"remaining"`
	Total       int64 `json:"total"`
}

// Progress is how far a live migration is, in bytes: memory from
// query-migrate, disks from the mirror jobs.
type Progress struct {
	MemoryTotal, MemoryProcessed, MemoryRemaining int64
	DiskTotal, DiskProcessed, DiskRemaining       int64
}

// MirrorDisk is one disk a live migration mirrors to the destination.
type MirrorDisk struct {
	// Node is the disk's node name on both sides; the destination exports
	// it under the same name.
	Node string
	// Sync is "top" (an overlay whose backing image the destination has)
	// or "full".
	Sync string
}

// LiveMigration is what the source needs to reach the destination.
type LiveMigration struct {
	// Host is the destination's migration address; NBDPort its NBD
	// server, MigrationPort its incoming migration listener.
	Host          string
	NBDPort       int
	MigrationPort int
	Disks         []MirrorDisk
	// Bandwidth caps the memory copy in bytes/s (0: 8 GiB/s, QEMU's 32
	// MiB/s default is far too low for a LAN).
	Bandwidth int64
	// Poll is the query interval (default 100ms).
	Poll time.Duration
	// Progress, when set, is called after each poll.
	Progress func(Progress)
	// ForceComplete, once closed, pauses the guest so that the memory copy
	// converges (Nova's force_complete without post-copy).
	ForceComplete <-chan struct{}
}

// MigrationURI is the tcp: URI of host:port for migrate and
// migrate-incoming.
func MigrationURI(host string, port int) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return "tcp:" + host + ":" + strconv.Itoa(port)
}

// mirrorJob and mirrorTarget name the job and the NBD client node of one
// disk on the source.
func mirrorJob(node string) string    { return "migrate-" + node }
func mirrorTarget(node string) string { return "migrate-nbd-" + node }

// PrepareIncoming makes a destination started with -incoming defer
// receive: an NBD server on host:nbdPort exporting each node writable
// (under its own name), and the migration listener on host:migPort.
func (c *Client) PrepareIncoming(ctx context.Context, host string, nbdPort, migPort int, nodes []string) error {
	if len(nodes) > 0 {
		if err := c.Execute(ctx, "nbd-server-start", map[string]any{"addr": map[string]any{
			"type": "inet", "data": map[string]any{"host": host, "port": strconv.Itoa(nbdPort)}}}, nil); err != nil {
			return fmt.Errorf("nbd-server-start: %w", err)
		}
		for _, n := range nodes {
			if err := c.Execute(ctx, "block-export-add", map[string]any{"type": "nbd", "id": n, "node-name": n,
				"name": n, "writable": true}, nil); err != nil {
				return fmt.Errorf("export %s: %w", n, err)
			}
		}
	}
	if err := c.MigrateIncoming(ctx, MigrationURI(host, migPort)); err != nil {
		return fmt.Errorf("migrate-incoming: %w", err)
	}
	return nil
}

// FinishIncoming waits until the incoming migration has loaded, stops
// the NBD server and resumes the guest unless paused is set.
func (c *Client) FinishIncoming(ctx context.Context, paused bool, poll time.Duration) error {
	if poll <= 0 {
		poll = 20 * time.Millisecond
	}
	for {
		s, err := c.QueryStatus(ctx)
		if err != nil {
			return err
		}
		if s.Status != StatusInMigrate {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
	m, err := c.QueryMigrate(ctx)
	if err != nil {
		return err
	}
	if m.Status != "completed" {
		return fmt.Errorf("incoming migration %s: %s", m.Status, m.ErrorDesc)
	}
	var qe *Error
	// No NBD server (no disks were mirrored) is not an error.
	if err := c.Execute(ctx, "nbd-server-stop", nil, nil); err != nil && !errors.As(err, &qe) {
		return err
	}
	if paused {
		return nil
	}
	return c.Cont(ctx)
}

// MigrateLive runs the source side of a live migration with block
// mirroring. On failure the migration and the mirrors are cancelled and
// the source goes on as it was (a guest the migration paused is not
// resumed here: the caller knows whether it ran before).
func (c *Client) MigrateLive(ctx context.Context, m LiveMigration) (err error) {
	poll := m.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	bw := m.Bandwidth
	if bw <= 0 {
		bw = 8 << 30
	}
	var added, started []string
	defer func() {
		// Whatever happened, the capability must not outlive this
		// migration: a later suspend (migrate to a file) would stop at
		// pre-switchover forever.
		cctx := context.WithoutCancel(ctx)
		if err != nil {
			_ = c.Execute(cctx, "migrate_cancel", nil, nil)
			for _, j := range started {
				_ = c.Execute(cctx, "block-job-cancel", map[string]any{"device": j, "force": true}, nil)
			}
			_ = c.waitJobsGone(cctx, started, poll, 30*time.Second)
		}
		for _, n := range added {
			_ = c.Execute(cctx, "blockdev-del", map[string]any{"node-name": n}, nil)
		}
		_ = c.setPauseBeforeSwitchover(cctx, false)
	}()

	for _, d := range m.Disks {
		if d.Sync != "top" && d.Sync != "full" {
			return fmt.Errorf("mirror %s: sync %q", d.Node, d.Sync)
		}
		t := mirrorTarget(d.Node)
		if err := c.Execute(ctx, "blockdev-add", map[string]any{"driver": "nbd", "node-name": t,
			"server": map[string]any{"type": "inet", "host": m.Host, "port": strconv.Itoa(m.NBDPort)},
			"export": d.Node}, nil); err != nil {
			return fmt.Errorf("connect to the destination's disk %s: %w", d.Node, err)
		}
		added = append(added, t)
		if err := c.Execute(ctx, "blockdev-mirror", map[string]any{"job-id": mirrorJob(d.Node), "device": d.Node,
			"target": t, "sync": d.Sync, "auto-dismiss": true}, nil); err != nil {
			return fmt.Errorf("mirror %s: %w", d.Node, err)
		}
		started = append(started, mirrorJob(d.Node))
	}
	report := func(mi *MigrationInfo, jobs []BlockJob) {
		if m.Progress == nil {
			return
		}
		var p Progress
		if mi != nil && mi.RAM != nil {
			p.MemoryTotal, p.MemoryProcessed, p.MemoryRemaining = mi.RAM.Total, mi.RAM.Transferred, mi.RAM.Remaining
		}
		for _, j := range jobs {
			p.DiskTotal += j.Len
			p.DiskProcessed += j.Offset
			p.DiskRemaining += j.Len - j.Offset
		}
		m.Progress(p)
	}

	// 1. Disks in sync.
	var jobs []BlockJob
	for {
		if jobs, err = c.QueryBlockJobs(ctx); err != nil {
			return err
		}
		ready, err := jobsReady(jobs, started)
		if err != nil {
			return err
		}
		report(nil, jobs)
		if ready {
			break
		}
		if err := sleep(ctx, poll); err != nil {
			return err
		}
	}

	// 2. Memory, pausing before the switch-over.
	if err := c.Execute(ctx, "migrate-set-parameters", map[string]any{"max-bandwidth": bw}, nil); err != nil {
		return err
	}
	if len(started) > 0 {
		if err := c.setPauseBeforeSwitchover(ctx, true); err != nil {
			return err
		}
	}
	if err := c.Migrate(ctx, MigrationURI(m.Host, m.MigrationPort)); err != nil {
		return err
	}
	switched := len(started) == 0
	forced := false
	for {
		mi, err := c.QueryMigrate(ctx)
		if err != nil {
			return err
		}
		report(&mi, jobs)
		switch mi.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("migration %s: %s", mi.Status, mi.ErrorDesc)
		case "pre-switchover":
			if switched {
				break
			}
			// 3. The guest is paused: end the mirrors (each drains what
			// is left), then let the device state go.
			for _, j := range started {
				if err := c.Execute(ctx, "block-job-cancel", map[string]any{"device": j}, nil); err != nil {
					return fmt.Errorf("end mirror %s: %w", j, err)
				}
			}
			if err := c.waitJobsGone(ctx, started, poll, 0); err != nil {
				return err
			}
			started = nil
			switched = true
			if err := c.Execute(ctx, "migrate-continue", map[string]any{"state": "pre-switchover"}, nil); err != nil {
				return err
			}
			continue
		}
		select {
		case <-m.ForceComplete:
			if !forced && mi.Status == "active" {
				forced = true
				if err := c.Stop(ctx); err != nil {
					return fmt.Errorf("force complete: %w", err)
				}
			}
		default:
		}
		if err := sleep(ctx, poll); err != nil {
			return err
		}
	}
}

func (c *Client) setPauseBeforeSwitchover(ctx context.Context, on bool) error {
	return c.Execute(ctx, "migrate-set-capabilities", map[string]any{"capabilities": []map[string]any{
		{"capability": "pause-before-switchover", "state": on}}}, nil)
}

// jobsReady reports whether every job of ids is ready; a job that is gone
// or concluded before it was ready failed.
func jobsReady(jobs []BlockJob, ids []string) (bool, error) {
	by := map[string]BlockJob{}
	for _, j := range jobs {
		by[j.Device] = j
	}
	all := true
	for _, id := range ids {
		j, ok := by[id]
		switch {
		case !ok || j.Status == "concluded" || j.Status == "aborting" || j.Status == "null":
			return false, fmt.Errorf("mirror job %s ended before the disk was in sync", id)
		case !j.Ready:
			all = false
		}
	}
	return all, nil
}

// waitJobsGone polls until none of ids is listed (max 0: no bound but ctx).
func (c *Client) waitJobsGone(ctx context.Context, ids []string, poll, max time.Duration) error {
	if len(ids) == 0 {
		return nil
	}
	if max > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, max)
		defer cancel()
	}
	for {
		jobs, err := c.QueryBlockJobs(ctx)
		if err != nil {
			return err
		}
		left := false
		for _, j := range jobs {
			for _, id := range ids {
				left = left || j.Device == id
			}
		}
		if !left {
			return nil
		}
		if err := sleep(ctx, poll); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
