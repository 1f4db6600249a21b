package image

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// Routes implements service.API: Glance v2 under /image.
func (s *Service) Routes() *apiutil.Service {
	const v2 = "/image/v2"
	rt := func(method, path string, h apiutil.Handler) apiutil.Route {
		return apiutil.Route{Method: method, Path: path, Handler: h}
	}
	return &apiutil.Service{
		Name:   "image",
		Prefix: "/image/",
		Fault:  apiutil.GlanceFault,
		Auth:   s.deps.Auth,
		Log:    s.log,
		Routes: append([]apiutil.Route{
			{Method: "GET", Path: "/image", Handler: s.versions, Public: true},
			{Method: "GET", Path: "/image/{$}", Handler: s.versions, Public: true},
			rt("GET", v2+"/images", s.listImages),
			rt("POST", v2+"/images", s.createImage),
			rt("GET", v2+"/images/{image_id}", s.showImage),
			rt("PATCH", v2+"/images/{image_id}", s.updateImage),
			rt("DELETE", v2+"/images/{image_id}", s.deleteImage),
			rt("PUT", v2+"/images/{image_id}/file", s.uploadData),
			rt("GET", v2+"/images/{image_id}/file", s.downloadData),
			rt("PUT", v2+"/images/{image_id}/stage", s.stageData),
			rt("POST", v2+"/images/{image_id}/import", s.importImage),
			rt("POST", v2+"/images/{image_id}/actions/deactivate", s.deactivate),
			rt("POST", v2+"/images/{image_id}/actions/reactivate", s.reactivate),
			rt("PUT", v2+"/images/{image_id}/tags/{tag}", s.addTag),
			rt("DELETE", v2+"/images/{image_id}/tags/{tag}", s.deleteTag),
			rt("GET", v2+"/images/{image_id}/members", s.listMembers),
			rt("POST", v2+"/images/{image_id}/members", s.addMember),
			rt("GET", v2+"/images/{image_id}/members/{member_id}", s.showMember),
			rt("PUT", v2+"/images/{image_id}/members/{member_id}", s.updateMember),
			rt("DELETE", v2+"/images/{image_id}/members/{member_id}", s.deleteMember),
			rt("GET", v2+"/schemas/image", s.schema(imageSchema)),
			rt("GET", v2+"/schemas/images", s.schema(imagesSchema)),
			rt("GET", v2+"/schemas/member", s.schema(memberSchema)),
			rt("GET", v2+"/schemas/members", s.schema(membersSchema)),
			rt("GET", v2+"/info/import", s.infoImport),
			rt("GET", v2+"/info/stores", s.infoStores),
			rt("GET", v2+"/info/stores/detail", s.infoStoresDetail),
			rt("GET", v2+"/info/usage", s.infoUsage),
		}, s.taskRoutes()...),
	}
}

func memberView(m *Member) map[string]any {
	return map[string]any{
		"image_id": m.ImageID, "member_id": m.MemberID, "status": m.Status,
		"created_at": m.CreatedAt.UTC().Format(timeLayout), "updated_at": m.UpdatedAt.UTC().Format(timeLayout),
		"schema": "/v2/schemas/member",
	}
}

// decodeObject reads a JSON object body, keeping numbers exact.
func decodeObject(r *http.Request) (map[string]any, error) {
	b, err := apiutil.ReadBody(r)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, apiutil.BadRequest("Body expected in request.")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, apiutil.BadRequest("Malformed JSON in request body.")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, apiutil.BadRequest("Malformed JSON in request body.")
	}
	return obj, nil
}

func (s *Service) imageURL(id string) string {
	return strings.TrimRight(s.deps.PublicURL, "/") + "/image/v2/images/" + id
}

func (s *Service) createImage(r *http.Request) (*apiutil.Response, error) {
	body, err := decodeObject(r)
	if err != nil {
		return nil, err
	}
	img, err := s.Create(r.Context(), body)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(http.StatusCreated, imageDoc{img}).
		SetHeader("Location", s.imageURL(img.ID)).
		SetHeader("OpenStack-image-import-methods", strings.Join(s.cfg.ImportMethods, ",")), nil
}

