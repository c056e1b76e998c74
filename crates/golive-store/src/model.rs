//! What the journal holds: runs, item states, events, confirmations and
//! signatures, and the rules for moving an item from one status to another.
//!
//! Both backends read and write these types and share the transition rules
//! here, so SQLite and PostgreSQL refuse exactly the same moves.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;

use crate::StoreError;

/// A run's id: `r-` and 8 lowercase base32 characters (40 random bits), short
/// enough to type, e.g. `golive status r-k3qf7x2a`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(String);

/// The lowercase RFC 4648 base32 alphabet (no 0, 1, 8, 9: nothing to misread).
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

impl RunId {
    /// A fresh random id from the operating system's random source.
    ///
    /// 40 bits make a collision unlikely but not impossible; `create_run`
    /// retries with a new id when the database already has one.
    pub fn generate() -> Result<RunId, StoreError> {
        let mut bytes = [0u8; 5];
        getrandom::fill(&mut bytes).map_err(StoreError::Random)?;
        let bits = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let mut id = String::with_capacity(10);
        id.push_str("r-");
        for i in (0..8).rev() {
            id.push(char::from(BASE32[((bits >> (i * 5)) & 31) as usize]));
        }
        Ok(RunId(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id read back from the journal, as the store wrote it.
    pub(crate) fn stored(id: String) -> RunId {
        RunId(id)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string that is not shaped like a run id.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a run id (expected `r-` and 8 characters from a-z, 2-7)")]
pub struct InvalidRunId(String);

impl FromStr for RunId {
    type Err = InvalidRunId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = s
            .strip_prefix("r-")
            .is_some_and(|rest| rest.len() == 8 && rest.bytes().all(|b| BASE32.contains(&b)));
        if ok {
            Ok(RunId(s.to_string()))
        } else {
            Err(InvalidRunId(s.to_string()))
        }
    }
}

impl<DB: sqlx::Database> sqlx::Type<DB> for RunId
where
    String: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as sqlx::Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as sqlx::Type<DB>>::compatible(ty)
    }
}

impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for RunId
where
    String: sqlx::Encode<'q, DB>,
{
    fn encode_by_ref(
        &self,
        buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        self.0.encode_by_ref(buf)
    }
}

impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for RunId
where
    String: sqlx::Decode<'r, DB>,
{
    fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(RunId(String::decode(value)?))
    }
}

/// Declares a status enum stored as its kebab-case name.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name stored in the database and shown to people.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = StoreError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(StoreError::Corrupt(format!(
                        concat!("unknown ", stringify!($name), " `{}`"),
                        other
                    ))),
                }
            }
        }
    };
}

text_enum!(
    /// Where a run is in its life.
    RunStatus {
        /// Created, not started.
        Pending = "pending",
        /// An engine is executing it.
        Running = "running",
        /// Stopped on purpose; resumable.
        Paused = "paused",
        /// Every critical item passed.
        Succeeded = "succeeded",
        /// A critical item failed.
        Failed = "failed",
        /// Rollback items are running.
        RollingBack = "rolling-back",
        /// Rollback finished.
        RolledBack = "rolled-back",
        /// Stopped by a person for good.
        Aborted = "aborted",
    }
);

text_enum!(
    /// Where one item of a run is.
    ItemStatus {
        /// Not reached yet.
        Pending = "pending",
        /// Committed as started; its work may be under way.
        Running = "running",
        /// Finished and passed.
        Passed = "passed",
        /// Finished and failed.
        Failed = "failed",
        /// Will not run (by policy or by a person).
        Skipped = "skipped",
        /// Found `running` on resume: its process died mid-step.
        Interrupted = "interrupted",
        /// Blocked on a person, a signature or the clock.
        Waiting = "waiting",
    }
);

text_enum!(
    /// How a finished item ended; the only statuses `finish_item` accepts.
    Outcome {
        /// It passed.
        Passed = "passed",
        /// It failed.
        Failed = "failed",
        /// It was skipped.
        Skipped = "skipped",
    }
);

text_enum!(
    /// A signer's decision on an approval item.
    Decision {
        /// Go.
        Approve = "approve",
        /// No go.
        Reject = "reject",
    }
);

impl RunStatus {
    /// Whether the run has ended for good (a resume has nothing to do).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::RolledBack | RunStatus::Aborted
        )
    }
}

impl ItemStatus {
    /// Whether the item has finished (passed, failed or skipped): it never
    /// runs again.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            ItemStatus::Passed | ItemStatus::Failed | ItemStatus::Skipped
        )
    }
}

