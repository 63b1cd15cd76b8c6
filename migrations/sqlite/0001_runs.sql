-- acidic 0001: runs, step journal, context values (SQLite).
-- Times are milliseconds since the Unix epoch, always taken from the database's clock.

CREATE TABLE acidic_runs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT    NOT NULL,
    args             TEXT    NOT NULL,
    unique_key       TEXT,
    queue            TEXT    NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    state            TEXT    NOT NULL CHECK (state IN
                       ('available', 'running', 'awaiting', 'succeeded', 'failed', 'cancelled')),
    step             TEXT    NOT NULL,
    iteration        INTEGER NOT NULL DEFAULT 0,
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    scheduled_at     INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_token      INTEGER NOT NULL DEFAULT 0,
    lease_expires_at INTEGER,
    last_error       TEXT,
    parent_id        INTEGER REFERENCES acidic_runs (id) ON DELETE SET NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    finished_at      INTEGER
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
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      INTEGER NOT NULL REFERENCES acidic_runs (id) ON DELETE CASCADE,
    step        TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    outcome     TEXT    NOT NULL,
    error       TEXT,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL
);
CREATE INDEX acidic_journal_run ON acidic_journal (run_id, id);

CREATE TABLE acidic_context (
    run_id INTEGER NOT NULL REFERENCES acidic_runs (id) ON DELETE CASCADE,
    key    TEXT    NOT NULL,
    value  TEXT    NOT NULL,
    PRIMARY KEY (run_id, key)
);
