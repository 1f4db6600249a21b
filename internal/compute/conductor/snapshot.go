package conductor

import (
	"context"
	"fmt"

	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/compute/states"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// ImageService is what the conductor needs of the image service: deleting
// snapshot images of failed snapshots and of unshelved servers.
type ImageService interface {
	DeleteImage(ctx context.Context, id string) error
}

// shelvedImage is the key of the shelved image's id in the shelve context
// (the instance's migration_ctx while it is shelved).
const shelvedImage = "shelved_image_id"

// snapshotStep asks the host to upload the root disk into the image the
// API created (task args image_id, disk_format). The image goes queued →
// saving → active in the image service as the upload runs.
var snapshotStep = step{name: "snapshot", run: func(ctx context.Context, r *run) error {
	img := r.task.Args["image_id"]
	if img == "" {
		return nil // a shelve of a server without an image only offloads
	}
	rep, err := r.op(ctx, r.inst.HostName(), rpc.OpSnapshot, func(req *rpc.OpRequest) {
		req.Snapshot = &rpc.Snapshot{ImageID: img, DiskFormat: r.task.Args["disk_format"]}
	})
	r.power = rep.PowerState
	if err != nil {
		return fmt.Errorf("snapshot to image %s failed: %w", img, agentError(err))
	}
	return nil
}}

// snapshotDone ends a snapshot in the vm_state it started from.
func snapshotDone(r *run) store.Set {
	set := store.Set{"vm_state": r.task.PrevVMState}
	if r.power != 0 {
		set["power_state"] = r.power
	}
	return set
}

// failSnapshot deletes the snapshot image of a failed task (as Nova
// does: no half-uploaded image stays behind), then applies fail.
func failSnapshot(fail func(*run, error) store.Set) func(*run, error) store.Set {
	return func(r *run, err error) store.Set {
		if img := r.task.Args["image_id"]; img != "" && r.c.cfg.Images != nil {
			if derr := r.c.cfg.Images.DeleteImage(context.WithoutCancel(r.c.ctx), img); derr != nil {
				r.log.Warn("delete image of failed snapshot", "image", img, "err", derr)
			}
		}
		return fail(r, err)
	}
}

// shelvedImageID is the image a shelved server boots from again.
func shelvedImageID(i *store.Instance) string {
	if i.Migration != nil && i.Migration.Kind == kindShelve {
		return i.Migration.Args[shelvedImage]
	}
	return ""
}

// deleteShelvedImage removes the shelved image once the server runs
// again from it. A failure only leaves an image behind: logged.
func deleteShelvedImage(ctx context.Context, r *run) error {
	img := shelvedImageID(r.inst)
	if img == "" || r.c.cfg.Images == nil {
		return nil
	}
	if err := r.c.cfg.Images.DeleteImage(ctx, img); err != nil {
		r.log.Warn("delete shelved image", "image", img, "err", err)
	}
	return nil
}

// unshelved ends an unshelve: active, the shelve context dropped.
func unshelved(r *run) store.Set {
	set := becomes(states.Active, true)(r)
	set["migration_ctx"] = (*store.Task)(nil)
	return set
}
