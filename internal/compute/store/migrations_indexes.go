package store

// vmStateIndexV6 lets the conductor's soft-delete reclaim find
// SOFT_DELETED servers without scanning every row (the server-list
// indexes are migration 4).
const vmStateIndexV6 = `
CREATE INDEX compute_instances_vm_state ON compute_instances (vm_state);
`

// hostIndexV7 lets a host's server list (the conductor's power sync on
// every heartbeat, os-hypervisors servers) read that host's rows in list
// order: with only (host, deleted), SQLite walked the
// (deleted, created_at, id) index over every live server to skip the sort,
// so each heartbeat cost O(all servers) (~100 ms among 10,000).
const hostIndexV7 = `
CREATE INDEX compute_instances_host_created ON compute_instances (host, deleted, created_at, id);
`

// migrationHostIndexesV8 lets the migrations of a host be found without
// reading every migration record: the evacuation cleanup (each returning
// host, each deleted compute service) asks for those whose source is the
// host, a service delete and GET /os-migrations?host= for those whose
// source or destination it is (an OR the engines serve from both indexes).
const migrationHostIndexesV8 = `
CREATE INDEX compute_migrations_source ON compute_migrations (source_compute);
CREATE INDEX compute_migrations_dest ON compute_migrations (dest_compute);
`
