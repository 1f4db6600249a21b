package volume

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/policy"
)

// QoS specs, as Cinder's: a named set of key/value pairs with a consumer
// that says who enforces them. "back-end" specs are for the storage
// backend, which Kumo's file and LVM backends cannot enforce (they are
// stored and shown, nothing more); "front-end" and "both" specs reach the
// hypervisor: an attachment's connection_info carries them as
// data.qos_specs, and the QEMU driver turns the keys Nova's libvirt
// driver knows into I/O throttling of that disk. A volume type is
// associated with at most one spec.

// QoS consumers.
const (
	ConsumerFront = "front-end"
	ConsumerBack  = "back-end"
	ConsumerBoth  = "both"
)

// QoSSpec is one QoS specification.
type QoSSpec struct {
	ID, Name, Consumer string
	Specs              map[string]string
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// Policy rule names: Cinder's.
const (
	ruleQoSGetAll = "volume_extension:qos_specs_manage:get_all"
	ruleQoSGet    = "volume_extension:qos_specs_manage:get"
	ruleQoSCreate = "volume_extension:qos_specs_manage:create"
	ruleQoSUpdate = "volume_extension:qos_specs_manage:update"
	ruleQoSDelete = "volume_extension:qos_specs_manage:delete"
	ruleTypeQoSID = "volume_extension:access_types_qos_specs_id"
)

func qosRules() []policy.Rule {
	const admin = "role:admin"
	return []policy.Rule{
		{Name: ruleQoSGetAll, Check: admin, Description: "List QoS specs or their associations."},
		{Name: ruleQoSGet, Check: admin, Description: "Show a QoS spec."},
		{Name: ruleQoSCreate, Check: admin, Description: "Create a QoS spec."},
		{Name: ruleQoSUpdate, Check: admin, Description: "Update a QoS spec, or (dis)associate it with volume types."},
		{Name: ruleQoSDelete, Check: admin, Description: "Delete a QoS spec or some of its keys."},
		{Name: ruleTypeQoSID, Check: admin, Description: "See the qos_specs_id of volume types."},
	}
}

// throttleKeys are the keys the front end enforces (Nova's libvirt
// driver's list): bytes and I/O operations per second in total, for
// reads, for writes, their bursts (_max) and the I/O size an operation
// counts for (size_iops_sec).
var throttleKeys = []string{
	"total_bytes_sec", "read_bytes_sec", "write_bytes_sec",
	"total_iops_sec", "read_iops_sec", "write_iops_sec",
	"total_bytes_sec_max", "read_bytes_sec_max", "write_bytes_sec_max",
	"total_iops_sec_max", "read_iops_sec_max", "write_iops_sec_max",
	"size_iops_sec",
}

// perGBKeys scale with the volume's size when an attachment is made
// (Cinder's <key>_per_gb, at least <key>_per_gb_min).
var perGBKeys = []string{
	"total_bytes_sec", "read_bytes_sec", "write_bytes_sec",
	"total_iops_sec", "read_iops_sec", "write_iops_sec",
}

// maxThrottle is QEMU's largest accepted limit.
const maxThrottle = 1_000_000_000_000_000

// numericKey reports whether a spec key must hold a count.
func numericKey(k string) bool {
	for _, base := range perGBKeys {
		if k == base+"_per_gb" || k == base+"_per_gb_min" {
			return true
		}
	}
	for _, t := range throttleKeys {
		if k == t {
			return true
		}
	}
	return false
}

func invalidQoS(format string, args ...any) error {
	return apiutil.BadRequest("Invalid qos specs: "+format, args...)
}

// checkQoSSpecs validates keys set by a create or an update: the
// consumer, and the throttling keys, which must be counts QEMU accepts
// (Cinder itself takes any string and leaves Nova to fail the attach;
// Kumo refuses them here, where the operator sees the error).
func checkQoSSpecs(specs map[string]string) error {
	if c, ok := specs["consumer"]; ok && c != ConsumerFront && c != ConsumerBack && c != ConsumerBoth {
		return invalidQoS("Valid consumer of QoS specs are: ['front-end', 'back-end', 'both']")
	}
	for k, v := range specs {
		if k == "" || len(k) > 255 || len(v) > 255 {
			return invalidQoS("keys and values must be 1 to 255 and 0 to 255 characters long.")
		}
		if !numericKey(k) {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > maxThrottle {
			return invalidQoS("%s must be an integer from 0 to %d, not '%s'.", k, int64(maxThrottle), v)
		}
	}
	return nil
}

func qosNotFound(id string) error { return apiutil.NotFound("No such QoS spec %s.", id) }

func (s *Service) qosErr(err error, id, typeID string) error {
	var assoc errAssociated
	switch {
	case errors.Is(err, errNoRow):
		return qosNotFound(id)
	case errors.Is(err, errTypeMissing):
		return typeNotFound(typeID)
	case errors.As(err, &assoc):
		return apiutil.BadRequest("Invalid volume type: Type %s is already associated with another qos specs: %s", typeID, assoc.other)
	}
	return err
}

// CreateQoS adds a spec; specs may carry "consumer" (default back-end).
func (s *Service) CreateQoS(ctx context.Context, name string, specs map[string]string) (*QoSSpec, error) {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleQoSCreate, c.project); err != nil {
		return nil, err
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 255 {
		return nil, apiutil.BadRequest("Invalid input for field/attribute name. Value: %s. Name must be 1 to 255 characters long.", name)
	}
	if err := checkQoSSpecs(specs); err != nil {
		return nil, err
	}
	q := &QoSSpec{ID: newUUID(), Name: name, Consumer: ConsumerBack, Specs: maps.Clone(specs), CreatedAt: s.now().UTC()}
	if q.Specs == nil {
		q.Specs = map[string]string{}
	}
	if v, ok := q.Specs["consumer"]; ok {
		q.Consumer = v
		delete(q.Specs, "consumer")
	}
	if err := s.store.CreateQoS(ctx, q); err != nil {
		if errors.Is(err, errDuplicate) {
			return nil, apiutil.Conflict("QoS Specs %s already exists.", name)
		}
		return nil, err
	}
	return q, nil
}

// GetQoS shows a spec.
func (s *Service) GetQoS(ctx context.Context, id string) (*QoSSpec, error) {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleQoSGet, c.project); err != nil {
		return nil, err
	}
	q, err := s.store.GetQoS(ctx, nil, id)
	if err != nil {
		return nil, s.qosErr(err, id, "")
	}
	return q, nil
}

// ListQoS lists specs, a page at a time.
func (s *Service) ListQoS(ctx context.Context, q QoSQuery, marker string) ([]*QoSSpec, bool, error) {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleQoSGetAll, c.project); err != nil {
		return nil, false, err
	}
	if marker != "" {
		m, err := s.store.GetQoS(ctx, nil, marker)
		if errors.Is(err, errNoRow) {
			return nil, false, apiutil.NotFound("Marker %s could not be found.", marker)
		}
		if err != nil {
			return nil, false, err
		}
		q.Marker = m
	}
	return page(q.Limit, s.cfg.MaxLimit, func(n int) ([]*QoSSpec, error) {
		q.Limit = n
		return s.store.ListQoS(ctx, q)
	})
}

