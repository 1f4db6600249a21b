package network

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
)

// Network agents (the "agent" extension): the data-plane agents report
// their state here (ReportAgent, the Go side of Neutron's state report
// RPC). An agent counts as alive while it reported within AgentDownTime.
// Port binding asks whether a live L2 agent serves a host: if none does,
// nothing would ever plug the port, so it is ACTIVE as soon as it is
// bound (Neutron's noop behaviour) and Compute does not wait for it.

// L2AgentType is the agent type of the Linux bridge data plane.
const L2AgentType = "Linux bridge agent"

// AgentReport is one state report of an agent.
type AgentReport struct {
	AgentType, Binary, Topic, Host string
	AvailabilityZone               string // "" for none
	Configurations                 map[string]any
	StartFlag                      bool // first report since the agent started
}

// Agent is a row of net_agents.
type Agent struct {
	ID, AgentType, Binary, Topic, Host, AvailabilityZone, Description string
	AdminStateUp                                                      bool
	Configurations                                                    map[string]any
	StartedAt, CreatedAt, HeartbeatAt                                 time.Time
}

const agentCols = `id, agent_type, agent_binary, topic, host, admin_state_up, availability_zone, description, configurations,
	started_at, created_at, heartbeat_at`

func scanAgent(row interface{ Scan(...any) error }) (*Agent, error) {
	a := &Agent{}
	var az sql.NullString
	var conf, started, created, beat string
	if err := row.Scan(&a.ID, &a.AgentType, &a.Binary, &a.Topic, &a.Host, &a.AdminStateUp, &az, &a.Description, &conf,
		&started, &created, &beat); err != nil {
		return nil, err
	}
	a.AvailabilityZone = az.String
	_ = json.Unmarshal([]byte(conf), &a.Configurations)
	a.StartedAt = db.ParseTime(sql.NullString{String: started, Valid: true})
	a.CreatedAt = db.ParseTime(sql.NullString{String: created, Valid: true})
	a.HeartbeatAt = db.ParseTime(sql.NullString{String: beat, Valid: true})
	return a, nil
}

func (s *Service) agentDownTime() time.Duration {
	if s.cfg.AgentDownTime > 0 {
		return s.cfg.AgentDownTime
	}
	return 75 * time.Second
}

// ReportAgent records an agent's heartbeat, registering it on first sight.
func (s *Service) ReportAgent(ctx context.Context, r AgentReport) error {
	if r.AgentType == "" || r.Host == "" {
		return badInput("agent_type and host are required")
	}
	conf := jsonText(mapOrEmpty(r.Configurations))
	az := nullStr(r.AvailabilityZone, r.AvailabilityZone != "")
	return s.withTx(ctx, func(tx *txn) error {
		now := db.FormatTime(s.nowUTC())
		var id string
		err := tx.QueryRowContext(ctx, `SELECT id FROM net_agents WHERE agent_type = $1 AND host = $2`, r.AgentType, r.Host).Scan(&id)
		if err == sql.ErrNoRows {
			_, err = tx.ExecContext(ctx, `INSERT INTO net_agents (id, agent_type, agent_binary, topic, host, availability_zone,
				configurations, started_at, created_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8)`,
				newID(), r.AgentType, r.Binary, r.Topic, r.Host, az, conf, now)
			return err
		}
		if err != nil {
			return err
		}
		if r.StartFlag {
			_, err = tx.ExecContext(ctx, `UPDATE net_agents SET agent_binary = $1, topic = $2, availability_zone = $3,
				configurations = $4, started_at = $5, heartbeat_at = $5 WHERE id = $6`, r.Binary, r.Topic, az, conf, now, id)
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE net_agents SET configurations = $1, heartbeat_at = $2 WHERE id = $3`, conf, now, id)
		return err
	})
}

// hostHasAgent reports whether a live, enabled L2 agent serves host.
func (tx *txn) hostHasAgent(ctx context.Context, host string) (bool, error) {
	since := db.FormatTime(tx.s.nowUTC().Add(-tx.s.agentDownTime()))
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM net_agents WHERE agent_type = $1 AND host = $2 AND admin_state_up
		AND heartbeat_at >= $3`, L2AgentType, host, since).Scan(&n)
	return n > 0, err
}

func neutronTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

func (s *Service) renderAgent(a *Agent) map[string]any {
	conf := a.Configurations
	if conf == nil {
		conf = map[string]any{}
	}
	return map[string]any{
		"id": a.ID, "agent_type": a.AgentType, "binary": a.Binary, "topic": a.Topic, "host": a.Host,
		"admin_state_up": a.AdminStateUp, "alive": s.nowUTC().Sub(a.HeartbeatAt) <= s.agentDownTime(),
		"availability_zone": nilIfEmpty(a.AvailabilityZone), "description": nilIfEmpty(a.Description),
		"configurations": conf, "resources_synced": nil, "started_at": neutronTime(a.StartedAt),
		"created_at": neutronTime(a.CreatedAt), "heartbeat_timestamp": neutronTime(a.HeartbeatAt),
	}
}

var agentFilters = map[string]string{"id": "id", "agent_type": "agent_type", "binary": "agent_binary", "topic": "topic",
	"host": "host", "availability_zone": "availability_zone", "description": "description"}

func (s *Service) listAgents(r *http.Request) (*apiutil.Response, error) {
	if err := s.authorize(s.caller(r), "get_agent", nil); err != nil {
		return nil, err
	}
	var b qb
	var alive []bool
	for k, vals := range r.URL.Query() {
		switch {
		case k == "fields" || k == "sort_key" || k == "sort_dir":
		case k == "admin_state_up":
			v, ok := parseBool(vals[0])
			if !ok {
				return nil, badInput("Invalid input for admin_state_up. Reason: '%s' cannot be converted to boolean.", vals[0])
			}
			b.add("admin_state_up = " + b.arg(v))
		case k == "alive":
			v, ok := parseBool(vals[0])
			if !ok {
				return nil, badInput("Invalid input for alive. Reason: '%s' cannot be converted to boolean.", vals[0])
			}
			alive = append(alive, v)
		case agentFilters[k] != "":
			b.add(agentFilters[k] + " IN (" + b.in(anys(vals)) + ")")
		default:
			return nil, badInput("['%s'] is invalid attribute for filtering", k)
		}
	}
	rows, err := s.db.Reader().QueryContext(r.Context(), "SELECT "+agentCols+" FROM net_agents"+b.clause()+" ORDER BY host, agent_type", b.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	items := []map[string]any{}
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, err
		}
		m := s.renderAgent(a)
		if len(alive) > 0 && m["alive"] != alive[0] {
			continue
		}
		items = append(items, selectFields(m, showFields(r)))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"agents": items}), nil
}

