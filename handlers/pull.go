package handlers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/store"
)

// Pull endpoints are inbound endpoints with mode pull (store/pull.go): the
// same ingest, checks and de-duplication; their events wait to be fetched
// and acknowledged.

// pullInput turns a pull request into the inbound endpoint fields it shares
// (url, mode and signing_enabled do not apply and are dropped).
func pullInput(b *gen.PullEndpointRequest) (inboundInput, error) {
	var in inboundInput
	raw, _ := json.Marshal(b) // generated fields: cannot fail
	if err := json.Unmarshal(raw, &in); err != nil {
		return in, err
	}
	in.Url, in.Mode, in.SigningEnabled = nil, nil, nil
	return in, nil
}

// applyPull applies pull's own fields.
func applyPull(ie *store.InboundEndpoint, b *gen.PullEndpointRequest) error {
	if b.RetentionDays != nil {
		d := *b.RetentionDays
		ie.RetentionDays = &d
	}
	if b.EventTypeSource != nil {
		src := string(*b.EventTypeSource)
		ie.EventTypeSource = &src
	}
	if b.EventTypePath != nil {
		p := *b.EventTypePath
		ie.EventTypePath = &p
	}
	if err := checkText("event_type_path", ie.EventTypePath, false); err != nil {
		return err
	}
	if (ie.EventTypeSource == nil) != (ie.EventTypePath == nil) {
		return invalid("/event_type_path", "together", "event_type_source and event_type_path go together")
	}
	return nil
}

