package store

// vmStateIndexV6 lets the conductor's soft-delete reclaim find
// SOFT_DELETED servers without scanning every row (the server-list
// indexes are migration 4).
const vmStateIndexV6 = `
CREATE INDEX compute_instances_vm_state ON compute_instances (vm_state);
`
