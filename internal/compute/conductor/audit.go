package conductor

import (
	"context"
	"errors"
	"maps"

	"github.com/kumo-cloud/kumo/internal/compute/states"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/placement"
	"github.com/prometheus/client_golang/prometheus"
)

// The allocation audit compares placement with the servers and repairs
// drift a crash can leave (a conductor that died between a claim and
// writing its choice, a delete that lost its last step):
//
//	orphan   allocations of a deleted server, or of a finished or failed
//	         migration, are removed
//	missing  a settled server (no task running) with a host but no
//	         allocation gets its flavor claimed on its node again
//	moved    a settled server whose allocation is on another node than
//	         its host's gets it replaced by one on its host
//
// Servers with a running task are left alone (their task owns their
// allocations), and consumers that are neither servers nor migrations
// (other users of the Placement API) are never touched. Each repair is
// logged and counted in kumo_compute_allocation_repairs_total{kind}.

type auditMetrics struct {
	repairs *prometheus.CounterVec
}

func newAuditMetrics(reg prometheus.Registerer) *auditMetrics {
	m := &auditMetrics{repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kumo_compute_allocation_repairs_total",
		Help: "Placement allocations repaired by the conductor's audit, by kind (orphan, missing, moved).",
	}, []string{"kind"})}
	if reg != nil {
		if err := reg.Register(m.repairs); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				m.repairs = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	return m
}

// final migration statuses: their allocations are no longer needed.
var finalMigration = map[string]bool{"confirmed": true, "reverted": true, "completed": true, "done": true,
	"error": true, "failed": true, "cancelled": true}

// AuditReport counts the repairs of one audit.
type AuditReport struct {
	Orphans, Missing, Moved int
}

// Audit runs one allocation audit and repairs what it finds.
func (c *Conductor) Audit(ctx context.Context) (AuditReport, error) {
	var rep AuditReport
	if c.pl == nil {
		return rep, nil
	}
	if err := c.refreshEvacSources(ctx); err != nil {
		return rep, err
	}
	allocs, err := c.pl.AllAllocations(ctx)
	if err != nil {
		return rep, err
	}
	nodes, err := c.st.ListNodes(ctx, nil)
	if err != nil {
		return rep, err
	}
	provOf := map[string]string{}
	isNode := map[string]bool{}
	for _, n := range nodes {
		provOf[n.Host] = n.UUID
		isNode[n.UUID] = true
	}
	f := false
	live, err := c.st.ListInstances(ctx, store.InstanceFilter{Deleted: &f})
	if err != nil {
		return rep, err
	}
	liveBy := map[string]*store.Instance{}
	for _, i := range live {
		liveBy[i.UUID] = i
	}
	migs, err := c.st.ListMigrations(ctx, store.MigrationFilter{})
	if err != nil {
		return rep, err
	}
	migBy := map[string]*store.MigrationRecord{}
	for _, m := range migs {
		migBy[m.UUID] = m
	}
	for consumer, byProv := range allocs {
		onNodes := false
		for p := range byProv {
			onNodes = onNodes || isNode[p]
		}
		if !onNodes {
			continue
		}
		if _, ok := liveBy[consumer]; ok {
			continue
		}
		orphan := false
		if m := migBy[consumer]; m != nil {
			orphan = finalMigration[m.Status]
		} else if i, err := c.st.GetInstance(ctx, nil, consumer); err == nil && i.Deleted {
			orphan = true
		}
		if !orphan {
			continue
		}
		if err := c.pl.DeleteAllocations(ctx, consumer); err != nil && !errors.Is(err, placement.ErrNotFound) {
			c.log.Warn("audit: remove orphaned allocations", "consumer", consumer, "err", err)
			continue
		}
		rep.Orphans++
		c.audit.repairs.WithLabelValues("orphan").Inc()
		c.log.Warn("audit: removed orphaned allocations", "consumer", consumer)
	}
	for _, i := range live {
		host := i.HostName()
		if i.TaskID != nil || host == "" || i.VMState == states.Building || i.VMState == states.ShelvedOffloaded {
			continue
		}
		prov := provOf[host]
		if prov == "" {
			continue
		}
		have := allocs[i.UUID]
		if len(have) > 0 && have[prov] != nil {
			continue
		}
		res, _, _ := flavorResources(i.Flavor)
		if len(res) == 0 {
			continue
		}
		kind := "missing"
		if len(have) > 0 {
			kind = "moved"
		}
		err := c.pl.Claim(ctx, placement.ConsumerAllocations{Consumer: i.UUID, ProjectID: i.ProjectID, UserID: i.UserID,
			Allocations: map[string]map[string]int64{prov: maps.Clone(res)}}, nil)
		if err != nil {
			c.log.Warn("audit: cannot restore allocations", "instance", i.UUID, "host", host, "err", err)
			continue
		}
		if kind == "missing" {
			rep.Missing++
		} else {
			rep.Moved++
		}
		c.audit.repairs.WithLabelValues(kind).Inc()
		c.log.Warn("audit: restored allocations", "instance", i.UUID, "host", host, "kind", kind)
	}
	return rep, nil
}
