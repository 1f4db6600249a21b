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
			{Version: 2, Name: "credentials, limits, policies, endpoint filters, access rules, trusts, federation mappings", SQL: schemaV2},
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

// schemaV2 adds the resources of Keystone's credential, unified limits,
// policy, OS-EP-FILTER, access-rule and OS-TRUST APIs.
const schemaV2 = `
-- type ec2 credentials have id = hex(sha256(access)); blob is the JSON
-- text the client sent, kept as is.
CREATE TABLE credentials (
	id TEXT PRIMARY KEY,
	user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	project_id TEXT REFERENCES projects(id) ON DELETE CASCADE,
	type TEXT NOT NULL,
	blob TEXT NOT NULL,
	extra TEXT NOT NULL DEFAULT '{}',
	created_at TEXT NOT NULL
);
CREATE INDEX credentials_user ON credentials (user_id);

-- region_id '' means every region. Deleting a service deletes its
-- registered limits and their limits.
CREATE TABLE registered_limits (
	id TEXT PRIMARY KEY,
	service_id TEXT NOT NULL REFERENCES catalog_services(id) ON DELETE CASCADE,
	region_id TEXT NOT NULL DEFAULT '',
	resource_name TEXT NOT NULL,
	default_limit BIGINT NOT NULL,
	description TEXT,
	UNIQUE (service_id, region_id, resource_name)
);

-- A limit belongs to a project or (domain_id set) to a domain.
CREATE TABLE limits (
	id TEXT PRIMARY KEY,
	project_id TEXT REFERENCES projects(id) ON DELETE CASCADE,
	domain_id TEXT REFERENCES domains(id) ON DELETE CASCADE,
	service_id TEXT NOT NULL,
	region_id TEXT NOT NULL DEFAULT '',
	resource_name TEXT NOT NULL,
	resource_limit BIGINT NOT NULL,
	description TEXT,
	FOREIGN KEY (service_id, region_id, resource_name) REFERENCES registered_limits (service_id, region_id, resource_name) ON DELETE CASCADE
);
CREATE UNIQUE INDEX limits_target ON limits (service_id, region_id, resource_name, COALESCE(project_id, ''), COALESCE(domain_id, ''));

CREATE TABLE policies (
	id TEXT PRIMARY KEY,
	type TEXT NOT NULL,
	blob TEXT NOT NULL,
	extra TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE project_endpoints (
	project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	endpoint_id TEXT NOT NULL REFERENCES catalog_endpoints(id) ON DELETE CASCADE,
	PRIMARY KEY (project_id, endpoint_id)
);
CREATE INDEX project_endpoints_endpoint ON project_endpoints (endpoint_id);

CREATE TABLE access_rules (
	id TEXT PRIMARY KEY,
	user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	service TEXT NOT NULL,
	path TEXT NOT NULL,
	method TEXT NOT NULL,
	UNIQUE (user_id, service, path, method)
);

CREATE TABLE application_credential_access_rules (
	application_credential_id TEXT NOT NULL REFERENCES application_credentials(id) ON DELETE CASCADE,
	access_rule_id TEXT NOT NULL REFERENCES access_rules(id),
	PRIMARY KEY (application_credential_id, access_rule_id)
);
CREATE INDEX app_cred_access_rules_rule ON application_credential_access_rules (access_rule_id);

-- remaining_uses NULL means unlimited. Deleted trusts stay with deleted_at
-- set, as in Keystone.
CREATE TABLE trusts (
	id TEXT PRIMARY KEY,
	trustor_user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	trustee_user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	project_id TEXT REFERENCES projects(id) ON DELETE CASCADE,
	impersonation BOOLEAN NOT NULL DEFAULT FALSE,
	allow_redelegation BOOLEAN NOT NULL DEFAULT FALSE,
	redelegation_count INTEGER NOT NULL DEFAULT 0,
	expires_at TEXT,
	remaining_uses INTEGER,
	deleted_at TEXT,
	created_at TEXT NOT NULL
);
CREATE INDEX trusts_trustor ON trusts (trustor_user_id);
CREATE INDEX trusts_trustee ON trusts (trustee_user_id);

-- OS-FEDERATION mappings: rules kept as the JSON text the client sent
-- (validated against Keystone's mapping schema).
CREATE TABLE federation_mappings (
	id TEXT PRIMARY KEY,
	rules TEXT NOT NULL,
	schema_version TEXT NOT NULL DEFAULT '1.0'
);

CREATE TABLE trust_roles (
	trust_id TEXT NOT NULL REFERENCES trusts(id) ON DELETE CASCADE,
	role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
	PRIMARY KEY (trust_id, role_id)
);
`
