package network

import (
	"context"
	"database/sql"
)

// reserveSegment checks an admin-requested segment is free; without a
// segmentation id (VLAN on a physical network, VXLAN) it allocates one.
func (tx *txn) reserveSegment(ctx context.Context, seg *Segment) error {
	td := tx.s.backend.types[seg.NetworkType]
	if !td.Allocated() {
		return nil
	}
	switch seg.NetworkType {
	case "vlan", "vxlan":
		if seg.SegmentationID == 0 {
			for _, r := range td.TenantRanges() {
				if seg.NetworkType == "vlan" && r.physnet != seg.PhysicalNetwork {
					continue
				}
				id, ok, err := tx.lowestFree(ctx, seg.NetworkType, r)
				if err != nil {
					return err
				}
				if ok {
					seg.SegmentationID = id
					return nil
				}
			}
			return nerr(503, "NoNetworkAvailable", "Unable to create the network. No tenant network is available for allocation.")
		}
	}
	var taken int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_segment_allocations WHERE network_type = $1 AND physical_network = $2
		AND segmentation_id = $3`, seg.NetworkType, seg.PhysicalNetwork, seg.SegmentationID).Scan(&taken)
	if err != nil {
		return err
	}
	if taken > 0 {
		switch seg.NetworkType {
		case "flat":
			return conflict("FlatNetworkInUse", "Unable to create the flat network. Physical network %s is in use.", seg.PhysicalNetwork)
		case "vlan":
			return conflict("VlanIdInUse", "Unable to create the network. The VLAN %d on physical network %s is in use.", seg.SegmentationID, seg.PhysicalNetwork)
		default:
			return conflict("TunnelIdInUse", "Unable to create the network. The tunnel ID %d is in use.", seg.SegmentationID)
		}
	}
	return nil
}

func (tx *txn) insertSegment(ctx context.Context, seg Segment, networkID string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO net_segment_allocations (network_type, physical_network, segmentation_id, network_id)
		VALUES ($1, $2, $3, $4)`, seg.NetworkType, seg.PhysicalNetwork, seg.SegmentationID, networkID)
	return err
}

// The caller records the chosen segment with insertSegment once the
// network row exists; the table's primary key catches a concurrent
// writer that picked the same id (the transaction is then retried).

// allocateTenantSegment picks the segment of a tenant network from the
// first tenant network type that has a free id.
func (tx *txn) allocateTenantSegment(ctx context.Context) (Segment, error) {
	for _, t := range tx.s.backend.tenantTypes {
		td := tx.s.backend.types[t]
		if !td.Allocated() {
			return Segment{NetworkType: t}, nil
		}
		for _, r := range td.TenantRanges() {
			id, ok, err := tx.lowestFree(ctx, t, r)
			if err != nil {
				return Segment{}, err
			}
			if ok {
				return Segment{NetworkType: t, PhysicalNetwork: r.physnet, SegmentationID: id}, nil
			}
		}
	}
	return Segment{}, nerr(503, "NoNetworkAvailable", "Unable to create the network. No tenant network is available for allocation.")
}

// lowestFree finds the lowest unallocated id in r: the range start if
// free, else the lowest id just above an allocated one.
func (tx *txn) lowestFree(ctx context.Context, typ string, r segRange) (int, bool, error) {
	var n sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT MIN(x) FROM (
		SELECT CAST($3 AS INTEGER) AS x WHERE NOT EXISTS (SELECT 1 FROM net_segment_allocations
			WHERE network_type = $1 AND physical_network = $2 AND segmentation_id = $3)
		UNION ALL
		SELECT a.segmentation_id + 1 FROM net_segment_allocations a
		WHERE a.network_type = $1 AND a.physical_network = $2 AND a.segmentation_id >= $3 AND a.segmentation_id < $4
		AND NOT EXISTS (SELECT 1 FROM net_segment_allocations b WHERE b.network_type = $1
			AND b.physical_network = $2 AND b.segmentation_id = a.segmentation_id + 1)
	) t`, typ, r.physnet, r.min, r.max).Scan(&n)
	if err != nil {
		return 0, false, err
	}
	if !n.Valid {
		return 0, false, nil
	}
	return int(n.Int64), true, nil
}