// CreatePullEndpoint creates a pull endpoint; the ingest token is shown
// only here.
func (s *Server) CreatePullEndpoint(ctx context.Context, req gen.CreatePullEndpointRequestObject) (gen.CreatePullEndpointResponseObject, error) {
	in, err := pullInput(req.Body)
	if err != nil {
		return nil, err
	}
	now := store.Now()
	ie := store.InboundEndpoint{
		ID: uuid.Must(uuid.NewV7()).String(), ProjectID: projectID(ctx), Mode: store.ModePull,
		HMACAlgorithm: "sha256", HMACEncoding: "hex", IngestResponseCode: http.StatusOK,
		AllowedCIDRs: store.StringList{}, IdempotencyHeaderNames: store.StringList{}, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.applyInbound(ctx, &ie, in, true); err != nil {
		return nil, err
	}
	if err := applyPull(&ie, req.Body); err != nil {
		return nil, err
	}
	token, _, _, err := s.storeInbound(ctx, &ie) // (its signing key is never used: nothing is forwarded)
	if err != nil {
		return nil, err
	}
	view := s.toPullEndpoint(ctx, ie, store.PullCounts{})
	view.IngestUrl = s.ingestURL(ctx, ie.ID, token)
	var out gen.PullEndpointCreated
	raw, _ := json.Marshal(view) // the same fields plus secret_token
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	out.SecretToken = token
	return gen.CreatePullEndpoint201JSONResponse{Data: out, Meta: meta(ctx)}, nil
}

func (s *Server) toPullEndpoint(ctx context.Context, ie store.InboundEndpoint, c store.PullCounts) gen.PullEndpoint {
	out := gen.PullEndpoint{
		Id: uuid.MustParse(ie.ID), Name: ie.Name, Mode: gen.PullEndpointModePull, IngestUrl: s.ingestURL(ctx, ie.ID, "{token}"),
		Active: !ie.Expired(s.now()), Paused: ie.Paused, RetentionDays: deref(ie.RetentionDays, store.DefaultPullRetentionDays),
		EventTypeSource: ie.EventTypeSource, EventTypePath: ie.EventTypePath,
		Counts:   gen.PullCounts{Stored: c.Stored, Fetched: c.Fetched, Delivered: c.Delivered, Total: c.Stored + c.Fetched + c.Delivered},
		Provider: ie.Provider, VerifyStaticToken: ie.VerifyStaticToken, TokenHeaderName: ie.TokenHeaderName, TokenQueryParam: ie.TokenQueryParam,
		VerifyHmac: ie.VerifyHMAC, HmacHeaderName: ie.HMACHeaderName, TimestampHeaderName: ie.TimestampHeaderName,
		TimestampTtlSeconds: ie.TimestampTTLSeconds, VerifyIpAllowlist: ie.VerifyIPAllowlist, AllowedCidrs: append([]string{}, ie.AllowedCIDRs...),
		IngestResponseCode: ie.IngestResponseCode, IdempotencyHeaderNames: append([]string{}, ie.IdempotencyHeaderNames...),
		ExpiresAt: utcPtr(ie.ExpiresAt), CreatedAt: ie.CreatedAt.UTC(), UpdatedAt: ie.UpdatedAt.UTC(),
	}
	if ie.Description != "" {
		d := ie.Description
		out.Description = &d
	}
	return out
}

// pullEndpoint reads a live pull endpoint of the project (another mode's
// id is not found).
func (s *Server) pullEndpoint(ctx context.Context, id uuid.UUID) (store.InboundEndpoint, error) {
	ie, err := s.Store.GetInboundEndpoint(ctx, projectID(ctx), id.String())
	if err == nil && ie.Mode != store.ModePull {
		return store.InboundEndpoint{}, store.ErrNotFound
	}
	return ie, err
}

// pullEvents checks that id is a pull endpoint of the project, deleted
// ones included: a deleted pull endpoint's events stay readable, and can
// still be acknowledged and deleted.
func (s *Server) pullEvents(ctx context.Context, id uuid.UUID) error {
	ie, err := s.Store.GetInboundEndpointAny(ctx, projectID(ctx), id.String())
	if err == nil && ie.Mode != store.ModePull {
		return store.ErrNotFound
	}
	return err
}

// pullView reads a pull endpoint with its counts.
func (s *Server) pullView(ctx context.Context, id uuid.UUID) (gen.PullEndpoint, error) {
	ie, err := s.pullEndpoint(ctx, id)
	if err != nil {
		return gen.PullEndpoint{}, err
	}
	c, err := s.Store.CountPullEvents(ctx, ie.ID)
	if err != nil {
		return gen.PullEndpoint{}, err
	}
	return s.toPullEndpoint(ctx, ie, c), nil
}

// ListPullEndpoints pages through the project's pull endpoints.
func (s *Server) ListPullEndpoints(ctx context.Context, req gen.ListPullEndpointsRequestObject) (gen.ListPullEndpointsResponseObject, error) {
	es, next, hasMore, err := page(req.Params.Cursor, validUUID, deref(req.Params.Limit, 50),
		func(before string, n int) ([]store.InboundEndpoint, error) {
			return s.Store.ListInboundEndpoints(ctx, projectID(ctx), true, before, n)
		},
		func(e store.InboundEndpoint) string { return e.ID })
	if err != nil {
		return nil, err
	}
	data := make([]gen.PullEndpointSummary, len(es))
	now := s.now()
	for i, e := range es {
		data[i] = gen.PullEndpointSummary{Id: uuid.MustParse(e.ID), Name: e.Name, Active: !e.Expired(now), Paused: e.Paused,
			IngestUrl: s.ingestURL(ctx, e.ID, "{token}"), CreatedAt: e.CreatedAt.UTC()}
	}
	return gen.ListPullEndpoints200JSONResponse{Data: data, Meta: gen.PageMeta{RequestId: RequestID(ctx), NextCursor: next, HasMore: hasMore}}, nil
}

// GetPullEndpoint returns a pull endpoint with its event counts.
func (s *Server) GetPullEndpoint(ctx context.Context, req gen.GetPullEndpointRequestObject) (gen.GetPullEndpointResponseObject, error) {
	v, err := s.pullView(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return gen.GetPullEndpoint200JSONResponse{Data: v, Meta: meta(ctx)}, nil
}

// UpdatePullEndpoint changes the fields given.
func (s *Server) UpdatePullEndpoint(ctx context.Context, req gen.UpdatePullEndpointRequestObject) (gen.UpdatePullEndpointResponseObject, error) {
	ie, err := s.pullEndpoint(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	in, err := pullInput(req.Body)
	if err != nil {
		return nil, err
	}
	if err := s.applyInbound(ctx, &ie, in, false); err != nil {
		return nil, err
	}
	if err := applyPull(&ie, req.Body); err != nil {
		return nil, err
	}
	u := inboundFields(ie)
	u.Fields["retention_days"], u.Fields["event_type_source"], u.Fields["event_type_path"] = ie.RetentionDays, ie.EventTypeSource, ie.EventTypePath
	if err := s.Store.UpdateInboundEndpoint(ctx, projectID(ctx), ie.ID, u); err != nil {
		return nil, err
	}
	v, err := s.pullView(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return gen.UpdatePullEndpoint200JSONResponse{Data: v, Meta: meta(ctx)}, nil
}

// DeletePullEndpoint stops intake; the events stay readable.
func (s *Server) DeletePullEndpoint(ctx context.Context, req gen.DeletePullEndpointRequestObject) (gen.DeletePullEndpointResponseObject, error) {
	if _, err := s.pullEndpoint(ctx, req.Id); err != nil {
		return nil, err
	}
	if err := s.Store.DeleteInboundEndpoint(ctx, projectID(ctx), req.Id.String()); err != nil {
		return nil, err
	}
	return gen.DeletePullEndpoint200JSONResponse{Data: gen.EndpointDeleted{Id: req.Id.String(), Deleted: true}, Meta: meta(ctx)}, nil
}

// PausePullEndpoint refuses intake (503) until resumed.
func (s *Server) PausePullEndpoint(ctx context.Context, req gen.PausePullEndpointRequestObject) (gen.PausePullEndpointResponseObject, error) {
	if _, err := s.pullEndpoint(ctx, req.Id); err != nil {
		return nil, err
	}
	if _, err := s.Store.SetInboundPaused(ctx, projectID(ctx), req.Id.String(), true); err != nil {
		return nil, err
	}
	return gen.PausePullEndpoint200JSONResponse{Data: gen.EndpointPaused{Id: req.Id.String(), Paused: true}, Meta: meta(ctx)}, nil
}

// ResumePullEndpoint accepts intake again.
func (s *Server) ResumePullEndpoint(ctx context.Context, req gen.ResumePullEndpointRequestObject) (gen.ResumePullEndpointResponseObject, error) {
	if _, err := s.pullEndpoint(ctx, req.Id); err != nil {
		return nil, err
	}
	if _, err := s.Store.SetInboundPaused(ctx, projectID(ctx), req.Id.String(), false); err != nil {
		return nil, err
	}
	return gen.ResumePullEndpoint200JSONResponse{Data: gen.EndpointPaused{Id: req.Id.String()}, Meta: meta(ctx)}, nil
}

func pullTiming(m store.Message) gen.PullTiming {
	ms := func(from time.Time, to *time.Time) *int {
		if to == nil {
			return nil
		}
		v := max(int(to.Sub(from).Milliseconds()), 0)
		return &v
	}
	t := gen.PullTiming{TimeToFetchMs: ms(m.CreatedAt, m.FetchedAt), TotalLifecycleMs: ms(m.CreatedAt, m.DeliveredAt)}
	if m.FetchedAt != nil {
		t.TimeToAckMs = ms(*m.FetchedAt, m.DeliveredAt)
	}
	return t
}

func toPullSummary(m store.Message) gen.PullEventSummary {
	return gen.PullEventSummary{Id: uuid.MustParse(m.ID), EventType: m.EventType, Status: gen.PullEventStatus(store.PullState(m)),
		SizeBytes: m.SizeBytes, ReceivedAt: m.CreatedAt.UTC(), FetchedAt: utcPtr(m.FetchedAt), DeliveredAt: utcPtr(m.DeliveredAt),
		Timing: pullTiming(m)}
}

// pullFilter is the store filter of the events list and the pull logs.
func pullFilter(endpointID string, eventType, state *string, from, to *time.Time) store.PullFilter {
	return store.PullFilter{EndpointID: endpointID, EventType: deref(eventType, ""), State: deref(state, ""), From: from, To: to}
}

// ListPullEvents pages through a pull endpoint's events, oldest first.
func (s *Server) ListPullEvents(ctx context.Context, req gen.ListPullEventsRequestObject) (gen.ListPullEventsResponseObject, error) {
	if err := s.pullEvents(ctx, req.Id); err != nil {
		return nil, err
	}
	p := req.Params
	f := pullFilter(req.Id.String(), p.EventType, (*string)(p.Status), p.Since, p.Before)
	rows, next, hasMore, err := page(p.Cursor, validUUID, deref(p.Limit, 50),
		func(after string, n int) ([]store.PullEventRow, error) {
			return s.Store.ListPullEvents(ctx, projectID(ctx), f, after, true, n)
		},
		func(r store.PullEventRow) string { return r.ID })
	if err != nil {
		return nil, err
	}
	out := make([]gen.PullEventSummary, len(rows))
	for i, r := range rows {
		out[i] = toPullSummary(r.Message)
	}
	return gen.ListPullEvents200JSONResponse{Data: out, Meta: gen.PageMeta{RequestId: RequestID(ctx), NextCursor: next, HasMore: hasMore}}, nil
}

// GetPullEvent returns an event with its payload; unless preview, the
// first fetch marks it fetched.
func (s *Server) GetPullEvent(ctx context.Context, req gen.GetPullEventRequestObject) (gen.GetPullEventResponseObject, error) {
	if err := s.pullEvents(ctx, req.Id); err != nil {
		return nil, err
	}
	m, err := s.Store.GetPullEvent(ctx, projectID(ctx), req.Id.String(), req.EventId.String(), deref(req.Params.Preview, false))
	if err != nil {
		return nil, err
	}
	sum := toPullSummary(m)
	out := gen.PullEvent{Id: sum.Id, EventType: sum.EventType, Status: sum.Status, SizeBytes: sum.SizeBytes, ReceivedAt: sum.ReceivedAt,
		FetchedAt: sum.FetchedAt, DeliveredAt: sum.DeliveredAt, Timing: sum.Timing, ContentType: m.Headers["Content-Type"],
		Headers: map[string]string(m.Headers)}
	if out.Headers == nil {
		out.Headers = map[string]string{}
	}
	if verbatimJSON(m.Payload) {
		// Exactly as received (a consumer may check the provider's
		// signature over it); other bodies, and JSON the answer would
		// re-encode, come as base64.
		out.Payload = json.RawMessage(m.Payload)
	} else {
		enc := gen.PullEventPayloadEncodingBase64
		out.Payload, out.PayloadEncoding = base64.StdEncoding.EncodeToString(m.Payload), &enc
	}
	return gen.GetPullEvent200JSONResponse{Data: out, Meta: meta(ctx)}, nil
}

// AckPullEvents marks events delivered.
func (s *Server) AckPullEvents(ctx context.Context, req gen.AckPullEventsRequestObject) (gen.AckPullEventsResponseObject, error) {
	if err := s.pullEvents(ctx, req.Id); err != nil {
		return nil, err
	}
	ids := make([]string, len(req.Body.EventIds))
	for i, id := range req.Body.EventIds {
		ids[i] = id.String()
	}
	n, err := s.Store.AckPullEvents(ctx, projectID(ctx), req.Id.String(), ids)
	if err != nil {
		return nil, err
	}
	var out gen.PullAckEnvelope
	out.Data.Acknowledged, out.Meta = n, meta(ctx)
	return gen.AckPullEvents200JSONResponse(out), nil
}

// pullEventsOf keeps the ids of list that name events (deleted ones
// included) of the pull endpoint.
func (s *Server) pullEventsOf(ctx context.Context, endpointID uuid.UUID, list []uuid.UUID) ([]uuid.UUID, error) {
	return s.idsMatching(ctx, list, store.MessageFilter{Inbound: true, EndpointID: endpointID.String()})
}

// DeletePullEvent soft-deletes an event (idempotent).
func (s *Server) DeletePullEvent(ctx context.Context, req gen.DeletePullEventRequestObject) (gen.DeletePullEventResponseObject, error) {
	if err := s.pullEvents(ctx, req.Id); err != nil {
		return nil, err
	}
	ok, err := s.pullEventsOf(ctx, req.Id, []uuid.UUID{req.EventId})
	if err != nil {
		return nil, err
	}
	if len(ok) == 0 {
		return nil, store.ErrNotFound
	}
	d, err := s.Store.DeleteMessage(ctx, projectID(ctx), req.EventId.String())
	if err != nil {
		return nil, err
	}
	var out gen.PullEventDeletedEnvelope
	out.Data.EventId, out.Data.Deleted, out.Data.AlreadyDeleted, out.Data.DeletedAt, out.Meta = req.EventId.String(), true, d.Already, d.DeletedAt, meta(ctx)
	return gen.DeletePullEvent200JSONResponse(out), nil
}

// DeletePullEventsBatch soft-deletes up to 100 events.
func (s *Server) DeletePullEventsBatch(ctx context.Context, req gen.DeletePullEventsBatchRequestObject) (gen.DeletePullEventsBatchResponseObject, error) {
	if err := s.pullEvents(ctx, req.Id); err != nil {
		return nil, err
	}
	ok, err := s.pullEventsOf(ctx, req.Id, req.Body.MessageIds)
	if err != nil {
		return nil, err
	}
	res, err := s.deleteBatch(ctx, req.Body.MessageIds, ok)
	if err != nil {
		return nil, err
	}
	var out gen.PullDeleteBatchEnvelope
	out.Data.DeletedCount, out.Data.AlreadyDeletedCount, out.Data.NotFoundCount = res.DeletedCount, res.AlreadyDeletedCount, res.NotFoundCount
	out.Data.Results = make([]gen.PullDeleteOutcome, len(res.Results))
	for i, r := range res.Results {
		out.Data.Results[i] = gen.PullDeleteOutcome{EventId: r.MessageId, Outcome: gen.PullDeleteOutcomeOutcome(r.Outcome), DeletedAt: r.DeletedAt}
	}
	out.Meta = meta(ctx)
	return gen.DeletePullEventsBatch200JSONResponse(out), nil
}

// DeleteAllPullEvents soft-deletes up to limit matching events.
func (s *Server) DeleteAllPullEvents(ctx context.Context, req gen.DeleteAllPullEventsRequestObject) (gen.DeleteAllPullEventsResponseObject, error) {
	if err := s.pullEvents(ctx, req.Id); err != nil {
		return nil, err
	}
	p := req.Params
	f := store.PullFilter{EndpointID: req.Id.String(), EventType: deref(p.EventType, ""), From: p.ReceivedAfter, To: p.ReceivedBefore}
	if p.Status != nil {
		f.State = string(*p.Status)
	}
	ids, err := s.Store.PullEventIDs(ctx, projectID(ctx), f, deref(p.Limit, 100))
	if err != nil {
		return nil, err
	}
	done, err := s.Store.DeleteMessages(ctx, projectID(ctx), ids)
	if err != nil {
		return nil, err
	}
	deleted := store.NewlyDeleted(done)
	var out gen.PullDeleteAllEnvelope
	out.Data.Deleted, out.Data.DeletedEventIds, out.Meta = len(deleted), deleted, meta(ctx)
	return gen.DeleteAllPullEvents200JSONResponse(out), nil
}

// GetPullLogs pages through the events of every pull endpoint, newest
// first.
func (s *Server) GetPullLogs(ctx context.Context, req gen.GetPullLogsRequestObject) (gen.GetPullLogsResponseObject, error) {
	p := req.Params
	f := pullFilter(uuidString(p.PullEndpointId), p.EventType, (*string)(p.Status), p.StartTime, p.EndTime)
	rows, next, hasMore, err := page(p.Cursor, validUUID, deref(p.Limit, 50),
		func(before string, n int) ([]store.PullEventRow, error) {
			return s.Store.ListPullEvents(ctx, projectID(ctx), f, before, false, n)
		},
		func(r store.PullEventRow) string { return r.ID })
	if err != nil {
		return nil, err
	}
	out := make([]gen.PullLogEntry, len(rows))
	for i, r := range rows {
		sum := toPullSummary(r.Message)
		name := r.EndpointName
		out[i] = gen.PullLogEntry{EventId: r.ID, PullEndpointId: r.EndpointID, EndpointName: &name, EventType: r.EventType, Status: sum.Status,
			SizeBytes: r.SizeBytes, ReceivedAt: sum.ReceivedAt, FetchedAt: sum.FetchedAt, DeliveredAt: sum.DeliveredAt, Timing: sum.Timing}
	}
	return gen.GetPullLogs200JSONResponse{Data: out, Meta: gen.PageMeta{RequestId: RequestID(ctx), NextCursor: next, HasMore: hasMore}}, nil
}

// pullBuckets reads the window's pull events into its buckets.
func (s *Server) pullBuckets(ctx context.Context, p *gen.MetricsWindow, endpointID *uuid.UUID) (window, []time.Time, []gen.PullTimeseriesBucket, int64, error) {
	w := metricsWindow(p)
	n := int(w.length / w.bucket)
	last := s.now().Truncate(w.bucket)
	first := last.Add(-time.Duration(n-1) * w.bucket)
	starts := make([]time.Time, n)
	buckets := make([]gen.PullTimeseriesBucket, n)
	for i := range starts {
		starts[i] = first.Add(time.Duration(i) * w.bucket)
		buckets[i].Timestamp = starts[i]
	}
	var ackMs int64
	err := s.Store.EachPullEvent(ctx, projectID(ctx), uuidString(endpointID), first, func(t store.PullTimes) {
		i := int(t.CreatedAt.Sub(first) / w.bucket)
		if i < 0 || i >= n {
			return
		}
		b := &buckets[i]
		b.Total++
		switch {
		case t.DeliveredAt != nil:
			b.Succeeded++
			ackMs += t.DeliveredAt.Sub(t.CreatedAt).Milliseconds()
		case t.FetchedAt != nil:
			b.Fetched++
		default:
			b.Stored++
		}
	})
	return w, starts, buckets, ackMs, err
}

// GetPullMetrics sums the window's pull events.
func (s *Server) GetPullMetrics(ctx context.Context, req gen.GetPullMetricsRequestObject) (gen.GetPullMetricsResponseObject, error) {
	w, _, buckets, ackMs, err := s.pullBuckets(ctx, req.Params.Window, req.Params.PullEndpointId)
	if err != nil {
		return nil, err
	}
	var total, acked int64
	for _, b := range buckets {
		total += int64(b.Total)
		acked += int64(b.Succeeded)
	}
	m := gen.Metrics{Window: w.name, TotalMessages: total, Succeeded: acked}
	if total > 0 {
		m.SuccessRate = float64(acked) / float64(total)
	}
	if acked > 0 {
		m.AvgLatencyMs = (ackMs + acked/2) / acked
	}
	return gen.GetPullMetrics200JSONResponse{Data: m, Meta: meta(ctx)}, nil
}

// GetPullTimeseries returns the window's pull buckets.
func (s *Server) GetPullTimeseries(ctx context.Context, req gen.GetPullTimeseriesRequestObject) (gen.GetPullTimeseriesResponseObject, error) {
	w, _, buckets, _, err := s.pullBuckets(ctx, req.Params.Window, req.Params.PullEndpointId)
	if err != nil {
		return nil, err
	}
	var out gen.PullTimeseriesEnvelope
	out.Data.Window, out.Data.Buckets, out.Meta = w.name, buckets, meta(ctx)
	return gen.GetPullTimeseries200JSONResponse(out), nil
}
