-- messages is also the queue: rows change status many times a second, and
-- every change leaves a dead entry in the due-index that claims must step
-- over until vacuum removes it. Vacuum it early and without throttling.
ALTER TABLE messages SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 500,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_analyze_scale_factor = 0.05
);
