package image

// Per-project quotas from Keystone unified limits, as Glance enforces them
// since Xena when use_keystone_limits is on (Config.UseKeystoneLimits).
// Four resources, registered for the service of catalog type "image":
//
//	image_size_total       MiB of image data stored (active and deactivated images)
//	image_stage_total      MiB of data staged for import (images uploading or importing)
//	image_count_total      images owned, whatever their status
//	image_count_uploading  images being uploaded, staged or imported (saving, uploading, importing)
//
// A project limit overrides the registered default; a resource with
// neither has a limit of 0, so nothing of it may be used (oslo.limit does
// the same: register the four limits before turning enforcement on); -1
// is unlimited. Each check is oslo.limit's: usage + delta > limit refuses
// with 413 and Glance's LimitExceeded body.
//
// Where each is checked:
//
//	POST /v2/images               image_count_total, delta 1
//	PUT  /v2/images/{id}/file     image_size_total (already over: 413 before a byte is read),
//	                              then image_count_uploading counting the image itself (after
//	                              it turned saving, as in Glance: two racing uploads both lose
//	                              rather than both win)
//	PUT  /v2/images/{id}/stage    image_stage_total, then image_count_uploading, the same way
//	POST /v2/images/{id}/import   glance-direct: image_size_total with the staged data as delta
//
// Glance's byte limits are soft: it checks before a stream starts and lets
// one upload overshoot. Kumo counts bytes as they arrive: the upload (or
// stage) may store at most what is left under the limit, the ingest
// pipeline stops at that byte (the same cut as image_size_cap and the old
// per-project byte quota), the partial data is removed and the image goes
// back to queued. A declared Content-Length beyond the room is refused
// before any byte is read. The final commit checks image_size_total again
// inside the transaction that activates the image, so concurrent uploads
// cannot pass the limit together; a stage checks image_stage_total again
// before its data is moved into the staging area.
//
// With enforcement on, the old ProjectQuotaBytes (Glance's
// user_storage_quota) is ignored, as Glance ignores user_storage_quota
// once per-tenant quotas are used.

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/kumo-cloud/kumo/internal/apiutil"
	"github.com/kumo-cloud/kumo/internal/db"
	"github.com/kumo-cloud/kumo/internal/identity"
)

// The unified limit resources of the image service.
const (
	resSizeTotal      = "image_size_total"
	resStageTotal     = "image_stage_total"
	resCountTotal     = "image_count_total"
	resCountUploading = "image_count_uploading"
)

var limitResources = []string{resSizeTotal, resStageTotal, resCountTotal, resCountUploading}

// limitServiceType is the catalog type whose registered limits apply.
const limitServiceType = "image"

const mib = 1 << 20

// overLimit is oslo.limit's test: the usage after the request passes a
// limit that is not unlimited (-1).
func overLimit(limit, usage, delta int64) bool { return limit >= 0 && usage+delta > limit }

// byteRoom is how many more bytes fit under a limit of limitMiB MiB when
// used bytes are stored; negative when already over.
func byteRoom(limitMiB, used int64) int64 {
	if limitMiB < 0 {
		return math.MaxInt64
	}
	return limitMiB*mib - used
}

// mibUp is bytes in MiB rounded up (refusal messages: the sum they show
// is over the limit), mibDown rounded down (the usage API, as Glance).
func mibUp(b int64) int64 { return (max(b, 0) + mib - 1) / mib }

func mibDown(b int64) int64 { return max(b, 0) / mib }

// overInfo is one resource over its limit (oslo.limit's OverLimitInfo).
type overInfo struct {
	resource            string
	limit, usage, delta int64
}

// limitExceeded is Glance's 413 for a project over one of its limits: its
// LimitExceeded text wrapping oslo.limit's ProjectOverLimit.
func limitExceeded(project string, over ...overInfo) error {
	parts := make([]string, len(over))
	for i, o := range over {
		parts[i] = fmt.Sprintf("Resource %s is over limit of %d due to current usage %d and delta %d", o.resource, o.limit, o.usage, o.delta)
	}
	return &apiutil.Error{Status: http.StatusRequestEntityTooLarge, Err: apiutil.ErrOverLimit, Message: "The request returned a 413 Request Entity Too Large. " +
		"This generally means that rate limiting or a quota threshold was breached.\n\nThe response body:\n" +
		fmt.Sprintf("Project %s is over a limit for [%s]", project, strings.Join(parts, ", "))}
}

// limitsOn reports whether unified limits apply to images of owner (an
// image without an owning project is charged to nobody).
func (s *Service) limitsOn(owner string) bool { return s.cfg.UseKeystoneLimits && owner != "" }

// projectLimits returns the four limits of owner; an unregistered one is 0.
func (s *Service) projectLimits(ctx context.Context, owner string) (map[string]int64, error) {
	got, err := s.cfg.Limits.ProjectLimits(ctx, identity.LimitQuery{ServiceType: limitServiceType, RegionID: s.cfg.LimitsRegion,
		ProjectID: owner, Resources: limitResources})
	if err != nil {
		return nil, fmt.Errorf("read unified limits of project %s: %w", owner, err)
	}
	out := make(map[string]int64, len(limitResources))
	for _, r := range limitResources {
		out[r] = got[r] // absent: 0
	}
	return out, nil
}