func (s *Service) showImage(r *http.Request) (*apiutil.Response, error) {
	img, err := s.Get(r.Context(), r.PathValue("image_id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(http.StatusOK, imageDoc{img}), nil
}

func (s *Service) listImages(r *http.Request) (*apiutil.Response, error) {
	q := r.URL.Query()
	lq, marker, err := parseListQuery(q, s.cfg.DefaultLimit, s.cfg.MaxLimit)
	if err != nil {
		return nil, err
	}
	imgs, more, err := s.List(r.Context(), lq, marker)
	if err != nil {
		return nil, err
	}
	params := url.Values{}
	maps.Copy(params, q)
	params.Del("marker")
	body := &imageList{imgs: imgs, first: "/v2/images"}
	if len(params) > 0 {
		body.first = "/v2/images?" + params.Encode()
	}
	if more && len(imgs) > 0 {
		params.Set("marker", imgs[len(imgs)-1].ID)
		body.next = "/v2/images?" + params.Encode()
	}
	return apiutil.JSON(http.StatusOK, body), nil
}

func (s *Service) updateImage(r *http.Request) (*apiutil.Response, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != patchMediaV21 && mt != patchMediaV20 {
		return nil, (&apiutil.Error{Status: http.StatusUnsupportedMediaType, Message: "Unsupported Content-Type",
			Header: http.Header{"Accept-Patch": {patchMediaV21 + ", " + patchMediaV20}}})
	}
	b, err := apiutil.ReadBody(r)
	if err != nil {
		return nil, err
	}
	ops, err := parsePatch(b, mt)
	if err != nil {
		return nil, err
	}
	img, err := s.Update(r.Context(), r.PathValue("image_id"), ops)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(http.StatusOK, imageDoc{img}), nil
}

func (s *Service) deleteImage(r *http.Request) (*apiutil.Response, error) {
	return apiutil.NoContent(), s.Delete(r.Context(), r.PathValue("image_id"))
}

func (s *Service) deactivate(r *http.Request) (*apiutil.Response, error) {
	return apiutil.NoContent(), s.SetActive(r.Context(), r.PathValue("image_id"), false)
}

func (s *Service) reactivate(r *http.Request) (*apiutil.Response, error) {
	return apiutil.NoContent(), s.SetActive(r.Context(), r.PathValue("image_id"), true)
}

func (s *Service) addTag(r *http.Request) (*apiutil.Response, error) {
	return apiutil.NoContent(), s.AddTag(r.Context(), r.PathValue("image_id"), r.PathValue("tag"))
}

func (s *Service) deleteTag(r *http.Request) (*apiutil.Response, error) {
	return apiutil.NoContent(), s.DeleteTag(r.Context(), r.PathValue("image_id"), r.PathValue("tag"))
}

func checkOctetStream(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	if mt != "application/octet-stream" {
		if ct == "" {
			ct = "None"
		}
		return &apiutil.Error{Status: http.StatusUnsupportedMediaType, Message: "Invalid content type " + ct}
	}
	return nil
}

func (s *Service) uploadData(r *http.Request) (*apiutil.Response, error) {
	if err := checkOctetStream(r); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), s.Upload(r.Context(), r.PathValue("image_id"), r.Body, r.ContentLength)
}

func (s *Service) stageData(r *http.Request) (*apiutil.Response, error) {
	if err := checkOctetStream(r); err != nil {
		return nil, err
	}
	return apiutil.NoContent(), s.Stage(r.Context(), r.PathValue("image_id"), r.Body, r.ContentLength)
}

func (s *Service) downloadData(r *http.Request) (*apiutil.Response, error) {
	d, err := s.Download(r.Context(), r.PathValue("image_id"), r.Header.Get("Range"), r.Method != http.MethodHead)
	if err != nil {
		return nil, err
	}
	if d.NoData {
		return apiutil.NoContent(), nil
	}
	resp := &apiutil.Response{Status: http.StatusOK, ContentType: "application/octet-stream"}
	resp.SetHeader("Content-Length", strconv.FormatInt(d.Length, 10))
	if d.Image.Checksum != nil {
		resp.SetHeader("Content-MD5", *d.Image.Checksum)
	}
	if d.Partial {
		resp.Status = http.StatusPartialContent
		resp.SetHeader("Content-Range", fmt.Sprintf("bytes %d-%d/%d", d.Offset, d.Offset+d.Length-1, d.Size))
	}
	f := d.File
	resp.Stream = func(w io.Writer) error {
		if f == nil {
			return nil
		}
		defer f.Close()
		n, err := copyData(w, f, d.Offset, d.Length, s.blobs.direct)
		if err == nil && n != d.Length {
			err = fmt.Errorf("image data ended after %d of %d bytes", n, d.Length)
		}
		return err
	}
	return resp, nil
}

func (s *Service) importImage(r *http.Request) (*apiutil.Response, error) {
	b, err := apiutil.ReadBody(r)
	if err != nil {
		return nil, err
	}
	var req ImportRequest
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, apiutil.BadRequest("Body expected in request.")
	}
	if err := json.Unmarshal(b, &req); err != nil {
		return nil, apiutil.BadRequest("Malformed JSON in request body.")
	}
	if err := s.Import(r.Context(), r.PathValue("image_id"), req); err != nil {
		return nil, err
	}
	return &apiutil.Response{Status: http.StatusAccepted}, nil
}

