package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"

	"github.com/hookd/hookd/customheaders"
	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/tracing"
)

// MaxPayloadBytes bounds a message payload (1 MiB, as HookBridge).
const MaxPayloadBytes = 1 << 20

// maxAttemptsListed caps GET /v1/messages/{id}/attempts.
const maxAttemptsListed = 200

var errPayloadTooLarge = &Error{Status: http.StatusBadRequest, Code: "PAYLOAD_TOO_LARGE",
	Message: "payload is larger than 1,048,576 bytes", Details: map[string]any{"field": "/payload"}}

// SendWebhook stores the message and its queue entry in one transaction and
// answers after the commit.
func (s *Server) SendWebhook(ctx context.Context, req gen.SendWebhookRequestObject) (gen.SendWebhookResponseObject, error) {
	m, err := newMessage(ctx, *req.Body)
	if err != nil {
		return nil, err
	}
	cctx, span := s.startCommit(ctx, attribute.String("hookd.message_id", m.ID), attribute.String("hookd.endpoint_id", m.EndpointID))
	stored, created, err := s.Store.InsertMessage(cctx, m)
	endSpan(span, err)
	if err != nil {
		return nil, err
	}
	data := gen.SendResult{MessageId: uuid.MustParse(stored.ID), Status: gen.MessageStatus(stored.Status)}
	if !created {
		return gen.SendWebhook200JSONResponse{Data: data, Meta: meta(ctx)}, nil
	}
	s.Metrics.MessageAccepted()
	return gen.SendWebhook202JSONResponse{Data: data, Meta: meta(ctx)}, nil
}

// SendWebhookBatch stores up to 100 sends in one transaction, each with
// the outcome a single send would have had.
func (s *Server) SendWebhookBatch(ctx context.Context, req gen.SendWebhookBatchRequestObject) (gen.SendWebhookBatchResponseObject, error) {
	items := req.Body.Messages
	if err := takeSends(ctx, len(items)); err != nil {
		return nil, err
	}
	results := make([]gen.SendBatchItem, len(items))
	var ms []store.Message
	var at []int // ms[j] is items[at[j]]
	for i, b := range items {
		results[i].Index = i
		m, err := newMessage(ctx, b)
		if err != nil {
			fail(&results[i], i, err)
			continue
		}
		ms, at = append(ms, m), append(at, i)
	}
	if len(ms) > 0 {
		cctx, span := s.startCommit(ctx, attribute.Int("hookd.message_count", len(ms)))
		out, err := s.Store.InsertMessages(cctx, ms)
		endSpan(span, err)
		if err != nil {
			return nil, err
		}
		for j, r := range out {
			item := &results[at[j]]
			if r.Err != nil {
				fail(item, at[j], r.Err)
				continue
			}
			id, status := uuid.MustParse(r.Stored.ID), gen.MessageStatus(r.Stored.Status)
			item.MessageId, item.MessageStatus, item.Status = &id, &status, http.StatusOK
			if r.Created {
				item.Status = http.StatusAccepted
				s.Metrics.MessageAccepted()
			}
		}
	}
	data := gen.SendBatchResult{Results: results}
	for _, r := range results {
		switch r.Status {
		case http.StatusAccepted:
			data.AcceptedCount++
		case http.StatusOK:
			data.DuplicateCount++
		default:
			data.FailedCount++
		}
	}
	return gen.SendWebhookBatch200JSONResponse{Data: data, Meta: meta(ctx)}, nil
}

// fail sets batch item i's outcome to the error a single send would have
// answered, its field pointer made relative to the batch body.
func fail(item *gen.SendBatchItem, i int, err error) {
	e := toAPIError(err)
	item.Status = e.Status
	ge := gen.Error{Code: e.Code, Message: e.Message}
	if len(e.Details) > 0 {
		d := maps.Clone(e.Details)
		if f, ok := d["field"].(string); ok && strings.HasPrefix(f, "/") {
			d["field"] = "/messages/" + strconv.Itoa(i) + f
		}
		ge.Details = &d
	}
	item.Error = &ge
}

