//! The war-room server's data: feature flags (with the revision servers
//! poll), API tokens, and the audit log every change of theirs writes in
//! its own transaction.

use serde_json::Value;

use crate::dialect::{Cells, Dialect, Stmt, Tx, opt_row, row, rows};
use crate::model::{
    AuditRef, check_flag_version, prefix_upper_bound, revoked_json, to_millis, token_insert_error,
    token_json, token_taken,
};
use crate::{
    Actor, AuditEntry, AuditFilter, FlagRecord, NewAudit, NewToken, StoreError, TokenRecord, action,
};

type Result<T, E = StoreError> = std::result::Result<T, E>;

const FLAG_COLUMNS: &str =
    "key, definition?text AS definition, version, created_at, updated_at, updated_by";
const AUDIT_COLUMNS: &str = "seq, at, actor, source, action, target, before?text AS before, \
                             after?text AS after, reason";
const TOKEN_COLUMNS: &str =
    "id, name, role, secret_sha256, created_at, expires_at, revoked_at, created_by";

fn flag_from(row: &impl Cells) -> Result<FlagRecord> {
    Ok(FlagRecord {
        key: row.text("key")?,
        definition: row.json("definition")?,
        version: row.int("version")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        updated_by: row.text("updated_by")?,
    })
}

fn audit_from(row: &impl Cells) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: row.int("seq")?,
        at: row.time("at")?,
        actor: row.text("actor")?,
        source: row.opt_text("source")?,
        action: row.text("action")?,
        target: row.text("target")?,
        before: row.opt_json("before")?,
        after: row.opt_json("after")?,
        reason: row.opt_text("reason")?,
    })
}

fn token_from(row: &impl Cells) -> Result<TokenRecord> {
    Ok(TokenRecord {
        id: row.text("id")?,
        name: row.text("name")?,
        role: row.text("role")?,
        secret_sha256: row.text("secret_sha256")?,
        created_at: row.time("created_at")?,
        expires_at: row.opt_time("expires_at")?,
        revoked_at: row.opt_time("revoked_at")?,
        created_by: row.text("created_by")?,
    })
}

/// Appends an audit entry inside the transaction of the change it records.
async fn audit_in<D: Dialect>(
    tx: &mut Tx<'_, D>,
    actor: &Actor,
    entry: AuditRef<'_>,
) -> Result<AuditEntry> {
    let row = tx
        .row(
            Stmt::new(
                "INSERT INTO audit (at, actor, source, action, target, before, after, reason) \
                 VALUES (?now, ?, ?, ?, ?, ?json, ?json, ?) RETURNING seq, at",
            )
            .text(&actor.name)
            .opt_text(actor.source.as_deref())
            .text(entry.action)
            .text(entry.target)
            .opt_json(entry.before)
            .opt_json(entry.after)
            .opt_text(entry.reason),
        )
        .await?;
    Ok(entry.entry(row.int("seq")?, row.time("at")?, actor))
}

/// A flag writer's transaction: flag changes are serialized, so each one
/// reads the state the previous one committed.
async fn begin_flags<D: Dialect>(store: &D) -> Result<Tx<'_, D>> {
    let mut tx = Tx::begin(store).await?;
    if let Some(lock) = D::LOCK_ROW {
        tx.row(Stmt::new("SELECT revision FROM flags_revision WHERE id = 1").push(lock))
            .await?;
    }
    Ok(tx)
}

/// Tells pollers of `flags_revision` that the flags changed.
async fn bump_flags_revision<D: Dialect>(tx: &mut Tx<'_, D>) -> Result<()> {
    tx.execute(Stmt::new(
        "UPDATE flags_revision SET revision = revision + 1 WHERE id = 1",
    ))
    .await?;
    Ok(())
}

