package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/kumo-cloud/kumo/internal/db"
)

// Service is a compute service row (os-services): a conductor, a
// scheduler or a compute agent on a host.
type Service struct {
	ID             int64
	UUID           string
	Host           string
	Binary         string
	Topic          string
	Version        int
	Disabled       bool
	DisabledReason *string
	ForcedDown     bool
	LastSeenUp     time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Node is a compute node (os-hypervisors), one per compute service.
type Node struct {
	ID                 int64
	UUID               string
	ServiceID          int64
	Host               string
	HypervisorHostname string
	HypervisorType     string
	HypervisorVersion  int
	VCPUs              int64
	MemoryMB           int64
	LocalGB            int64
	HostIP             string
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

const serviceCols = `id, uuid, host, binary_name, topic, version, disabled, disabled_reason, forced_down, last_seen_up, created_at, updated_at`

func scanService(sc interface{ Scan(...any) error }) (*Service, error) {
	var s Service
	var reason, seen, created, updated sql.NullString
	if err := sc.Scan(&s.ID, &s.UUID, &s.Host, &s.Binary, &s.Topic, &s.Version, &s.Disabled, &reason, &s.ForcedDown,
		&seen, &created, &updated); err != nil {
		return nil, err
	}
	s.DisabledReason = ptr(reason)
	s.LastSeenUp, s.CreatedAt, s.UpdatedAt = db.ParseTime(seen), db.ParseTime(created), db.ParseTime(updated)
	return &s, nil
}

// Heartbeat creates the service row of host/binary (with newUUID) or
// marks it seen now; it returns the row.
func (s *Store) Heartbeat(ctx context.Context, host, binary, topic, newUUID string, version int) (*Service, error) {
	var out *Service
	err := s.db.WithTx(ctx, func(tx *sql.Tx) error {
		q := cq(tx)
		now := db.FormatTime(time.Now())
		if _, err := q.ExecContext(ctx, `INSERT INTO compute_services (uuid, host, binary_name, topic, version, last_seen_up, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6, $6)
			ON CONFLICT (host, binary_name) DO UPDATE SET last_seen_up = excluded.last_seen_up, version = excluded.version`,
			newUUID, host, binary, topic, version, now); err != nil {
			return err
		}
		var err error
		out, err = scanService(q.QueryRowContext(ctx, `SELECT `+serviceCols+` FROM compute_services WHERE host = $1 AND binary_name = $2`, host, binary))
		return err
	})
	return out, err
}

// ListServices returns the services, optionally of one host and/or binary.
func (s *Store) ListServices(ctx context.Context, host, binary string) ([]*Service, error) {
	query := `SELECT ` + serviceCols + ` FROM compute_services WHERE ($1 = '' OR host = $1) AND ($2 = '' OR binary_name = $2) ORDER BY id`
	rows, err := cq(s.db.Reader()).QueryContext(ctx, query, host, binary)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Service
	for rows.Next() {
		sv, err := scanService(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sv)
	}
	return out, rows.Err()
}

// GetService returns a service by uuid (or by numeric id when byID).
func (s *Store) GetService(ctx context.Context, id string) (*Service, error) {
	sv, err := scanService(cq(s.db.Reader()).QueryRowContext(ctx, `SELECT `+serviceCols+` FROM compute_services WHERE uuid = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return sv, err
}

// UpdateService sets disabled (with reason) and forced_down of a service.
func (s *Store) UpdateService(ctx context.Context, id string, disabled *bool, reason *string, forcedDown *bool) (*Service, error) {
	err := s.db.WithTx(ctx, func(tx *sql.Tx) error {
		q := cq(tx)
		now := db.FormatTime(time.Now())
		if disabled != nil {
			if _, err := q.ExecContext(ctx, `UPDATE compute_services SET disabled = $1, disabled_reason = $2, updated_at = $3 WHERE uuid = $4`,
				*disabled, nullable(reason), now, id); err != nil {
				return err
			}
		}
		if forcedDown != nil {
			if _, err := q.ExecContext(ctx, `UPDATE compute_services SET forced_down = $1, updated_at = $2 WHERE uuid = $3`, *forcedDown, now, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.GetService(ctx, id)
}

// DeleteService removes a service and its node.
func (s *Store) DeleteService(ctx context.Context, id string) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		q := cq(tx)
		if _, err := q.ExecContext(ctx, `DELETE FROM compute_nodes WHERE service_id IN (SELECT id FROM compute_services WHERE uuid = $1)`, id); err != nil {
			return err
		}
		res, err := q.ExecContext(ctx, `DELETE FROM compute_services WHERE uuid = $1`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

const nodeCols = `id, uuid, service_id, host, hypervisor_hostname, hypervisor_type, hypervisor_version, vcpus, memory_mb, local_gb, host_ip, created_at, updated_at`

func scanNode(sc interface{ Scan(...any) error }) (*Node, error) {
	var n Node
	var created, updated sql.NullString
	if err := sc.Scan(&n.ID, &n.UUID, &n.ServiceID, &n.Host, &n.HypervisorHostname, &n.HypervisorType, &n.HypervisorVersion,
		&n.VCPUs, &n.MemoryMB, &n.LocalGB, &n.HostIP, &created, &updated); err != nil {
		return nil, err
	}
	n.CreatedAt, n.UpdatedAt = db.ParseTime(created), db.ParseTime(updated)
	return &n, nil
}

// UpsertNode records the node of a compute service (its resources).
func (s *Store) UpsertNode(ctx context.Context, n *Node) error {
	return s.db.WithTx(ctx, func(tx *sql.Tx) error {
		now := db.FormatTime(time.Now())
		_, err := cq(tx).ExecContext(ctx, `INSERT INTO compute_nodes (uuid, service_id, host, hypervisor_hostname, hypervisor_type,
			hypervisor_version, vcpus, memory_mb, local_gb, host_ip, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
			ON CONFLICT (host) DO UPDATE SET service_id = excluded.service_id, hypervisor_hostname = excluded.hypervisor_hostname,
			hypervisor_type = excluded.hypervisor_type, vcpus = excluded.vcpus, memory_mb = excluded.memory_mb,
			local_gb = excluded.local_gb, host_ip = excluded.host_ip, updated_at = excluded.updated_at`,
			n.UUID, n.ServiceID, n.Host, n.HypervisorHostname, n.HypervisorType, n.HypervisorVersion, n.VCPUs, n.MemoryMB, n.LocalGB, n.HostIP, now)
		return err
	})
}

// ListNodes returns the compute nodes, ordered by id.
func (s *Store) ListNodes(ctx context.Context, q db.Querier) ([]*Node, error) {
	if q == nil {
		q = s.db.Reader()
	}
	rows, err := cq(q).QueryContext(ctx, `SELECT `+nodeCols+` FROM compute_nodes ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Node
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// ListServicesQ is ListServices inside q (the scheduler's transaction).
func (s *Store) ListServicesQ(ctx context.Context, q db.Querier, binary string) ([]*Service, error) {
	rows, err := cq(q).QueryContext(ctx, `SELECT `+serviceCols+` FROM compute_services WHERE binary_name = $1 ORDER BY id`, binary)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Service
	for rows.Next() {
		sv, err := scanService(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sv)
	}
	return out, rows.Err()
}