impl From<Outcome> for ItemStatus {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Passed => ItemStatus::Passed,
            Outcome::Failed => ItemStatus::Failed,
            Outcome::Skipped => ItemStatus::Skipped,
        }
    }
}

/// The moves an item may make. Both backends make a move only from a
/// status these allow ([`Move::allowed_from`]), and call them to word the
/// refusal otherwise.
pub(crate) mod transition {
    use super::{ItemStatus, Outcome};
    use crate::StoreError;

    fn refuse(item: &str, from: ItemStatus, to: &str) -> StoreError {
        let why = if from.is_finished() {
            "; a finished item never runs again"
        } else {
            ""
        };
        StoreError::Conflict(format!(
            "item `{item}` is {from}, it cannot become {to}{why}"
        ))
    }

    /// pending | interrupted | waiting → running.
    pub(crate) fn start(item: &str, from: ItemStatus) -> Result<(), StoreError> {
        match from {
            ItemStatus::Pending | ItemStatus::Interrupted | ItemStatus::Waiting => Ok(()),
            _ => Err(refuse(item, from, "running")),
        }
    }

    /// running → passed | failed | skipped; pending | interrupted | waiting → skipped.
    pub(crate) fn finish(item: &str, from: ItemStatus, to: Outcome) -> Result<(), StoreError> {
        match (from, to) {
            (ItemStatus::Running, _) => Ok(()),
            (
                ItemStatus::Pending | ItemStatus::Interrupted | ItemStatus::Waiting,
                Outcome::Skipped,
            ) => Ok(()),
            _ => Err(refuse(item, from, to.as_str())),
        }
    }

    /// pending | running | interrupted | waiting → waiting.
    pub(crate) fn wait(item: &str, from: ItemStatus) -> Result<(), StoreError> {
        if from.is_finished() {
            Err(refuse(item, from, "waiting"))
        } else {
            Ok(())
        }
    }
}

/// One move of an item, as both backends apply it: the rule it must pass,
/// and the event that records it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Move<'a> {
    /// → running, one more attempt.
    Start,
    /// → passed | failed | skipped, with a result.
    Finish(Outcome, &'a Value),
    /// → waiting, with a detail for the journal.
    Wait(&'a Value),
}

impl Move<'_> {
    /// Refuses the move if `from` does not allow it.
    pub(crate) fn check(self, item: &str, from: ItemStatus) -> Result<(), StoreError> {
        match self {
            Move::Start => transition::start(item, from),
            Move::Finish(outcome, _) => transition::finish(item, from, outcome),
            Move::Wait(_) => transition::wait(item, from),
        }
    }

    /// Every status [`Move::check`] lets the move start from, for backends
    /// that make the move in one guarded statement (`… WHERE status IN
    /// (…)`) and call [`Move::check`] only to word a refusal.
    pub(crate) fn allowed_from(self) -> &'static [ItemStatus] {
        use ItemStatus::{Interrupted, Pending, Running, Waiting};
        match self {
            Move::Start => &[Pending, Interrupted, Waiting],
            Move::Finish(Outcome::Skipped, _) => &[Running, Pending, Interrupted, Waiting],
            Move::Finish(Outcome::Passed | Outcome::Failed, _) => &[Running],
            Move::Wait(_) => &[Pending, Running, Interrupted, Waiting],
        }
    }

    /// [`Move::allowed_from`] as a SQL list of string literals, e.g.
    /// `'pending', 'interrupted', 'waiting'` (the names need no escaping).
    pub(crate) fn allowed_from_sql(self) -> String {
        let names: Vec<String> = self
            .allowed_from()
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        names.join(", ")
    }

    /// The event kind that records it.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Move::Start => kind::ITEM_STARTED,
            Move::Finish(..) => kind::ITEM_FINISHED,
            Move::Wait(_) => kind::ITEM_WAITING,
        }
    }

    /// The event's data, given the status before and the state after. The
    /// backends build it in SQL, in the statement that makes the move (only
    /// the database knows the status before); their tests check that what
    /// they write equals this.
    #[cfg(test)]
    pub(crate) fn data(self, from: ItemStatus, after: &ItemState) -> Value {
        match self {
            Move::Start => serde_json::json!({ "from": from, "attempt": after.attempts }),
            Move::Finish(outcome, result) => {
                serde_json::json!({ "from": from, "status": outcome, "result": result })
            }
            Move::Wait(detail) => serde_json::json!({ "from": from, "detail": detail }),
        }
    }
}

