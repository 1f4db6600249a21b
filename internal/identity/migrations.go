package identity

import "github.com/kumo-cloud/kumo/internal/db"

// Migrations returns the identity schema. The identity package owns these
// tables; other services reach identity data only through the token
// validator and the HTTP API.
func Migrations() db.Set {
	return db.Set{
		Component: "identity",
		Expand: []db.Migration{
			{Version: 1, Name: "initial identity schema", SQL: schemaV1},
		},
	}
}

const schemaV1 = `
CREATE TABLE identity_meta (
	id INTEGER PRIMARY KEY,
	generation BIGINT NOT NULL
);
INSERT INTO identity_meta (id, generation) VALUES (1, 1);

CREATE TABLE domains (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	enabled BOOLEAN NOT NULL DEFAULT TRUE,
	extra TEXT NOT NULL DEFAULT '{}',
	created_at TEXT NOT NULL
);

CREATE TABLE projects (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	domain_id TEXT NOT NULL REFERENCES domains(id),
	parent_id TEXT REFERENCES projects(id),
	description TEXT NOT NULL DEFAULT '',
	enabled BOOLEAN NOT NULL DEFAULT TRUE,
	tags TEXT NOT NULL DEFAULT '[]',
	extra TEXT NOT NULL DEFAULT '{}',
	created_at TEXT NOT NULL,
	UNIQUE (domain_id, name)
);
CREATE INDEX projects_parent ON projects (parent_id);

CREATE TABLE users (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	domain_id TEXT NOT NULL REFERENCES domains(id),
	enabled BOOLEAN NOT NULL DEFAULT TRUE,
	default_project_id TEXT,
	description TEXT,
	password_hash TEXT,
	password_created_at TEXT,
	password_expires_at TEXT,
	failed_auth_count INTEGER NOT NULL DEFAULT 0,
	failed_auth_at TEXT,
	last_active_at TEXT,
	extra TEXT NOT NULL DEFAULT '{}',
	created_at TEXT NOT NULL,
	UNIQUE (domain_id, name)
);

CREATE TABLE user_groups (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	domain_id TEXT NOT NULL REFERENCES domains(id),
	description TEXT NOT NULL DEFAULT '',
	extra TEXT NOT NULL DEFAULT '{}',
	created_at TEXT NOT NULL,
	UNIQUE (domain_id, name)
);

CREATE TABLE group_members (
	group_id TEXT NOT NULL REFERENCES user_groups(id) ON DELETE CASCADE,
	user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE roles (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	domain_id TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	extra TEXT NOT NULL DEFAULT '{}',
	created_at TEXT NOT NULL,
	UNIQUE (domain_id, name)
);

CREATE TABLE implied_roles (
	prior_role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
	implied_role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
	PRIMARY KEY (prior_role_id, implied_role_id)
);

-- kind: user_project, group_project, user_domain, group_domain, user_system, group_system
CREATE TABLE role_assignments (
	kind TEXT NOT NULL,
	actor_id TEXT NOT NULL,
	target_id TEXT NOT NULL,
	role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
	inherited BOOLEAN NOT NULL DEFAULT FALSE,
	PRIMARY KEY (kind, actor_id, target_id, role_id, inherited)
);
CREATE INDEX role_assignments_actor ON role_assignments (actor_id);
CREATE INDEX role_assignments_target ON role_assignments (target_id);

CREATE TABLE regions (
	id TEXT PRIMARY KEY,
	description TEXT NOT NULL DEFAULT '',
	parent_region_id TEXT REFERENCES regions(id),
	extra TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE catalog_services (
	id TEXT PRIMARY KEY,
	type TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	enabled BOOLEAN NOT NULL DEFAULT TRUE,
	extra TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE catalog_endpoints (
	id TEXT PRIMARY KEY,
	service_id TEXT NOT NULL REFERENCES catalog_services(id) ON DELETE CASCADE,
	interface TEXT NOT NULL,
	url TEXT NOT NULL,
	region_id TEXT REFERENCES regions(id),
	enabled BOOLEAN NOT NULL DEFAULT TRUE,
	extra TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX catalog_endpoints_service ON catalog_endpoints (service_id);

CREATE TABLE application_credentials (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	secret_hash TEXT NOT NULL,
	description TEXT,
	expires_at TEXT,
	unrestricted BOOLEAN NOT NULL DEFAULT FALSE,
	created_at TEXT NOT NULL,
	UNIQUE (user_id, name)
);

CREATE TABLE application_credential_roles (
	application_credential_id TEXT NOT NULL REFERENCES application_credentials(id) ON DELETE CASCADE,
	role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
	PRIMARY KEY (application_credential_id, role_id)
);

-- kind: audit_id (one token chain), user_id (every token of a user issued before issued_before)
CREATE TABLE token_revocations (
	kind TEXT NOT NULL,
	value TEXT NOT NULL,
	issued_before TEXT NOT NULL,
	expires_at TEXT NOT NULL,
	PRIMARY KEY (kind, value)
);

CREATE TABLE token_keys (
	id INTEGER PRIMARY KEY,
	secret TEXT NOT NULL,
	created_at TEXT NOT NULL
);
`
