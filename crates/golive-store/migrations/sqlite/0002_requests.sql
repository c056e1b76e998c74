-- Requests made to a run by someone who does not drive it (`golive
-- rollback`): lease-free, one per kind, the first stands.
CREATE TABLE requests (
    run_id TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    kind   TEXT    NOT NULL,
    by     TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    reason TEXT,
    PRIMARY KEY (run_id, kind)
) STRICT, WITHOUT ROWID;