/// What `create_run` needs.
#[derive(Clone, Debug, Default)]
pub struct NewRun {
    /// The plan's `name`.
    pub plan_name: String,
    /// The plan file exactly as read; a resume runs this text, not the file
    /// on disk.
    pub plan_text: String,
    /// The go-live moment, if known (stored to the millisecond).
    pub t0: Option<Timestamp>,
    /// Every item id the run may execute, in plan order (rollback items
    /// included); each starts `pending`.
    pub items: Vec<String>,
    /// Who started the run, recorded on the `run.created` event.
    pub actor: Option<String>,
}

/// A run without its plan text (what `list_runs` returns).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSummary {
    /// Its id.
    pub id: RunId,
    /// The plan's name.
    pub plan_name: String,
    /// Lowercase hex SHA-256 of the plan text.
    pub plan_sha256: String,
    /// The go-live moment, if known.
    pub t0: Option<Timestamp>,
    /// Where the run is.
    pub status: RunStatus,
    /// When it was created.
    pub created_at: Timestamp,
    /// When its last event was written.
    pub updated_at: Timestamp,
    /// Who holds the lease, if anyone (it may have expired).
    pub lease_owner: Option<String>,
    /// When that lease ends.
    pub lease_expires_at: Option<Timestamp>,
    /// The seq of its last event (= the number of events).
    pub last_seq: i64,
}

/// A run with its plan text (what `get_run` returns).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Run {
    /// Everything but the plan text.
    #[serde(flatten)]
    pub summary: RunSummary,
    /// The plan exactly as it was when the run was created.
    pub plan_text: String,
}

/// One item of one run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ItemState {
    /// The item's id in the plan.
    pub item_id: String,
    /// Where it is.
    pub status: ItemStatus,
    /// How many times it was started.
    pub attempts: u32,
    /// When the last attempt started.
    pub started_at: Option<Timestamp>,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// What it produced (set only when it finishes).
    pub result: Option<Value>,
    /// When its state last changed.
    pub updated_at: Timestamp,
}

/// One entry of a run's append-only journal.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// Position in the run's journal: 1, 2, 3, … without gaps.
    pub seq: i64,
    /// When it was written.
    pub at: Timestamp,
    /// What happened; see [`kind`] for the ones the store writes.
    pub kind: String,
    /// The item concerned, if any.
    pub item_id: Option<String>,
    /// Who did it: a lease owner, a person, or nobody.
    pub actor: Option<String>,
    /// Details (a JSON object).
    pub data: Value,
}

/// An event the engine adds itself (`append_event`): output, notifications,
/// decisions. State changes write their own events.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// What happened, e.g. `notify.sent`.
    pub kind: String,
    /// The item concerned, if any.
    pub item_id: Option<String>,
    /// Details.
    pub data: Value,
}

/// A person's confirmation of a task item.
#[derive(Clone, Debug, Default)]
pub struct NewConfirmation {
    /// Who confirms.
    pub by: String,
    /// A link, a ticket, a note.
    pub evidence: Option<String>,
    /// Confirmed as not done on purpose.
    pub skipped: bool,
    /// Why it was skipped.
    pub reason: Option<String>,
}

/// A stored confirmation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Confirmation {
    /// The item confirmed.
    pub item_id: String,
    /// Who confirmed.
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// A link, a ticket, a note.
    pub evidence: Option<String>,
    /// Confirmed as not done on purpose.
    pub skipped: bool,
    /// Why it was skipped.
    pub reason: Option<String>,
}

/// A sign-off on an approval item, for one role.
#[derive(Clone, Debug)]
pub struct NewSignature {
    /// The role signed for.
    pub role: String,
    /// Who signs.
    pub by: String,
    /// Approve or reject.
    pub decision: Decision,
    /// Free text.
    pub comment: Option<String>,
}

/// A stored signature.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Signature {
    /// The approval item.
    pub item_id: String,
    /// The role signed for.
    pub role: String,
    /// Who signed.
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// Approve or reject.
    pub decision: Decision,
    /// Free text.
    pub comment: Option<String>,
}

/// A request to a run from someone who does not drive it, e.g. a rollback.
#[derive(Clone, Debug)]
pub struct NewRequest {
    /// What is asked, e.g. `rollback`.
    pub kind: String,
    /// Who asks.
    pub by: String,
    /// Why.
    pub reason: Option<String>,
}

