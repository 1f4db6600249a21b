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
	if err := json.NewDecoder(res.Body).Decode(&img); err != nil {
		return Meta{}, fmt.Errorf("decode image %s: %w", id, err)
	}
	if img.Status != "active" {
		return Meta{}, fmt.Errorf("image %s is %s, not active", id, img.Status)
	}
	m := Meta{ID: id}
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
