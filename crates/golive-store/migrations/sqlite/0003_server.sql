-- What the war-room server (`golive serve`) keeps besides runs: feature
-- flags, API tokens and the audit log of every mutation. Timestamps are
-- integer milliseconds since the Unix epoch from the process clock.

-- A flag's definition is JSON the store does not interpret; `version`
-- starts at 1 and grows by 1 per change.
CREATE TABLE flags (
    key        TEXT    PRIMARY KEY,
    definition TEXT    NOT NULL CHECK (json_valid(definition)),
    version    INTEGER NOT NULL CHECK (version >= 1),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT    NOT NULL
) STRICT, WITHOUT ROWID;

-- One row, bumped in the transaction of every flag change, so servers can
-- poll one primary-key lookup to learn that their flags are stale.
CREATE TABLE flags_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL CHECK (revision >= 0)
) STRICT;

INSERT INTO flags_revision (id, revision) VALUES (1, 0);

-- Every mutation made through the server or the CLI. AUTOINCREMENT: seq
-- is strictly increasing and never reused.
CREATE TABLE audit (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT    NOT NULL,
    source TEXT,
    action TEXT    NOT NULL,
    target TEXT    NOT NULL,
    before TEXT    CHECK (before IS NULL OR json_valid(before)),
    after  TEXT    CHECK (after IS NULL OR json_valid(after)),
    reason TEXT
) STRICT;

-- The filters of `audit()`; each pages by seq.
CREATE INDEX audit_by_actor ON audit (actor, seq);
CREATE INDEX audit_by_action ON audit (action, seq);
CREATE INDEX audit_by_target ON audit (target, seq);
CREATE INDEX audit_by_at ON audit (at);

CREATE TRIGGER audit_is_append_only BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

-- API tokens: only the SHA-256 of the secret is stored.
CREATE TABLE tokens (
    id            TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    secret_sha256 TEXT    NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    created_by    TEXT    NOT NULL
) STRICT, WITHOUT ROWID;
