-- golive's journal of go-live runs, SQLite flavour.
-- Timestamps are integer milliseconds since the Unix epoch (UTC), taken
-- from the process clock. Every state change bumps runs.last_seq and writes
-- the event with that seq in the same transaction.

CREATE TABLE runs (
    -- creation order, for "newest first" (ids are random)
    num              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    plan_name        TEXT    NOT NULL,
    plan_text        TEXT    NOT NULL,
    plan_sha256      TEXT    NOT NULL,
    t0               INTEGER,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'running', 'paused',
                         'succeeded', 'failed', 'rolling-back', 'rolled-back', 'aborted')),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    -- seq of the run's last event
    last_seq         INTEGER NOT NULL DEFAULT 0,
    CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL))
) STRICT;

CREATE TABLE items (
    run_id      TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    item_id     TEXT    NOT NULL,
    -- plan order
    position    INTEGER NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('pending', 'running', 'passed', 'failed',
                    'skipped', 'interrupted', 'waiting')),
    attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    started_at  INTEGER,
    finished_at INTEGER,
    result      TEXT CHECK (result IS NULL OR json_valid(result)),
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (run_id, item_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX items_by_position ON items (run_id, position);

CREATE TABLE events (
    run_id  TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL CHECK (seq >= 1),
    at      INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    item_id TEXT,
    actor   TEXT,
    data    TEXT    NOT NULL CHECK (json_valid(data)),
    PRIMARY KEY (run_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER events_are_append_only BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event journal is append-only');
END;

CREATE TABLE confirmations (
    run_id   TEXT    NOT NULL,
    item_id  TEXT    NOT NULL,
    by       TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    evidence TEXT,
    skipped  INTEGER NOT NULL CHECK (skipped IN (0, 1)),
    reason   TEXT,
    PRIMARY KEY (run_id, item_id),
    FOREIGN KEY (run_id, item_id) REFERENCES items (run_id, item_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE TABLE signatures (
    run_id   TEXT    NOT NULL,
    item_id  TEXT    NOT NULL,
    role     TEXT    NOT NULL,
    by       TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    decision TEXT    NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment  TEXT,
    PRIMARY KEY (run_id, item_id, role),
    FOREIGN KEY (run_id, item_id) REFERENCES items (run_id, item_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
