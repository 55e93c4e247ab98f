package cleanup_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hookd/hookd/cleanup"
	"github.com/hookd/hookd/internal/syncbuf"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
	)
}

// TestOneRunnerAtATime: of two processes' runners on one database, only
// the lease holder makes passes.
func TestOneRunnerAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			st, err := store.Open(ctx, store.Options{DatabaseURL: testdb.New(t, d)})
			require.NoError(t, err)
			t.Cleanup(func() { _ = st.Close() })
			_, err = st.Migrate(ctx)
			require.NoError(t, err)
			logs := &syncbuf.Buffer{}
			log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			cfg := cleanup.Config{Interval: time.Hour}
			a, b := cleanup.New(st, cfg, log), cleanup.New(st, cfg, log)
			require.True(t, a.Pass(ctx))
			require.False(t, b.Pass(ctx), "b while a holds the lease")
			require.True(t, a.Pass(ctx), "a keeps it")
			require.Contains(t, logs.String(), `"msg":"clean-up pass"`)
		})
	}
}
