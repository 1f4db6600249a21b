package placement

import "github.com/kumo-cloud/kumo/internal/db"

// Migrations returns the placement schema. The placement package owns
// these tables; the scheduler and compute reach them through Service.
//
// Standard resource classes and traits live in code (names.go); the tables
// hold only CUSTOM_ ones. Inventories carry the sum of their allocations
// (used), maintained by the same transactions that write allocations, so
// capacity checks and candidate queries read one row per provider and class.
func Migrations() db.Set {
	return db.Set{
		Component: "placement",
		Expand: []db.Migration{
			{Version: 1, Name: "initial placement schema", SQL: schemaV1},
			// The scheduler's snapshot asks which providers changed since a
			// time (service_snapshot.go).
			{Version: 2, Name: "providers by update time", SQL: `CREATE INDEX placement_providers_updated ON placement_providers (updated_at)`},
		},
	}
}

const schemaV1 = `
CREATE TABLE placement_providers (
	uuid TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	generation BIGINT NOT NULL DEFAULT 0,
	parent_uuid TEXT REFERENCES placement_providers(uuid),
	root_uuid TEXT NOT NULL,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE INDEX placement_providers_root ON placement_providers (root_uuid);
CREATE INDEX placement_providers_parent ON placement_providers (parent_uuid);

CREATE TABLE placement_resource_classes (
	name TEXT PRIMARY KEY,
	created_at TEXT NOT NULL
);

CREATE TABLE placement_traits (
	name TEXT PRIMARY KEY,
	created_at TEXT NOT NULL
);

CREATE TABLE placement_inventories (
	provider_uuid TEXT NOT NULL REFERENCES placement_providers(uuid) ON DELETE CASCADE,
	resource_class TEXT NOT NULL,
	total BIGINT NOT NULL,
	reserved BIGINT NOT NULL,
	min_unit BIGINT NOT NULL,
	max_unit BIGINT NOT NULL,
	step_size BIGINT NOT NULL,
	allocation_ratio DOUBLE PRECISION NOT NULL,
	used BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (provider_uuid, resource_class)
);
CREATE INDEX placement_inventories_class ON placement_inventories (resource_class);

CREATE TABLE placement_provider_traits (
	provider_uuid TEXT NOT NULL REFERENCES placement_providers(uuid) ON DELETE CASCADE,
	trait TEXT NOT NULL,
	PRIMARY KEY (provider_uuid, trait)
);
CREATE INDEX placement_provider_traits_trait ON placement_provider_traits (trait);

CREATE TABLE placement_provider_aggregates (
	provider_uuid TEXT NOT NULL REFERENCES placement_providers(uuid) ON DELETE CASCADE,
	aggregate_uuid TEXT NOT NULL,
	PRIMARY KEY (provider_uuid, aggregate_uuid)
);
CREATE INDEX placement_provider_aggregates_agg ON placement_provider_aggregates (aggregate_uuid);

CREATE TABLE placement_consumers (
	uuid TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	consumer_type TEXT,
	generation BIGINT NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE INDEX placement_consumers_project ON placement_consumers (project_id, user_id);

CREATE TABLE placement_allocations (
	consumer_uuid TEXT NOT NULL REFERENCES placement_consumers(uuid),
	provider_uuid TEXT NOT NULL REFERENCES placement_providers(uuid),
	resource_class TEXT NOT NULL,
	used BIGINT NOT NULL,
	PRIMARY KEY (consumer_uuid, provider_uuid, resource_class)
);
CREATE INDEX placement_allocations_provider ON placement_allocations (provider_uuid, resource_class);
`
