package qmp

import (
	"context"
	"errors"
)

// Run states QEMU reports in query-status (the ones Kumo tells apart).
const (
	StatusRunning       = "running"
	StatusPaused        = "paused"
	StatusShutdown      = "shutdown"
	StatusInMigrate     = "inmigrate"
	StatusPostMigrate   = "postmigrate"
	StatusFinishMigrate = "finish-migrate"
	StatusPrelaunch     = "prelaunch"
	StatusGuestPanicked = "guest-panicked"
	StatusInternalError = "internal-error"
	StatusSaveVM        = "save-vm"
	StatusRestoreVM     = "restore-vm"
)

// Events Kumo watches.
const (
	EventShutdown  = "SHUTDOWN"
	EventPowerdown = "POWERDOWN"
	EventReset     = "RESET"
	EventStop      = "STOP"
	EventResume    = "RESUME"
	EventPanicked  = "GUEST_PANICKED"
	EventMigration = "MIGRATION"
)

// Status is query-status's reply.
type Status struct {
	Running bool   `json:"running"`
	Status  string `json:"status"`
}

// QueryStatus reports the VM's run state.
func (c *Client) QueryStatus(ctx context.Context) (Status, error) {
	var s Status
	err := c.Execute(ctx, "query-status", nil, &s)
	return s, err
}

// Stop pauses all vCPUs.
func (c *Client) Stop(ctx context.Context) error { return c.Execute(ctx, "stop", nil, nil) }

// Cont resumes the vCPUs.
func (c *Client) Cont(ctx context.Context) error { return c.Execute(ctx, "cont", nil, nil) }

// SystemPowerdown presses the ACPI power button; the guest decides.
func (c *Client) SystemPowerdown(ctx context.Context) error {
	return c.Execute(ctx, "system_powerdown", nil, nil)
}

// SystemReset resets the machine, like the reset button.
func (c *Client) SystemReset(ctx context.Context) error {
	return c.Execute(ctx, "system_reset", nil, nil)
}

// Quit makes QEMU exit at once. The connection closing before the reply
// counts as success.
func (c *Client) Quit(ctx context.Context) error {
	err := c.Execute(ctx, "quit", nil, nil)
	if errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

// Migrate starts an outgoing migration to uri (e.g. "exec:cat > file").
func (c *Client) Migrate(ctx context.Context, uri string) error {
	return c.Execute(ctx, "migrate", map[string]any{"uri": uri}, nil)
}

// MigrateIncoming starts an incoming migration on a QEMU started with
// -incoming defer.
func (c *Client) MigrateIncoming(ctx context.Context, uri string) error {
	return c.Execute(ctx, "migrate-incoming", map[string]any{"uri": uri}, nil)
}

// MigrationInfo is query-migrate's reply (the fields Kumo reads).
type MigrationInfo struct {
	Status    string `json:"status"` // none, setup, active, pre-switchover, device, completed, failed, cancelled
	ErrorDesc string `json:"error-desc,omitempty"`
	// RAM is how far the memory copy is (absent before it starts).
	RAM *RAMStats `json:"ram,omitempty"`
}

// QueryMigrate reports the state of the current or last migration.
func (c *Client) QueryMigrate(ctx context.Context) (MigrationInfo, error) {
	var m MigrationInfo
	err := c.Execute(ctx, "query-migrate", nil, &m)
	return m, err
}