// SetQoSKeys merges keys into a spec ("consumer" changes the consumer).
func (s *Service) SetQoSKeys(ctx context.Context, id string, specs map[string]string) error {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleQoSUpdate, c.project); err != nil {
		return err
	}
	if err := checkQoSSpecs(specs); err != nil {
		return err
	}
	_, err := s.store.UpdateQoS(ctx, id, func(q *QoSSpec) error {
		for k, v := range specs {
			if k == "consumer" {
				q.Consumer = v
				continue
			}
			q.Specs[k] = v
		}
		q.UpdatedAt = s.now().UTC()
		return nil
	})
	return s.qosErr(err, id, "")
}

// DeleteQoSKeys removes keys from a spec: all of them or, when one is
// missing, none.
func (s *Service) DeleteQoSKeys(ctx context.Context, id string, keys []string) error {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleQoSDelete, c.project); err != nil {
		return err
	}
	_, err := s.store.UpdateQoS(ctx, id, func(q *QoSSpec) error {
		for _, k := range keys {
			if _, ok := q.Specs[k]; !ok {
				return apiutil.NotFound("QoS spec %s has no spec with key %s.", id, k)
			}
		}
		for _, k := range keys {
			delete(q.Specs, k)
		}
		q.UpdatedAt = s.now().UTC()
		return nil
	})
	return s.qosErr(err, id, "")
}

