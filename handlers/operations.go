package handlers

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/store"
)

// RetryNow makes a pending_retry message due now.
func (s *Server) RetryNow(ctx context.Context, req gen.RetryNowRequestObject) (gen.RetryNowResponseObject, error) {
	if _, err := s.ofDirectionOne(ctx, req.Id, false); err != nil {
		return nil, err // a received message: /v1/inbound-messages
	}
	m, err := s.Store.RetryNow(ctx, projectID(ctx), req.Id.String())
	if err != nil {
		return nil, err
	}
	return gen.RetryNow200JSONResponse{Message: "Retry scheduled; the next attempt starts within a second", Data: withID(m), Meta: meta(ctx)}, nil
}

// CancelRetry moves a pending_retry message to the DLQ.
func (s *Server) CancelRetry(ctx context.Context, req gen.CancelRetryRequestObject) (gen.CancelRetryResponseObject, error) {
	if _, err := s.ofDirectionOne(ctx, req.Id, false); err != nil {
		return nil, err // a received message: /v1/inbound-messages
	}
	m, err := s.Store.CancelRetry(ctx, projectID(ctx), req.Id.String())
	if err != nil {
		return nil, err
	}
	return gen.CancelRetry200JSONResponse{Message: "Retries cancelled; the message is in the DLQ", Data: withID(m), Meta: meta(ctx)}, nil
}

func withID(m store.Message) gen.MessageWithID {
	g := toMessage(m)
	return gen.MessageWithID{
		MessageId: g.Id, Id: g.Id, ProjectId: g.ProjectId, EndpointId: g.EndpointId, Status: g.Status,
		AttemptCount: g.AttemptCount, ReplayCount: g.ReplayCount, ContentType: g.ContentType, SizeBytes: g.SizeBytes,
		PayloadSha256: g.PayloadSha256, IdempotencyKey: g.IdempotencyKey, NextAttemptAt: g.NextAttemptAt,
		LastError: g.LastError, ResponseStatus: g.ResponseStatus, ResponseLatencyMs: g.ResponseLatencyMs,
		FirstAttemptAt: g.FirstAttemptAt, DeliveredAt: g.DeliveredAt, CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt,
	}
}

// ReplayMessage queues a finished message again.
func (s *Server) ReplayMessage(ctx context.Context, req gen.ReplayMessageRequestObject) (gen.ReplayMessageResponseObject, error) {
	if _, err := s.ofDirectionOne(ctx, req.Id, false); err != nil {
		return nil, err // a received message: /v1/inbound-messages
	}
	m, err := s.Store.Replay(ctx, projectID(ctx), req.Id.String(), false)
	if err != nil {
		return nil, err
	}
	return gen.ReplayMessage200JSONResponse{Message: "Message queued for replay", Data: sendResult(m), Meta: meta(ctx)}, nil
}

// ReplayFromDLQ queues a failed_permanent message again without counting a
// replay.
func (s *Server) ReplayFromDLQ(ctx context.Context, req gen.ReplayFromDLQRequestObject) (gen.ReplayFromDLQResponseObject, error) {
	if _, err := s.ofDirectionOne(ctx, req.Id, false); err != nil {
		return nil, err // a received message: /v1/inbound-messages
	}
	m, err := s.Store.Replay(ctx, projectID(ctx), req.Id.String(), true)
	if err != nil {
		return nil, err
	}
	return gen.ReplayFromDLQ200JSONResponse{Message: "Message queued for replay from the DLQ", Data: sendResult(m), Meta: meta(ctx)}, nil
}

func sendResult(m store.Message) gen.SendResult {
	return gen.SendResult{MessageId: uuid.MustParse(m.ID), Status: gen.MessageStatus(m.Status)}
}

// replayOutcome classifies one replay for the bulk operations: replayed,
// stuck (in progress, skipped) or failed (not replayable, with the reason).
// Errors that are not about the message (database) are returned.
func (s *Server) replayOutcome(ctx context.Context, id string) (status string, reason *string, err error) {
	_, err = s.Store.Replay(ctx, projectID(ctx), id, false)
	switch {
	case err == nil:
		return "replayed", nil, nil
	case errors.Is(err, store.ErrDeliveryInProgress), errors.Is(err, store.ErrRetryInProgress):
		msg := err.Error()
		return "stuck", &msg, nil
	case errors.Is(err, store.ErrNotFound):
		msg := "message not found"
		return "failed", &msg, nil
	case errors.Is(err, store.ErrInvalidStatus), errors.Is(err, store.ErrReplayLimit), errors.Is(err, store.ErrRetentionExpired):
		msg := err.Error()
		return "failed", &msg, nil
	}
	return "", nil, err
}