/// A stored request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Request {
    /// What was asked.
    pub kind: String,
    /// Who asked.
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// Why.
    pub reason: Option<String>,
}

/// Who made a change, as the audit log records it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Actor {
    /// A token's name or a person.
    pub name: String,
    /// Where the change came from: a client address such as
    /// `127.0.0.1:50312`, or `cli`.
    pub source: Option<String>,
}

/// A stored feature flag. Its definition is opaque JSON to the store (the
/// flags crate parses it).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlagRecord {
    /// The flag's key.
    pub key: String,
    /// The definition, exactly as JSON compares (object key order is not
    /// kept by PostgreSQL).
    pub definition: Value,
    /// 1 when created, one more per change.
    pub version: i64,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// Who changed it last ([`Actor::name`]).
    pub updated_by: String,
}

/// One audit-log entry: every mutation made through the server or the CLI.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Position in the log: strictly increasing, not gap-free. On
    /// PostgreSQL a seq is taken when the entry is written, so with
    /// concurrent writers a lower seq may commit after a higher one: a
    /// reader paging by seq can, rarely, miss such an entry.
    pub seq: i64,
    /// When it was written.
    pub at: Timestamp,
    /// Who ([`Actor::name`]).
    pub actor: String,
    /// From where ([`Actor::source`]).
    pub source: Option<String>,
    /// What was done, e.g. `flag.updated`; see [`action`].
    pub action: String,
    /// What it was done to: a flag's key, a token's id, a run's id, …
    pub target: String,
    /// The target before, if it existed and the action records it.
    pub before: Option<Value>,
    /// The target after, if it still exists and the action records it.
    pub after: Option<Value>,
    /// Why, as the actor said.
    pub reason: Option<String>,
}

/// An audit entry to append ([`Store::append_audit`](crate::Store::append_audit)).
#[derive(Clone, Debug, Default)]
pub struct NewAudit {
    /// What was done, e.g. `run.confirmed`.
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// The target before.
    pub before: Option<Value>,
    /// The target after.
    pub after: Option<Value>,
    /// Why.
    pub reason: Option<String>,
}

/// Which audit entries to list: every filter is optional and they are
/// AND-ed; entries come oldest first (by seq), after `after_seq`, at most
/// `limit` of them (0 gives none). Callers page by passing the last seq
/// they saw as `after_seq`; or, with `newest_first`, from the newest back,
/// passing the last seq they saw as `before_seq`.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Only this actor's entries.
    pub actor: Option<String>,
    /// Only actions starting with this (case-sensitive), e.g. `flag.`.
    pub action_prefix: Option<String>,
    /// Only entries about this target.
    pub target: Option<String>,
    /// Only entries written at or after this moment.
    pub since: Option<Timestamp>,
    /// Only entries with a greater seq (0: from the start).
    pub after_seq: i64,
    /// Only entries with a smaller seq.
    pub before_seq: Option<i64>,
    /// Newest first (the `limit` newest that match) instead of oldest.
    pub newest_first: bool,
    /// At most this many entries.
    pub limit: u32,
}

/// An API token to store. The caller generates the secret and hashes it;
/// the store never sees the secret.
#[derive(Clone, Debug)]
pub struct NewToken {
    /// Its public id (unique).
    pub id: String,
    /// A name for people and for the audit log.
    pub name: String,
    /// What it may do (the server's business).
    pub role: String,
    /// Lowercase hex SHA-256 of the secret (unique).
    pub secret_sha256: String,
    /// When it stops working, if ever (stored to the millisecond).
    pub expires_at: Option<Timestamp>,
}

/// A stored API token. Serializing it never shows the secret's hash.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenRecord {
    /// Its public id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// What it may do.
    pub role: String,
    /// Lowercase hex SHA-256 of the secret; never serialized.
    #[serde(skip)]
    pub secret_sha256: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// Who created it ([`Actor::name`]).
    pub created_by: String,
}

/// An audit entry as both backends write it, borrowed from its parts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AuditRef<'a> {
    pub(crate) action: &'a str,
    pub(crate) target: &'a str,
    pub(crate) before: Option<&'a Value>,
    pub(crate) after: Option<&'a Value>,
    pub(crate) reason: Option<&'a str>,
}

impl<'a> From<&'a NewAudit> for AuditRef<'a> {
    fn from(e: &'a NewAudit) -> Self {
        AuditRef {
            action: &e.action,
            target: &e.target,
            before: e.before.as_ref(),
            after: e.after.as_ref(),
            reason: e.reason.as_deref(),
        }
    }
}

