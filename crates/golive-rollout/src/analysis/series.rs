//! The series store: the scrapes golive took of one target, each stamped
//! with the time it was taken, for scrape expressions to read.
//!
//! This module owns what is kept and for how long. Memory is bounded three
//! ways: scrapes older than the retention (the longest window the target's
//! queries use plus a margin) are dropped, at most `max_scrapes` are kept,
//! and, when the store is told which metric names its queries read, every
//! other series is dropped at push time — a service exposing ten thousand
//! series costs only the handful a plan looks at.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::expo::Sample;

/// Label names and values of a series, without the metric name.
pub use golive_plan::query::Labels;

/// One scrape: every kept series of a metric name with its value.
#[derive(Clone, Debug)]
pub struct Scrape {
    /// When golive took it.
    pub at: Instant,
    /// Series per metric name.
    pub metrics: HashMap<String, Vec<(Labels, f64)>>,
}

/// The scrapes of one target, oldest first.
#[derive(Clone, Debug)]
pub struct Series {
    scrapes: VecDeque<Scrape>,
    retention: Duration,
    max_scrapes: usize,
    names: Option<BTreeSet<String>>,
}

impl Series {
    /// An empty store keeping scrapes for `retention` and at most
    /// `max_scrapes` of them (at least 2, so counters can give rates).
    pub fn new(retention: Duration, max_scrapes: usize) -> Series {
        Series {
            scrapes: VecDeque::new(),
            retention,
            max_scrapes: max_scrapes.max(2),
            names: None,
        }
    }

    /// Keeps only series of these metric names from now on.
    pub fn keep_only(mut self, names: impl IntoIterator<Item = String>) -> Series {
        self.names = Some(names.into_iter().collect());
        self
    }

    /// Adds a scrape taken at `at`. A scrape older than the newest one is
    /// ignored (returns false): windows assume time moves forward. A series
    /// repeated within one scrape keeps its first value, as Prometheus does.
    pub fn push(&mut self, at: Instant, samples: Vec<Sample>) -> bool {
        if self.scrapes.back().is_some_and(|s| s.at > at) {
            return false;
        }
        // A map per name: a metric with thousands of label sets stays linear.
        let mut by_name: HashMap<String, BTreeMap<Labels, f64>> = HashMap::new();
        for s in samples {
            if self.names.as_ref().is_some_and(|n| !n.contains(&s.name)) {
                continue;
            }
            by_name
                .entry(s.name)
                .or_default()
                .entry(s.labels)
                .or_insert(s.value);
        }
        let metrics = by_name
            .into_iter()
            .map(|(name, series)| (name, series.into_iter().collect()))
            .collect();
        self.scrapes.push_back(Scrape { at, metrics });
        while self.scrapes.len() > self.max_scrapes {
            self.scrapes.pop_front();
        }
        // Keep at least two scrapes, whatever their age: the last pair is
        // what `ratio(…)` reads.
        while self.scrapes.len() > 2
            && self
                .scrapes
                .front()
                .is_some_and(|s| at.saturating_duration_since(s.at) > self.retention)
        {
            self.scrapes.pop_front();
        }
        true
    }

    /// Number of scrapes kept.
    pub fn len(&self) -> usize {
        self.scrapes.len()
    }

    /// Whether no scrape is kept.
    pub fn is_empty(&self) -> bool {
        self.scrapes.is_empty()
    }

    /// Forgets every scrape.
    pub fn clear(&mut self) {
        self.scrapes.clear();
    }

    /// The scrapes, oldest first.
    pub fn scrapes(&self) -> impl DoubleEndedIterator<Item = &Scrape> {
        self.scrapes.iter()
    }

    /// The scrapes taken at or before `now`, newest first.
    pub(crate) fn until(&self, now: Instant) -> impl Iterator<Item = &Scrape> {
        self.scrapes.iter().rev().filter(move |s| s.at <= now)
    }
}
