//go:build river

package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/hookd/hookd/delivery"
	"github.com/hookd/hookd/store"
)

// The River variant (built with -tags river, for the benchmark): River's
// workers deliver, with as many workers as the engine and the fetch
// settings that start a job soonest after its insert.
func init() {
	startRiver = func(ctx context.Context, st *store.Store, engine *delivery.Engine, workers int, log *slog.Logger) (func(), error) {
		driver := riverpgxv5.New(st.Pool())
		migrator, err := rivermigrate.New(driver, nil)
		if err != nil {
			return nil, err
		}
		if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
			return nil, fmt.Errorf("river migrations: %w", err)
		}
		ws := river.NewWorkers()
		river.AddWorker(ws, &delivery.RiverWorker{Engine: engine})
		client, err := river.NewClient(driver, &river.Config{
			Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workers}},
			Workers:           ws,
			FetchCooldown:     2 * time.Millisecond,
			FetchPollInterval: 20 * time.Millisecond,
			Logger:            log.With("component", "river"),
		})
		if err != nil {
			return nil, err
		}
		if err := st.UseRiver(client); err != nil {
			return nil, err
		}
		if err := client.Start(ctx); err != nil {
			return nil, err
		}
		log.Info("delivering through River (benchmark variant)")
		return func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = client.Stop(stopCtx)
		}, nil
	}
}