// newMessage checks a send beyond its schema (payload size, header rules)
// and returns the message to store.
func newMessage(ctx context.Context, b gen.SendRequest) (store.Message, error) {
	if len(b.Payload) > MaxPayloadBytes {
		return store.Message{}, errPayloadTooLarge
	}
	headers := store.Headers{}
	if b.Headers != nil {
		headers = store.Headers(*b.Headers)
	}
	if err := customheaders.Validate(headers); err != nil {
		return store.Message{}, err
	}
	sum := sha256.Sum256(b.Payload)
	now := store.Now()
	return store.Message{
		ID:             ids.NewUUID(),
		ProjectID:      projectID(ctx),
		EndpointID:     b.EndpointId,
		Status:         store.StatusQueued,
		Payload:        b.Payload,
		PayloadSHA256:  hex.EncodeToString(sum[:]),
		SizeBytes:      len(b.Payload),
		Headers:        headers,
		IdempotencyKey: b.IdempotencyKey,
		OrderingKey:    b.OrderingKey,
		RetentionHours: b.RetentionHours,
		TraceParent:    tracing.Parent(ctx), // the request's span, when traced
		NextAttemptAt:  &now,
		CreatedAt:      now,
		UpdatedAt:      now,
	}, nil
}

// GetMessage returns a message of the caller's project.
func (s *Server) GetMessage(ctx context.Context, req gen.GetMessageRequestObject) (gen.GetMessageResponseObject, error) {
	m, err := s.Store.GetMessage(ctx, projectID(ctx), req.Id.String())
	if err != nil {
		return nil, err
	}
	if m.Inbound {
		return nil, store.ErrNotFound // GET /v1/inbound-messages/{id}
	}
	data := toMessage(m)
	ahead, err := s.Store.WaitingBehind(ctx, m)
	if err != nil {
		return nil, err
	}
	if ahead != "" {
		id := uuid.MustParse(ahead)
		data.WaitingBehind = &id
	}
	return gen.GetMessage200JSONResponse{Data: data, Meta: meta(ctx)}, nil
}

// GetMessagePayload answers the message's payload exactly as stored.
func (s *Server) GetMessagePayload(ctx context.Context, req gen.GetMessagePayloadRequestObject) (gen.GetMessagePayloadResponseObject, error) {
	if _, err := s.ofDirectionOne(ctx, req.Id, false); err != nil {
		return nil, err
	}
	b, err := s.Store.MessagePayload(ctx, projectID(ctx), req.Id.String())
	if err != nil {
		return nil, err
	}
	return rawPayload(b), nil
}

// rawPayload writes stored payload bytes unchanged: the generated JSON
// response would re-encode them (compacting white space, escaping <, > and
// &), and the payload must read back byte for byte.
type rawPayload []byte

func (p rawPayload) VisitGetMessagePayloadResponse(w http.ResponseWriter) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(p)))
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(p)
	return err
}

// GetMessageAttempts lists a message's attempts; unknown or foreign
// messages have none.
func (s *Server) GetMessageAttempts(ctx context.Context, req gen.GetMessageAttemptsRequestObject) (gen.GetMessageAttemptsResponseObject, error) {
	as, err := s.Store.ListAttempts(ctx, projectID(ctx), req.Id.String(), maxAttemptsListed+1)
	if err != nil {
		return nil, err
	}
	hasMore := len(as) > maxAttemptsListed
	if hasMore {
		as = as[:maxAttemptsListed]
	}
	data := make([]gen.Attempt, len(as))
	for i, a := range as {
		data[i] = toAttempt(a)
	}
	return gen.GetMessageAttempts200JSONResponse{Data: data, Meta: gen.AttemptListMeta{RequestId: RequestID(ctx), HasMore: hasMore}}, nil
}

