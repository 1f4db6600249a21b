package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// client talks to one Kumo over kept-alive connections as an
// authenticated user, with the endpoints from the token's catalog.
type client struct {
	base      string // root URL (identity at base/v3)
	hc        *http.Client
	token     string
	projectID string
	userID    string
	endpoints map[string]string // service type → public URL
	password  string            // for the token scenarios' password login
	creds     Credentials
}

// Credentials name the user the benchmark acts as (an admin: it raises
// quotas and creates resource providers).
type Credentials struct {
	Username, Password, Project, UserDomain, ProjectDomain string
}

// CredentialsFromEnv reads OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME,
// OS_USER_DOMAIN_NAME and OS_PROJECT_DOMAIN_NAME (domains default to
// "Default").
func CredentialsFromEnv() Credentials {
	c := Credentials{Username: os.Getenv("OS_USERNAME"), Password: os.Getenv("OS_PASSWORD"),
		Project: os.Getenv("OS_PROJECT_NAME"), UserDomain: os.Getenv("OS_USER_DOMAIN_NAME"),
		ProjectDomain: os.Getenv("OS_PROJECT_DOMAIN_NAME")}
	if c.UserDomain == "" {
		c.UserDomain = "Default"
	}
	if c.ProjectDomain == "" {
		c.ProjectDomain = "Default"
	}
	return c
}

func newHTTPClient(conns int) *http.Client {
	tr := &http.Transport{
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Minute}
}

func passwordAuth(c Credentials) []byte {
	b, _ := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": c.Username, "domain": map[string]any{"name": c.UserDomain}, "password": c.Password},
		}},
		"scope": map[string]any{"project": map[string]any{"name": c.Project, "domain": map[string]any{"name": c.ProjectDomain}}},
	}})
	return b
}

// login authenticates and reads the catalog.
func login(ctx context.Context, base string, creds Credentials, conns int) (*client, error) {
	c := &client{base: strings.TrimRight(base, "/"), hc: newHTTPClient(conns), creds: creds, password: creds.Password}
	var body struct {
		Token struct {
			User    struct{ ID string } `json:"user"`
			Project struct{ ID string } `json:"project"`
			Catalog []struct {
				Type      string `json:"type"`
				Endpoints []struct {
					Interface string `json:"interface"`
					URL       string `json:"url"`
				} `json:"endpoints"`
			} `json:"catalog"`
		} `json:"token"`
	}
	h, err := c.doJSON(ctx, "POST", c.base+"/v3/auth/tokens", passwordAuth(creds), nil, http.StatusCreated, &body)
	if err != nil {
		return nil, fmt.Errorf("login as %s: %w", creds.Username, err)
	}
	c.token = h.Get("X-Subject-Token")
	c.projectID, c.userID = body.Token.Project.ID, body.Token.User.ID
	c.endpoints = map[string]string{}
	for _, s := range body.Token.Catalog {
		for _, e := range s.Endpoints {
			if e.Interface == "public" {
				c.endpoints[s.Type] = strings.TrimRight(e.URL, "/")
			}
		}
	}
	return c, nil
}

// url returns the public endpoint of a service type plus path.
func (c *client) url(service, path string) string {
	if service == "" {
		return c.base + path
	}
	return c.endpoints[service] + path
}

// do sends one request with the token, reads the whole answer and checks
// its status.
func (c *client) do(ctx context.Context, method, url string, body []byte, hdr map[string]string, want int) (http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("X-Auth-Token", c.token)
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	if want != 0 && resp.StatusCode != want {
		return nil, nil, fmt.Errorf("%s %s: status %d, want %d: %.300s", method, url, resp.StatusCode, want, b)
	}
	return resp.Header, b, nil
}

// doJSON is do with a JSON answer decoded into out (when not nil).
func (c *client) doJSON(ctx context.Context, method, url string, body []byte, hdr map[string]string, want int, out any) (http.Header, error) {
	h, b, err := c.do(ctx, method, url, body, hdr, want)
	if err != nil {
		return nil, err
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("%s %s: decode answer: %w", method, url, err)
		}
	}
	return h, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
