package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestIngestCacheSkipsReadsOlderThanAChange: a row read before a change
// (a forget) is not cached, so the ingest route never keeps serving it.
func TestIngestCacheSkipsReadsOlderThanAChange(t *testing.T) {
	var c ingestCache
	now := time.Now()
	_, gen, ok := c.get("ie", now)
	require.False(t, ok)
	c.forget("ie") // a PATCH lands while the read is in flight
	c.put(InboundEndpoint{ID: "ie", Name: "old"}, now, gen)
	_, _, ok = c.get("ie", now)
	require.False(t, ok, "the stale read was not cached")

	_, gen, _ = c.get("ie", now)
	c.put(InboundEndpoint{ID: "ie", Name: "new"}, now, gen)
	got, _, ok := c.get("ie", now)
	require.True(t, ok)
	require.Equal(t, "new", got.Name)
	_, _, ok = c.get("ie", now.Add(IngestCacheTTL))
	require.False(t, ok, "kept at most IngestCacheTTL")
}
