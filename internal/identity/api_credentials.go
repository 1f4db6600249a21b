package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// Credentials (/v3/credentials) and the OS-EC2 view of type "ec2" ones
// (/v3/users/{user_id}/credentials/OS-EC2). An ec2 credential's blob is a
// JSON object with "access" and "secret" (and optionally "trust_id");
// its id is the hex SHA-256 of the access key, as in Keystone, so that
// a request signed with an access key finds its credential directly.
//
// Blobs are stored as sent. Keystone encrypts them with separate
// credential keys; Kumo keeps no secret encrypted at rest yet (token keys
// live in the same database), so encrypting them here would only move
// the key beside the ciphertext. docs/support-matrix.md says so.

var (
	credentialSchema = wrapSchema("credential", "credential", `{
		"type": "object", "required": ["type", "blob", "user_id"],
		"properties": {"type": {"type": "string", "minLength": 1, "maxLength": 255}, "blob": {"type": "string", "minLength": 1},
			"user_id": {"type": "string", "minLength": 1, "maxLength": 64}, "project_id": {"type": ["string", "null"], "maxLength": 64}}}`)
	credentialUpdateSchema = wrapSchema("credential-update", "credential", `{
		"type": "object", "minProperties": 1,
		"properties": {"type": {"type": "string", "minLength": 1, "maxLength": 255}, "blob": {"type": "string", "minLength": 1},
			"user_id": {"type": "string", "minLength": 1, "maxLength": 64}, "project_id": {"type": ["string", "null"], "maxLength": 64}}}`)
	ec2Schema = apiutil.MustSchema("ec2-credential", `{
		"type": "object", "required": ["tenant_id"],
		"properties": {"tenant_id": {"type": "string", "minLength": 1, "maxLength": 64}, "trust_id": {"type": ["string", "null"]}}}`)
)

func ec2ID(access string) string {
	sum := sha256.Sum256([]byte(access))
	return hex.EncodeToString(sum[:])
}

// ec2Blob is the decoded blob of an ec2 credential.
type ec2Blob struct {
	Access  string  `json:"access"`
	Secret  string  `json:"secret"`
	TrustID *string `json:"trust_id,omitempty"`
}

func parseEC2Blob(blob string) (*ec2Blob, error) {
	var b ec2Blob
	if err := json.Unmarshal([]byte(blob), &b); err != nil || b.Access == "" {
		return nil, apiutil.BadRequest("Invalid blob in credential: an ec2 credential's blob must be a JSON object with an access key.")
	}
	return &b, nil
}

func (a *API) credentialView(r *http.Request, c *Credential) map[string]any {
	v := map[string]any{
		"id": c.ID, "user_id": c.UserID, "project_id": nullIfEmpty(c.ProjectID), "type": c.Type, "blob": c.Blob,
		"links": selfLink(r, "credentials", c.ID),
	}
	mergeExtras(v, c.Extra)
	return v
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// checkCredential validates the references and the ec2 rules of c.
func (a *API) checkCredential(r *http.Request, c *Credential) error {
	if _, err := a.svc.store.GetUser(r.Context(), c.UserID); err != nil {
		return apiutil.BadRequest("Invalid user_id %s: no such user.", c.UserID)
	}
	if c.ProjectID != "" {
		if _, err := a.svc.store.GetProject(r.Context(), c.ProjectID); err != nil {
			return apiutil.BadRequest("Invalid project_id %s: no such project.", c.ProjectID)
		}
	}
	if c.Type != "ec2" {
		return nil
	}
	if c.ProjectID == "" {
		return apiutil.BadRequest("Invalid input for field 'project_id': an ec2 credential needs a project.")
	}
	b, err := parseEC2Blob(c.Blob)
	if err != nil {
		return err
	}
	if c.ID != "" && c.ID != ec2ID(b.Access) {
		return apiutil.BadRequest("Invalid blob in credential: the access key of an ec2 credential cannot change.")
	}
	c.ID = ec2ID(b.Access)
	return nil
}

func (a *API) listCredentials(r *http.Request) (*apiutil.Response, error) {
	c := caller(r)
	q := r.URL.Query()
	f := Filter{}
	for _, k := range []string{"user_id", "type"} {
		if v := q.Get(k); v != "" {
			f[k] = v
		}
	}
	// Everyone may list; the rule decides which credentials they see.
	if err := a.authorize(r, "identity:list_credentials", map[string]string{"user_id": c.UserID}); err != nil {
		return nil, err
	}
	l, err := a.svc.store.ListCredentials(r.Context(), f)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, cr := range l {
		if a.authorize(r, "identity:get_credential", map[string]string{"user_id": cr.UserID}) == nil {
			out = append(out, a.credentialView(r, cr))
		}
	}
	return apiutil.JSON(200, map[string]any{"credentials": out, "links": listLinks(r)}), nil
}

func (a *API) createCredential(r *http.Request) (*apiutil.Response, error) {
	m, err := body(r, credentialSchema, "credential")
	if err != nil {
		return nil, err
	}
	c := &Credential{UserID: str(m, "user_id"), ProjectID: str(m, "project_id"), Type: str(m, "type"), Blob: str(m, "blob"),
		Extra: extras(m, "id", "user_id", "project_id", "type", "blob", "links"), CreatedAt: a.svc.now()}
	if err := a.authorize(r, "identity:create_credential", map[string]string{"user_id": c.UserID}); err != nil {
		return nil, err
	}
	if err := a.checkCredential(r, c); err != nil {
		return nil, err
	}
	if c.ID == "" {
		c.ID = newID()
	}
	if err := a.svc.after(r.Context(), a.svc.store.CreateCredential(r.Context(), c)); err != nil {
		return nil, err
	}
	return apiutil.JSON(201, map[string]any{"credential": a.credentialView(r, c)}), nil
}

func (a *API) loadCredential(r *http.Request, rule string) (*Credential, error) {
	c, err := a.svc.store.GetCredential(r.Context(), r.PathValue("credential_id"))
	if err != nil {
		return nil, err
	}
	if err := a.authorize(r, rule, map[string]string{"user_id": c.UserID}); err != nil {
		return nil, err
	}
	return c, nil
}

func (a *API) getCredential(r *http.Request) (*apiutil.Response, error) {
	c, err := a.loadCredential(r, "identity:get_credential")
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"credential": a.credentialView(r, c)}), nil
}

