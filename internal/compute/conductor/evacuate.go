package conductor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/kumo-cloud/kumo/internal/compute/rpc"
	"github.com/kumo-cloud/kumo/internal/compute/store"
	"github.com/kumo-cloud/kumo/internal/placement"
)

// Evacuation allocations, as Nova keeps them: the source host is down,
// not gone, and its guest may still exist there, so the instance
// consumer holds allocations on both the source and the destination
// from the schedule step on; the migration ends "done". The source
// allocations are removed, and the migration "completed", when
//
//   - the source compute reports again (it starts, or its service is no
//     longer forced down, or it heartbeats again after being down): the
//     evacuated guest is destroyed there first (cleanupEvacuated);
//   - or its compute service is deleted (ReleaseEvacuatedSources, from
//     DELETE /os-services).
//
// A failed evacuation gives the instance its source allocations only.

// sourceAllocations returns the part of an instance's allocations that
// is on host's node (all of them when the node is unknown).
func (c *Conductor) sourceAllocations(ctx context.Context, instance, host string) (map[string]map[string]int64, error) {
	_, all, err := c.pl.Allocations(ctx, instance)
	if err != nil || len(all) == 0 {
		return all, err
	}
	n, err := c.st.NodeByHost(ctx, host)
	if errors.Is(err, store.ErrNotFound) {
		return all, nil
	}
	if err != nil {
		return nil, err
	}
	if a, ok := all[n.UUID]; ok {
		return map[string]map[string]int64{n.UUID: a}, nil
	}
	return all, nil
}

// evacuationClaim returns the claim of an evacuation: the destination
// for the instance, next to its source allocations.
func (c *Conductor) evacuationClaim(ctx context.Context, i *store.Instance) (func(context.Context, int, map[string]map[string]int64) error, error) {
	src, err := c.sourceAllocations(ctx, i.UUID, i.HostName())
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, _ int, dest map[string]map[string]int64) error {
		both := maps.Clone(src)
		if both == nil {
			both = map[string]map[string]int64{}
		}
		for p, a := range dest {
			if both[p] != nil {
				return fmt.Errorf("%w: the destination is the source", placement.ErrConcurrentUpdate)
			}
			both[p] = a
		}
		return c.pl.Claim(ctx, placement.ConsumerAllocations{Consumer: i.UUID, ProjectID: i.ProjectID, UserID: i.UserID,
			ConsumerType: "INSTANCE", Allocations: both}, nil)
	}, nil
}

// keepOnly rewrites a consumer's allocations without those on the
// providers drop says to drop (consumer generation checked, retried).
func keepOnly(ctx context.Context, pl *placement.Service, consumer string, drop func(prov string) bool) error {
	for try := 0; ; try++ {
		cons, all, err := pl.Allocations(ctx, consumer)
		if err != nil || cons == nil {
			return err
		}
		keep := map[string]map[string]int64{}
		for p, a := range all {
			if !drop(p) {
				keep[p] = a
			}
		}
		if len(keep) == len(all) {
			return nil
		}
		gen := cons.Generation
		err = pl.Claim(ctx, placement.ConsumerAllocations{Consumer: consumer, ProjectID: cons.ProjectID, UserID: cons.UserID,
			ConsumerType: cons.ConsumerType, CheckGeneration: true, Generation: &gen, Allocations: keep}, nil)
		if !errors.Is(err, placement.ErrConcurrentUpdate) || try == 4 {
			return err
		}
	}
}

// releaseEvacuation undoes an evacuation's claim: the instance keeps
// its source allocations only.
func (c *Conductor) releaseEvacuation(ctx context.Context, r *run) error {
	src := r.task.SourceHost
	if src == "" {
		src = r.inst.HostName()
	}
	n, err := c.st.NodeByHost(ctx, src)
	if err != nil {
		return err
	}
	return keepOnly(ctx, c.pl, r.inst.UUID, func(p string) bool { return p != n.UUID })
}

