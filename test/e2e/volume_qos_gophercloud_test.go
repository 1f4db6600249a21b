package e2e

import (
	"context"
	"maps"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/attachments"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/qos"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumetypes"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// TestVolumeQoSGophercloud drives the qos-specs API with gophercloud's
// blockstorage/v3/qos against the real binary: create, show, set and
// delete keys, paged list, associate with a volume type (which then
// shows qos_specs_id), the one-spec-per-type and in-use refusals, and
// an attachment of a volume of that type, whose connection_info carries
// the front-end limits as data.qos_specs.
func TestVolumeQoSGophercloud(t *testing.T) {
	t.Parallel()
	k := Start(t, Options{})
	ctx := testContext(t)
	p := k.adminProvider(t, ctx)
	cinder := serviceClient(t, openstack.NewBlockStorageV3, p)
	cinder.Microversion = "3.44"

	fe, err := qos.Create(ctx, cinder, qos.CreateOpts{Name: "gc-fe", Consumer: qos.ConsumerFront,
		Specs: map[string]string{"total_bytes_sec": "10485760", "read_iops_sec": "20000"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if fe.Consumer != "front-end" || !maps.Equal(fe.Specs, map[string]string{"total_bytes_sec": "10485760", "read_iops_sec": "20000"}) {
		t.Errorf("created %+v", fe)
	}
	be, err := qos.Create(ctx, cinder, qos.CreateOpts{Name: "gc-be", Specs: map[string]string{"delay": "1"}}).Extract()
	if err != nil || be.Consumer != "back-end" {
		t.Fatalf("back-end spec %+v, %v", be, err)
	}
	if got, err := qos.Get(ctx, cinder, fe.ID).Extract(); err != nil || got.Name != "gc-fe" {
		t.Errorf("get %+v, %v", got, err)
	}
	for name, opts := range map[string]qos.CreateOpts{
		"duplicate": {Name: "gc-fe"},
		"non-count": {Name: "gc-bad", Specs: map[string]string{"write_iops_sec": "lots"}},
	} {
		_, err := qos.Create(ctx, cinder, opts).Extract()
		if want := map[string]int{"duplicate": 409, "non-count": 400}[name]; !gophercloud.ResponseCodeIs(err, want) {
			t.Errorf("%s: %v, want %d", name, err, want)
		}
	}
	set, err := qos.Update(ctx, cinder, be.ID, qos.UpdateOpts{Consumer: qos.ConsumerBoth, Specs: map[string]string{"write_iops_sec": "400"}}).Extract()
	if err != nil || !maps.Equal(set, map[string]string{"consumer": "both", "write_iops_sec": "400"}) {
		t.Errorf("update %v, %v", set, err)
	}
	if err := qos.DeleteKeys(ctx, cinder, be.ID, qos.DeleteKeysOpts{"delay"}).ExtractErr(); err != nil {
		t.Error(err)
	}
	if got, err := qos.Get(ctx, cinder, be.ID).Extract(); err != nil || got.Consumer != "both" || !maps.Equal(got.Specs, map[string]string{"write_iops_sec": "400"}) {
		t.Errorf("after update and delete_keys %+v, %v", got, err)
	}
	var pages, seen int
	err = qos.List(cinder, qos.ListOpts{Limit: 1}).EachPage(ctx, func(_ context.Context, pg pagination.Page) (bool, error) {
		l, err := qos.ExtractQoS(pg)
		pages, seen = pages+1, seen+len(l)
		return true, err
	})
	if err != nil || pages < 2 || seen != 2 {
		t.Errorf("paged list: %d pages, %d specs, %v", pages, seen, err)
	}

	// Associate with a type; the type shows it; one spec per type.
	vt, err := volumetypes.Create(ctx, cinder, volumetypes.CreateOpts{Name: "gc-throttled"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := qos.Associate(ctx, cinder, fe.ID, qos.AssociateOpts{VolumeTypeID: vt.ID}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := qos.Associate(ctx, cinder, be.ID, qos.AssociateOpts{VolumeTypeID: vt.ID}).ExtractErr(); !gophercloud.ResponseCodeIs(err, 400) {
		t.Errorf("second spec on a type: %v", err)
	}
	pg, err := qos.ListAssociations(cinder, fe.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if as, err := qos.ExtractAssociations(pg); err != nil || len(as) != 1 || as[0].ID != vt.ID || as[0].AssociationType != "volume_type" {
		t.Errorf("associations %+v, %v", as, err)
	}
	if got, err := volumetypes.Get(ctx, cinder, vt.ID).Extract(); err != nil || got.QosSpecID != fe.ID {
		t.Errorf("type %+v, %v", got, err)
	}
	if err := qos.Delete(ctx, cinder, fe.ID, qos.DeleteOpts{}).ExtractErr(); !gophercloud.ResponseCodeIs(err, 400) {
		t.Errorf("delete in use: %v", err)
	}

	// An attachment of a volume of that type carries the limits.
	v, err := volumes.Create(ctx, cinder, volumes.CreateOpts{Size: 1, VolumeType: "gc-throttled"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitVolume(t, ctx, cinder, v.ID, "available")
	att, err := attachments.Create(ctx, cinder, attachments.CreateOpts{VolumeUUID: v.ID,
		InstanceUUID: "5b0c2a4e-1111-4222-8333-444455556666", Connector: map[string]any{"host": "e2e"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := att.ConnectionInfo["data"].(map[string]any)
	if q, _ := data["qos_specs"].(map[string]any); q["total_bytes_sec"] != "10485760" || q["read_iops_sec"] != "20000" || len(q) != 2 {
		t.Errorf("connection_info.data.qos_specs = %v", data["qos_specs"])
	}
	if err := attachments.Delete(ctx, cinder, att.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}

	if err := qos.Disassociate(ctx, cinder, fe.ID, qos.DisassociateOpts{VolumeTypeID: vt.ID}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if got, err := volumetypes.Get(ctx, cinder, vt.ID).Extract(); err != nil || got.QosSpecID != "" {
		t.Errorf("disassociated type %+v, %v", got, err)
	}
	if err := qos.Associate(ctx, cinder, be.ID, qos.AssociateOpts{VolumeTypeID: vt.ID}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := qos.DisassociateAll(ctx, cinder, be.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := qos.Associate(ctx, cinder, be.ID, qos.AssociateOpts{VolumeTypeID: vt.ID}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := qos.Delete(ctx, cinder, be.ID, qos.DeleteOpts{Force: true}).ExtractErr(); err != nil {
		t.Errorf("forced delete: %v", err)
	}
	if err := qos.Delete(ctx, cinder, fe.ID, qos.DeleteOpts{}).ExtractErr(); err != nil {
		t.Errorf("delete: %v", err)
	}
	if _, err := qos.Get(ctx, cinder, fe.ID).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Errorf("get deleted: %v", err)
	}
}