// DeleteQoS removes a spec; force first disassociates its volume types.
func (s *Service) DeleteQoS(ctx context.Context, id string, force bool) error {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleQoSDelete, c.project); err != nil {
		return err
	}
	return s.qosErr(s.store.DeleteQoS(ctx, id, force, apiutil.BadRequest("Qos specs still in use.")), id, "")
}

// QoSAssociations lists the volume types associated with a spec.
func (s *Service) QoSAssociations(ctx context.Context, id string) ([]*VolumeType, error) {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleQoSGetAll, c.project); err != nil {
		return nil, err
	}
	ts, err := s.store.QoSAssociations(ctx, id)
	return ts, s.qosErr(err, id, "")
}

// AssociateQoS associates (associate) or disassociates a volume type
// with a spec; typeID "" with associate false disassociates them all.
func (s *Service) AssociateQoS(ctx context.Context, id, typeID string, associate bool) error {
	c := callerOf(ctx)
	if err := s.authorize(c, ruleQoSUpdate, c.project); err != nil {
		return err
	}
	var err error
	switch {
	case associate:
		err = s.store.AssociateQoS(ctx, id, typeID)
	case typeID != "":
		err = s.store.DisassociateQoS(ctx, id, typeID)
	default:
		err = s.store.DisassociateAllQoS(ctx, id)
	}
	return s.qosErr(err, id, typeID)
}

// CanSeeTypeQoS reports whether the caller sees qos_specs_id of types.
func (s *Service) CanSeeTypeQoS(ctx context.Context) bool {
	c := callerOf(ctx)
	return s.can(c, ruleTypeQoSID, c.project)
}

// frontendQoS is what connection_info.data.qos_specs carries for a
// volume: the keys of its type's spec when the front end consumes it
// (nil otherwise), the per-GB keys turned into fixed limits for the
// volume's size.
func (s *Service) frontendQoS(ctx context.Context, v *Volume) (map[string]string, error) {
	q, err := s.store.TypeQoS(ctx, v.TypeID)
	if err != nil || q == nil || q.Consumer == ConsumerBack {
		return nil, err
	}
	return scaleQoS(q.Specs, v.Size), nil
}

// scaleQoS turns <key>_per_gb (at least <key>_per_gb_min) into <key> for
// a volume of size GiB; it wins over a fixed <key>, as in Cinder.
func scaleQoS(specs map[string]string, size int) map[string]string {
	out := maps.Clone(specs)
	for _, k := range perGBKeys {
		per, ok := out[k+"_per_gb"]
		if !ok {
			delete(out, k+"_per_gb_min")
			continue
		}
		n, _ := strconv.ParseInt(per, 10, 64)
		n *= int64(size)
		if lo, err := strconv.ParseInt(out[k+"_per_gb_min"], 10, 64); err == nil && n < lo {
			n = lo
		}
		out[k] = strconv.FormatInt(min(n, maxThrottle), 10)
		delete(out, k+"_per_gb")
		delete(out, k+"_per_gb_min")
	}
	return out
}