/// See [`crate::Store::put_flag`].
pub(crate) async fn put_flag<D: Dialect>(
    store: &D,
    key: &str,
    definition: &Value,
    expected_version: Option<i64>,
    actor: &Actor,
    reason: Option<&str>,
) -> Result<FlagRecord> {
    let mut tx = begin_flags(store).await?;
    let current = tx
        .opt_row(Stmt::new(format!("SELECT {FLAG_COLUMNS} FROM flags WHERE key = ?")).text(key))
        .await?
        .as_ref()
        .map(flag_from)
        .transpose()?;
    check_flag_version(key, expected_version, current.as_ref().map(|f| f.version))?;
    let audit = AuditRef {
        action: action::FLAG_CREATED,
        target: key,
        before: None,
        after: Some(definition),
        reason,
    };
    let (stmt, audit) = match &current {
        Some(current) if current.definition == *definition => return Ok(current.clone()),
        Some(current) => (
            Stmt::new(format!(
                "UPDATE flags SET definition = ?json, version = version + 1, \
                 updated_at = ?now, updated_by = ? WHERE key = ? RETURNING {FLAG_COLUMNS}"
            ))
            .json(definition)
            .text(&actor.name)
            .text(key),
            AuditRef {
                action: action::FLAG_UPDATED,
                before: Some(&current.definition),
                ..audit
            },
        ),
        None => (
            Stmt::new(format!(
                "INSERT INTO flags (key, definition, version, created_at, updated_at, \
                 updated_by) VALUES (?, ?json, 1, ?now, ?now, ?) RETURNING {FLAG_COLUMNS}"
            ))
            .text(key)
            .json(definition)
            .text(&actor.name),
            audit,
        ),
    };
    let record = flag_from(&tx.row(stmt).await?)?;
    audit_in(&mut tx, actor, audit).await?;
    bump_flags_revision(&mut tx).await?;
    tx.commit().await?;
    Ok(record)
}

/// See [`crate::Store::delete_flag`].
pub(crate) async fn delete_flag<D: Dialect>(
    store: &D,
    key: &str,
    actor: &Actor,
    reason: Option<&str>,
) -> Result<bool> {
    let mut tx = begin_flags(store).await?;
    let old = tx
        .opt_row(
            Stmt::new("DELETE FROM flags WHERE key = ? RETURNING definition?text AS definition")
                .text(key),
        )
        .await?;
    let Some(old) = old else {
        return Ok(false);
    };
    let audit = AuditRef {
        action: action::FLAG_DELETED,
        target: key,
        before: Some(&old.json("definition")?),
        after: None,
        reason,
    };
    audit_in(&mut tx, actor, audit).await?;
    bump_flags_revision(&mut tx).await?;
    tx.commit().await?;
    Ok(true)
}

/// See [`crate::Store::get_flag`].
pub(crate) async fn get_flag<D: Dialect>(store: &D, key: &str) -> Result<Option<FlagRecord>> {
    opt_row(
        store,
        Stmt::new(format!("SELECT {FLAG_COLUMNS} FROM flags WHERE key = ?")).text(key),
    )
    .await?
    .as_ref()
    .map(flag_from)
    .transpose()
}

/// See [`crate::Store::list_flags`].
pub(crate) async fn list_flags<D: Dialect>(store: &D) -> Result<Vec<FlagRecord>> {
    // Byte order on both: `key` is COLLATE "C" on PostgreSQL, BINARY on
    // SQLite.
    rows(
        store,
        Stmt::new(format!("SELECT {FLAG_COLUMNS} FROM flags ORDER BY key")),
    )
    .await?
    .iter()
    .map(flag_from)
    .collect()
}

/// See [`crate::Store::flags_revision`].
pub(crate) async fn flags_revision<D: Dialect>(store: &D) -> Result<i64> {
    row(
        store,
        Stmt::new("SELECT revision FROM flags_revision WHERE id = 1"),
    )
    .await?
    .int("revision")
}

/// See [`crate::Store::audit_head`].
pub(crate) async fn audit_head<D: Dialect>(store: &D) -> Result<i64> {
    row(
        store,
        Stmt::new("SELECT COALESCE(MAX(seq), 0) AS head FROM audit"),
    )
    .await?
    .int("head")
}

/// See [`crate::Store::append_audit`].
pub(crate) async fn append_audit<D: Dialect>(
    store: &D,
    actor: &Actor,
    entry: &NewAudit,
) -> Result<AuditEntry> {
    let mut tx = Tx::begin(store).await?;
    let entry = audit_in(&mut tx, actor, entry.into()).await?;
    tx.commit().await?;
    Ok(entry)
}

