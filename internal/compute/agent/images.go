package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/kumo-cloud/kumo/internal/bus"
	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/compute/tunnel"
	"github.com/kumo-cloud/kumo/internal/virt"
)

// imageRefs collects the image cache references an instance's boot files
// take, so that one release drops them all.
type imageRefs struct {
	a    *Agent
	ctx  context.Context
	rels []func()
}

// acquire fetches image id (what names it in errors) into the cache and
// keeps the reference.
func (h *imageRefs) acquire(what, id string) (string, error) {
	p, rel, err := h.a.images.Acquire(h.ctx, id)
	if err != nil {
		return "", fmt.Errorf("fetch %s %s: %w", what, id, err)
	}
	h.rels = append(h.rels, rel)
	return p, nil
}

func (h *imageRefs) release() {
	for _, r := range h.rels {
		r()
	}
}

// image resolves an image id into local files: the image itself and, for
// images that name kernel_id / ramdisk_id (AMI style), the kernel and
// ramdisk images for direct kernel boot. release drops every reference
// taken. An empty id (or no image cache) is an image without files.
func (a *Agent) image(ctx context.Context, id string) (img virt.Image, release func(), err error) {
	img = virt.Image{ID: id}
	refs := &imageRefs{a: a, ctx: ctx}
	release = refs.release
	if id == "" || a.images == nil {
		return img, release, nil
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	meta, err := a.images.Meta(ctx, id)
	if err != nil {
		return img, release, err
	}
	img.Properties = meta.Properties
	img.DiskFormat = meta.DiskFormat
	switch meta.DiskFormat {
	case "ami":
		img.DiskFormat = "raw" // an AMI machine image is a raw disk
	case "aki", "ari":
		return img, release, fmt.Errorf("image %s is a %s (kernel or ramdisk) image and cannot boot on its own: %w",
			id, meta.DiskFormat, virt.ErrUnsupported)
	}
	if img.Path, err = refs.acquire("image", id); err != nil {
		return img, release, err
	}
	err = a.kernel(&img, meta.Properties, refs.acquire)
	return img, release, err
}

// kernel fills in the kernel and ramdisk that image properties name
// (kernel_id, ramdisk_id, os_command_line), for direct kernel boot.
func (a *Agent) kernel(img *virt.Image, props map[string]string, acquire func(what, id string) (string, error)) error {
	k := props["kernel_id"]
	if k == "" {
		return nil
	}
	var err error
	if img.KernelPath, err = acquire("kernel", k); err != nil {
		return err
	}
	if r := props["ramdisk_id"]; r != "" {
		if img.RamdiskPath, err = acquire("ramdisk", r); err != nil {
			return err
		}
	}
	img.KernelArgs = props["os_command_line"]
	return nil
}

// volumeImage is the boot image of a volume-backed instance: no disk
// file (the volume is the disk), only the properties the volume kept of
// its image, and the kernel and ramdisk they name.
func (a *Agent) volumeImage(ctx context.Context, props map[string]string) (img virt.Image, release func(), err error) {
	img = virt.Image{ID: props["image_id"], Properties: props}
	refs := &imageRefs{a: a, ctx: ctx}
	release = refs.release
	if props["kernel_id"] == "" || a.images == nil {
		return img, release, nil
	}
	if err := a.kernel(&img, props, refs.acquire); err != nil {
		release()
		return img, func() {}, err
	}
	return img, release, nil
}

// blockDevices splits the volumes of a spawn into the boot volume (nil
// for an image-backed instance) and the others.
func blockDevices(bds []rpc.Volume) (root *virt.Volume, others []virt.Volume) {
	for _, b := range bds {
		v := virt.Volume{ID: b.ID, Path: b.Path, Format: b.Format, Device: b.Device, ReadOnly: b.ReadOnly, QoS: b.QoS}
		if b.Root && root == nil {
			root = &v
			continue
		}
		others = append(others, v)
	}
	return root, others
}

// nics turns the VIFs of a build request into the driver's NICs, one tap
// per port named as Neutron names it.
func nics(vifs []rpc.VIF) []virt.NIC {
	var out []virt.NIC
	for _, v := range vifs {
		out = append(out, virt.NIC{PortID: v.PortID, MAC: v.MAC, Tap: rpc.TapName(v.PortID), Bridge: v.Bridge, MTU: v.MTU})
	}
	return out
}

// NetworkData renders network_data.json (OpenStack's metadata layout) for
// the VIFs: one link per port and DHCP on each.
func NetworkData(vifs []rpc.VIF) []byte {
	type link struct {
		ID   string `json:"id"`
		VIF  string `json:"vif_id"`
		Type string `json:"type"`
		MAC  string `json:"ethernet_mac_address"`
		MTU  *int   `json:"mtu"`
	}
	type network struct {
		ID        string `json:"id"`
		Type      string `json:"type"`
		Link      string `json:"link"`
		NetworkID string `json:"network_id"`
	}
	nd := struct {
		Links    []link    `json:"links"`
		Networks []network `json:"networks"`
		Services []any     `json:"services"`
	}{Links: []link{}, Networks: []network{}, Services: []any{}}
	for i, v := range vifs {
		l := link{ID: rpc.TapName(v.PortID), VIF: v.PortID, Type: "tap", MAC: v.MAC}
		if v.Bridge != "" {
			l.Type = "bridge"
		}
		if v.MTU > 0 {
			mtu := v.MTU
			l.MTU = &mtu
		}
		nd.Links = append(nd.Links, l)
		nd.Networks = append(nd.Networks, network{ID: fmt.Sprintf("network%d", i), Type: "ipv4_dhcp", Link: l.ID, NetworkID: v.NetworkID})
	}
	b, _ := json.Marshal(nd)
	return b
}

var errUploadEnded = errors.New("snapshot upload ended")

// snapshot streams the instance's root disk into a queued image.
func (a *Agent) snapshot(ctx context.Context, id string, s *rpc.Snapshot) error {
	if s == nil || s.ImageID == "" {
		return bus.NewError(bus.CodeBadRequest, "snapshot without a target image")
	}
	if a.images == nil {
		return fmt.Errorf("host %s has no image service to upload snapshots to: %w", a.cfg.Host, virt.ErrUnsupported)
	}
	format := s.DiskFormat
	if format == "" {
		format = "qcow2"
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := a.driver.Snapshot(ctx, id, format, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	uerr := a.images.Upload(ctx, s.ImageID, pr)
	pr.CloseWithError(errUploadEnded)
	cancel()
	serr := <-done
	if serr != nil && !(uerr != nil && errors.Is(serr, errUploadEnded)) {
		return fmt.Errorf("snapshot of %s: %w", id, serr)
	}
	if uerr != nil {
		return fmt.Errorf("upload snapshot of %s to image %s: %w", id, s.ImageID, uerr)
	}
	return nil
}

// consoleConnect tells the console proxy where the instance's console is
// or, given a tunnel, joins the console to it.
func (a *Agent) consoleConnect(ctx context.Context, id, typ, tun string) (rpc.OpReply, error) {
	c, ok := a.driver.(virt.Consoler)
	if !ok {
		return rpc.OpReply{}, fmt.Errorf("%s consoles are not available with the %s driver: %w", typ, a.driver.Name(), virt.ErrUnsupported)
	}
	path, err := c.ConsoleSocket(ctx, id, typ)
	if err != nil {
		return rpc.OpReply{}, err
	}
	if tun == "" {
		return rpc.OpReply{Console: &rpc.Console{Type: typ, Path: path}}, nil
	}
	var d net.Dialer
	local, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return rpc.OpReply{}, fmt.Errorf("%s console of %s: %w", typ, id, err)
	}
	t, err := tunnel.Accept(a.bus.Conn(), tun)
	if err != nil {
		local.Close()
		return rpc.OpReply{}, fmt.Errorf("%s console of %s: tunnel: %w", typ, id, err)
	}
	log := a.log.With("instance", id, "console", typ)
	log.Info("console tunnel opened")
	go func() {
		tunnel.Join(t, local)
		log.Info("console tunnel closed")
	}()
	return rpc.OpReply{Console: &rpc.Console{Type: typ, Tunnel: true}}, nil
}

// resize gives an existing instance the request's flavor: in place, disks
// kept, where the driver can (virt.Resizer); otherwise by re-creating it
// (drivers without disks worth keeping, like the fake one).
func (a *Agent) resize(ctx context.Context, req *rpc.OpRequest, info virt.Info) error {
	in := req.Instance
	if r, ok := a.driver.(virt.Resizer); ok {
		return r.Resize(ctx, &virt.Instance{UUID: in.UUID, Name: in.Name, VCPUs: in.VCPUs, MemoryMB: in.MemoryMB,
			RootGB: in.RootGB, EphemeralGB: in.EphemeralGB, Ephemerals: ephemerals(in.Ephemerals), SwapMB: in.SwapMB})
	}
	if err := a.driver.Destroy(ctx, in.UUID); err != nil {
		return err
	}
	a.mu.Lock()
	rel := a.releases[in.UUID]
	delete(a.releases, in.UUID)
	a.mu.Unlock()
	if rel != nil {
		rel()
	}
	if err := a.spawn(ctx, req); err != nil {
		return err
	}
	if info.State == virt.Shutdown || req.Stopped {
		return a.driver.PowerOff(ctx, in.UUID, 0)
	}
	return nil
}