// ReplayAllMessages replays up to limit finished messages matching the
// filters.
func (s *Server) ReplayAllMessages(ctx context.Context, req gen.ReplayAllMessagesRequestObject) (gen.ReplayAllMessagesResponseObject, error) {
	p := req.Params
	// Only replayable messages are picked, so ones that can never be replayed
	// (payload gone, limit reached, endpoint deleted) do not block the rest.
	f := store.MessageFilter{Status: string(p.Status), EndpointID: deref(p.EndpointId, ""), Replayable: true}
	res, err := s.replayAll(ctx, f, deref(p.Limit, 100))
	if err != nil {
		return nil, err
	}
	return gen.ReplayAllMessages200JSONResponse{Message: "Replay finished", Data: res, Meta: meta(ctx)}, nil
}

// replayAll replays up to limit messages matching f (outbound or inbound).
func (s *Server) replayAll(ctx context.Context, f store.MessageFilter, limit int) (gen.ReplayAllResult, error) {
	idList, err := s.Store.MatchingIDs(ctx, projectID(ctx), f, limit)
	if err != nil {
		return gen.ReplayAllResult{}, err
	}
	res := gen.ReplayAllResult{ReplayedMessageIds: []string{}, StuckMessageIds: []string{}}
	for _, id := range idList {
		st, _, err := s.replayOutcome(ctx, id)
		if err != nil {
			return gen.ReplayAllResult{}, err
		}
		switch st {
		case "replayed":
			res.Replayed++
			res.ReplayedMessageIds = append(res.ReplayedMessageIds, id)
		case "stuck":
			res.Stuck++
			res.StuckMessageIds = append(res.StuckMessageIds, id)
		default:
			res.Failed++
		}
	}
	return res, nil
}

// ReplayBatchMessages replays the listed messages and reports on each.
func (s *Server) ReplayBatchMessages(ctx context.Context, req gen.ReplayBatchMessagesRequestObject) (gen.ReplayBatchMessagesResponseObject, error) {
	res, err := s.replayBatch(ctx, req.Body.MessageIds, false)
	if err != nil {
		return nil, err
	}
	return gen.ReplayBatchMessages200JSONResponse{Message: "Replay finished", Data: res, Meta: meta(ctx)}, nil
}

// replayBatch replays the listed messages of one direction and reports on
// each (a message of the other direction is not found).
func (s *Server) replayBatch(ctx context.Context, list []uuid.UUID, inbound bool) (gen.ReplayBatchResult, error) {
	mine, err := s.ofDirection(ctx, list, inbound)
	if err != nil {
		return gen.ReplayBatchResult{}, err
	}
	ok := make(map[uuid.UUID]bool, len(mine))
	for _, id := range mine {
		ok[id] = true
	}
	forwarded := map[uuid.UUID]bool{} // received messages: only forwarded ones replay
	if inbound {
		fwd, err := s.idsMatching(ctx, mine, store.MessageFilter{Inbound: true, Forwarded: true})
		if err != nil {
			return gen.ReplayBatchResult{}, err
		}
		for _, id := range fwd {
			forwarded[id] = true
		}
	}
	res := gen.ReplayBatchResult{Results: []gen.ReplayItem{}}
	for _, id := range list {
		st, reason := "failed", ptr("message not found")
		if ok[id] && inbound && !forwarded[id] {
			reason = ptr("a message held by a cli or pull endpoint is not forwarded, so it cannot be replayed")
		} else if ok[id] {
			if st, reason, err = s.replayOutcome(ctx, id.String()); err != nil {
				return gen.ReplayBatchResult{}, err
			}
		}
		switch st {
		case "replayed":
			res.Replayed++
		case "stuck":
			res.Stuck++
		default:
			res.Failed++
		}
		res.Results = append(res.Results, gen.ReplayItem{MessageId: id.String(), Status: gen.ReplayItemStatus(st), Error: reason})
	}
	return res, nil
}

