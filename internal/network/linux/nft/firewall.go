package nft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// Firewall enforces Desired on one host (one network namespace).
type Firewall struct {
	log    *slog.Logger
	dial   func() (*nftables.Conn, error)
	syncer *Syncer
	// CheckBrNetfilter, when set, makes Apply require br_netfilter's
	// bridge-nf-call-iptables/ip6tables in the current network namespace
	// (set them to 1 if they are not). Off for namespaces other than the
	// process's own (tests), whose defaults are already 1.
	CheckBrNetfilter bool

	mu     sync.Mutex
	ids    map[string]uint32 // port id → mark id
	loaded bool
}

// NewFirewall returns a Firewall whose nftables connections are made by
// dial; nil means the current network namespace.
func NewFirewall(log *slog.Logger, dial func() (*nftables.Conn, error)) *Firewall {
	if dial == nil {
		dial = func() (*nftables.Conn, error) { return nftables.New() }
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Firewall{log: log, dial: dial, syncer: NewSyncer(dial), ids: map[string]uint32{}}
}

// Apply converges the host's security-group rules to d. It is idempotent
// and incremental (see Syncer). Problems with single ports are returned as
// *PortError values (errors.Join) after the rest has been applied; a failure
// to program the kernel changes nothing (the batch is atomic).
func (f *Firewall) Apply(ctx context.Context, d Desired) (SyncStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.CheckBrNetfilter {
		if err := ensureBrNetfilter(); err != nil {
			return SyncStats{}, err
		}
	}
	if !f.loaded {
		if err := f.loadIDs(); err != nil {
			return SyncStats{}, fmt.Errorf("read port marks: %w", err)
		}
		f.loaded = true
	}
	ids := f.assign(d)
	rs, perr := render(d, ids)
	st, err := f.syncer.Sync(ctx, rs)
	if err != nil {
		f.loaded = false
		return st, err
	}
	f.ids = ids
	if st.Changed() {
		f.log.Debug("security groups applied", "chains", st.ChainsWritten, "elems_added", st.ElemsAdded,
			"elems_deleted", st.ElemsDeleted, "chains_deleted", st.ChainsDeleted)
	}
	return st, perr
}

// Remove deletes Kumo's security-group tables (all filtering off).
func (f *Firewall) Remove(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids, f.loaded = map[string]uint32{}, false
	return errors.Join(f.syncer.DeleteTable(ctx, nftables.TableFamilyBridge, TableName),
		f.syncer.DeleteTable(ctx, nftables.TableFamilyINet, TableName))
}

// assign keeps the mark ids of known ports and gives new ports the lowest
// free ones, so adding a port never renumbers another.
func (f *Firewall) assign(d Desired) map[string]uint32 {
	ids := map[string]uint32{}
	used := map[uint32]bool{}
	ports := securedPorts(d.Ports)
	for _, p := range ports {
		if id, ok := f.ids[p.ID]; ok {
			ids[p.ID] = id
			used[id] = true
		}
	}
	next := uint32(1)
	for _, p := range ports {
		if _, ok := ids[p.ID]; ok {
			continue
		}
		for used[next] {
			next++
		}
		ids[p.ID] = next
		used[next] = true
	}
	return ids
}

// loadIDs reads the port → mark assignment back from the egress map, so a
// restarted agent keeps every port's mark.
func (f *Firewall) loadIDs() error {
	conn, err := f.dial()
	if err != nil {
		return err
	}
	tab := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	set, err := conn.GetSetByName(tab, "egress")
	if err != nil {
		if errors.Is(err, unix.ENOENT) || strings.Contains(err.Error(), "no such file") {
			return nil
		}
		return err
	}
	elems, err := conn.GetSetElements(set)
	if err != nil {
		return err
	}
	ids := map[string]uint32{}
	for _, e := range elems {
		if e.VerdictData == nil || !strings.HasPrefix(e.VerdictData.Chain, "o-") {
			continue
		}
		ids[strings.TrimPrefix(e.VerdictData.Chain, "o-")] = u32(e.Key) & markIDMask
	}
	f.ids = ids
	return nil
}

// PortIDs lists the ports with filtering in place, sorted (for status).
func (f *Firewall) PortIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id := range f.ids {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func ensureBrNetfilter() error {
	for _, name := range []string{"bridge-nf-call-iptables", "bridge-nf-call-ip6tables"} {
		p := "/proc/sys/net/bridge/" + name
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("security groups need br_netfilter (%s): %w", p, err)
		}
		if strings.TrimSpace(string(b)) != "1" {
			if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
				return fmt.Errorf("enable %s: %w", name, err)
			}
		}
	}
	return nil
}
