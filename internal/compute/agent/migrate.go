package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/virt"
)

// Cold migration between hosts. The conductor asks the source agent to
// migrate_out: it powers the guest off (keeping it: a revert powers it on
// again, a confirm destroys it) and exports its disks under a random
// token. The destination's spawn carries the token; its agent pulls each
// disk from the source agent over the bus, rpc.DiskChunk at a time with a
// few requests in flight, and the driver checks the copies against the
// SHA-256 the source reported before it starts the guest.

const (
	// exportTTL bounds how long an unused export stays readable.
	exportTTL = time.Hour
	// pullWindow is how many chunk requests are in flight per disk.
	pullWindow = 4
	// pullAttempts is how often one chunk is asked for.
	pullAttempts = 3
	// migrateShutdownTimeout bounds the ACPI shutdown of a migrating guest.
	migrateShutdownTimeout = 60 * time.Second
)

// export is a migrating instance's disks, readable with its token.
type export struct {
	uuid    string
	disks   map[string]rpc.DiskFile
	expires time.Time
}

// migrateOut powers the instance off and exports its disks.
func (a *Agent) migrateOut(ctx context.Context, id string, info virt.Info) (rpc.OpReply, error) {
	if info.State != virt.Shutdown {
		if err := a.driver.PowerOff(ctx, id, migrateShutdownTimeout); err != nil {
			return rpc.OpReply{}, fmt.Errorf("power off for migration: %w", err)
		}
	}
	ex := &rpc.Export{Token: token(), Disks: []rpc.DiskFile{}}
	if dm, ok := a.driver.(virt.DiskMigrator); ok {
		files, err := dm.ExportDisks(ctx, id)
		if err != nil {
			return rpc.OpReply{}, err
		}
		for _, f := range files {
			ex.Disks = append(ex.Disks, rpc.DiskFile{Name: f.Name, Size: f.Size, SHA256: f.SHA256, BackingImage: f.BackingImage})
		}
	}
	e := &export{uuid: id, disks: map[string]rpc.DiskFile{}, expires: time.Now().Add(exportTTL)}
	for _, f := range ex.Disks {
		e.disks[f.Name] = f
	}
	a.mu.Lock()
	now := time.Now()
	for t, old := range a.exports {
		if old.uuid == id || now.After(old.expires) {
			delete(a.exports, t)
		}
	}
	a.exports[ex.Token] = e
	a.mu.Unlock()
	a.log.Info("instance exported for migration", "instance", id, "disks", len(ex.Disks))
	return rpc.OpReply{Export: ex}, nil
}

// endExports closes the exports of an instance (it is changing).
func (a *Agent) endExports(uuid string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for t, e := range a.exports {
		if e.uuid == uuid {
			delete(a.exports, t)
		}
	}
}

// diskRead serves compute.disk.read.
func (a *Agent) diskRead(ctx context.Context, m *bus.Message) (any, error) {
	var r rpc.DiskRead
	if err := m.Decode(&r); err != nil {
		return nil, err
	}
	a.mu.Lock()
	e := a.exports[r.Token]
	if e != nil && e.uuid == r.UUID {
		e.expires = time.Now().Add(exportTTL)
	}
	a.mu.Unlock()
	if e == nil || e.uuid != r.UUID {
		return nil, bus.NewError(rpc.CodeNotFound, "instance %s has no export with that token on host %s", r.UUID, a.cfg.Host)
	}
	f, ok := e.disks[r.Disk]
	if !ok {
		return nil, bus.NewError(rpc.CodeNotFound, "disk %q is not exported", r.Disk)
	}
	if r.Offset < 0 || r.Offset > f.Size || r.Length <= 0 || r.Length > rpc.DiskChunk {
		return nil, bus.NewError(bus.CodeBadRequest, "bad range %d+%d of disk %s (%d bytes)", r.Offset, r.Length, r.Disk, f.Size)
	}
	dm, ok := a.driver.(virt.DiskMigrator)
	if !ok {
		return nil, bus.NewError(rpc.CodeUnsupported, "driver %s exports no disks", a.driver.Name())
	}
	rd, err := dm.OpenDisk(ctx, r.UUID, r.Disk)
	if err != nil {
		return nil, toBusError(err)
	}
	defer rd.Close()
	buf := make([]byte, min(int64(r.Length), f.Size-r.Offset))
	n, err := rd.ReadAt(buf, r.Offset)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, bus.NewError(rpc.CodeFailed, "read %s: %v", r.Disk, err)
	}
	return rpc.DiskData{Data: buf[:n], EOF: r.Offset+int64(n) >= f.Size}, nil
}