// projectUsage is what a project uses of each resource (bytes for the
// two size resources).
type projectUsage struct {
	sizeBytes, stageBytes, count, uploading int64
}

// usageOf reads owner's usage: one aggregate over its images, then the
// staged bytes, which are the sizes of the staging files of its images in
// uploading or importing (Kumo records no size before activation), except
// image excludeStage.
func (s *Service) usageOf(ctx context.Context, q db.Querier, owner, excludeStage string) (projectUsage, error) {
	var u projectUsage
	err := q.QueryRowContext(ctx, `SELECT COUNT(*),
COALESCE(SUM(CASE WHEN status IN ('saving', 'uploading', 'importing') THEN 1 ELSE 0 END), 0),
COALESCE(SUM(size), 0) FROM images WHERE owner = $1 AND status NOT IN ('killed', 'deleted')`, owner).Scan(&u.count, &u.uploading, &u.sizeBytes)
	if err != nil {
		return u, fmt.Errorf("image usage of %s: %w", owner, err)
	}
	rows, err := q.QueryContext(ctx, `SELECT id FROM images WHERE owner = $1 AND status IN ('uploading', 'importing')`, owner)
	if err != nil {
		return u, fmt.Errorf("staged images of %s: %w", owner, err)
	}
	defer rows.Close()
	var staged []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return u, fmt.Errorf("staged images of %s: %w", owner, err)
		}
		if id != excludeStage {
			staged = append(staged, id)
		}
	}
	if err := rows.Err(); err != nil {
		return u, fmt.Errorf("staged images of %s: %w", owner, err)
	}
	for _, id := range staged {
		fi, err := os.Stat(s.blobs.stagingPath(id))
		if err == nil {
			u.stageBytes += fi.Size()
		} else if !errors.Is(err, fs.ErrNotExist) {
			return u, fmt.Errorf("staged data of %s: %w", id, err)
		}
	}
	return u, nil
}

// createLocks serialize the count-and-insert of image creates per owner
// (striped), so that concurrent creates in this process cannot pass
// image_count_total together.
var createLocks [64]sync.Mutex

func ownerLock(owner string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(owner))
	return &createLocks[h.Sum32()%uint32(len(createLocks))]
}

// reserveImageCount checks image_count_total for one more image of owner;
// the caller inserts the image and then calls the returned unlock.
func (s *Service) reserveImageCount(ctx context.Context, owner string) (func(), error) {
	if !s.limitsOn(owner) {
		return func() {}, nil
	}
	mu := ownerLock(owner)
	mu.Lock()
	lim, err := s.projectLimits(ctx, owner)
	if err == nil {
		var u projectUsage
		if u, err = s.usageOf(ctx, s.deps.DB.Reader(), owner, ""); err == nil && overLimit(lim[resCountTotal], u.count, 1) {
			err = limitExceeded(owner, overInfo{resCountTotal, lim[resCountTotal], u.count, 1})
		}
	}
	if err != nil {
		mu.Unlock()
		return nil, err
	}
	return mu.Unlock, nil
}

// checkUploading checks image_count_uploading once the image itself counts
// (it was just moved to saving or uploading): delta 0, as in Glance.
func (s *Service) checkUploading(ctx context.Context, owner string) error {
	if !s.limitsOn(owner) {
		return nil
	}
	lim, err := s.projectLimits(ctx, owner)
	if err != nil {
		return err
	}
	u, err := s.usageOf(ctx, s.deps.DB.Reader(), owner, "")
	if err != nil {
		return err
	}
	if overLimit(lim[resCountUploading], u.uploading, 0) {
		return limitExceeded(owner, overInfo{resCountUploading, lim[resCountUploading], u.uploading, 0})
	}
	return nil
}

// dataLimit is the byte budget a data stream of one image gets from a
// size resource (image_size_total for an upload, image_stage_total for a
// stage).
type dataLimit struct {
	owner, resource string
	limit           int64 // MiB, -1 unlimited
	used            int64 // bytes used by the project's other images
	room            int64 // bytes this stream may store
}

// dataLimitFor reads the budget of an upload (stage false) or a stage of
// image id, refusing when the project is already over the limit or the
// declared length does not fit. nil when limits are off.
func (s *Service) dataLimitFor(ctx context.Context, owner, id string, stage bool, contentLength int64) (*dataLimit, error) {
	if !s.limitsOn(owner) {
		return nil, nil
	}
	lim, err := s.projectLimits(ctx, owner)
	if err != nil {
		return nil, err
	}
	d := &dataLimit{owner: owner, resource: resSizeTotal, limit: lim[resSizeTotal]}
	if stage {
		d.resource, d.limit = resStageTotal, lim[resStageTotal]
		u, err := s.usageOf(ctx, s.deps.DB.Reader(), owner, id)
		if err != nil {
			return nil, err
		}
		d.used = u.stageBytes
	} else if d.used, err = s.store.UsedBytes(ctx, owner, id); err != nil {
		return nil, err
	}
	d.room = byteRoom(d.limit, d.used)
	if d.room < 0 {
		return nil, d.exceeded(0)
	}
	if contentLength > d.room {
		return nil, d.exceeded(contentLength)
	}
	return d, nil
}