impl AuditRef<'_> {
    /// The stored entry, once the database gave it its seq and time.
    pub(crate) fn entry(self, seq: i64, at: Timestamp, actor: &Actor) -> AuditEntry {
        AuditEntry {
            seq,
            at,
            actor: actor.name.clone(),
            source: actor.source.clone(),
            action: self.action.to_string(),
            target: self.target.to_string(),
            before: self.before.cloned(),
            after: self.after.cloned(),
            reason: self.reason.map(str::to_string),
        }
    }
}

/// The audit actions the store writes itself.
pub mod action {
    /// `put_flag` created the flag. Target: the key; after: the definition.
    pub const FLAG_CREATED: &str = "flag.created";
    /// `put_flag` changed the flag. Target: the key; before and after: the
    /// definitions.
    pub const FLAG_UPDATED: &str = "flag.updated";
    /// `delete_flag`. Target: the key; before: the definition.
    pub const FLAG_DELETED: &str = "flag.deleted";
    /// `create_token`. Target: the id; after: `id`, `name`, `role`,
    /// `expires_at` (never the hash).
    pub const TOKEN_CREATED: &str = "token.created";
    /// `revoke_token`. Target: the id; after: `id`, `name`, `role`,
    /// `revoked_at`.
    pub const TOKEN_REVOKED: &str = "token.revoked";
    /// The prefix of every flag action.
    pub const FLAG_PREFIX: &str = "flag.";
}

/// The event kinds the store writes with each state change.
pub mod kind {
    /// `create_run`. Data: `plan_name`, `plan_sha256`, `t0`, `items`.
    pub const RUN_CREATED: &str = "run.created";
    /// `set_run_status`. Data: `from`, `to`.
    pub const RUN_STATUS: &str = "run.status";
    /// `acquire_lease` when the owner changes. Data: `previous`, `ttl_ms`.
    pub const LEASE_ACQUIRED: &str = "lease.acquired";
    /// `release_lease`. Data: `{}`.
    pub const LEASE_RELEASED: &str = "lease.released";
    /// `start_item`. Data: `from`, `attempt`.
    pub const ITEM_STARTED: &str = "item.started";
    /// `finish_item`. Data: `from`, `status`, `result`.
    pub const ITEM_FINISHED: &str = "item.finished";
    /// `set_item_waiting`. Data: `from`, `detail`.
    pub const ITEM_WAITING: &str = "item.waiting";
    /// `mark_interrupted`, one per item. Data: `attempt`.
    pub const ITEM_INTERRUPTED: &str = "item.interrupted";
    /// `confirm`. Data: `evidence`, `skipped`, `reason`.
    pub const ITEM_CONFIRMED: &str = "item.confirmed";
    /// `sign`. Data: `role`, `decision`, `comment`.
    pub const ITEM_SIGNED: &str = "item.signed";
    /// `request`. Data: `kind`, `reason`; actor: who asked.
    pub const RUN_REQUESTED: &str = "run.requested";
    /// The database was away and the run waited for it (`waited_ms`,
    /// `error`); written once it answers again.
    pub const JOURNAL_PAUSED: &str = "journal.paused";
}

/// Parses JSON the store wrote itself; anything else means the database was changed behind its back.
pub(crate) fn json(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("stored JSON: {e}")))
}

