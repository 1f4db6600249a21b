package volume

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// The qos-specs API (Cinder's qos-specs-v3-qos-specs.inc). Associating
// and disassociating are GETs with vol_type_id in the query, as in Cinder.

// qosSortKeys are the keys a QoS list sorts by.
var qosSortKeys = map[string]string{"id": "", "name": "", "consumer": "", "created_at": "", "updated_at": ""}

func qosView(q *QoSSpec) map[string]any {
	specs := q.Specs
	if specs == nil {
		specs = map[string]string{}
	}
	return map[string]any{"id": q.ID, "name": q.Name, "consumer": q.Consumer, "specs": specs}
}

// qosDetail is the body of create and show: the spec and its links.
func qosDetail(r *http.Request, q *QoSSpec) map[string]any {
	project, _ := r.Context().Value(projectKey{}).(string)
	tail := "/qos-specs/" + q.ID
	if project != "" {
		tail = "/" + project + tail
	}
	root := apiutil.PublicURL(r) + Prefix
	return map[string]any{"qos_specs": qosView(q), "links": []apiutil.Link{
		{Rel: "self", Href: root + "/v3" + tail},
		{Rel: "bookmark", Href: root + tail},
	}}
}

// specValues turns the JSON values of a qos_specs body into strings:
// strings as they are, numbers and booleans as written; anything else is
// refused.
func specValues(raw map[string]json.RawMessage) (map[string]string, error) {
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return nil, apiutil.BadRequest("Malformed request body")
		}
		switch t := x.(type) {
		case string:
			out[k] = t
		case float64, bool:
			out[k] = strings.TrimSpace(string(v))
		default:
			return nil, apiutil.BadRequest("Invalid input for field/attribute %s. Value: %s. %s is not of type 'string'", k, v, v)
		}
	}
	return out, nil
}

func qosBody(r *http.Request) (map[string]json.RawMessage, error) {
	var body map[string]json.RawMessage
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	raw, ok := body["qos_specs"]
	if !ok {
		return nil, apiutil.BadRequest("Missing required element 'qos_specs' in request body.")
	}
	for k := range body {
		if k != "qos_specs" {
			return nil, apiutil.BadRequest("Invalid input for field/attribute body. Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	var specs map[string]json.RawMessage
	if err := json.Unmarshal(raw, &specs); err != nil || specs == nil {
		return nil, apiutil.BadRequest("Invalid input for field/attribute qos_specs. Value: %s. %s is not of type 'object'", raw, raw)
	}
	return specs, nil
}

func (s *Service) createQoS(r *http.Request) (*apiutil.Response, error) {
	raw, err := qosBody(r)
	if err != nil {
		return nil, err
	}
	var name string
	if v, ok := raw["name"]; !ok {
		return nil, apiutil.BadRequest("Invalid input for field/attribute qos_specs. 'name' is a required property")
	} else if err := json.Unmarshal(v, &name); err != nil {
		return nil, apiutil.BadRequest("Invalid input for field/attribute name. Value: %s. %s is not of type 'string'", v, v)
	}
	delete(raw, "name")
	specs, err := specValues(raw)
	if err != nil {
		return nil, err
	}
	q, err := s.CreateQoS(r.Context(), name, specs)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, qosDetail(r, q)), nil
}

func (s *Service) showQoS(r *http.Request) (*apiutil.Response, error) {
	q, err := s.GetQoS(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, qosDetail(r, q)), nil
}

func (s *Service) listQoS(r *http.Request) (*apiutil.Response, error) {
	q := r.URL.Query()
	limit, offset, marker, sorts, err := pageQuery(q, qosSortKeys)
	if err != nil {
		return nil, err
	}
	lq := QoSQuery{Sort: sorts, Limit: limit, Offset: offset}
	for k, p := range map[string]**string{"id": &lq.ID, "name": &lq.Name, "consumer": &lq.Consumer} {
		if q.Has(k) {
			v := q.Get(k)
			*p = &v
		}
	}
	list, more, err := s.ListQoS(r.Context(), lq, marker)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(list))
	for i, x := range list {
		out[i] = qosView(x)
	}
	body := map[string]any{"qos_specs": out}
	if more && len(list) > 0 {
		body["qos_specs_links"] = []apiutil.Link{nextLink(r, list[len(list)-1].ID)}
	}
	return apiutil.JSON(200, body), nil
}

// setQoSKeys answers with the keys it set, as Cinder echoes the request.
func (s *Service) setQoSKeys(r *http.Request) (*apiutil.Response, error) {
	raw, err := qosBody(r)
	if err != nil {
		return nil, err
	}
	specs, err := specValues(raw)
	if err != nil {
		return nil, err
	}
	if err := s.SetQoSKeys(r.Context(), r.PathValue("id"), specs); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"qos_specs": specs}), nil
}

func (s *Service) deleteQoS(r *http.Request) (*apiutil.Response, error) {
	force := false
	if v := r.URL.Query().Get("force"); v != "" {
		b, err := boolParam(v)
		if err != nil {
			return nil, apiutil.BadRequest("Invalid value '%s' for force: Unrecognized value '%s', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'", v, v)
		}
		force = b
	}
	return &apiutil.Response{Status: 202}, s.DeleteQoS(r.Context(), r.PathValue("id"), force)
}

func (s *Service) deleteQoSKeys(r *http.Request) (*apiutil.Response, error) {
	var body map[string]json.RawMessage
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	var keys []string
	raw, ok := body["keys"]
	if !ok || len(body) != 1 {
		return nil, apiutil.BadRequest("Invalid input for field/attribute body. 'keys' is a required property and the only one")
	}
	if err := json.Unmarshal(raw, &keys); err != nil || keys == nil {
		return nil, apiutil.BadRequest("Invalid input for field/attribute keys. Value: %s. %s is not of type 'array'", raw, raw)
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if k == "" || len(k) > 255 || seen[k] {
			return nil, apiutil.BadRequest("Invalid input for field/attribute keys. Value: %s. Keys must be unique strings of 1 to 255 characters", raw)
		}
		seen[k] = true
	}
	return &apiutil.Response{Status: 202}, s.DeleteQoSKeys(r.Context(), r.PathValue("id"), keys)
}

func (s *Service) qosAssociations(r *http.Request) (*apiutil.Response, error) {
	ts, err := s.QoSAssociations(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	out := make([]any, len(ts))
	for i, t := range ts {
		out[i] = map[string]any{"association_type": "volume_type", "name": t.Name, "id": t.ID}
	}
	return apiutil.JSON(200, map[string]any{"qos_associations": out}), nil
}

func (s *Service) associateQoS(associate bool) apiutil.Handler {
	return func(r *http.Request) (*apiutil.Response, error) {
		typeID := r.URL.Query().Get("vol_type_id")
		if typeID == "" {
			return nil, apiutil.BadRequest("Volume Type id must not be None.")
		}
		return &apiutil.Response{Status: 202}, s.AssociateQoS(r.Context(), r.PathValue("id"), typeID, associate)
	}
}

func (s *Service) disassociateAllQoS(r *http.Request) (*apiutil.Response, error) {
	return &apiutil.Response{Status: 202}, s.AssociateQoS(r.Context(), r.PathValue("id"), "", false)
}
