//! The rollback decision tree, evaluated: which level of the plan's
//! `rollback: levels` acts on a rollout now.
//!
//! This module owns the levels' state, not their effects (the engine's
//! rollout item carries out the actions):
//!
//! - Every evaluation, every condition of every level is observed with the
//!   same evaluator as the analysis rules ([`Held`], so `for` is honoured,
//!   and a condition that fired keeps firing through dips shorter than its
//!   `for`); a level *holds* when any of its conditions fires.
//! - The *acting* level is the most severe level that holds (levels are
//!   written mildest first). Escalation to a more severe level is always
//!   possible, whatever the acting level did; when the acting level stops
//!   holding, a milder one that holds takes over, or none does and the
//!   level is *cleared* (recovery).
//! - A level's `rollback-after: D` clock starts when the level is entered
//!   and keeps running while it acts (a `pause` in the same level does not
//!   stop it); [`TreeState::expired`] says when it ran out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use golive_plan::{Level, LevelAction};
use serde::Serialize;

use super::SideValues;
use super::rules::{Held, RuleStatus};

/// One level's state on an evaluation, for the journal.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LevelStatus {
    /// The level's name.
    pub level: String,
    /// Whether any condition fires.
    pub holds: bool,
    /// Each condition's state.
    pub conditions: Vec<RuleStatus>,
}

/// What changed on an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The acting level (or none) is the same as before.
    Same,
    /// A level became the acting one: more severe than the previous one
    /// (`escalated`), or milder after a more severe one cleared.
    Entered {
        /// Its index in the plan's levels.
        index: usize,
        /// More severe than the one before (or none before).
        escalated: bool,
    },
    /// No level holds any more: the acting one cleared.
    Cleared {
        /// The level that cleared.
        index: usize,
    },
}

/// The tree after an evaluation.
#[derive(Clone, Debug)]
pub struct TreeState {
    /// Each level's state.
    pub statuses: Vec<LevelStatus>,
    /// The acting level, if any.
    pub acting: Option<usize>,
    /// What changed.
    pub change: Change,
    /// The acting level's `rollback-after` ran out: how long it was.
    pub expired: Option<Duration>,
}

#[derive(Clone, Copy, Debug)]
struct Active {
    index: usize,
    since: Instant,
}

/// The plan's levels with their conditions' hold timers.
#[derive(Clone, Debug)]
pub struct Tree {
    levels: Vec<(Level, Vec<Held>)>,
    active: Option<Active>,
}

impl Tree {
    /// The levels (mildest first), none holding.
    pub fn new(levels: &[Level]) -> Tree {
        Tree {
            levels: levels
                .iter()
                .map(|l| (l.clone(), l.when.iter().cloned().map(Held::new).collect()))
                .collect(),
            active: None,
        }
    }

    /// Level `index`.
    pub fn level(&self, index: usize) -> Option<&Level> {
        self.levels.get(index).map(|(l, _)| l)
    }

    /// The acting level's index.
    pub fn acting(&self) -> Option<usize> {
        self.active.map(|a| a.index)
    }

    /// Observes one evaluation's values, taken at `now`.
    pub fn observe(&mut self, now: Instant, values: &BTreeMap<String, SideValues>) -> TreeState {
        let mut statuses = Vec::with_capacity(self.levels.len());
        let mut acting = None;
        for (i, (level, conds)) in self.levels.iter_mut().enumerate() {
            let conditions: Vec<RuleStatus> =
                conds.iter_mut().map(|c| c.observe(now, values)).collect();
            let holds = conditions.iter().any(|c| c.fires);
            if holds {
                acting = Some(i);
            }
            statuses.push(LevelStatus {
                level: level.name.clone(),
                holds,
                conditions,
            });
        }
        let before = self.active.map(|a| a.index);
        let change = match (before, acting) {
            (None, None) => Change::Same,
            (Some(a), Some(i)) if a == i => Change::Same,
            (Some(a), None) => Change::Cleared { index: a },
            (before, Some(i)) => Change::Entered {
                index: i,
                escalated: before.is_none_or(|a| i > a),
            },
        };
        if let Change::Entered { index, .. } = change {
            self.active = Some(Active { index, since: now });
        } else if acting.is_none() {
            self.active = None;
        }
        let expired = self.active.and_then(|a| {
            let level = self.level(a.index)?;
            level.actions.iter().find_map(|act| match act {
                LevelAction::RollbackAfter(d) if now.saturating_duration_since(a.since) >= *d => {
                    Some(*d)
                }
                _ => None,
            })
        });
        TreeState {
            statuses,
            acting,
            change,
            expired,
        }
    }
}