// spawnMigrated creates the instance from the disks of its source host;
// drivers without disks worth moving spawn it afresh.
func (a *Agent) spawnMigrated(ctx context.Context, req *rpc.OpRequest) error {
	dm, ok := a.driver.(virt.DiskMigrator)
	m := req.Migration
	if !ok || len(m.Disks) == 0 {
		return a.spawn(ctx, req)
	}
	vi := a.instance(req)
	img, release, err := a.image(ctx, req.Instance.ImageID)
	if err != nil {
		return err
	}
	vi.Image = img
	files := make([]virt.DiskFile, 0, len(m.Disks))
	for _, f := range m.Disks {
		files = append(files, virt.DiskFile{Name: f.Name, Size: f.Size, SHA256: f.SHA256, BackingImage: f.BackingImage})
	}
	start := time.Now()
	fetch := func(ctx context.Context, f virt.DiskFile, w io.WriterAt) error {
		return a.pull(ctx, m, req.Instance.UUID, f, w)
	}
	if err := dm.SpawnMigrated(ctx, vi, files, fetch, req.Stopped); err != nil {
		release()
		return err
	}
	a.log.Info("instance migrated in", "instance", req.Instance.UUID, "from", m.SourceHost, "disks", len(files),
		"took", time.Since(start).Round(time.Millisecond))
	a.keep(req.Instance.UUID, release)
	return nil
}

// pull copies one exported disk from the source agent into w.
func (a *Agent) pull(parent context.Context, m *rpc.Migration, uuid string, f virt.DiskFile, w io.WriterAt) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	offs := make(chan int64)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	fail := func(err error) {
		once.Do(func() { first = err })
		cancel()
	}
	for range pullWindow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for off := range offs {
				data, err := a.chunk(ctx, m, uuid, f.Name, off, int(min(rpc.DiskChunk, f.Size-off)))
				if err == nil {
					_, err = w.WriteAt(data, off)
				}
				if err != nil {
					fail(err)
					return
				}
			}
		}()
	}
feed:
	for off := int64(0); off < f.Size; off += rpc.DiskChunk {
		select {
		case offs <- off:
		case <-ctx.Done():
			break feed
		}
	}
	close(offs)
	wg.Wait()
	if first != nil {
		return first
	}
	return parent.Err()
}

// chunk reads one piece of an exported disk, again after a timeout.
func (a *Agent) chunk(ctx context.Context, m *rpc.Migration, uuid, disk string, off int64, n int) ([]byte, error) {
	var err error
	for attempt := 0; attempt < pullAttempts; attempt++ {
		var d rpc.DiskData
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = a.bus.Request(rctx, rpc.SubjectAgent(m.SourceHost), rpc.MsgDiskRead, rpc.DiskReadVersion,
			rpc.DiskRead{UUID: uuid, Token: m.Token, Disk: disk, Offset: off, Length: n}, &d)
		cancel()
		if err == nil && len(d.Data) != n {
			return nil, fmt.Errorf("short read of %s at %d from %s: %d of %d bytes", disk, off, m.SourceHost, len(d.Data), n)
		}
		if err == nil {
			return d.Data, nil
		}
		var be *bus.Error
		if ctx.Err() != nil || errors.As(err, &be) && !be.Retryable {
			break
		}
	}
	if errors.Is(err, bus.ErrNoResponders) {
		return nil, fmt.Errorf("source host %s is not available: %w", m.SourceHost, err)
	}
	return nil, fmt.Errorf("read %s at %d from %s: %w", disk, off, m.SourceHost, err)
}

func token() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