func (a *API) updateCredential(r *http.Request) (*apiutil.Response, error) {
	c, err := a.loadCredential(r, "identity:update_credential")
	if err != nil {
		return nil, err
	}
	m, err := body(r, credentialUpdateSchema, "credential")
	if err != nil {
		return nil, err
	}
	if id, ok := m["id"]; ok && id != c.ID {
		return nil, apiutil.BadRequest("Cannot change the id of a credential.")
	}
	if v, ok := m["user_id"]; ok {
		c.UserID = v.(string)
		// Moving a credential to another user is creating one for them.
		if err := a.authorize(r, "identity:create_credential", map[string]string{"user_id": c.UserID}); err != nil {
			return nil, err
		}
	}
	if v, ok := strPtr(m, "project_id"); ok {
		c.ProjectID = ""
		if v != nil {
			c.ProjectID = *v
		}
	}
	if v, ok := m["type"]; ok {
		c.Type = v.(string)
	}
	if v, ok := m["blob"]; ok {
		c.Blob = v.(string)
	}
	for k, v := range extras(m, "id", "user_id", "project_id", "type", "blob", "links") {
		c.Extra[k] = v
	}
	if err := a.checkCredential(r, c); err != nil {
		return nil, err
	}
	if err := a.svc.after(r.Context(), a.svc.store.UpdateCredential(r.Context(), c)); err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"credential": a.credentialView(r, c)}), nil
}

