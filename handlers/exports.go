package handlers

import (
	"context"
	"encoding/csv"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/urlsign"
)

// Export defaults and limits.
const (
	// DefaultExportTTL is how long an export can be downloaded after it is
	// created, unless ExportOptions.TTL says otherwise.
	DefaultExportTTL = 24 * time.Hour
	// DefaultExportLinkTTL is how long a download link works.
	DefaultExportLinkTTL = 5 * time.Minute
	// DefaultExportStreamTimeout bounds one CSV download.
	DefaultExportStreamTimeout = 30 * time.Minute
	// MaxExportRange bounds end_time - start_time of an export.
	MaxExportRange = 92 * 24 * time.Hour
	// defaultExportPage is how many rows one database query of a download
	// reads.
	defaultExportPage = 1000
	// exportLinkPurpose names the key, derived from the master keyring,
	// that signs download links.
	exportLinkPurpose = "hookd/export-download-link/v1"
)

// ExportOptions configures CSV exports; zero fields take the defaults.
type ExportOptions struct {
	// TTL is how long an export can be downloaded after it is created.
	// Zero: DefaultExportTTL.
	TTL time.Duration
	// LinkTTL is how long a download link works (never past the export's
	// own expiry). Zero: DefaultExportLinkTTL.
	LinkTTL time.Duration
	// PublicURL is the base of download links, such as
	// "https://hookd.example.com" (no trailing slash). Empty: the scheme and
	// Host of the request asking for the link.
	PublicURL string
	// StreamTimeout bounds one CSV download, database reads and writes to
	// the client included. Zero: DefaultExportStreamTimeout.
	StreamTimeout time.Duration
	// PageRows is how many rows a download reads per database query. Zero:
	// 1,000.
	PageRows int
}

func (o ExportOptions) ttl() time.Duration     { return orDefault(o.TTL, DefaultExportTTL) }
func (o ExportOptions) linkTTL() time.Duration { return orDefault(o.LinkTTL, DefaultExportLinkTTL) }
func (o ExportOptions) streamTimeout() time.Duration {
	return orDefault(o.StreamTimeout, DefaultExportStreamTimeout)
}

