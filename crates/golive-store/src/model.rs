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

/// The moves an item may make. Both backends call these inside the
/// transaction that makes the move, after reading the current status.
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

    /// The event kind that records it.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Move::Start => kind::ITEM_STARTED,
            Move::Finish(..) => kind::ITEM_FINISHED,
            Move::Wait(_) => kind::ITEM_WAITING,
        }
    }

    /// The event's data, given the status before and the state after.
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
}

/// Parses JSON the store wrote itself; anything else means the database was changed behind its back.
pub(crate) fn json(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("stored JSON: {e}")))
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
    fn sha256_of_empty_text() {
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
