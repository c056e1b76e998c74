-- What the war-room server (`golive serve`) keeps besides runs: feature
-- flags, API tokens and the audit log of every mutation. Timestamps come
-- from the database clock (now()).

-- A flag's definition is JSON the store does not interpret; `version`
-- starts at 1 and grows by 1 per change.
CREATE TABLE flags (
    key        text        COLLATE "C" PRIMARY KEY,
    definition jsonb       NOT NULL,
    version    bigint      NOT NULL CHECK (version >= 1),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text        NOT NULL
);

-- One row, locked first and bumped by every flag change: flag writers are
-- serialized (so expected versions are checked against committed state),
-- and servers poll one primary-key lookup to learn that their flags are
-- stale. The revision grows in commit order.
CREATE TABLE flags_revision (
    id       integer PRIMARY KEY CHECK (id = 1),
    revision bigint  NOT NULL CHECK (revision >= 0)
);

INSERT INTO flags_revision (id, revision) VALUES (1, 0);

-- Every mutation made through the server or the CLI. seq comes from an
-- identity sequence: strictly increasing, not gap-free, and assigned at
-- insert time, so with concurrent transactions a lower seq may commit after
-- a higher one.
CREATE TABLE audit (
    seq    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  text        NOT NULL,
    source text,
    -- byte order, so that a prefix is an index range
    action text        COLLATE "C" NOT NULL,
    target text        NOT NULL,
    before jsonb,
    after  jsonb,
    reason text
);

-- The filters of `audit()`; each pages by seq.
CREATE INDEX audit_by_actor ON audit (actor, seq);
CREATE INDEX audit_by_action ON audit (action, seq);
CREATE INDEX audit_by_target ON audit (target, seq);
CREATE INDEX audit_by_at ON audit (at);

CREATE FUNCTION golive_audit_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;

CREATE TRIGGER audit_is_append_only BEFORE UPDATE ON audit
    FOR EACH ROW EXECUTE FUNCTION golive_audit_is_append_only();

-- API tokens: only the SHA-256 of the secret is stored.
CREATE TABLE tokens (
    id            text        COLLATE "C" PRIMARY KEY,
    name          text        NOT NULL,
    role          text        NOT NULL,
    secret_sha256 text        NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    created_by    text        NOT NULL
);
