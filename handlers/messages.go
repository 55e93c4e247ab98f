package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/customheaders"
	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/store"
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
	b := req.Body
	if len(b.Payload) > MaxPayloadBytes {
		return nil, errPayloadTooLarge
	}
	headers := store.Headers{}
	if b.Headers != nil {
		headers = store.Headers(*b.Headers)
	}
	if err := customheaders.Validate(headers); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b.Payload)
	now := store.Now()
	m := store.Message{
		ID:             ids.NewUUID(),
		ProjectID:      projectID(ctx),
		EndpointID:     b.EndpointId,
		Status:         store.StatusQueued,
		Payload:        b.Payload,
		PayloadSHA256:  hex.EncodeToString(sum[:]),
		SizeBytes:      len(b.Payload),
		Headers:        headers,
		IdempotencyKey: b.IdempotencyKey,
		RetentionHours: b.RetentionHours,
		NextAttemptAt:  &now,
		CreatedAt:      now,
		UpdatedAt:      now,
	}
	stored, created, err := s.Store.InsertMessage(ctx, m)
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

// GetMessage returns a message of the caller's project.
func (s *Server) GetMessage(ctx context.Context, req gen.GetMessageRequestObject) (gen.GetMessageResponseObject, error) {
	m, err := s.Store.GetMessage(ctx, projectID(ctx), req.Id.String())
	if err != nil {
		return nil, err
	}
	return gen.GetMessage200JSONResponse{Data: toMessage(m), Meta: meta(ctx)}, nil
}

// GetMessagePayload answers the message's payload exactly as stored.
func (s *Server) GetMessagePayload(ctx context.Context, req gen.GetMessagePayloadRequestObject) (gen.GetMessagePayloadResponseObject, error) {
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
	}
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