// ReleaseEvacuatedSources removes the allocations that instances
// evacuated from host still hold on its provider (prov) and completes
// their evacuations. destroy, when not nil, first removes the guest left
// on the host; an instance whose guest cannot be removed keeps them.
// It returns the instances done.
func ReleaseEvacuatedSources(ctx context.Context, st *store.Store, pl *placement.Service, host, prov string,
	destroy func(instance string) error, log *slog.Logger) (map[string]bool, error) {
	migs, err := st.ListMigrations(ctx, store.MigrationFilter{SourceHost: host, Type: "evacuation", Status: "done"})
	if err != nil {
		return nil, err
	}
	done := map[string]bool{}
	var failed error
	for _, m := range migs {
		if destroy != nil {
			if err := destroy(m.InstanceUUID); err != nil {
				failed = errors.Join(failed, fmt.Errorf("destroy evacuated %s: %w", m.InstanceUUID, err))
				continue
			}
		}
		if prov != "" {
			if err := keepOnly(ctx, pl, m.InstanceUUID, func(p string) bool { return p == prov }); err != nil {
				failed = errors.Join(failed, fmt.Errorf("source allocations of %s: %w", m.InstanceUUID, err))
				continue
			}
		}
		if err := st.SetMigrationStatus(ctx, m.UUID, "completed"); err != nil {
			failed = errors.Join(failed, err)
			continue
		}
		done[m.InstanceUUID] = true
		if log != nil {
			log.Info("evacuated instance cleaned up on its source", "host", host, "instance", m.InstanceUUID, "migration", m.UUID)
		}
	}
	return done, failed
}

// hostSeen is what the conductor remembers of a host's last report.
type hostSeen struct {
	at      time.Time
	forced  bool // its service was forced down
	retry   bool // an evacuation cleanup failed: try again
	running bool // a cleanup is running
}

// cleanupEvacuated starts, when a host reports after being down, for
// the first time to this conductor, or while evacuations from it are
// known to be done (evacSources), the cleanup of the instances
// evacuated from it: their guests there are destroyed and their source
// allocations released. It runs apart from the report, which the agent
// waits for while the destroy needs the agent.
func (c *Conductor) cleanupEvacuated(r *rpc.HostReport, svc *store.Service) {
	now := time.Now()
	c.mu.Lock()
	prev, seen := c.seen[r.Host]
	back := r.Startup || !seen || prev.forced || prev.retry || now.Sub(prev.at) > c.cfg.ServiceDownTime || c.evacSources[r.Host]
	start := back && !svc.ForcedDown && c.pl != nil && !prev.running
	c.seen[r.Host] = hostSeen{at: now, forced: svc.ForcedDown, retry: prev.retry && !start, running: prev.running || start}
	c.mu.Unlock()
	if !start {
		return
	}
	running := map[string]bool{}
	for _, p := range r.Instances {
		running[p.UUID] = true
	}
	host := r.Host
	c.mu.Lock()
	life := c.ctx // the conductor's, not the report's
	c.mu.Unlock()
	go func() {
		err := c.releaseEvacuatedFrom(life, host, running)
		if err != nil && life.Err() == nil {
			c.log.Warn("evacuation cleanup", "host", host, "err", err)
		}
		c.mu.Lock()
		s := c.seen[host]
		s.running, s.retry = false, err != nil
		c.seen[host] = s
		if err == nil {
			delete(c.evacSources, host)
		}
		c.mu.Unlock()
	}()
}

func (c *Conductor) releaseEvacuatedFrom(ctx context.Context, host string, running map[string]bool) error {
	n, err := c.st.NodeByHost(ctx, host)
	if err != nil {
		return err
	}
	destroy := func(uuid string) error {
		if !running[uuid] {
			return nil
		}
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_, err := c.Op(ctx, host, rpc.OpRequest{Op: rpc.OpDestroy, Instance: rpc.Instance{UUID: uuid}})
		return err
	}
	_, err = ReleaseEvacuatedSources(ctx, c.st, c.pl, host, n.UUID, destroy, c.log)
	return err
}

// evacuatedFrom notes that an evacuation from host is done: its next
// report (not forced down) cleans up.
func (c *Conductor) evacuatedFrom(host string) {
	if host == "" {
		return
	}
	c.mu.Lock()
	c.evacSources[host] = true
	c.mu.Unlock()
}

// refreshEvacSources reads which hosts evacuations are waiting for (the
// audit calls it, for evacuations another conductor finished).
func (c *Conductor) refreshEvacSources(ctx context.Context) error {
	migs, err := c.st.ListMigrations(ctx, store.MigrationFilter{Type: "evacuation", Status: "done"})
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range migs {
		if m.SourceCompute != "" {
			c.evacSources[m.SourceCompute] = true
		}
	}
	return nil
}
