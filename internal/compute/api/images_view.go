package api

import (
	"net/http"
	"strconv"

	"github.com/kumo-cloud/kumo/internal/apiutil"
)

// The image proxy's view, appended as JSON like the server views: keys in
// encoding/json's order, so the bodies are byte for byte those of the
// map-based view this replaced (TestImageViewMatchesMapView).

// imageURLs are the link prefixes of one request, JSON-escaped.
type imageURLs struct {
	self, bookmark, alternate  string // ".../images/"
	serverSelf, serverBookmark string // ".../servers/"
}

func newImageURLs(r *http.Request) *imageURLs {
	base := apiutil.PublicURL(r) + Prefix
	p := ""
	if pp := projectPrefix(r); pp != "" {
		p = "/" + pp
	}
	return &imageURLs{
		self:           jsonEscaped(base + "/v2.1" + p + "/images/"),
		bookmark:       jsonEscaped(base + p + "/images/"),
		alternate:      jsonEscaped(apiutil.PublicURL(r) + "/image/images/"),
		serverSelf:     jsonEscaped(base + "/v2.1" + p + "/servers/"),
		serverBookmark: jsonEscaped(base + p + "/servers/"),
	}
}

// appendSelfBookmark appends the self and bookmark links of id, and the
// image service's alternate link when alternate is set.
func appendSelfBookmark(b []byte, self, bookmark, alternate, id string) []byte {
	b = append(b, `[{"href":"`...)
	b = append(b, self...)
	b = appendEscaped(b, id)
	b = append(b, `","rel":"self"},{"href":"`...)
	b = append(b, bookmark...)
	b = appendEscaped(b, id)
	b = append(b, `","rel":"bookmark"}`...)
	if alternate != "" {
		b = append(b, `,{"href":"`...)
		b = append(b, alternate...)
		b = appendEscaped(b, id)
		b = append(b, `","rel":"alternate","type":"application/vnd.openstack.image"}`...)
	}
	return append(b, ']')
}

// appendImageView appends an image as Nova shows it (detail when full).
func appendImageView(b []byte, u *imageURLs, img *Image, full bool) []byte {
	o := beginObj(b)
	md := img.Properties
	if full {
		if adc, ok := md["auto_disk_config"]; ok {
			if v, err := strconv.ParseBool(adc); err == nil && v {
				o.raw("OS-DCF:diskConfig", `"AUTO"`)
			} else {
				o.raw("OS-DCF:diskConfig", `"MANUAL"`)
			}
		}
		if img.SizeKnown {
			o.int("OS-EXT-IMG-SIZE:size", img.Size)
		} else {
			o.null("OS-EXT-IMG-SIZE:size")
		}
		o.time("created", img.Created, novaTimeLayout)
	}
	o.str("id", img.ID)
	o.key("links")
	o.b = appendSelfBookmark(o.b, u.self, u.bookmark, u.alternate, img.ID)
	if full {
		if md == nil {
			md = map[string]string{}
		}
		o.strMap("metadata", md)
		o.int("minDisk", img.MinDisk)
		o.int("minRam", img.MinRAM)
	}
	o.str("name", img.Name)
	if full {
		o.int("progress", int64(imageProgress(img.Status)))
		if sid, ok := md["instance_uuid"]; ok {
			o.key("server")
			s := beginObj(o.b)
			s.str("id", sid)
			s.key("links")
			s.b = appendSelfBookmark(s.b, u.serverSelf, u.serverBookmark, "", sid)
			o.b = s.end()
		}
		o.str("status", imageStatus(img.Status))
		o.time("updated", img.Updated, novaTimeLayout)
	}
	return o.end()
}

// imageListBody is the body of GET /images and /images/detail.
type imageListBody struct {
	urls *imageURLs
	imgs []*Image
	full bool
	next string // href of the next page, "" when none
}

// AppendJSON implements apiutil.JSONAppender.
func (l *imageListBody) AppendJSON(b []byte) []byte {
	b = append(b, `{"images":[`...)
	for n, img := range l.imgs {
		if n > 0 {
			b = append(b, ',')
		}
		b = appendImageView(b, l.urls, img, l.full)
	}
	return endPage(b, "images_links", l.next)
}

// imageDoc is {"image": ...}, the body of GET /images/{id}.
type imageDoc struct {
	urls *imageURLs
	img  *Image
}

// AppendJSON implements apiutil.JSONAppender.
func (d imageDoc) AppendJSON(b []byte) []byte {
	b = append(b, `{"image":`...)
	b = appendImageView(b, d.urls, d.img, true)
	return append(b, '}')
}
