package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
)

// TestOverview: GET /v1/overview counts the project's waiting and
// dead-lettered outbound messages and lists its failing and disabled
// endpoints (health also on GET /v1/endpoints), and sees nothing of
// another project.
func TestOverview(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		healthy := e.createEndpoint(e.a, "https://hooks.example.com/healthy")
		failing := e.createEndpoint(e.a, "https://hooks.example.com/failing")
		worse := e.createEndpoint(e.a, "https://hooks.example.com/worse")
		disabled := e.createEndpoint(e.a, "https://hooks.example.com/disabled")
		other := e.createEndpoint(e.b, "https://hooks.example.com/other")

		// No engine runs: the sends stay queued until moved below.
		ids := map[string][]string{}
		for i, ep := range []string{healthy.Id, healthy.Id, healthy.Id, failing.Id, failing.Id, worse.Id, other.Id} {
			key := e.a.key
			if ep == other.Id {
				key = e.b.key
			}
			status, res, _ := e.send(key, fmt.Sprintf(`{"endpoint_id":%q,"payload":{"n":%d}}`, ep, i))
			require.Equal(t, http.StatusAccepted, status)
			ids[ep] = append(ids[ep], res.MessageId.String())
		}
		exec := e.exec
		exec(`UPDATE messages SET status = 'failed_permanent' WHERE id IN (?, ?)`, ids[healthy.Id][0], ids[failing.Id][0])
		exec(`UPDATE messages SET status = 'pending_retry' WHERE id = ?`, ids[failing.Id][1])
		exec(`UPDATE messages SET status = 'delivering' WHERE id = ?`, ids[worse.Id][0])
		exec(`UPDATE messages SET status = 'failed_permanent', deleted_at = ? WHERE id = ?`, time.Now().UTC(), ids[healthy.Id][1]) // deleted: not in the DLQ
		exec(`UPDATE messages SET status = 'failed_permanent' WHERE id = ?`, ids[other.Id][0])
		since := time.Now().UTC().Add(-time.Hour)
		exec(`UPDATE endpoints SET consecutive_failures = 2, failing_since = ? WHERE id = ?`, since, failing.Id)
		exec(`UPDATE endpoints SET consecutive_failures = 7, failing_since = ? WHERE id = ?`, since, worse.Id)
		exec(`UPDATE endpoints SET consecutive_failures = 9, failing_since = ?, disabled_at = ?, paused = ? WHERE id = ?`, since, time.Now().UTC(), true, disabled.Id)
		exec(`UPDATE endpoints SET consecutive_failures = 3 WHERE id = ?`, other.Id)
		// A send to the disabled (paused) endpoint waits as paused.
		status, res, _ := e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":%q,"payload":{"held":true}}`, disabled.Id))
		require.Equal(t, http.StatusAccepted, status)
		require.Equal(t, gen.MessageStatusPaused, res.Status)

		r, err := e.a.client.GetOverviewWithResponse(context.Background())
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.StatusCode(), string(r.Body))
		o := r.JSON200.Data
		require.Equal(t, 1, o.Queued, "one message of the healthy endpoint is still queued")
		require.Equal(t, 1, o.Delivering)
		require.Equal(t, 1, o.PendingRetry)
		require.Equal(t, 1, o.Paused)
		require.Equal(t, 2, o.DlqSize, "deleted and other projects' messages are not in the DLQ")
		require.False(t, o.Capped)
		names := func(es []gen.EndpointSummary) []string {
			var out []string
			for _, x := range es {
				out = append(out, x.Id)
			}
			return out
		}
		require.Equal(t, []string{worse.Id, failing.Id}, names(o.FailingEndpoints), "most failures first; disabled ones apart")
		require.Equal(t, []string{disabled.Id}, names(o.DisabledEndpoints))
		require.Equal(t, 7, o.FailingEndpoints[0].ConsecutiveFailures)
		require.NotNil(t, o.FailingEndpoints[0].FailingSince)
		require.NotNil(t, o.DisabledEndpoints[0].DisabledAt)

		// The list shows the same health, without a request per row.
		l, err := e.a.client.ListEndpointsWithResponse(context.Background(), nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, l.StatusCode(), string(l.Body))
		health := map[string]gen.EndpointSummary{}
		for _, x := range l.JSON200.Data {
			health[x.Id] = x
		}
		require.Zero(t, health[healthy.Id].ConsecutiveFailures)
		require.Nil(t, health[healthy.Id].FailingSince)
		require.Equal(t, 2, health[failing.Id].ConsecutiveFailures)
		require.NotNil(t, health[disabled.Id].DisabledAt)
		require.True(t, health[disabled.Id].Paused)

		// The other project sees its own only.
		rb, err := e.b.client.GetOverviewWithResponse(context.Background())
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, rb.StatusCode(), string(rb.Body))
		require.Equal(t, 0, rb.JSON200.Data.Queued)
		require.Equal(t, 0, rb.JSON200.Data.Paused)
		require.Equal(t, 1, rb.JSON200.Data.DlqSize)
		require.Equal(t, []string{other.Id}, names(rb.JSON200.Data.FailingEndpoints))
	})
}
