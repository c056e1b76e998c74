-- Requests made to a run by someone who does not drive it (`golive
-- rollback`): lease-free, one per kind, the first stands.
CREATE TABLE requests (
    run_id text        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    kind   text        NOT NULL,
    by     text        NOT NULL,
    at     timestamptz NOT NULL DEFAULT now(),
    reason text,
    PRIMARY KEY (run_id, kind)
);