// DeleteMessage soft-deletes a message (idempotent: a repeat answers 200
// with already_deleted and the first delete's time).
func (s *Server) DeleteMessage(ctx context.Context, req gen.DeleteMessageRequestObject) (gen.DeleteMessageResponseObject, error) {
	d, err := s.deleteOne(ctx, req.Id, false)
	if err != nil {
		return nil, err
	}
	return gen.DeleteMessage200JSONResponse{Data: d, Meta: meta(ctx)}, nil
}

// deleteOne soft-deletes a message of one direction (received when
// inbound); one of the other direction is not found.
func (s *Server) deleteOne(ctx context.Context, id uuid.UUID, inbound bool) (gen.MessageDeleted, error) {
	if _, err := s.ofDirectionOne(ctx, id, inbound); err != nil {
		return gen.MessageDeleted{}, err
	}
	d, err := s.Store.DeleteMessage(ctx, projectID(ctx), id.String())
	if err != nil {
		return gen.MessageDeleted{}, err
	}
	return gen.MessageDeleted{MessageId: id.String(), Deleted: true, AlreadyDeleted: d.Already, DeletedAt: d.DeletedAt}, nil
}

// DeleteMessagesBatch soft-deletes the listed messages and reports an
// outcome per id, in request order (a repeated id once).
func (s *Server) DeleteMessagesBatch(ctx context.Context, req gen.DeleteMessagesBatchRequestObject) (gen.DeleteMessagesBatchResponseObject, error) {
	sent, err := s.ofDirection(ctx, req.Body.MessageIds, false)
	if err != nil {
		return nil, err
	}
	out, err := s.deleteBatch(ctx, req.Body.MessageIds, sent)
	if err != nil {
		return nil, err
	}
	return gen.DeleteMessagesBatch200JSONResponse{Data: out, Meta: meta(ctx)}, nil
}

// deleteBatch deletes the ids of requested that are in allowed and reports
// an outcome per requested id, in order (a repeated id once; one not
// allowed is not found).
func (s *Server) deleteBatch(ctx context.Context, requested, allowed []uuid.UUID) (gen.DeleteBatchResult, error) {
	ids := make([]string, 0, len(requested))
	seen := map[string]bool{}
	for _, id := range requested {
		if k := id.String(); !seen[k] {
			seen[k] = true
			ids = append(ids, k)
		}
	}
	del := make([]string, len(allowed))
	for i, id := range allowed {
		del[i] = id.String()
	}
	done, err := s.Store.DeleteMessages(ctx, projectID(ctx), del)
	if err != nil {
		return gen.DeleteBatchResult{}, err
	}
	byID := make(map[string]store.DeletedMessage, len(done))
	for _, d := range done {
		byID[d.ID] = d
	}
	out := gen.DeleteBatchResult{Results: make([]gen.DeleteOutcome, len(ids))}
	for i, id := range ids {
		r := gen.DeleteOutcome{MessageId: id, Outcome: gen.DeleteOutcomeOutcomeNotFound}
		if d, ok := byID[id]; ok {
			at := d.DeletedAt
			r.DeletedAt = &at
			r.Outcome = gen.DeleteOutcomeOutcomeDeleted
			if d.Already {
				r.Outcome = gen.DeleteOutcomeOutcomeAlreadyDeleted
			}
		}
		switch r.Outcome {
		case gen.DeleteOutcomeOutcomeDeleted:
			out.DeletedCount++
		case gen.DeleteOutcomeOutcomeAlreadyDeleted:
			out.AlreadyDeletedCount++
		default:
			out.NotFoundCount++
		}
		out.Results[i] = r
	}
	return out, nil
}

// DeleteAllMessages soft-deletes up to limit matching messages.
func (s *Server) DeleteAllMessages(ctx context.Context, req gen.DeleteAllMessagesRequestObject) (gen.DeleteAllMessagesResponseObject, error) {
	p := req.Params
	f := store.MessageFilter{EndpointID: deref(p.EndpointId, ""), CreatedAfter: p.CreatedAfter, CreatedBefore: p.CreatedBefore}
	if p.Status != nil {
		f.Status = string(*p.Status)
	}
	res, err := s.deleteAll(ctx, f, deref(p.Limit, 1000))
	if err != nil {
		return nil, err
	}
	return gen.DeleteAllMessages200JSONResponse{Data: res, Meta: meta(ctx)}, nil
}

