//! `GET /api/events`: a live stream (Server-Sent Events) of flag changes,
//! and with `?run=ID` also of that run's journal, for the dashboard and
//! `golive status --follow --server`.
//!
//! Each server polls the store (every `events_poll`, 500 ms by default), so
//! the stream shows changes made through any server or CLI sharing the
//! database. Events are `event: run` (a journal event) and `event: flag`
//! (an audit entry of a flag change); each `id:` is `RUNSEQ/FLAGSEQ`, so a
//! client reconnecting with `Last-Event-ID` continues where it stopped.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use golive_store::{AuditFilter, RunId, Store};
use serde::Deserialize;

use crate::auth::AnyToken;
use crate::error::ApiError;
use crate::state::AppState;

/// `?run=&after=`
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct EventsQuery {
    /// Also stream this run's journal.
    pub run: Option<String>,
    /// Start after this journal seq of the run (default: from its start).
    pub after: Option<i64>,
}

struct Cursor {
    state: AppState,
    run: Option<RunId>,
    run_seq: i64,
    flag_seq: i64,
    queue: std::collections::VecDeque<Event>,
    first: bool,
}

/// `GET /api/events`
pub async fn stream(
    State(state): State<AppState>,
    _: AnyToken,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let run = match q.run.as_deref() {
        Some(raw) => {
            let id = crate::runs::run_id(raw)?;
            state.store().get_run(&id).await?;
            Some(id)
        }
        None => None,
    };
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once('/'))
        .and_then(|(r, f)| Some((r.parse::<i64>().ok()?, f.parse::<i64>().ok()?)));
    let (run_seq, flag_seq) = match last {
        Some(pair) => pair,
        // Flags: only changes from now on; the run: its whole journal.
        None => (q.after.unwrap_or(0), newest_flag_change(&state).await?),
    };
    let poll = state.config.events_poll;
    let cursor = Cursor {
        state,
        run,
        run_seq,
        flag_seq,
        queue: Default::default(),
        first: true,
    };
    let events = stream::unfold(cursor, move |mut c| async move {
        loop {
            if let Some(e) = c.queue.pop_front() {
                return Some((Ok(e), c));
            }
            if !c.first {
                let mut stop = c.state.stop.subscribe();
                if stop.borrow().is_some() {
                    return None;
                }
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = stop.changed() => return None,
                }
            }
            c.first = false;
            fill(&mut c).await;
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// A failed read of the journal: the cause in the log, a short note in
/// the stream (the client keeps its place and the next poll tries again).
fn read_error(e: &golive_store::StoreError) -> Event {
    tracing::warn!(error = %e, "event stream cannot read the journal");
    Event::default()
        .event("error")
        .data("the journal cannot be read just now; see the server log")
}

async fn newest_flag_change(state: &AppState) -> Result<i64, ApiError> {
    // Flag changes are audit entries: those after the newest one are new.
    Ok(state.store().audit_head().await?)
}

async fn fill(c: &mut Cursor) {
    if let Some(run) = &c.run {
        match c.state.store().events_after(run, c.run_seq, 200).await {
            Ok(events) => {
                for e in events {
                    c.run_seq = e.seq;
                    let data = serde_json::to_string(&e).unwrap_or_default();
                    c.queue.push_back(
                        Event::default()
                            .event("run")
                            .id(format!("{}/{}", c.run_seq, c.flag_seq))
                            .data(data),
                    );
                }
            }
            Err(e) => c.queue.push_back(read_error(&e)),
        }
    }
    let filter = AuditFilter {
        action_prefix: Some("flag.".into()),
        after_seq: c.flag_seq,
        limit: 200,
        ..Default::default()
    };
    match c.state.store().audit(&filter).await {
        Ok(entries) => {
            for e in entries {
                c.flag_seq = e.seq;
                let data = serde_json::to_string(&e).unwrap_or_default();
                c.queue.push_back(
                    Event::default()
                        .event("flag")
                        .id(format!("{}/{}", c.run_seq, c.flag_seq))
                        .data(data),
                );
            }
        }
        Err(e) => c
            .queue
            .push_back(Event::default().event("error").data(e.to_string())),
    }
}
