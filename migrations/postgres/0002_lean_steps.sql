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
