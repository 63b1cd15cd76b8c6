-- acidic 0001: runs, step journal, context values (PostgreSQL).
-- Times are milliseconds since the Unix epoch, always taken from the database's clock.

CREATE TABLE acidic_runs (
    id               BIGSERIAL PRIMARY KEY,
    kind             TEXT      NOT NULL,
    args             TEXT      NOT NULL,
    unique_key       TEXT,
    queue            TEXT      NOT NULL,
    priority         SMALLINT  NOT NULL DEFAULT 0,
    state            TEXT      NOT NULL CHECK (state IN
                       ('available', 'running', 'awaiting', 'succeeded', 'failed', 'cancelled')),
    step             TEXT      NOT NULL,
    iteration        INTEGER   NOT NULL DEFAULT 0,
    attempt          INTEGER   NOT NULL DEFAULT 0,
    max_attempts     INTEGER   NOT NULL CHECK (max_attempts >= 1),
    scheduled_at     BIGINT    NOT NULL,
    lease_owner      TEXT,
    lease_token      BIGINT    NOT NULL DEFAULT 0,
    lease_expires_at BIGINT,
    last_error       TEXT,
    parent_id        BIGINT    REFERENCES acidic_runs (id) ON DELETE SET NULL,
    created_at       BIGINT    NOT NULL,
    updated_at       BIGINT    NOT NULL,
    finished_at      BIGINT
);

-- Uniqueness is enforced by the index, never by a lookup before the insert.
CREATE UNIQUE INDEX acidic_runs_unique_key ON acidic_runs (unique_key) WHERE unique_key IS NOT NULL;
-- Claiming reads only available runs, in claim order.
CREATE INDEX acidic_runs_claim ON acidic_runs (queue, priority DESC, scheduled_at, id)
    WHERE state = 'available';
-- Heartbeats and rescue read only running runs.
CREATE INDEX acidic_runs_leases ON acidic_runs (lease_expires_at) WHERE state = 'running';
CREATE INDEX acidic_runs_finished ON acidic_runs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX acidic_runs_parent ON acidic_runs (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE acidic_journal (
    id          BIGSERIAL PRIMARY KEY,
    run_id      BIGINT  NOT NULL REFERENCES acidic_runs (id) ON DELETE CASCADE,
    step        TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    outcome     TEXT    NOT NULL,
    error       TEXT,
    started_at  BIGINT  NOT NULL,
    finished_at BIGINT  NOT NULL
);
CREATE INDEX acidic_journal_run ON acidic_journal (run_id, id);

CREATE TABLE acidic_context (
    run_id BIGINT NOT NULL REFERENCES acidic_runs (id) ON DELETE CASCADE,
    key    TEXT   NOT NULL,
    value  TEXT   NOT NULL,
    PRIMARY KEY (run_id, key)
);

-- Wake listening workers when runs are inserted. NOTIFY is delivered at commit, so a run
-- enqueued in a transaction that rolls back wakes nobody. The channel carries the schema name
-- so that several acidic installations in one database do not wake each other.
CREATE FUNCTION acidic_runs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('acidic_runs.' || TG_TABLE_SCHEMA, '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER acidic_runs_notify AFTER INSERT ON acidic_runs
    FOR EACH STATEMENT EXECUTE FUNCTION acidic_runs_notify();
