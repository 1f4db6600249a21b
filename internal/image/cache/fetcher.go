package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// HTTPFetcher reads images through the Images API v2, as any client would.
type HTTPFetcher struct {
	BaseURL string // the image endpoint, e.g. http://cloud:5000/image
	Token   func(ctx context.Context) (string, error)
	Client  *http.Client
}

func (f *HTTPFetcher) get(ctx context.Context, path, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(f.BaseURL, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	if f.Token != nil {
		tok, err := f.Token(ctx)
		if err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		req.Header.Set("X-Auth-Token", tok)
	}
	c := f.Client
	if c == nil {
		c = http.DefaultClient
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		res.Body.Close()
		return nil, fmt.Errorf("GET %s: %s: %s", path, res.Status, strings.TrimSpace(string(b)))
	}
	return res, nil
}

// Meta implements Fetcher.
func (f *HTTPFetcher) Meta(ctx context.Context, id string) (Meta, error) {
	res, err := f.get(ctx, "/v2/images/"+id, "application/json")
	if err != nil {
		return Meta{}, err
	}
	defer res.Body.Close()
	var img struct {
		Status     string  `json:"status"`
		Size       *int64  `json:"size"`
		HashAlgo   *string `json:"os_hash_algo"`
		HashValue  *string `json:"os_hash_value"`
		DiskFormat *string `json:"disk_format"`
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return Meta{}, fmt.Errorf("read image %s: %w", id, err)
	}
	if err := json.Unmarshal(body, &img); err != nil {
		return Meta{}, fmt.Errorf("decode image %s: %w", id, err)
	}
	// Glance puts custom properties beside the standard attributes; every
	// string-valued member is kept (standard ones too, harmlessly).
	var all map[string]any
	_ = json.Unmarshal(body, &all)
	if img.Status != "active" {
		return Meta{}, fmt.Errorf("image %s is %s, not active", id, img.Status)
	}
	m := Meta{ID: id, Properties: map[string]string{}}
	for k, v := range all {
		if s, ok := v.(string); ok {
			m.Properties[k] = s
		}
	}
	if img.Size != nil {
		m.Size = *img.Size
	}
	if img.HashAlgo != nil {
		m.HashAlgo = *img.HashAlgo
	}
	if img.HashValue != nil {
		m.HashValue = *img.HashValue
	}
	if img.DiskFormat != nil {
		m.DiskFormat = *img.DiskFormat
	}
	return m, nil
}

// Open implements Fetcher.
func (f *HTTPFetcher) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	res, err := f.get(ctx, "/v2/images/"+id+"/file", "application/octet-stream")
	if err != nil {
		return nil, err
	}
	return res.Body, nil
}

// Upload implements Uploader: PUT /v2/images/{id}/file.
func (f *HTTPFetcher) Upload(ctx context.Context, id string, r io.Reader) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, strings.TrimRight(f.BaseURL, "/")+"/v2/images/"+id+"/file", r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if f.Token != nil {
		tok, err := f.Token(ctx)
		if err != nil {
			return fmt.Errorf("token: %w", err)
		}
		req.Header.Set("X-Auth-Token", tok)
	}
	c := f.Client
	if c == nil {
		c = http.DefaultClient
	}
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusNoContent && res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("PUT /v2/images/%s/file: %s: %s", id, res.Status, strings.TrimSpace(string(b)))
	}
	return nil
}
