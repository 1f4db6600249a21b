package volume

import "github.com/kumo-cloud/kumo/internal/db"

// DefaultTypeID is the id of the __DEFAULT__ volume type the migration
// creates, as Cinder's own migration does.
const DefaultTypeID = "5a8f3c2e-9d3b-4c1e-8a47-2f6b1d0e7c11"

// Migrations returns the schema of the volume service (component "volume").
func Migrations() db.Set {
	return db.Set{
		Component: "volume",
		Expand: []db.Migration{
			{Version: 1, Name: "volumes, types, snapshots, attachments, backups, quotas, services", SQL: `
CREATE TABLE volume_types (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	description TEXT,
	is_public BOOLEAN NOT NULL DEFAULT TRUE,
	created_at TEXT NOT NULL,
	updated_at TEXT
);
CREATE TABLE volume_type_extra_specs (
	type_id TEXT NOT NULL REFERENCES volume_types (id) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (type_id, key)
);
CREATE TABLE volume_type_projects (
	type_id TEXT NOT NULL REFERENCES volume_types (id) ON DELETE CASCADE,
	project_id TEXT NOT NULL,
	PRIMARY KEY (type_id, project_id)
);
INSERT INTO volume_types (id, name, description, is_public, created_at)
VALUES ('` + DefaultTypeID + `', '__DEFAULT__', 'Default Volume Type', TRUE, '2026-01-01T00:00:00.000000Z');
CREATE TABLE volumes (
	id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	name TEXT,
	description TEXT,
	size INTEGER NOT NULL,
	status TEXT NOT NULL,
	attach_status TEXT NOT NULL,
	availability_zone TEXT NOT NULL,
	type_id TEXT NOT NULL REFERENCES volume_types (id),
	snapshot_id TEXT,
	source_volid TEXT,
	image_id TEXT,
	bootable BOOLEAN NOT NULL DEFAULT FALSE,
	multiattach BOOLEAN NOT NULL DEFAULT FALSE,
	host TEXT,
	location TEXT,
	image_metadata TEXT NOT NULL DEFAULT '{}',
	admin_metadata TEXT NOT NULL DEFAULT '{}',
	task TEXT,
	created_at TEXT NOT NULL,
	updated_at TEXT
);
CREATE INDEX volumes_project_idx ON volumes (project_id, created_at, id);
CREATE INDEX volumes_usage_idx ON volumes (project_id, size);
CREATE INDEX volumes_host_idx ON volumes (host, size);
CREATE INDEX volumes_status_idx ON volumes (status);
CREATE TABLE volume_metadata (
	volume_id TEXT NOT NULL REFERENCES volumes (id) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (volume_id, key)
);
CREATE TABLE volume_snapshots (
	id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	volume_id TEXT NOT NULL REFERENCES volumes (id),
	name TEXT,
	description TEXT,
	size INTEGER NOT NULL,
	status TEXT NOT NULL,
	progress TEXT NOT NULL DEFAULT '0%',
	location TEXT,
	metadata TEXT NOT NULL DEFAULT '{}',
	task TEXT,
	created_at TEXT NOT NULL,
	updated_at TEXT
);
CREATE INDEX volume_snapshots_project_idx ON volume_snapshots (project_id, created_at, id);
CREATE INDEX volume_snapshots_volume_idx ON volume_snapshots (volume_id);
CREATE INDEX volume_snapshots_usage_idx ON volume_snapshots (project_id, size);
CREATE TABLE volume_attachments (
	id TEXT PRIMARY KEY,
	volume_id TEXT NOT NULL REFERENCES volumes (id) ON DELETE CASCADE,
	project_id TEXT NOT NULL,
	instance_uuid TEXT,
	attached_host TEXT,
	mountpoint TEXT,
	attach_status TEXT NOT NULL,
	attach_mode TEXT NOT NULL DEFAULT 'rw',
	connector TEXT,
	delete_on_termination BOOLEAN NOT NULL DEFAULT FALSE,
	tag TEXT,
	attach_time TEXT,
	detach_time TEXT,
	created_at TEXT NOT NULL,
	updated_at TEXT
);
CREATE INDEX volume_attachments_volume_idx ON volume_attachments (volume_id);
CREATE INDEX volume_attachments_instance_idx ON volume_attachments (instance_uuid);
CREATE TABLE volume_backups (
	id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	volume_id TEXT NOT NULL,
	name TEXT,
	description TEXT,
	size INTEGER NOT NULL,
	status TEXT NOT NULL,
	fail_reason TEXT,
	location TEXT,
	task TEXT,
	created_at TEXT NOT NULL,
	updated_at TEXT
);
CREATE INDEX volume_backups_project_idx ON volume_backups (project_id, created_at, id);
CREATE TABLE volume_quotas (
	project_id TEXT NOT NULL,
	resource TEXT NOT NULL,
	hard_limit BIGINT NOT NULL,
	PRIMARY KEY (project_id, resource)
);
CREATE TABLE volume_services (
	binary_name TEXT NOT NULL,
	host TEXT NOT NULL,
	disabled BOOLEAN NOT NULL DEFAULT FALSE,
	disabled_reason TEXT,
	updated_at TEXT,
	PRIMARY KEY (binary_name, host)
);
`},
			{Version: 2, Name: "qos specs and their volume type associations", SQL: qosSchema},
		},
	}
}
