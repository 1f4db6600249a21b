package compute

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/db/dbtest"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

// TestMetadataResponder answers the network agents' metadata requests
// from the instance rows, over the bus.
func TestMetadataResponder(t *testing.T) {
	dbtest.Each(t, []db.Set{store.Migrations()}, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		st := store.New(d)
		key, kd, ud, az := "k1", "ssh-ed25519 AAAA me", base64.StdEncoding.EncodeToString([]byte("#cloud-config\n")), "nova"
		inst := &store.Instance{UUID: "11111111-2222-4333-8444-555555555555", ProjectID: "p1", UserID: "u1", Name: "web-1",
			Hostname: "web-1", Flavor: store.InstanceFlavor{ID: "42", Name: "m1.nano", VCPUs: 1, MemoryMB: 128,
				EphemeralGB: 2, Swap: 64, Ephemerals: []store.LocalDisk{{SizeGB: 1}, {SizeGB: 1}}},
			KeyName: &key, KeyData: &kd, UserData: &ud, AvailabilityZone: &az, VMState: "active", ReservationID: "r-1",
			Metadata: map[string]string{"role": "web"}}
		if err := d.WithTx(ctx, func(tx *sql.Tx) error { return st.InsertInstance(ctx, tx, inst) }); err != nil {
			t.Fatal(err)
		}
		b, err := bus.Open(ctx, bus.Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		m := &metadataResponder{st: st, passwords: map[string]string{}}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- m.run(rctx, b) }()
		defer func() { cancel(); <-done }()
		var md rpc.InstanceMetadata
		for range 100 { // until subscribed
			if err = b.Request(ctx, rpc.SubjectMetadata, rpc.MsgMetadata, rpc.MetadataVersion, rpc.MetadataRequest{InstanceID: inst.UUID}, &md); !errors.Is(err, bus.ErrNoResponders) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		if md.UUID != inst.UUID || md.Hostname != "web-1" || md.PublicKeys["k1"] != kd || string(md.UserData) != "#cloud-config\n" ||
			md.AvailabilityZone != "nova" || md.InstanceType != "m1.nano" || md.Meta["role"] != "web" || md.InstanceName == "" || md.ProjectID != "p1" {
			t.Fatalf("metadata: %+v", md)
		}
		if got := fmt.Sprint(md.LocalDevices); got != "map[ephemeral0:/dev/vdb ephemeral1:/dev/vdc swap:/dev/vdd]" {
			t.Errorf("local devices %s", got)
		}
		err = b.Request(ctx, rpc.SubjectMetadata, rpc.MsgMetadata, rpc.MetadataVersion, rpc.MetadataRequest{InstanceID: "missing"}, &md)
		if !errors.Is(err, &bus.Error{Code: bus.CodeNotFound}) {
			t.Fatalf("missing instance: %v", err)
		}
		pw := func(req rpc.PasswordRequest) (string, error) {
			var r rpc.PasswordReply
			err := b.Request(ctx, rpc.SubjectMetadata, rpc.MsgPassword, rpc.PasswordVersion, req, &r)
			return r.Password, err
		}
		if got, err := pw(rpc.PasswordRequest{InstanceID: inst.UUID, Get: true}); err != nil || got != "" {
			t.Fatalf("no password yet: %q %v", got, err)
		}
		if _, err := pw(rpc.PasswordRequest{InstanceID: inst.UUID, Password: "enc"}); err != nil {
			t.Fatal(err)
		}
		if _, err := pw(rpc.PasswordRequest{InstanceID: inst.UUID, Password: "again"}); !errors.Is(err, &bus.Error{Code: bus.CodeConflict}) {
			t.Fatalf("second password: %v", err)
		}
		if got, _ := pw(rpc.PasswordRequest{InstanceID: inst.UUID, Get: true}); got != "enc" {
			t.Fatalf("password: %q", got)
		}
	})
}

// TestLocalDevices: the EC2 names of the local disks follow the root in
// the driver's order, ephemeral disks first.
func TestLocalDevices(t *testing.T) {
	for _, tc := range []struct {
		f    store.InstanceFlavor
		want string
	}{
		{store.InstanceFlavor{RootGB: 1}, "map[]"},
		{store.InstanceFlavor{EphemeralGB: 1}, "map[ephemeral0:/dev/vdb]"},
		{store.InstanceFlavor{Swap: 32}, "map[swap:/dev/vdb]"},
		{store.InstanceFlavor{EphemeralGB: 3, Swap: 512, SwapMB: 128, Ephemerals: []store.LocalDisk{{SizeGB: 1}, {SizeGB: 1}, {SizeGB: 1}}},
			"map[ephemeral0:/dev/vdb ephemeral1:/dev/vdc ephemeral2:/dev/vdd swap:/dev/vde]"},
	} {
		if got := fmt.Sprint(localDevices(tc.f)); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.f, got, tc.want)
		}
	}
}