// exceeded is the refusal of size bytes of new data.
func (d *dataLimit) exceeded(size int64) error {
	return limitExceeded(d.owner, overInfo{d.resource, d.limit, mibUp(d.used), mibUp(size)})
}

// clamp lowers room (the size cap, or the old byte quota) to the budget.
func (d *dataLimit) clamp(room int64) int64 {
	if d == nil {
		return room
	}
	return min(room, d.room)
}

// ingestErr maps a failed ingest: the stream was cut at the budget when
// the budget was tighter than the other caps.
func (d *dataLimit) ingestErr(s *Service, err error, room int64) error {
	if d != nil && errors.Is(err, errTooLarge) && room == d.room && d.room < s.cfg.MaxImageBytes {
		return d.exceeded(room + 1)
	}
	return s.ingestErr(err, room)
}

// recheckStage checks image_stage_total again once size bytes are
// received, against the staged data of the project's other images now.
func (s *Service) recheckStage(ctx context.Context, d *dataLimit, id string, size int64) error {
	if d == nil || d.limit < 0 {
		return nil
	}
	u, err := s.usageOf(ctx, s.deps.DB.Reader(), d.owner, id)
	if err != nil {
		return err
	}
	if size > byteRoom(d.limit, u.stageBytes) {
		d.used = u.stageBytes
		return d.exceeded(size)
	}
	return nil
}

// checkImportLimits checks the limits an import starts to consume: for
// glance-direct, image_size_total with the staged data as delta (the
// image stays uploading with its staged data, so the client can free
// room and import again); for the methods that download into staging
// (web-download), image_stage_total and image_count_uploading as Glance
// does (the image joins the uploads).
func (s *Service) checkImportLimits(ctx context.Context, img *Image, method string) error {
	if !s.limitsOn(img.Owner) {
		return nil
	}
	lim, err := s.projectLimits(ctx, img.Owner)
	if err != nil {
		return err
	}
	if method == "glance-direct" {
		fi, err := os.Stat(s.blobs.stagingPath(img.ID))
		if err != nil {
			return nil // nothing staged: the import fails on its own
		}
		used, err := s.store.UsedBytes(ctx, img.Owner, img.ID)
		if err != nil {
			return err
		}
		if fi.Size() > byteRoom(lim[resSizeTotal], used) {
			return limitExceeded(img.Owner, overInfo{resSizeTotal, lim[resSizeTotal], mibUp(used), mibUp(fi.Size())})
		}
		return nil
	}
	u, err := s.usageOf(ctx, s.deps.DB.Reader(), img.Owner, "")
	if err != nil {
		return err
	}
	var over []overInfo
	if overLimit(lim[resStageTotal], mibDown(u.stageBytes), 0) {
		over = append(over, overInfo{resStageTotal, lim[resStageTotal], mibDown(u.stageBytes), 0})
	}
	if overLimit(lim[resCountUploading], u.uploading, 1) {
		over = append(over, overInfo{resCountUploading, lim[resCountUploading], u.uploading, 1})
	}
	if len(over) > 0 {
		return limitExceeded(img.Owner, over...)
	}
	return nil
}

// checkSizeLimit is the image_size_total check of the transaction that
// activates image id with size bytes (usage reads inside it).
func (s *Service) checkSizeLimit(ctx context.Context, owner, id string, size int64, usage UsageFunc) error {
	if !s.limitsOn(owner) {
		return nil
	}
	lim, err := s.projectLimits(ctx, owner)
	if err != nil {
		return err
	}
	if lim[resSizeTotal] < 0 {
		return nil
	}
	used, err := usage(owner, id)
	if err != nil {
		return err
	}
	if size > byteRoom(lim[resSizeTotal], used) {
		return limitExceeded(owner, overInfo{resSizeTotal, lim[resSizeTotal], mibUp(used), mibUp(size)})
	}
	return nil
}

// Usage is GET /v2/info/usage: each resource's limit and the caller's
// project's usage (sizes in MiB, rounded down as Glance does). Empty when
// enforcement is off, as in Glance.
func (s *Service) Usage(ctx context.Context) (map[string]map[string]int64, error) {
	c := callerOf(ctx)
	out := map[string]map[string]int64{}
	if !s.limitsOn(c.project) {
		return out, nil
	}
	lim, err := s.projectLimits(ctx, c.project)
	if err != nil {
		return nil, err
	}
	u, err := s.usageOf(ctx, s.deps.DB.Reader(), c.project, "")
	if err != nil {
		return nil, err
	}
	used := map[string]int64{resSizeTotal: mibDown(u.sizeBytes), resStageTotal: mibDown(u.stageBytes),
		resCountTotal: u.count, resCountUploading: u.uploading}
	for _, r := range limitResources {
		out[r] = map[string]int64{"limit": lim[r], "usage": used[r]}
	}
	return out, nil
}