func (s *Service) listMembers(r *http.Request) (*apiutil.Response, error) {
	ms, err := s.ListMembers(r.Context(), r.PathValue("image_id"))
	if err != nil {
		return nil, err
	}
	views := make([]map[string]any, len(ms))
	for i, m := range ms {
		views[i] = memberView(m)
	}
	return apiutil.JSON(http.StatusOK, map[string]any{"members": views, "schema": "/v2/schemas/members"}), nil
}

func (s *Service) addMember(r *http.Request) (*apiutil.Response, error) {
	body, err := decodeObject(r)
	if err != nil {
		return nil, err
	}
	member, ok := body["member"].(string)
	if !ok {
		return nil, apiutil.BadRequest("Member to be added not specified")
	}
	m, err := s.AddMember(r.Context(), r.PathValue("image_id"), member)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(http.StatusOK, memberView(m)), nil
}

func (s *Service) showMember(r *http.Request) (*apiutil.Response, error) {
	m, err := s.GetMember(r.Context(), r.PathValue("image_id"), r.PathValue("member_id"))
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(http.StatusOK, memberView(m)), nil
}

func (s *Service) updateMember(r *http.Request) (*apiutil.Response, error) {
	body, err := decodeObject(r)
	if err != nil {
		return nil, err
	}
	status, ok := body["status"].(string)
	if !ok {
		return nil, apiutil.BadRequest("Status not specified")
	}
	m, err := s.UpdateMember(r.Context(), r.PathValue("image_id"), r.PathValue("member_id"), status)
	if err != nil {
		return nil, err
	}
	return apiutil.JSON(http.StatusOK, memberView(m)), nil
}

func (s *Service) deleteMember(r *http.Request) (*apiutil.Response, error) {
	return apiutil.NoContent(), s.DeleteMember(r.Context(), r.PathValue("image_id"), r.PathValue("member_id"))
}

func (s *Service) infoImport(r *http.Request) (*apiutil.Response, error) {
	return apiutil.JSON(http.StatusOK, map[string]any{"import-methods": map[string]any{
		"description": "Import methods available.", "type": "array", "value": s.cfg.ImportMethods,
	}}), nil
}

func (s *Service) infoStores(r *http.Request) (*apiutil.Response, error) {
	return apiutil.JSON(http.StatusOK, map[string]any{"stores": []any{map[string]any{
		"id": storeID, "description": "Local filesystem store", "default": true,
	}}}), nil
}

func (s *Service) schema(build func() map[string]any) apiutil.Handler {
	doc := build()
	return func(r *http.Request) (*apiutil.Response, error) {
		return apiutil.JSON(http.StatusOK, doc), nil
	}
}
