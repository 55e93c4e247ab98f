//go:build river

package delivery

import (
	"context"

	"github.com/riverqueue/river"

	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/store"
)

// RiverWorker delivers River's jobs through the engine (the River variant,
// built with the "river" tag for the benchmark: store/hotpath_river.go).
type RiverWorker struct {
	river.WorkerDefaults[store.DeliverArgs]
	Engine *Engine
}

// Work leases the job's message and takes it through one turn.
func (w *RiverWorker) Work(ctx context.Context, job *river.Job[store.DeliverArgs]) error {
	e := w.Engine
	token := ids.RandomAlnum(16)
	m, t, ok, err := e.st.LeaseMessage(ctx, job.Args.MessageID, token, e.cfg.Lease)
	if err != nil || !ok {
		return err
	}
	e.deliver(ctx, m, token, t)
	return nil
}
