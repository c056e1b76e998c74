-- golive's journal of go-live runs, PostgreSQL flavour.
-- Timestamps come from the database clock (now()), so processes on hosts
-- with skewed clocks agree on leases. Every state change bumps
-- runs.last_seq (which also locks the run's row) and writes the event with
-- that seq in the same transaction.

CREATE TABLE runs (
    -- creation order, for "newest first" (ids are random)
    num              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id               text        PRIMARY KEY,
    plan_name        text        NOT NULL,
    plan_text        text        NOT NULL,
    plan_sha256      text        NOT NULL,
    t0               timestamptz,
    status           text        NOT NULL CHECK (status IN ('pending', 'running', 'paused',
                         'succeeded', 'failed', 'rolling-back', 'rolled-back', 'aborted')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    lease_owner      text,
    lease_expires_at timestamptz,
    -- seq of the run's last event
    last_seq         bigint      NOT NULL DEFAULT 0,
    CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL))
);

CREATE TABLE items (
    run_id      text        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    item_id     text        NOT NULL,
    -- plan order
    position    integer     NOT NULL,
    status      text        NOT NULL CHECK (status IN ('pending', 'running', 'passed', 'failed',
                    'skipped', 'interrupted', 'waiting')),
    attempts    integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    started_at  timestamptz,
    finished_at timestamptz,
    result      jsonb,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, item_id)
);

CREATE INDEX items_by_position ON items (run_id, position);

CREATE TABLE events (
    run_id  text        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq     bigint      NOT NULL CHECK (seq >= 1),
    at      timestamptz NOT NULL DEFAULT now(),
    kind    text        NOT NULL,
    item_id text,
    actor   text,
    data    jsonb       NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE FUNCTION golive_events_are_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event journal is append-only';
END
$$;

CREATE TRIGGER events_are_append_only BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION golive_events_are_append_only();

CREATE TABLE confirmations (
    run_id   text        NOT NULL,
    item_id  text        NOT NULL,
    by       text        NOT NULL,
    at       timestamptz NOT NULL DEFAULT now(),
    evidence text,
    skipped  boolean     NOT NULL,
    reason   text,
    PRIMARY KEY (run_id, item_id),
    FOREIGN KEY (run_id, item_id) REFERENCES items (run_id, item_id) ON DELETE CASCADE
);

CREATE TABLE signatures (
    run_id   text        NOT NULL,
    item_id  text        NOT NULL,
    role     text        NOT NULL,
    by       text        NOT NULL,
    at       timestamptz NOT NULL DEFAULT now(),
    decision text        NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment  text,
    PRIMARY KEY (run_id, item_id, role),
    FOREIGN KEY (run_id, item_id) REFERENCES items (run_id, item_id) ON DELETE CASCADE
);
