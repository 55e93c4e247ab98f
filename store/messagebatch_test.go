package store_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/store"
)

// TestInsertMessagesSharedKeysInOppositeOrders: batches that send the same
// idempotency keys in opposite orders, all at once, neither deadlock nor
// store a key twice; every batch gets one message per key.
func TestInsertMessagesSharedKeysInOppositeOrders(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		e, _ := f.endpoint(t, "https://shared.example.com/")
		const producers, keys = 8, 200
		start := make(chan struct{})
		got := make([][]store.InsertResult, producers)
		var wg sync.WaitGroup
		for p := range producers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ms := make([]store.Message, keys)
				for i := range ms {
					k := fmt.Sprintf("k%02d", i)
					ms[i] = newMessage(f.project.ID, e.ID, &k)
				}
				if p%2 == 1 {
					slices.Reverse(ms)
				}
				<-start
				out, err := f.s.InsertMessages(ctx, ms)
				if assert.NoError(t, err, "producer %d", p) {
					got[p] = out
				}
			}()
		}
		close(start)
		wg.Wait()
		byKey := map[string]string{}
		created := 0
		for p, out := range got {
			require.Len(t, out, keys, "producer %d", p)
			for _, r := range out {
				require.NoError(t, r.Err)
				k := *r.Stored.IdempotencyKey
				if id, ok := byKey[k]; ok {
					require.Equal(t, id, r.Stored.ID, "key %s", k)
				}
				byKey[k] = r.Stored.ID
				if r.Created {
					created++
				}
			}
		}
		require.Len(t, byKey, keys)
		require.Equal(t, keys, created, "each key stored once")
	})
}