func (o ExportOptions) pageRows() int {
	if o.PageRows <= 0 {
		return defaultExportPage
	}
	return o.PageRows
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

var (
	errExportExpired = &Error{Status: http.StatusGone, Code: "EXPORT_EXPIRED",
		Message: "the export has expired; create a new one"}
	errExportNotReady = &Error{Status: http.StatusConflict, Code: "EXPORT_NOT_READY",
		Message: "the export is not complete yet"}
	errLinkExpired = &Error{Status: http.StatusGone, Code: "EXPORT_EXPIRED",
		Message: "the download link has expired; GET /v1/exports/{id}/download gives a new one"}
	errBadLink = &Error{Status: http.StatusForbidden, Code: "FORBIDDEN",
		Message: "the download link is not valid; GET /v1/exports/{id}/download gives a new one"}
)

// linkSigner signs and checks download links with a key derived from the
// master keyring: the active master key signs, and every key in the ring
// verifies, so links survive a master key rotation in progress.
func (s *Server) linkSigner() *urlsign.Signer {
	s.signerOnce.Do(func() {
		keys := s.Keyring.DerivedKeys(exportLinkPurpose)
		s.signer = urlsign.New(keys[0], keys[1:]...)
	})
	return s.signer
}

// CreateExport records the filters of a CSV export. The export is complete
// at once: its CSV is produced from the database on download.
func (s *Server) CreateExport(ctx context.Context, req gen.CreateExportRequestObject) (gen.CreateExportResponseObject, error) {
	b := req.Body
	direction, endpointID := store.ExportDirectionOutbound, b.EndpointId
	if b.Direction != nil && *b.Direction == gen.ExportDirectionInbound {
		if b.EndpointId != nil {
			return nil, invalid("/endpoint_id", "outbound-only", "endpoint_id filters outbound exports; use inbound_endpoint_id with direction inbound")
		}
		direction, endpointID = store.ExportDirectionInbound, nil
		if b.InboundEndpointId != nil {
			id := b.InboundEndpointId.String()
			endpointID = &id
		}
	} else if b.InboundEndpointId != nil {
		return nil, invalid("/inbound_endpoint_id", "inbound-only", "inbound_endpoint_id goes with direction inbound")
	}
	start, end := b.StartTime.UTC().Truncate(time.Microsecond), b.EndTime.UTC().Truncate(time.Microsecond)
	if !end.After(start) {
		return nil, invalid("/end_time", "after-start_time", "end_time must be after start_time")
	}
	if end.Sub(start) > MaxExportRange {
		return nil, invalid("/end_time", "max-range", "an export covers at most 92 days (end_time - start_time)")
	}
	now := s.now()
	x := store.Export{
		ID:               ids.NewUUID(),
		ProjectID:        projectID(ctx),
		Status:           store.ExportCompleted,
		FilterStartTime:  start,
		FilterEndTime:    end,
		FilterEndpointID: endpointID,
		FilterDirection:  direction,
		CreatedAt:        now,
		StartedAt:        &now,
		CompletedAt:      &now,
		ExpiresAt:        now.Add(s.Exports.ttl()),
	}
	if b.Status != nil {
		st := string(*b.Status)
		x.FilterStatus = &st
	}
	x, err := s.Store.CreateExport(ctx, x)
	if err != nil {
		return nil, err
	}
	return gen.CreateExport201JSONResponse{Data: toExport(x, now), Meta: meta(ctx)}, nil
}

// ListExports pages through the project's exports, newest first.
func (s *Server) ListExports(ctx context.Context, req gen.ListExportsRequestObject) (gen.ListExportsResponseObject, error) {
	xs, next, hasMore, err := page(req.Params.Cursor, validUUID, deref(req.Params.Limit, 50),
		func(before string, n int) ([]store.Export, error) {
			return s.Store.ListExports(ctx, projectID(ctx), before, n)
		},
		func(x store.Export) string { return x.ID })
	if err != nil {
		return nil, err
	}
	now := s.now()
	data := make([]gen.Export, len(xs))
	for i, x := range xs {
		data[i] = toExport(x, now)
	}
	return gen.ListExports200JSONResponse{Data: data, Meta: gen.PageMeta{RequestId: RequestID(ctx), NextCursor: next, HasMore: hasMore}}, nil
}

// GetExport returns one export of the caller's project.
func (s *Server) GetExport(ctx context.Context, req gen.GetExportRequestObject) (gen.GetExportResponseObject, error) {
	x, err := s.Store.GetExport(ctx, projectID(ctx), req.Id.String())
	if err != nil {
		return nil, err
	}
	return gen.GetExport200JSONResponse{Data: toExport(x, s.now()), Meta: meta(ctx)}, nil
}

// DeleteExport deletes an export; its download links stop working.
func (s *Server) DeleteExport(ctx context.Context, req gen.DeleteExportRequestObject) (gen.DeleteExportResponseObject, error) {
	if err := s.Store.DeleteExport(ctx, projectID(ctx), req.Id.String()); err != nil {
		return nil, err
	}
	return gen.DeleteExport200JSONResponse{Data: gen.ExportDeleted{Id: req.Id, Deleted: true}, Meta: meta(ctx)}, nil
}

// DownloadExport answers 302 with a short-lived signed link to the CSV.
func (s *Server) DownloadExport(ctx context.Context, req gen.DownloadExportRequestObject) (gen.DownloadExportResponseObject, error) {
	x, err := s.Store.GetExport(ctx, projectID(ctx), req.Id.String())
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !now.Before(x.ExpiresAt) {
		return nil, errExportExpired
	}
	if x.Status != store.ExportCompleted {
		// Unreachable today (exports complete when created); kept so a
		// future asynchronous export answers as HookBridge does.
		return nil, errExportNotReady
	}
	expires := now.Add(s.Exports.linkTTL())
	if expires.After(x.ExpiresAt) {
		expires = x.ExpiresAt
	}
	q := url.Values{}
	q.Set("expires", strconv.FormatInt(expires.Unix(), 10))
	q.Set("sig", s.linkSigner().Sign(x.ID, expires))
	base := s.Exports.PublicURL
	if base == "" {
		base = origin(ctx)
	}
	noStore := "no-store"
	return gen.DownloadExport302Response{Headers: gen.DownloadExport302ResponseHeaders{
		Location:     base + "/v1/exports/" + x.ID + "/file?" + q.Encode(),
		CacheControl: &noStore,
	}}, nil
}

// GetExportFile streams an export's CSV to the holder of a valid signed
// link. It needs no API key: the signature binds the export id and the
// link's expiry.
func (s *Server) GetExportFile(ctx context.Context, req gen.GetExportFileRequestObject) (gen.GetExportFileResponseObject, error) {
	id := req.Id.String()
	switch err := s.linkSigner().Verify(id, req.Params.Expires, req.Params.Sig, s.now()); {
	case errors.Is(err, urlsign.ErrExpired):
		return nil, errLinkExpired
	case err != nil:
		return nil, errBadLink
	}
	x, err := s.Store.GetExportByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if !s.now().Before(x.ExpiresAt) {
		return nil, errExportExpired
	}
	// The first page is read before the answer starts, so a database
	// failure here still gets a proper error answer.
	page := s.Exports.pageRows()
	first, next, err := s.Store.ExportRows(ctx, x, "", page)
	if err != nil {
		return nil, err
	}
	return &csvStream{ctx: ctx, s: s, export: x, first: first, next: next, page: page}, nil
}

// csvHeader is the CSV's first row. Payloads and headers are never
// exported.
var csvHeader = []string{"message_id", "endpoint_id", "endpoint_url", "status", "attempt_count", "created_at",
	"delivered_at", "response_status", "response_latency_ms", "last_error", "next_attempt_at"}

// csvStream writes an export's CSV page by page as it reads it, so memory
// stays flat however many rows there are.
type csvStream struct {
	ctx    context.Context //nolint:containedctx // the request's context, for reads made while writing the answer
	s      *Server
	export store.Export
	first  []store.ExportRow // the first page, read before the 200
	next   string            // where the second page starts; "" if none
	page   int
}

// VisitGetExportFileResponse implements gen.GetExportFileResponseObject.
// Once the 200 is sent, a database failure can no longer become an error
// answer: the connection is broken instead (http.ErrAbortHandler), so the
// client sees a failed download rather than a file that ends early.
func (c *csvStream) VisitGetExportFileResponse(w http.ResponseWriter) error {
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="hookd-export-`+c.export.ID+`.csv"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// The server's write timeout suits API answers, not a large file.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(c.s.Exports.streamTimeout()))
	w.WriteHeader(http.StatusOK)

	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	rows, next := c.first, c.next
	for {
		for _, r := range rows {
			if err := cw.Write(csvRecord(r)); err != nil {
				return err // the client went away
			}
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		var err error
		rows, next, err = c.s.Store.ExportRows(c.ctx, c.export, next, c.page)
		if err != nil {
			c.s.log().ErrorContext(c.ctx, "export download failed part-way; connection broken", "request_id", RequestID(c.ctx),
				"export_id", c.export.ID, "error", err.Error())
			panic(http.ErrAbortHandler)
		}
	}
}

func csvRecord(r store.ExportRow) []string {
	return []string{
		r.ID, r.EndpointID, r.EndpointURL, r.Status, strconv.Itoa(r.AttemptCount), csvTime(&r.CreatedAt),
		csvTime(r.DeliveredAt), csvInt(r.ResponseStatus), csvInt(r.ResponseLatencyMs), deref(r.LastError, ""), csvTime(r.NextAttemptAt),
	}
}

func csvTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func csvInt(p *int) string {
	if p == nil {
		return ""
	}
	return strconv.Itoa(*p)
}

// toExport renders an export; one whose expiry has passed at now reads
// "expired".
func toExport(x store.Export, now time.Time) gen.Export {
	out := gen.Export{
		Id:              uuid.MustParse(x.ID),
		ProjectId:       x.ProjectID,
		Status:          gen.ExportStatus(x.Status),
		FilterStartTime: x.FilterStartTime.UTC(),
		FilterEndTime:   x.FilterEndTime.UTC(),
		FilterDirection: gen.ExportDirection(x.FilterDirection),
		RowCount:        x.RowCount,
		FileSizeBytes:   x.FileSizeBytes,
		ErrorMessage:    x.ErrorMessage,
		CreatedAt:       x.CreatedAt.UTC(),
		StartedAt:       utcPtr(x.StartedAt),
		CompletedAt:     utcPtr(x.CompletedAt),
		ExpiresAt:       x.ExpiresAt.UTC(),
	}
	if !now.Before(x.ExpiresAt) {
		out.Status = gen.ExportStatusExpired
	}
	if x.FilterStatus != nil {
		st := gen.ExportFilterStatus(*x.FilterStatus)
		out.FilterStatus = &st
	}
	if x.FilterEndpointID != nil {
		// HookBridge reports the endpoint filter as a bare id, without "ep_".
		bare := strings.TrimPrefix(*x.FilterEndpointID, ids.EndpointPrefix)
		out.FilterEndpointId = &bare
	}
	return out
}
