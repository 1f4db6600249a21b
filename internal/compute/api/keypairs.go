package api

import (
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/compute/keys"
	"github.com/kumo-cloud/kumo/internal/compute/quota"
	"github.com/kumo-cloud/kumo/internal/compute/store"
)

// Policy rule names of key pairs.
const (
	ruleKeypairIndex  = "os_compute_api:os-keypairs:index"
	ruleKeypairCreate = "os_compute_api:os-keypairs:create"
	ruleKeypairShow   = "os_compute_api:os-keypairs:show"
	ruleKeypairDelete = "os_compute_api:os-keypairs:delete"
)

// Key pair name characters (Nova's keypair_name_20 and keypair_name_292 formats).
const (
	keypairChars    = "_- 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	keypairChars292 = "@._- 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

const keypairProps = `"name": {"type": "string", "minLength": 1, "maxLength": 255},
	"public_key": {"type": "string"}`

const keypairType = `"type": {"type": "string", "enum": ["ssh", "x509"]}`

func keypairSchema(name, props string, required string) *apiutil.Schema {
	return apiutil.MustSchema(name, `{"type": "object",
		"properties": {"keypair": {"type": "object", "properties": {`+props+`},
			"required": [`+required+`], "additionalProperties": false}},
		"required": ["keypair"], "additionalProperties": false}`)
}

var (
	keypairCreate    = keypairSchema("compute-keypair-create", keypairProps, `"name"`)
	keypairCreate22  = keypairSchema("compute-keypair-create-2.2", keypairProps+`, `+keypairType, `"name"`)
	keypairCreate210 = keypairSchema("compute-keypair-create-2.10", keypairProps+`, `+keypairType+`, "user_id": {"type": "string"}`, `"name"`)
	keypairCreate292 = keypairSchema("compute-keypair-create-2.92", keypairProps+`, `+keypairType+`, "user_id": {"type": "string"}`, `"name", "public_key"`)
)

func keypairNotFound(name, user string) error {
	return apiutil.NotFound("Keypair %s not found for user %s", name, user)
}

// keypairUser is the owner a request acts on: the caller, or (from 2.10)
// the user_id the query names.
func keypairUser(r *http.Request) string {
	if atLeast(r, V2_10) {
		if u, ok := queryLast(r.URL.Query(), "user_id"); ok && u != "" {
			return u
		}
	}
	return caller(r).UserID
}

func keypairQuery(r *http.Request, paged bool) error {
	if !atLeast(r, V2_75) {
		return nil
	}
	if paged {
		return strictQuery(r, "user_id", "limit", "marker")
	}
	return strictQuery(r, "user_id")
}

func (a *API) listKeyPairs(r *http.Request) (*apiutil.Response, error) {
	if err := keypairQuery(r, true); err != nil {
		return nil, err
	}
	user := keypairUser(r)
	if err := a.authorize(r, ruleKeypairIndex, map[string]string{"user_id": user}); err != nil {
		return nil, err
	}
	limit, marker := 0, ""
	if atLeast(r, V2_35) {
		var err error
		if limit, err = pageLimit(r.URL.Query()); err != nil {
			return nil, err
		}
		marker, _ = queryLast(r.URL.Query(), "marker")
	}
	kps, err := a.st.ListKeyPairs(ctx(r), user, limit, marker)
	if errors.Is(err, store.ErrMarker) {
		return nil, apiutil.BadRequest("Marker %s could not be found.", marker)
	}
	if err != nil {
		return nil, internal(err)
	}
	out := make([]any, 0, len(kps))
	for _, k := range kps {
		v := map[string]any{"name": k.Name, "public_key": k.PublicKey, "fingerprint": k.Fingerprint}
		if atLeast(r, V2_2) {
			v["type"] = k.Type
		}
		out = append(out, map[string]any{"keypair": v})
	}
	body := map[string]any{"keypairs": out}
	if atLeast(r, V2_35) && len(kps) > 0 && len(kps) == limit {
		body["keypairs_links"] = nextLink(r, kps[len(kps)-1].Name)
	}
	return apiutil.JSON(200, body), nil
}

func (a *API) showKeyPair(r *http.Request) (*apiutil.Response, error) {
	if err := keypairQuery(r, false); err != nil {
		return nil, err
	}
	user, name := keypairUser(r), r.PathValue("keypair_name")
	if err := a.authorize(r, ruleKeypairShow, map[string]string{"user_id": user}); err != nil {
		return nil, err
	}
	k, err := a.st.GetKeyPair(ctx(r), user, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, keypairNotFound(name, user)
	}
	if err != nil {
		return nil, internal(err)
	}
	v := map[string]any{
		"name": k.Name, "public_key": k.PublicKey, "fingerprint": k.Fingerprint, "user_id": k.UserID,
		"id": k.ID, "deleted": false, "created_at": k.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000"),
		"updated_at": nil, "deleted_at": nil,
	}
	if atLeast(r, V2_2) {
		v["type"] = k.Type
	}
	return apiutil.JSON(200, map[string]any{"keypair": v}), nil
}

func (a *API) deleteKeyPair(r *http.Request) (*apiutil.Response, error) {
	if err := keypairQuery(r, false); err != nil {
		return nil, err
	}
	user, name := keypairUser(r), r.PathValue("keypair_name")
	if err := a.authorize(r, ruleKeypairDelete, map[string]string{"user_id": user}); err != nil {
		return nil, err
	}
	if err := a.st.DeleteKeyPair(ctx(r), user, name); errors.Is(err, store.ErrNotFound) {
		return nil, keypairNotFound(name, user)
	} else if err != nil {
		return nil, internal(err)
	}
	if atLeast(r, V2_2) {
		return apiutil.NoContent(), nil
	}
	return &apiutil.Response{Status: http.StatusAccepted}, nil
}

func (a *API) createKeyPair(r *http.Request) (*apiutil.Response, error) {
	schema := keypairCreate
	switch {
	case atLeast(r, V2_92):
		schema = keypairCreate292
	case atLeast(r, V2_10):
		schema = keypairCreate210
	case atLeast(r, V2_2):
		schema = keypairCreate22
	}
	doc, err := decode(r, schema)
	if err != nil {
		return nil, err
	}
	var body struct {
		Name      string  `json:"name"`
		PublicKey *string `json:"public_key"`
		Type      string  `json:"type"`
		UserID    string  `json:"user_id"`
	}
	if err := json.Unmarshal(doc["keypair"], &body); err != nil {
		return nil, apiutil.BadRequest("Malformed request body: %v", err)
	}
	c := caller(r)
	user := c.UserID
	if body.UserID != "" {
		user = body.UserID
	}
	if err := a.authorize(r, ruleKeypairCreate, map[string]string{"user_id": user}); err != nil {
		return nil, err
	}
	if err := checkName("name", body.Name); err != nil {
		return nil, err
	}
	chars := keypairChars
	if atLeast(r, V2_92) {
		chars = keypairChars292
	}
	for _, ch := range body.Name {
		if !strings.ContainsRune(chars, ch) {
			return nil, apiutil.BadRequest("Invalid input for field/attribute name. Value: %s. An invalid 'name' value was provided. The name must be: Only expected characters: [%s]", body.Name, chars[:strings.IndexByte(chars, '0')]+"0-9a-zA-Z")
		}
	}
	if body.Type == "" {
		body.Type = keys.TypeSSH
	}
	kp := &store.KeyPair{UserID: user, ProjectID: c.ProjectID, Name: body.Name, Type: body.Type}
	var private string
	if body.PublicKey != nil {
		kp.PublicKey = *body.PublicKey
		fp, err := keys.Fingerprint(body.Type, kp.PublicKey)
		if err != nil {
			what := "failed to generate fingerprint"
			if body.Type == keys.TypeX509 {
				what = "failed to generate X509 fingerprint"
			}
			return nil, apiutil.BadRequest("Keypair data is invalid: %s", what)
		}
		kp.Fingerprint = fp
	} else {
		g, err := keys.Generate(body.Type, user)
		if err != nil {
			return nil, internal(err)
		}
		kp.PublicKey, kp.Fingerprint, private = g.PublicKey, g.Fingerprint, g.PrivateKey
	}
	err = a.st.WithTx(ctx(r), func(tx *sql.Tx) error {
		if err := a.quota.Check(ctx(r), tx, c.ProjectID, user, map[string]int64{quota.KeyPairs: 1}); err != nil {
			return err
		}
		return store.InsertKeyPair(ctx(r), tx, kp)
	})
	var over *quota.OverQuotaError
	switch {
	case errors.As(err, &over):
		return nil, apiutil.Forbidden("Maximum number of key pairs exceeded")
	case errors.Is(err, store.ErrExists):
		return nil, apiutil.Conflict("Key pair '%s' already exists.", body.Name)
	case err != nil:
		return nil, internal(err)
	}
	v := map[string]any{"name": kp.Name, "public_key": kp.PublicKey, "fingerprint": kp.Fingerprint, "user_id": kp.UserID}
	if private != "" {
		v["private_key"] = private
	}
	status := http.StatusOK
	if atLeast(r, V2_2) {
		v["type"] = kp.Type
		status = http.StatusCreated
	}
	return apiutil.JSON(status, map[string]any{"keypair": v}), nil
}