func (a *API) deleteCredential(r *http.Request) (*apiutil.Response, error) {
	c, err := a.loadCredential(r, "identity:delete_credential")
	if err != nil {
		return nil, err
	}
	if err := a.svc.after(r.Context(), a.svc.store.DeleteCredential(r.Context(), c.ID)); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

// ---- OS-EC2 ----

func (a *API) ec2View(r *http.Request, c *Credential) map[string]any {
	b, _ := parseEC2Blob(c.Blob)
	if b == nil {
		b = &ec2Blob{}
	}
	var trust any
	if b.TrustID != nil {
		trust = *b.TrustID
	}
	return map[string]any{
		"user_id": c.UserID, "tenant_id": c.ProjectID, "access": b.Access, "secret": b.Secret, "trust_id": trust,
		"links": map[string]any{"self": base(r) + "/users/" + c.UserID + "/credentials/OS-EC2/" + b.Access},
	}
}

func (a *API) listEC2(r *http.Request) (*apiutil.Response, error) {
	uid := r.PathValue("user_id")
	if err := a.authorize(r, "identity:ec2_list_credentials", map[string]string{"user_id": uid}); err != nil {
		return nil, err
	}
	if _, err := a.svc.store.GetUser(r.Context(), uid); err != nil {
		return nil, err
	}
	l, err := a.svc.store.ListCredentials(r.Context(), Filter{"user_id": uid, "type": "ec2"})
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, c := range l {
		out = append(out, a.ec2View(r, c))
	}
	return apiutil.JSON(200, map[string]any{"credentials": out, "links": listLinks(r)}), nil
}

func (a *API) createEC2(r *http.Request) (*apiutil.Response, error) {
	uid := r.PathValue("user_id")
	if err := a.authorize(r, "identity:ec2_create_credential", map[string]string{"user_id": uid}); err != nil {
		return nil, err
	}
	var m map[string]any
	if err := decodeJSON(r, ec2Schema, &m); err != nil {
		return nil, err
	}
	if _, err := a.svc.store.GetUser(r.Context(), uid); err != nil {
		return nil, err
	}
	pid := str(m, "tenant_id")
	if _, err := a.svc.store.GetProject(r.Context(), pid); err != nil {
		return nil, err
	}
	b := ec2Blob{Access: newID(), Secret: newID()}
	if t := str(m, "trust_id"); t != "" {
		b.TrustID = &t
	}
	raw, _ := json.Marshal(b)
	c := &Credential{ID: ec2ID(b.Access), UserID: uid, ProjectID: pid, Type: "ec2", Blob: string(raw), Extra: Extra{}, CreatedAt: a.svc.now()}
	if err := a.svc.after(r.Context(), a.svc.store.CreateCredential(r.Context(), c)); err != nil {
		return nil, err
	}
	return apiutil.JSON(201, map[string]any{"credential": a.ec2View(r, c)}), nil
}

func (a *API) loadEC2(r *http.Request, rule string) (*Credential, error) {
	uid := r.PathValue("user_id")
	if err := a.authorize(r, rule, map[string]string{"user_id": uid}); err != nil {
		return nil, err
	}
	access := r.PathValue("credential_id")
	c, err := a.svc.store.GetCredential(r.Context(), ec2ID(access))
	if err != nil || c.Type != "ec2" || c.UserID != uid {
		return nil, apiutil.NotFound("Could not find credential: %s.", access)
	}
	return c, nil
}

func (a *API) getEC2(r *http.Request) (*apiutil.Response, error) {
	c, err := a.loadEC2(r, "identity:ec2_get_credential")
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, map[string]any{"credential": a.ec2View(r, c)}), nil
}

func (a *API) deleteEC2(r *http.Request) (*apiutil.Response, error) {
	c, err := a.loadEC2(r, "identity:ec2_delete_credential")
	if err != nil {
		return nil, err
	}
	if err := a.svc.after(r.Context(), a.svc.store.DeleteCredential(r.Context(), c.ID)); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), nil
}

// ---- S3 token validation ----

var s3Schema = apiutil.MustSchema("s3-token", `{
	"type": "object", "required": ["credentials"],
	"properties": {"credentials": {"type": "object", "required": ["access", "signature", "token"],
		"properties": {"access": {"type": "string", "minLength": 1}, "signature": {"type": "string", "minLength": 1}, "token": {"type": "string", "minLength": 1}}}}}`)

// s3Tokens checks an S3 request signature (POST /v3/s3tokens): "token" is
// the base64 string to sign, "signature" the client's signature of it
// with the credential's secret (AWS v4 as hex HMAC-SHA256 under the key
// derived from the scope line of the string to sign, or v2 as base64
// HMAC-SHA1). On success it answers the token body of a token for the
// credential's user and project, as Keystone does.
func (a *API) s3Tokens(r *http.Request) (*apiutil.Response, error) {
	var req struct {
		Credentials struct {
			Access, Signature, Token string
		} `json:"credentials"`
	}
	if err := decodeJSON(r, s3Schema, &req); err != nil {
		return nil, err
	}
	c, err := a.svc.store.GetCredential(r.Context(), ec2ID(req.Credentials.Access))
	if err != nil || c.Type != "ec2" {
		return nil, apiutil.Unauthorized("The request you have made requires authentication.")
	}
	b, err := parseEC2Blob(c.Blob)
	if err != nil {
		return nil, apiutil.Unauthorized("The request you have made requires authentication.")
	}
	if !checkS3Signature(b.Secret, req.Credentials.Token, req.Credentials.Signature) {
		return nil, apiutil.Unauthorized("Credential signature mismatch")
	}
	_, ctx, err := a.svc.issueFor(r.Context(), c.UserID, c.ProjectID, []string{"ec2credential"})
	if err != nil {
		return nil, err
	}
	body, err := a.tokenBody(r, ctx, true)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(200, body), nil
}