// deleteAll deletes up to limit messages matching f.
func (s *Server) deleteAll(ctx context.Context, f store.MessageFilter, limit int) (gen.DeleteMany, error) {
	ids, err := s.Store.MatchingIDs(ctx, projectID(ctx), f, limit)
	if err != nil {
		return gen.DeleteMany{}, err
	}
	done, err := s.Store.DeleteMessages(ctx, projectID(ctx), ids)
	if err != nil {
		return gen.DeleteMany{}, err
	}
	deleted := store.NewlyDeleted(done)
	return gen.DeleteMany{Deleted: len(deleted), DeletedMessageIds: deleted}, nil
}

// GetLogs pages through the project's messages, newest first.
func (s *Server) GetLogs(ctx context.Context, req gen.GetLogsRequestObject) (gen.GetLogsResponseObject, error) {
	p := req.Params
	f := store.MessageFilter{EndpointID: deref(p.EndpointId, ""), CreatedAfter: p.StartTime, CreatedBefore: p.EndTime, EventType: deref(p.EventType, "")}
	if p.EventId != nil {
		f.EventID = p.EventId.String()
	}
	if p.Status != nil {
		f.Status = string(*p.Status)
	}
	rows, next, hasMore, err := s.messagePage(ctx, f, p.Cursor, deref(p.Limit, 50))
	if err != nil {
		return nil, err
	}
	return gen.GetLogs200JSONResponse{Data: rows, Meta: gen.PageMeta{RequestId: RequestID(ctx), NextCursor: next, HasMore: hasMore}}, nil
}

// ListDLQ pages through the project's failed_permanent messages.
func (s *Server) ListDLQ(ctx context.Context, req gen.ListDLQRequestObject) (gen.ListDLQResponseObject, error) {
	rows, next, hasMore, err := s.messagePage(ctx, store.MessageFilter{Status: store.StatusFailedPermanent}, req.Params.Cursor, deref(req.Params.Limit, 100))
	if err != nil {
		return nil, err
	}
	return gen.ListDLQ200JSONResponse{Data: gen.DLQPage{Messages: rows, HasMore: hasMore, NextCursor: next}, Meta: meta(ctx)}, nil
}

// validUUID accepts the cursors of lists keyed by UUIDs (messages, exports).
func validUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil
}

// page reads one keyset page, newest first: fetch gets the cursor's id and
// asks for one row more than limit, which says whether there are more.
func page[T any](cursor *string, valid func(string) bool, limit int, fetch func(before string, n int) ([]T, error), id func(T) string) (rows []T, next *string, hasMore bool, err error) {
	before, err := decodeCursor(cursor, valid)
	if err != nil {
		return nil, nil, false, err
	}
	rows, err = fetch(before, limit+1)
	if err != nil {
		return nil, nil, false, err
	}
	if hasMore = len(rows) > limit; hasMore {
		rows = rows[:limit]
		c := encodeCursor(id(rows[len(rows)-1]))
		next = &c
	}
	return rows, next, hasMore, nil
}

func (s *Server) messagePage(ctx context.Context, f store.MessageFilter, cursor *string, limit int) ([]gen.MessageSummary, *string, bool, error) {
	rows, next, hasMore, err := page(cursor, validUUID, limit,
		func(before string, n int) ([]store.MessageRow, error) {
			return s.Store.ListMessages(ctx, projectID(ctx), f, before, n)
		},
		func(r store.MessageRow) string { return r.ID })
	if err != nil {
		return nil, nil, false, err
	}
	out := make([]gen.MessageSummary, len(rows))
	for i, r := range rows {
		out[i] = gen.MessageSummary{
			MessageId: r.ID, EndpointId: r.EndpointID, Endpoint: r.EndpointURL, Status: gen.MessageStatus(r.Status),
			AttemptCount: r.AttemptCount, CreatedAt: r.CreatedAt.UTC(), DeliveredAt: utcPtr(r.DeliveredAt),
			NextAttemptAt: utcPtr(r.NextAttemptAt), ResponseStatus: r.ResponseStatus, ResponseLatencyMs: r.ResponseLatencyMs,
			LastError: r.LastError, EventType: r.EventType, EventId: r.EventID,
		}
		if r.Status == store.StatusFailedPermanent {
			out[i].FailedAt = utcPtr(r.TerminalAt)
		}
	}
	return out, next, hasMore, nil
}

func ptr[T any](v T) *T { return &v }
