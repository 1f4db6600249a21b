package store

// schemaV4 adds the indexes server lists and the conductor's scans need
// at scale: the default order (newest first) within a project and across
// projects, so a page reads only its own rows instead of sorting all of
// them, and vm_state for the soft-delete reclaim.
const schemaV4 = `
CREATE INDEX compute_instances_project_created ON compute_instances (project_id, deleted, created_at);
CREATE INDEX compute_instances_created ON compute_instances (deleted, created_at);
CREATE INDEX compute_instances_vm_state ON compute_instances (vm_state);
`
