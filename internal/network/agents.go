package network

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/network/rpc"
)

// Network agents (the "agent" extension): every network agent heartbeats
// over the bus (network.agent.report); the first heartbeat registers it.
// An agent is alive while its last heartbeat is younger than AgentDownTime.

// agentsMigration is the agents table. Its version leaves room below for
// other expand steps of the networking schema.
var agentsMigration = db.Migration{Version: 10, Name: "network agents", SQL: `
CREATE TABLE net_agents (
	id TEXT PRIMARY KEY,
	agent_type TEXT NOT NULL,
	host TEXT NOT NULL,
	binary_name TEXT NOT NULL,
	topic TEXT NOT NULL DEFAULT 'N/A',
	availability_zone TEXT,
	admin_state_up BOOLEAN NOT NULL DEFAULT TRUE,
	description TEXT,
	configurations TEXT NOT NULL DEFAULT '{}',
	tunnel_ip TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	started_at TEXT NOT NULL,
	heartbeat_at TEXT NOT NULL,
	UNIQUE (agent_type, host)
);
`}

// DefaultAgentDownTime is Neutron's agent_down_time.
const DefaultAgentDownTime = 75 * time.Second

type agentRow struct {
	ID, Type, Host, Binary, Topic, AZ, Description string
	AdminStateUp                                   bool
	Config                                         map[string]any
	TunnelIP                                       string
	Created, Started, Heartbeat                    time.Time
}

// agentID is stable per (type, host), so a re-registered agent keeps its id.
func agentID(typ, host string) string {
	h := sha256.Sum256([]byte("kumo-agent\x00" + typ + "\x00" + host))
	b := h[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// recordReport registers or refreshes an agent from its heartbeat.
func (s *Service) recordReport(ctx context.Context, r rpc.AgentReport) error {
	if r.Host == "" || r.AgentType == "" {
		return nil
	}
	now := db.FormatTime(s.nowUTC())
	started := now
	if t, err := time.Parse(time.RFC3339, r.StartedAt); err == nil {
		started = db.FormatTime(t.UTC())
	}
	conf := r.Configurations
	if conf == nil {
		conf = map[string]any{}
	}
	confJSON := jsonText(conf)
	az := s.cfg.AvailabilityZone
	var azArg any = az
	if r.AgentType != "DHCP agent" && r.AgentType != "L3 agent" {
		azArg = nil // Neutron shows zones for DHCP and L3 agents only
	}
	return s.db.WithTx(ctx, func(tx *sqlTx) error {
		res, err := tx.ExecContext(ctx, `UPDATE net_agents SET binary_name = $1, configurations = $2, tunnel_ip = $3,
			started_at = $4, heartbeat_at = $5 WHERE agent_type = $6 AND host = $7`,
			r.Binary, confJSON, r.TunnelIP, started, now, r.AgentType, r.Host)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO net_agents (id, agent_type, host, binary_name, availability_zone,
			configurations, tunnel_ip, created_at, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			agentID(r.AgentType, r.Host), r.AgentType, r.Host, r.Binary, azArg, confJSON, r.TunnelIP, now, started, now)
		if db.IsUniqueViolation(err) {
			return nil // a concurrent first heartbeat won
		}
		return err
	})
}

const agentCols = `id, agent_type, host, binary_name, topic, availability_zone, admin_state_up, description, configurations,
	tunnel_ip, created_at, started_at, heartbeat_at`

func scanAgent(row interface{ Scan(...any) error }) (*agentRow, error) {
	a := &agentRow{}
	var az, desc sql.NullString
	var conf string
	var created, started, hb sql.NullString
	if err := row.Scan(&a.ID, &a.Type, &a.Host, &a.Binary, &a.Topic, &az, &a.AdminStateUp, &desc, &conf, &a.TunnelIP,
		&created, &started, &hb); err != nil {
		return nil, err
	}
	a.AZ, a.Description = az.String, desc.String
	_ = json.Unmarshal([]byte(conf), &a.Config)
	a.Created, a.Started, a.Heartbeat = db.ParseTime(created), db.ParseTime(started), db.ParseTime(hb)
	return a, nil
}

func (s *Service) loadAgents(ctx context.Context) ([]*agentRow, error) {
	rows, err := s.db.Reader().QueryContext(ctx, "SELECT "+agentCols+" FROM net_agents ORDER BY host, agent_type")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*agentRow
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *Service) agentDownTime() time.Duration {
	if s.cfg.AgentDownTime > 0 {
		return s.cfg.AgentDownTime
	}
	return DefaultAgentDownTime
}

// agentTime is Neutron's agent timestamp format.
func agentTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

func (s *Service) renderAgent(a *agentRow) map[string]any {
	conf := a.Config
	if conf == nil {
		conf = map[string]any{}
	}
	return map[string]any{
		"id": a.ID, "agent_type": a.Type, "host": a.Host, "binary": a.Binary, "topic": a.Topic,
		"availability_zone": nilIfEmpty(a.AZ), "admin_state_up": a.AdminStateUp, "description": nilIfEmpty(a.Description),
		"configurations": conf, "alive": s.now().Sub(a.Heartbeat) < s.agentDownTime(),
		"created_at": agentTime(a.Created), "started_at": agentTime(a.Started), "heartbeat_timestamp": agentTime(a.Heartbeat),
		"resources_synced": nil, "resource_versions": map[string]any{},
	}
}

func (s *Service) listAgents(r *http.Request) (*apiutil.Response, error) {
	if err := s.authorize(s.caller(r), "get_agent", nil); err != nil {
		return nil, err
	}
	all, err := s.loadAgents(r.Context())
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "id", "agent_type", "host", "binary", "topic", "availability_zone", "alive", "admin_state_up", "description", "fields":
		default:
			return nil, badInput("['%s'] is invalid attribute for filtering", k)
		}
	}
	out := []any{}
	for _, a := range all {
		m := s.renderAgent(a)
		keep := true
		for k, vals := range q {
			if k == "fields" {
				continue
			}
			var have string
			switch v := m[k].(type) {
			case string:
				have = v
			case bool:
				have = strconv.FormatBool(v)
			case nil:
				have = ""
			}
			match := slices.ContainsFunc(vals, func(x string) bool {
				if _, isBool := m[k].(bool); isBool {
					b, err := strconv.ParseBool(x)
					return err == nil && strconv.FormatBool(b) == have
				}
				return x == have
			})
			keep = keep && match
		}
		if keep {
			out = append(out, selectFields(m, showFields(r)))
		}
	}
	return apiutil.JSON(200, map[string]any{"agents": out}), nil
}

