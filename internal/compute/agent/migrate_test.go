package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/virt"
	"github.com/kumo-cloud/kumo/internal/virt/fake"
)

// diskDriver is the fake driver with one in-memory disk per instance,
// moved by virt.DiskMigrator.
type diskDriver struct {
	*fake.Driver
	mu    sync.Mutex
	disks map[string][]byte
}

func (d *diskDriver) ExportDisks(ctx context.Context, uuid string) ([]virt.DiskFile, error) {
	if info, err := d.Info(ctx, uuid); err != nil || info.State != virt.Shutdown {
		return nil, fmt.Errorf("export %s in %v (%v): %w", uuid, info.State, err, virt.ErrInvalidState)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	sum := sha256.Sum256(d.disks[uuid])
	return []virt.DiskFile{{Name: "root", Size: int64(len(d.disks[uuid])), SHA256: hex.EncodeToString(sum[:])}}, nil
}

type readerAtCloser struct{ *bytes.Reader }

func (readerAtCloser) Close() error { return nil }

func (d *diskDriver) OpenDisk(ctx context.Context, uuid, name string) (virt.DiskReader, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, ok := d.disks[uuid]
	if !ok || name != "root" {
		return nil, virt.ErrNotFound
	}
	return readerAtCloser{bytes.NewReader(b)}, nil
}

type memWriterAt struct{ b []byte }

func (m *memWriterAt) WriteAt(p []byte, off int64) (int, error) {
	return copy(m.b[off:], p), nil
}

func (d *diskDriver) SpawnMigrated(ctx context.Context, inst *virt.Instance, disks []virt.DiskFile,
	fetch func(context.Context, virt.DiskFile, io.WriterAt) error, stopped bool) error {
	w := &memWriterAt{b: make([]byte, disks[0].Size)}
	if err := fetch(ctx, disks[0], w); err != nil {
		return err
	}
	if sum := sha256.Sum256(w.b); hex.EncodeToString(sum[:]) != disks[0].SHA256 {
		return errors.New("copy does not match")
	}
	if err := d.Spawn(ctx, inst); err != nil {
		return err
	}
	d.mu.Lock()
	d.disks[inst.UUID] = w.b
	d.mu.Unlock()
	return nil
}

// TestMigrateDisksBetweenAgents moves an instance's disk between two
// agents over the bus: several chunks, checked, and only with the token
// of a live export.
func TestMigrateDisksBetweenAgents(t *testing.T) {
	b, err := bus.Open(context.Background(), bus.Config{Name: "t"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const id = "00000000-0000-4000-8000-0000000000aa"
	drivers := map[string]*diskDriver{}
	agents := map[string]*Agent{}
	for _, h := range []string{"src", "dst"} {
		drivers[h] = &diskDriver{Driver: fake.New(fake.Config{}), disks: map[string][]byte{}}
		a, err := New(b, drivers[h], nil, Config{Host: h}, nil)
		if err != nil {
			t.Fatal(err)
		}
		agents[h] = a
		go func() { _ = a.Run(ctx) }()
	}
	// Run subscribes in its own goroutine: wait until both agents answer.
	for _, h := range []string{"src", "dst"} {
		for {
			var rep rpc.OpReply
			err := b.Request(ctx, rpc.SubjectAgent(h), rpc.MsgOp, rpc.OpVersion, rpc.OpRequest{Op: rpc.OpHostUptime}, &rep)
			if !errors.Is(err, bus.ErrNoResponders) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	disk := make([]byte, 3*rpc.DiskChunk+12345)
	for i := range disk {
		disk[i] = byte(i * 7)
	}
	inst := rpc.Instance{UUID: id, VCPUs: 1, MemoryMB: 64}
	if err := drivers["src"].Spawn(ctx, &virt.Instance{UUID: id, VCPUs: 1, MemoryMB: 64}); err != nil {
		t.Fatal(err)
	}
	drivers["src"].mu.Lock()
	drivers["src"].disks[id] = disk
	drivers["src"].mu.Unlock()
	op := func(host string, req rpc.OpRequest) (rpc.OpReply, error) {
		var rep rpc.OpReply
		err := b.Request(ctx, rpc.SubjectAgent(host), rpc.MsgOp, rpc.OpVersion, req, &rep)
		return rep, err
	}
	rep, err := op("src", rpc.OpRequest{Op: rpc.OpMigrateOut, Instance: inst})
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := drivers["src"].Info(ctx, id); info.State != virt.Shutdown || rep.Export == nil || len(rep.Export.Disks) != 1 {
		t.Fatalf("after migrate_out: source %v, export %+v", info.State, rep.Export)
	}
	// A wrong token opens nothing.
	var data rpc.DiskData
	err = b.Request(ctx, rpc.SubjectAgent("src"), rpc.MsgDiskRead, rpc.DiskReadVersion,
		rpc.DiskRead{UUID: id, Token: "nope", Disk: "root", Length: 10}, &data)
	if be := (*bus.Error)(nil); !errors.As(err, &be) || be.Code != rpc.CodeNotFound {
		t.Fatalf("read with a wrong token: %v", err)
	}
	mig := &rpc.Migration{SourceHost: "src", Token: rep.Export.Token, Disks: rep.Export.Disks}
	if _, err := op("dst", rpc.OpRequest{Op: rpc.OpSpawn, Instance: inst, Migration: mig}); err != nil {
		t.Fatal(err)
	}
	drivers["dst"].mu.Lock()
	got := drivers["dst"].disks[id]
	drivers["dst"].mu.Unlock()
	if !bytes.Equal(got, disk) {
		t.Fatalf("destination disk: %d bytes, equal %v", len(got), bytes.Equal(got, disk))
	}
	if info, _ := drivers["dst"].Info(ctx, id); info.State != virt.Running {
		t.Fatalf("destination %v", info.State)
	}
	// Anything else done to the source ends its export (a revert starts it).
	if _, err := op("src", rpc.OpRequest{Op: rpc.OpPowerOn, Instance: inst}); err != nil {
		t.Fatal(err)
	}
	err = b.Request(ctx, rpc.SubjectAgent("src"), rpc.MsgDiskRead, rpc.DiskReadVersion,
		rpc.DiskRead{UUID: id, Token: mig.Token, Disk: "root", Length: 10}, &data)
	if be := (*bus.Error)(nil); !errors.As(err, &be) || be.Code != rpc.CodeNotFound {
		t.Fatalf("read after the source changed: %v", err)
	}
	if _, err := op("dst", rpc.OpRequest{Op: rpc.OpDestroy, Instance: inst}); err != nil {
		t.Fatal(err)
	}
	// A destination that cannot reach the export fails the spawn, leaving nothing.
	_, err = op("dst", rpc.OpRequest{Op: rpc.OpSpawn, Instance: inst, Migration: mig})
	if err == nil {
		t.Fatal("spawn from an ended export worked")
	}
	if ids, _ := drivers["dst"].List(ctx); len(ids) != 0 {
		t.Fatalf("failed migration left %v", ids)
	}
}