/// See [`crate::Store::audit`].
pub(crate) async fn audit<D: Dialect>(store: &D, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
    let upper;
    let mut q =
        Stmt::new(format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > ?")).int(filter.after_seq);
    if let Some(actor) = &filter.actor {
        q = q.push(" AND actor = ?").text(actor);
    }
    if let Some(prefix) = filter.action_prefix.as_deref().filter(|p| !p.is_empty()) {
        // `action` sorts by bytes on both (COLLATE "C", BINARY): the prefix
        // is an index range.
        q = q.push(" AND action >= ?").text(prefix);
        upper = prefix_upper_bound(prefix);
        if let Some(upper) = &upper {
            q = q.push(" AND action < ?").text(upper);
        }
    }
    if let Some(target) = &filter.target {
        q = q.push(" AND target = ?").text(target);
    }
    if let Some(since) = filter.since {
        q = q.push(" AND at >= ?").at_least(since);
    }
    if let Some(before) = filter.before_seq {
        q = q.push(" AND seq < ?").int(before);
    }
    q = q.push(if filter.newest_first {
        " ORDER BY seq DESC LIMIT ?"
    } else {
        " ORDER BY seq LIMIT ?"
    });
    rows(store, q.int(i64::from(filter.limit)))
        .await?
        .iter()
        .map(audit_from)
        .collect()
}

/// Refuses a token whose id or secret hash is already stored.
async fn check_token_is_new<D: Dialect>(tx: &mut Tx<'_, D>, token: &NewToken) -> Result<()> {
    let same = tx
        .opt_row(
            Stmt::new(
                "SELECT id = ? AS same_id FROM tokens WHERE id = ? OR secret_sha256 = ? \
                 ORDER BY id = ? DESC LIMIT 1",
            )
            .text(&token.id)
            .text(&token.id)
            .text(&token.secret_sha256)
            .text(&token.id),
        )
        .await?;
    match same {
        None => Ok(()),
        Some(row) => Err(token_taken(&token.id, row.boolean("same_id")?)),
    }
}

/// See [`crate::Store::create_token`].
pub(crate) async fn create_token<D: Dialect>(
    store: &D,
    token: &NewToken,
    actor: &Actor,
) -> Result<TokenRecord> {
    let expires_at = token.expires_at.map(to_millis).transpose()?;
    let mut tx = Tx::begin(store).await?;
    check_token_is_new(&mut tx, token).await?;
    let row = tx
        .rows(
            Stmt::new(format!(
                "INSERT INTO tokens (id, name, role, secret_sha256, created_at, expires_at, \
                 created_by) VALUES (?, ?, ?, ?, ?now, ?, ?) RETURNING {TOKEN_COLUMNS}"
            ))
            .text(&token.id)
            .text(&token.name)
            .text(&token.role)
            .text(&token.secret_sha256)
            .opt_time(expires_at)
            .text(&actor.name),
        )
        .await
        .map_err(|e| token_insert_error(e, &token.id))?
        .into_iter()
        .next()
        .ok_or(StoreError::from(sqlx::Error::RowNotFound))?;
    let record = token_from(&row)?;
    let after = token_json(&record);
    let audit = AuditRef {
        action: action::TOKEN_CREATED,
        target: &record.id,
        before: None,
        after: Some(&after),
        reason: None,
    };
    audit_in(&mut tx, actor, audit).await?;
    tx.commit().await?;
    Ok(record)
}

/// See [`crate::Store::token_by_secret`].
pub(crate) async fn token_by_secret<D: Dialect>(
    store: &D,
    secret_sha256: &str,
) -> Result<Option<TokenRecord>> {
    opt_row(
        store,
        Stmt::new(format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE secret_sha256 = ?"
        ))
        .text(secret_sha256),
    )
    .await?
    .as_ref()
    .map(token_from)
    .transpose()
}

/// See [`crate::Store::list_tokens`].
pub(crate) async fn list_tokens<D: Dialect>(store: &D) -> Result<Vec<TokenRecord>> {
    rows(
        store,
        Stmt::new(format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id"
        )),
    )
    .await?
    .iter()
    .map(token_from)
    .collect()
}

/// See [`crate::Store::revoke_token`].
pub(crate) async fn revoke_token<D: Dialect>(store: &D, id: &str, actor: &Actor) -> Result<bool> {
    let mut tx = Tx::begin(store).await?;
    let row = tx
        .opt_row(
            Stmt::new(format!(
                "UPDATE tokens SET revoked_at = ?now WHERE id = ? AND revoked_at IS NULL \
                 RETURNING {TOKEN_COLUMNS}"
            ))
            .text(id),
        )
        .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let token = token_from(&row)?;
    let after = revoked_json(&token);
    let audit = AuditRef {
        action: action::TOKEN_REVOKED,
        target: id,
        before: None,
        after: Some(&after),
        reason: None,
    };
    audit_in(&mut tx, actor, audit).await?;
    tx.commit().await?;
    Ok(true)
}