/// The smallest string greater than every string starting with `prefix`
/// (in code point order, which is UTF-8 byte order), or `None` if there is
/// none: `prefix <= s < upper` exactly when `s` starts with `prefix`.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The first whole millisecond at or after `t`, for "at or after" filters
/// on millisecond timestamps.
pub(crate) fn ceil_millis(t: Timestamp) -> i64 {
    let ns = t.as_nanosecond();
    let ms = ns.div_euclid(1_000_000) + i128::from(ns.rem_euclid(1_000_000) != 0);
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// What the audit log records of a token: never its hash.
pub(crate) fn token_json(token: &TokenRecord) -> Value {
    serde_json::json!({
        "id": token.id,
        "name": token.name,
        "role": token.role,
        "expires_at": token.expires_at,
    })
}

/// What the audit log records of a revoked token.
pub(crate) fn revoked_json(token: &TokenRecord) -> Value {
    serde_json::json!({
        "id": token.id,
        "name": token.name,
        "role": token.role,
        "revoked_at": token.revoked_at,
    })
}

/// A token refused because its id (`same_id`) or its secret hash is
/// already stored; the message never shows the hash.
pub(crate) fn token_taken(id: &str, same_id: bool) -> StoreError {
    if same_id {
        StoreError::Conflict(format!("a token with id `{id}` already exists"))
    } else {
        StoreError::Conflict(format!(
            "token `{id}`: another token already has this secret"
        ))
    }
}

/// Sorts the error of inserting a token: a unique violation (a writer that
/// raced past the check) is a conflict.
pub(crate) fn token_insert_error(e: sqlx::Error, id: &str) -> StoreError {
    if crate::error::is_unique_violation(&e) {
        StoreError::Conflict(format!(
            "token `{id}`: its id or its secret is already stored"
        ))
    } else {
        StoreError::from(e)
    }
}

/// What a flag's writer must find, given `expected_version`, when the flag
/// is at `current` (`None`: it does not exist).
pub(crate) fn check_flag_version(
    key: &str,
    expected: Option<i64>,
    current: Option<i64>,
) -> Result<(), StoreError> {
    match (expected, current) {
        (None, _) | (Some(0), None) => Ok(()),
        (Some(0), Some(v)) => Err(StoreError::Conflict(format!(
            "flag `{key}` already exists (version {v})"
        ))),
        (Some(want), None) => Err(StoreError::Conflict(format!(
            "flag `{key}` does not exist (expected version {want})"
        ))),
        (Some(want), Some(v)) if want == v => Ok(()),
        (Some(want), Some(v)) => Err(StoreError::Conflict(format!(
            "flag `{key}` is at version {v}, not {want}: it changed meanwhile"
        ))),
    }
}

/// A run read back, refused if its plan text no longer matches the checksum
/// stored beside it: a resume must run exactly the plan that was started.
pub(crate) fn checked_run(summary: RunSummary, plan_text: String) -> Result<Run, StoreError> {
    if sha256_hex(&plan_text) != summary.plan_sha256 {
        return Err(StoreError::Corrupt(format!(
            "the plan stored with run {} does not match its SHA-256",
            summary.id
        )));
    }
    Ok(Run { summary, plan_text })
}

/// Lowercase hex SHA-256 of a plan text.
pub(crate) fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// A timestamp cut to whole milliseconds, the precision both backends keep.
pub(crate) fn to_millis(t: Timestamp) -> Result<Timestamp, StoreError> {
    from_millis(t.as_millisecond())
}

/// Milliseconds since the epoch as a timestamp.
pub(crate) fn from_millis(ms: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_millisecond(ms)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {ms} ms out of range: {e}")))
}

/// A fresh run of `items` whose lease `me` holds for a minute: where every
/// backend test of moves starts.
#[cfg(test)]
pub(crate) async fn leased_run<S: crate::Store>(store: &S, items: &[&str]) -> RunId {
    let run = store
        .create_run(&NewRun {
            plan_name: "p".into(),
            plan_text: "name: p".into(),
            items: items.iter().map(|i| i.to_string()).collect(),
            ..NewRun::default()
        })
        .await
        .expect("create");
    let id = run.summary.id;
    assert!(
        store
            .acquire_lease(&id, "me", std::time::Duration::from_secs(60))
            .await
            .expect("lease")
    );
    id
}

/// Makes every kind of move on a fresh store, checking that each event a
/// backend writes (its data built in SQL) is the one [`Move::data`]
/// describes, and that a refused move writes nothing.
#[cfg(test)]
pub(crate) async fn check_move_events<S: crate::Store>(store: &S) {
    // Text and numbers that a JSON round trip through the database could
    // get wrong (not NUL: PostgreSQL's jsonb refuses it, as it always did).
    let payload = serde_json::json!({
        "text": "quote\" backslash\\ tab\t ctrl\u{1f} é 🚀 \u{2028} </script>",
        "max": u64::MAX,
        "min": i64::MIN,
        "float": 2.0,
        "big": 1.5e300,
        "small": 5e-324,
        "nested": [[], {}, null, true, [1, -0.5, "x"]],
        "": "",
    });
    let id = leased_run(store, &["a", "b", "c", "d"]).await;
    let passed = Move::Finish(Outcome::Passed, &payload);
    let failed = Move::Finish(Outcome::Failed, &payload);
    let skipped = Move::Finish(Outcome::Skipped, &payload);
    let wait = Move::Wait(&payload);
    use ItemStatus::{Pending, Running, Waiting};
    let moves = [
        ("a", Move::Start, Pending),
        ("a", passed, Running),
        ("b", Move::Start, Pending),
        ("b", failed, Running),
        ("c", wait, Pending),
        ("c", Move::Start, Waiting),
        ("c", wait, Running),
        ("c", Move::Start, Waiting),
        ("c", skipped, Running),
        ("d", skipped, Pending),
    ];
    for (item, mv, from) in moves {
        let before = store.get_run(&id).await.expect("run").summary.last_seq;
        let state = match mv {
            Move::Start => store.start_item(&id, item, "me").await,
            Move::Finish(outcome, result) => {
                store.finish_item(&id, item, "me", outcome, result).await
            }
            Move::Wait(detail) => store.set_item_waiting(&id, item, "me", detail).await,
        }
        .expect("move");
        let events = store.events_after(&id, before, 10).await.expect("events");
        let [event] = events.as_slice() else {
            panic!("{item} {mv:?}: {events:?}");
        };
        assert_eq!(event.seq, before + 1);
        assert_eq!(event.kind, mv.kind());
        assert_eq!(event.item_id.as_deref(), Some(item));
        assert_eq!(event.actor.as_deref(), Some("me"));
        assert_eq!(event.at, state.updated_at, "{item} {mv:?}");
        assert_eq!(event.data, mv.data(from, &state), "{item} {mv:?}");
        let stored = store.item_states(&id).await.expect("states");
        assert!(stored.contains(&state), "{state:?} in {stored:?}");
        if let Move::Finish(..) = mv {
            assert_eq!(state.result.as_ref(), Some(&payload));
        }
    }
    let last_seq = store.get_run(&id).await.expect("run").summary.last_seq;
    for (item, mv) in [("a", Move::Start), ("a", wait), ("b", skipped)] {
        let refused = match mv {
            Move::Start => store.start_item(&id, item, "me").await,
            Move::Finish(outcome, result) => {
                store.finish_item(&id, item, "me", outcome, result).await
            }
            Move::Wait(detail) => store.set_item_waiting(&id, item, "me", detail).await,
        };
        assert!(
            matches!(refused, Err(StoreError::Conflict(_))),
            "{refused:?}"
        );
    }
    let refused = store.start_item(&id, "nope", "me").await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "{refused:?}"
    );
    let refused = store.start_item(&id, "d", "you").await;
    assert!(
        matches!(refused, Err(StoreError::LeaseLost { .. })),
        "{refused:?}"
    );
    let other = RunId::generate().expect("id");
    let refused = store.start_item(&other, "a", "me").await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "{refused:?}"
    );
    let after = store.get_run(&id).await.expect("run").summary.last_seq;
    assert_eq!(after, last_seq, "a refused move writes nothing");
    let events = store.events_after(&id, 0, 1000).await.expect("events");
    assert_eq!(events.len() as i64, last_seq);
}