func toMessage(m store.Message) gen.Message {
	return gen.Message{
		Id:                uuid.MustParse(m.ID),
		ProjectId:         m.ProjectID,
		EndpointId:        m.EndpointID,
		Status:            gen.MessageStatus(m.Status),
		AttemptCount:      m.AttemptCount,
		ReplayCount:       m.ReplayCount,
		ContentType:       "application/json",
		SizeBytes:         m.SizeBytes,
		PayloadSha256:     m.PayloadSHA256,
		IdempotencyKey:    m.IdempotencyKey,
		NextAttemptAt:     utcPtr(m.NextAttemptAt),
		LastError:         m.LastError,
		ResponseStatus:    m.ResponseStatus,
		ResponseLatencyMs: m.ResponseLatencyMs,
		FirstAttemptAt:    utcPtr(m.FirstAttemptAt),
		DeliveredAt:       utcPtr(m.DeliveredAt),
		CreatedAt:         m.CreatedAt.UTC(),
		UpdatedAt:         m.UpdatedAt.UTC(),
		EventType:         m.EventType,
		EventId:           uuidPtr(m.EventID),
	}
}

func uuidPtr(s *string) *uuid.UUID {
	if s == nil {
		return nil
	}
	id := uuid.MustParse(*s)
	return &id
}

func toAttempt(a store.Attempt) gen.Attempt {
	out := gen.Attempt{
		Id:             uuid.MustParse(a.ID),
		AttemptNo:      a.AttemptNo,
		CreatedAt:      a.StartedAt.Add(time.Duration(a.DurationMs * float64(time.Millisecond))).UTC(),
		StartedAt:      a.StartedAt.UTC(),
		Outcome:        gen.AttemptOutcome(a.Outcome),
		ResponseStatus: a.ResponseStatus,
		DurationMs:     a.DurationMs,
		ProcessingMs:   wholeMs(a.DurationMs),
		DnsMs:          wholeMsPtr(a.DNSMs),
		TcpConnectMs:   wholeMsPtr(a.ConnectMs),
		TlsHandshakeMs: wholeMsPtr(a.TLSMs),
		TtfbMs:         wholeMsPtr(a.TTFBMs),
		TransferMs:     wholeMsPtr(a.TransferMs),
		Timings: gen.AttemptTimings{
			DnsMs: a.DNSMs, TcpConnectMs: a.ConnectMs, TlsHandshakeMs: a.TLSMs, TtfbMs: a.TTFBMs, TransferMs: a.TransferMs,
		},
		ResolvedIp:            a.ResolvedIP,
		ConnReused:            a.ConnReused,
		RequestHeaders:        gen.Headers(a.RequestHeaders),
		ResponseHeaders:       gen.Headers(a.ResponseHeaders),
		ResponseBody:          a.ResponseBody,
		ResponseBodyTruncated: a.ResponseBodyTruncated,
		ErrorText:             a.ErrorText,
		RetryAfterSeconds:     a.RetryAfterSeconds,
	}
	if a.ResponseStatus != nil {
		lat := wholeMs(a.DurationMs)
		out.ResponseLatencyMs = &lat
	}
	if a.RetryType != nil {
		rt := gen.AttemptRetryType(*a.RetryType)
		out.RetryType = &rt
	}
	if out.RequestHeaders == nil {
		out.RequestHeaders = gen.Headers{}
	}
	if out.ResponseHeaders == nil {
		out.ResponseHeaders = gen.Headers{}
	}
	return out
}

// wholeMs rounds a duration in milliseconds to whole milliseconds: the
// HookBridge SDKs decode attempt timings as integers.
func wholeMs(ms float64) int { return int(math.Round(ms)) }

func wholeMsPtr(ms *float64) *int {
	if ms == nil {
		return nil
	}
	v := wholeMs(*ms)
	return &v
}
