INSERT INTO acidic_runs (kind, args, unique_key, queue, priority, state, step, max_attempts,
    scheduled_at, parent_id, created_at, updated_at)
VALUES ('bench.noop', '{"i":1}', NULL, 'default', 0, 'available', 'perform', 25,
    (extract(epoch from clock_timestamp()) * 1000)::bigint, NULL,
    (extract(epoch from clock_timestamp()) * 1000)::bigint,
    (extract(epoch from clock_timestamp()) * 1000)::bigint)
RETURNING id;