/// Many writers of one run at once, through two stores ("two processes"):
/// the journal stays gap-free, and of two writers starting the same item
/// exactly one does, the other finding it running.
#[cfg(test)]
pub(crate) async fn check_concurrent_moves<S: crate::Store + 'static>(
    stores: [std::sync::Arc<S>; 2],
) {
    let items: Vec<String> = (0..40).map(|i| format!("i{i}")).collect();
    let names: Vec<&str> = items.iter().map(String::as_str).collect();
    let [one, two] = &stores;
    let id = leased_run(&**one, &names).await;
    let mut tasks = Vec::new();
    for item in &items {
        // Two starts of each item race, one per store; both then try to
        // finish it.
        for store in [one, two] {
            let (store, id, item) = (store.clone(), id.clone(), item.clone());
            tasks.push(tokio::spawn(async move {
                let started = match store.start_item(&id, &item, "me").await {
                    Ok(_) => true,
                    Err(StoreError::Conflict(_)) => false,
                    Err(e) => panic!("{item}: {e}"),
                };
                let result = serde_json::json!({});
                match store
                    .finish_item(&id, &item, "me", Outcome::Passed, &result)
                    .await
                {
                    Ok(_) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => panic!("{item}: {e}"),
                }
                started
            }));
        }
    }
    for n in 0..20 {
        let (store, id) = (stores[n % 2].clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let event = NewEvent {
                kind: "note".into(),
                item_id: None,
                data: serde_json::json!({ "n": n }),
            };
            store.append_event(&id, "me", &event).await.expect("append");
            false
        }));
    }
    let mut started = 0;
    for task in tasks {
        started += usize::from(task.await.expect("task"));
    }
    assert_eq!(started, items.len(), "each item started exactly once");
    let run = one.get_run(&id).await.expect("run").summary;
    let events = one.events_after(&id, 0, 10_000).await.expect("events");
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=run.last_seq).collect::<Vec<_>>());
    // created, lease, 40 starts, 40 finishes, 20 notes
    assert_eq!(run.last_seq, 2 + 80 + 20);
    for item in &items {
        let froms: Vec<&Value> = events
            .iter()
            .filter(|e| e.item_id.as_deref() == Some(item.as_str()))
            .map(|e| &e.data["from"])
            .collect();
        assert_eq!(froms, ["pending", "running"], "{item}");
    }
    for state in one.item_states(&id).await.expect("states") {
        assert_eq!((state.status, state.attempts), (ItemStatus::Passed, 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_short_well_formed_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = RunId::generate().expect("random source");
            assert_eq!(id.as_str().len(), 10);
            assert!(id.as_str().parse::<RunId>().is_ok(), "{id}");
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn run_id_parse_rejects_other_shapes() {
        for bad in [
            "",
            "r-",
            "r-abc",
            "r-ABCDEFGH",
            "r-abcdefg1",
            "x-abcdefgh",
            "r-abcdefghi",
        ] {
            assert!(bad.parse::<RunId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>().ok(), Some(*s));
        }
        for s in ItemStatus::ALL {
            assert_eq!(s.as_str().parse::<ItemStatus>().ok(), Some(*s));
        }
        assert!("done".parse::<ItemStatus>().is_err());
    }

    #[test]
    fn finished_items_never_start_again() {
        for s in ItemStatus::ALL {
            let ok = transition::start("x", *s).is_ok();
            assert_eq!(
                ok,
                matches!(
                    s,
                    ItemStatus::Pending | ItemStatus::Interrupted | ItemStatus::Waiting
                ),
                "{s}"
            );
        }
        assert!(transition::finish("x", ItemStatus::Pending, Outcome::Skipped).is_ok());
        assert!(transition::finish("x", ItemStatus::Pending, Outcome::Passed).is_err());
        assert!(transition::finish("x", ItemStatus::Passed, Outcome::Skipped).is_err());
    }

    #[test]
    fn guarded_moves_allow_exactly_what_check_allows() {
        let result = Value::Null;
        let moves = [
            Move::Start,
            Move::Finish(Outcome::Passed, &result),
            Move::Finish(Outcome::Failed, &result),
            Move::Finish(Outcome::Skipped, &result),
            Move::Wait(&result),
        ];
        for mv in moves {
            for s in ItemStatus::ALL {
                assert_eq!(
                    mv.check("x", *s).is_ok(),
                    mv.allowed_from().contains(s),
                    "{mv:?} from {s}"
                );
            }
        }
        assert_eq!(
            Move::Start.allowed_from_sql(),
            "'pending', 'interrupted', 'waiting'"
        );
    }

    #[test]
    fn prefix_bounds_cover_exactly_the_prefixed_strings() {
        assert_eq!(prefix_upper_bound("flag.").as_deref(), Some("flag/"));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound(""), None);
        let upper = prefix_upper_bound("ab").expect("bound");
        for s in ["ab", "ab\u{10FFFF}", "abz", "ab.x"] {
            assert!("ab" <= s && s < upper.as_str(), "{s}");
        }
        for s in ["a", "aa\u{10FFFF}", "ac", "b"] {
            assert!(!("ab" <= s && s < upper.as_str()), "{s}");
        }
    }

    #[test]
    fn since_rounds_up_to_the_millisecond() {
        let t = |s: &str| s.parse::<Timestamp>().expect("timestamp");
        assert_eq!(ceil_millis(t("1970-01-01T00:00:01Z")), 1000);
        assert_eq!(ceil_millis(t("1970-01-01T00:00:01.000001Z")), 1001);
        assert_eq!(ceil_millis(t("1969-12-31T23:59:59.9995Z")), 0);
    }

    #[test]
    fn flag_versions() {
        assert!(check_flag_version("k", None, Some(3)).is_ok());
        assert!(check_flag_version("k", Some(0), None).is_ok());
        assert!(check_flag_version("k", Some(3), Some(3)).is_ok());
        for (want, cur) in [(Some(0), Some(1)), (Some(2), Some(3)), (Some(1), None)] {
            assert!(
                matches!(
                    check_flag_version("k", want, cur),
                    Err(StoreError::Conflict(_))
                ),
                "{want:?} {cur:?}"
            );
        }
    }

    #[test]
    fn sha256_of_empty_text() {
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
