package handlers

import (
	"context"

	"github.com/hookd/hookd/gen"
)

// overviewEndpoints is how many failing and how many disabled endpoints
// the overview lists.
const overviewEndpoints = 20

// GetOverview answers the project's backlog, dead-letter queue and
// unhealthy endpoints in one request (what the console's overview shows).
func (s *Server) GetOverview(ctx context.Context, _ gen.GetOverviewRequestObject) (gen.GetOverviewResponseObject, error) {
	o, err := s.Store.Overview(ctx, projectID(ctx), overviewEndpoints)
	if err != nil {
		return nil, err
	}
	return gen.GetOverview200JSONResponse{Data: gen.Overview{
		Queued: int(o.Queued), Delivering: int(o.Delivering), PendingRetry: int(o.PendingRetry), Paused: int(o.Paused), DlqSize: int(o.DLQ), Capped: o.Capped,
		FailingEndpoints: endpointSummaries(o.Failing), DisabledEndpoints: endpointSummaries(o.Disabled),
	}, Meta: meta(ctx)}, nil
}