func (s *Service) loadAgent(ctx context.Context, id string) (*agentRow, error) {
	a, err := scanAgent(s.db.Reader().QueryRowContext(ctx, "SELECT "+agentCols+" FROM net_agents WHERE id = $1", id))
	if err == sql.ErrNoRows {
		return nil, notFound("AgentNotFound", "Agent %s could not be found.", id)
	}
	return a, err
}

func (s *Service) showAgent(r *http.Request) (*apiutil.Response, error) {
	if err := s.authorize(s.caller(r), "get_agent", nil); err != nil {
		return nil, err
	}
	a, err := s.loadAgent(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"agent": selectFields(s.renderAgent(a), showFields(r))}), nil
}

func (s *Service) updateAgent(r *http.Request) (*apiutil.Response, error) {
	if err := s.authorize(s.caller(r), "update_agent", nil); err != nil {
		return nil, err
	}
	ctx := r.Context()
	a, err := s.loadAgent(ctx, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	objs, _, err := readBody(r, "agent", "agents", false)
	if err != nil {
		return nil, err
	}
	at := objs[0]
	if err := at.checkKeys("PUT", []string{"admin_state_up", "description"}, []string{"id", "agent_type", "host", "binary", "topic", "alive"}); err != nil {
		return nil, err
	}
	if v, ok, err := at.boolean("admin_state_up"); err != nil {
		return nil, err
	} else if ok {
		a.AdminStateUp = v
	}
	if v, valid, ok, err := at.nullableStr("description"); err != nil {
		return nil, err
	} else if ok {
		a.Description = ""
		if valid {
			a.Description = v
		}
	}
	var desc any
	if a.Description != "" {
		desc = a.Description
	}
	err = s.db.WithTx(ctx, func(tx *sqlTx) error {
		_, err := tx.ExecContext(ctx, `UPDATE net_agents SET admin_state_up = $1, description = $2 WHERE id = $3`, a.AdminStateUp, desc, a.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"agent": s.renderAgent(a)}), nil
}

func (s *Service) deleteAgent(r *http.Request) (*apiutil.Response, error) {
	if err := s.authorize(s.caller(r), "delete_agent", nil); err != nil {
		return nil, err
	}
	a, err := s.loadAgent(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	err = s.db.WithTx(r.Context(), func(tx *sqlTx) error {
		_, err := tx.ExecContext(r.Context(), `DELETE FROM net_agents WHERE id = $1`, a.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

// tunnelIPs maps hosts to the VXLAN address their L2 agent reported.
func (s *Service) tunnelIPs(ctx context.Context, q db.Querier) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT host, tunnel_ip FROM net_agents WHERE agent_type = 'Linux bridge agent'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var h, ip string
		if err := rows.Scan(&h, &ip); err != nil {
			return nil, err
		}
		out[h] = ip
	}
	return out, rows.Err()
}
