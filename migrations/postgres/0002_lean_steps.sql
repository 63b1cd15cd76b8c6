-- acidic 0002: fewer statements and round trips per step (PostgreSQL).

-- A run's journal entries and context values are deleted together with the run by purge, so
-- they no longer need foreign keys: the check of each key cost a row-locking lookup of the run
-- on every step. Rows of a run deleted by hand stay behind until deleted by hand too.
ALTER TABLE acidic_journal DROP CONSTRAINT IF EXISTS acidic_journal_run_id_fkey;
ALTER TABLE acidic_context DROP CONSTRAINT IF EXISTS acidic_context_run_id_fkey;

-- The first statement of a step's transaction, sent in the same round trip as its BEGIN: locks
-- the run (without writing a new row version) and checks that lease `p_token` still holds it at
-- step `p_step`. Raises SQLSTATE AC001 otherwise (the worker lost its lease; fencing).
CREATE FUNCTION acidic_lock_step(p_id BIGINT, p_token BIGINT, p_step TEXT) RETURNS VOID
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM acidic_runs
     WHERE id = p_id AND lease_token = p_token AND state = 'running' AND step = p_step
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % is no longer held by lease % at step %', p_id, p_token, p_step
            USING ERRCODE = 'AC001';
    END IF;
END;
$$;

-- One index on the journal instead of two: the primary key becomes (run_id, id), which also
-- serves reading a run's journal in order. One index entry less per step.
DROP INDEX IF EXISTS acidic_journal_run;
ALTER TABLE acidic_journal DROP CONSTRAINT IF EXISTS acidic_journal_pkey;
ALTER TABLE acidic_journal ADD CONSTRAINT acidic_journal_pkey PRIMARY KEY (run_id, id);

-- Claiming walks the claim index from its head, where the entries of runs already claimed stay
-- (dead) until VACUUM removes them: the cost of a claim grows with the runs claimed since the
-- last vacuum (854 index and heap pages per claim of 16 after 96,000 claims, 21 after a
-- VACUUM). Vacuum this table after a fixed number of changes instead of a fifth of its size,
-- and without cost-based sleeps, so its dead entries are removed on autovacuum's next round
-- (the server's autovacuum_naptime, 60 s by default, decides when that is).
--
-- Free space is left in each page (fillfactor) so that a step that hands its run to the next
-- step of the same claim, which changes no indexed column, can update it in place (HOT: no new
-- index entries).
ALTER TABLE acidic_runs SET (
    fillfactor = 80,
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 20000,
    autovacuum_vacuum_cost_delay = 0
);