func (s *Service) loadAgent(ctx context.Context, q db.Querier, id string) (*Agent, error) {
	a, err := scanAgent(q.QueryRowContext(ctx, "SELECT "+agentCols+" FROM net_agents WHERE id = $1", id))
	if err == sql.ErrNoRows {
		return nil, notFound("AgentNotFound", "Agent %s could not be found.", id)
	}
	return a, err
}

func (s *Service) showAgent(r *http.Request) (*apiutil.Response, error) {
	if err := s.authorize(s.caller(r), "get_agent", nil); err != nil {
		return nil, err
	}
	a, err := s.loadAgent(r.Context(), s.db.Reader(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"agent": selectFields(s.renderAgent(a), showFields(r))}), nil
}

func (s *Service) updateAgent(r *http.Request) (*apiutil.Response, error) {
	if err := s.authorize(s.caller(r), "update_agent", nil); err != nil {
		return nil, err
	}
	objs, _, err := readBody(r, "agent", "agents", false)
	if err != nil {
		return nil, err
	}
	body := objs[0]
	if err := body.checkKeys("PUT", []string{"admin_state_up", "description"}, []string{"id", "agent_type", "binary",
		"topic", "host", "alive", "availability_zone", "configurations", "started_at", "created_at", "heartbeat_timestamp"}); err != nil {
		return nil, err
	}
	ctx := r.Context()
	var out *Agent
	err = s.withTx(ctx, func(tx *txn) error {
		a, err := s.loadAgent(ctx, tx, r.PathValue("id"))
		if err != nil {
			return err
		}
		if err := body.setBool("admin_state_up", &a.AdminStateUp); err != nil {
			return err
		}
		if v, _, present, err := body.nullableStr("description"); err != nil {
			return err
		} else if present {
			if len(v) > 255 {
				return invalidAttr("description", "'%s' exceeds maximum length of 255", v)
			}
			a.Description = v
		}
		out = a
		_, err = tx.ExecContext(ctx, `UPDATE net_agents SET admin_state_up = $1, description = $2 WHERE id = $3`, a.AdminStateUp, a.Description, a.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"agent": s.renderAgent(out)}), nil
}

func (s *Service) deleteAgent(r *http.Request) (*apiutil.Response, error) {
	if err := s.authorize(s.caller(r), "delete_agent", nil); err != nil {
		return nil, err
	}
	ctx := r.Context()
	err := s.withTx(ctx, func(tx *txn) error {
		a, err := s.loadAgent(ctx, tx, r.PathValue("id"))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM net_agents WHERE id = $1`, a.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}
