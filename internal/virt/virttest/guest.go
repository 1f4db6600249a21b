package virttest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kumo-cloud/kumo/internal/virt"
)

// guestOps checks the operations that reach into the guest: an NMI goes
// to running and paused guests only; a password is set or refused for
// lack of a guest agent, never half-done.
func guestOps(t *testing.T, ctx context.Context, d virt.Driver, id string) {
	must(t, d.InjectNMI(ctx, id), "inject NMI into running guest")
	if err := d.SetAdminPassword(ctx, id, "s3cret"); err != nil && !errors.Is(err, virt.ErrNoGuestAgent) {
		t.Fatalf("set password: %v (want nil or ErrNoGuestAgent)", err)
	}
	must(t, d.Pause(ctx, id), "pause")
	must(t, d.InjectNMI(ctx, id), "inject NMI into paused guest")
	must(t, d.Unpause(ctx, id), "unpause")
	must(t, d.PowerOff(ctx, id, 5*time.Second), "power off")
	wantErr(t, d.InjectNMI(ctx, id), virt.ErrInvalidState, "inject NMI into stopped guest")
	wantErr(t, d.InjectNMI(ctx, "00000000-0000-4000-8000-ffffffffffff"), virt.ErrNotFound, "inject NMI into unknown guest")
	wantErr(t, d.SetAdminPassword(ctx, "00000000-0000-4000-8000-ffffffffffff", "x"), virt.ErrNotFound, "set password of unknown guest")
}
