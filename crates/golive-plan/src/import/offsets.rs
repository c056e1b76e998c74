//! T-offsets recognised in headings: `T-24 hours`, `Day -3`, `72 Hours Before
//! Go-Live`, `(T+0 to T+30 min)`, `(Day 0)`, `2-24 hours post-deployment`,
//! and the `D-2`/`H-1`/`H+30m` counts of release trains and war rooms.
//!
//! Go-live checklists place their sections in time in many spellings; the
//! importer turns the common ones into a phase's `at` so the run can be laid
//! on a calendar. Durations that are not placements (`Est. 15 minutes`,
//! `within 48 hours`, `24-HOUR MONITORING`) are deliberately not read: only a
//! `T±`, `D±`/`H±`, a signed `Day`, or an amount followed by before/after
//! counts.

use crate::time::TOffset;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(u64),
    Word(String),
    Sign(i8),
    Colon,
    Other,
}

/// A token and whether whitespace came right before it.
type Spaced = (Tok, bool);

fn tokens(s: &str) -> Vec<Spaced> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    let mut spaced = true;
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            spaced = true;
            continue;
        }
        let tok = if c.is_ascii_digit() {
            let mut n: u64 = 0;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = n.saturating_mul(10).saturating_add(u64::from(d));
                chars.next();
            }
            Tok::Num(n)
        } else if c.is_alphabetic() {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if !c.is_alphabetic() {
                    break;
                }
                w.extend(c.to_lowercase());
                chars.next();
            }
            Tok::Word(w)
        } else {
            chars.next();
            match c {
                '+' => Tok::Sign(1),
                '-' | '\u{2212}' | '\u{2013}' | '\u{2010}' | '\u{2011}' => Tok::Sign(-1),
                ':' => Tok::Colon,
                _ => Tok::Other,
            }
        };
        out.push((tok, spaced));
        spaced = false;
    }
    out
}

fn unit(w: &str) -> Option<char> {
    Some(match w {
        "s" | "sec" | "secs" | "second" | "seconds" => 's',
        "m" | "min" | "mins" | "minute" | "minutes" => 'm',
        "h" | "hr" | "hrs" | "hour" | "hours" => 'h',
        "d" | "day" | "days" => 'd',
        "w" | "wk" | "wks" | "week" | "weeks" => 'w',
        _ => return None,
    })
}

fn word(t: Option<&Spaced>) -> Option<&str> {
    match t {
        Some((Tok::Word(w), _)) => Some(w),
        _ => None,
    }
}

fn num(t: Option<&Spaced>) -> Option<u64> {
    match t {
        Some((Tok::Num(n), _)) => Some(*n),
        _ => None,
    }
}

fn format(sign: i8, n: u64, unit: char) -> String {
    if n == 0 {
        "T+0".into()
    } else {
        format!("T{}{n}{unit}", if sign < 0 { '-' } else { '+' })
    }
}

/// The T-offset a heading places its section at, written in the heading's
/// own unit (`T-72h`, not `T-3d`), or `None`.
pub(crate) fn recognise(title: &str) -> Option<String> {
    let toks = tokens(title);
    for i in 0..toks.len() {
        let found = t_form(&toks, i)
            .or_else(|| dh_form(&toks, i))
            .or_else(|| day_form(&toks, i))
            .or_else(|| relative_form(&toks, i));
        if let Some(at) = found
            && TOffset::parse(&at).is_ok()
        {
            return Some(at);
        }
    }
    None
}

/// `T-24h`, `T-24 hours`, `T+0`, `T0`, `T-0`.
fn t_form(toks: &[Spaced], i: usize) -> Option<String> {
    if word(toks.get(i))? != "t" {
        return None;
    }
    match toks.get(i + 1) {
        Some((Tok::Num(0), false)) => Some("T+0".into()),
        Some((Tok::Sign(sign), false)) => {
            let n = num(toks.get(i + 2))?;
            if n == 0 {
                return Some("T+0".into());
            }
            let u = match word(toks.get(i + 3)).and_then(unit) {
                Some(u) => u,
                // `T+60 to T+180 min`: a range takes its start, in the end's unit.
                None => range_end_unit(toks, i + 3)?,
            };
            Some(format(*sign, n, u))
        }
        _ => None,
    }
}

/// The unit after the end of a range starting at `j` (`to T+180 min`, `- 90 min`).
fn range_end_unit(toks: &[Spaced], j: usize) -> Option<char> {
    let mut k = j;
    match toks.get(k) {
        Some((Tok::Sign(-1), _)) => k += 1,
        Some((Tok::Word(w), _)) if w == "to" => k += 1,
        _ => return None,
    }
    if word(toks.get(k)) == Some("t") {
        k += 1;
    }
    if matches!(toks.get(k), Some((Tok::Sign(_), _))) {
        k += 1;
    }
    num(toks.get(k))?;
    unit(word(toks.get(k + 1))?)
}

/// A clock time in a heading (`12:30 PM`, `14:05`) as minutes after
/// midnight. Used with the clock time the document gives T-0
/// (`T-0: 12:00 PM`) to place the sections of a timed cutover.
pub(crate) fn clock(title: &str) -> Option<i64> {
    let toks = tokens(title);
    for i in 0..toks.len() {
        let (Some(h), Some((Tok::Colon, false)), Some(m)) =
            (num(toks.get(i)), toks.get(i + 1), num(toks.get(i + 2)))
        else {
            continue;
        };
        if h > 23 || m > 59 || matches!(toks.get(i + 2), Some((_, true))) {
            continue;
        }
        let (h, m) = (i64::try_from(h).ok()?, i64::try_from(m).ok()?);
        let hour = match word(toks.get(i + 3)) {
            Some("pm" | "p") if h < 12 => h + 12,
            Some("am" | "a") if h == 12 => 0,
            Some("am" | "a" | "pm" | "p") => h,
            _ => h,
        };
        return Some(hour * 60 + m);
    }
    None
}

/// `minutes` after T-0 as an offset (`T+30m`, `T+1h`, `T-15m`).
pub(crate) fn from_minutes(minutes: i64) -> String {
    let n = minutes.unsigned_abs();
    let sign = if minutes < 0 { -1 } else { 1 };
    if n % 60 == 0 {
        format(sign, n / 60, 'h')
    } else {
        format(sign, n, 'm')
    }
}

/// Periods after go-live (`Day 1`, `Week 1`, `First 24 Hours`), placed at
/// their start. `Day 1` is the go-live day unless the document counts from
/// `Day 0`.
pub(crate) fn period(title: &str, day_zero: bool) -> Option<String> {
    let toks = tokens(title);
    for i in 0..toks.len() {
        let found = match word(toks.get(i)) {
            Some("day") => match toks.get(i + 1) {
                Some((Tok::Num(n), _)) if *n >= 1 => {
                    Some(format(1, if day_zero { *n } else { n - 1 }, 'd'))
                }
                _ => None,
            },
            Some("week") => match toks.get(i + 1) {
                Some((Tok::Num(n), _)) if *n >= 1 => {
                    Some(format(1, (n - 1).saturating_mul(7), 'd'))
                }
                _ => None,
            },
            Some("first") => match (toks.get(i + 1), word(toks.get(i + 2))) {
                (Some((Tok::Num(_), _)), Some(u)) if unit(u).is_some() => Some("T+0".into()),
                (Some((Tok::Word(u), _)), _) if unit(u).is_some() => Some("T+0".into()),
                _ => None,
            },
            _ => None,
        };
        if let Some(at) = found
            && TOffset::parse(&at).is_ok()
        {
            return Some(at);
        }
    }
    None
}

/// `D-2`, `D+7`, `H-1`, `H-0`: the day and hour counts of release trains
/// and war-room runbooks. Only a lone `D`/`H` written against its sign and
/// number, so `CHG-48213` or `AMS2` are not read.
fn dh_form(toks: &[Spaced], i: usize) -> Option<String> {
    let (Tok::Word(w), _) = toks.get(i)? else {
        return None;
    };
    let base = match w.as_str() {
        "d" => 'd',
        "h" => 'h',
        _ => return None,
    };
    if i > 0 && !toks[i].1 && !matches!(toks[i - 1].0, Tok::Other) {
        return None;
    }
    let (Tok::Sign(sign), false) = toks.get(i + 1)? else {
        return None;
    };
    let (Tok::Num(n), false) = toks.get(i + 2)? else {
        return None;
    };
    // `H+30m` is thirty minutes after H-0; `H-1b` is not an offset.
    if let Some((Tok::Word(w), false)) = toks.get(i + 3) {
        return Some(format(*sign, *n, unit(w)?));
    }
    Some(format(*sign, *n, base))
}

/// `Day -3`, `Day 0`, `Day +1`. An unsigned `Day 1` is ambiguous (the first
/// day, or one day after?) and is not read.
fn day_form(toks: &[Spaced], i: usize) -> Option<String> {
    if word(toks.get(i))? != "day" {
        return None;
    }
    match toks.get(i + 1)? {
        (Tok::Num(0), _) => Some("T+0".into()),
        (Tok::Sign(sign), _) => Some(format(*sign, num(toks.get(i + 2))?, 'd')),
        _ => None,
    }
}

/// `72 hours before`, `1 hour after`, `0-2 hours post-deployment`,
/// `30 minutes prior`.
fn relative_form(toks: &[Spaced], i: usize) -> Option<String> {
    // Do not start inside a range (`0-2 hours` is read from the `0`).
    if i >= 2 && matches!(toks[i - 1].0, Tok::Sign(_)) && matches!(toks[i - 2].0, Tok::Num(_)) {
        return None;
    }
    let first = num(toks.get(i))?;
    let mut j = i + 1;
    let mut last = first;
    if matches!(toks.get(j), Some((Tok::Sign(-1), _))) || word(toks.get(j)) == Some("to") {
        last = num(toks.get(j + 1))?;
        j += 2;
    }
    let u = unit(word(toks.get(j))?)?;
    let direction = word(toks.get(j + 1))?;
    match direction {
        "before" | "prior" | "pre" | "ahead" => Some(format(-1, first.max(last), u)),
        "after" | "post" | "later" | "following" => Some(format(1, first.min(last), u)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_common_spellings() {
        let table = [
            ("T-24 hours", Some("T-24h")),
            ("T-24h: final checks", Some("T-24h")),
            ("Day -3", Some("T-3d")),
            ("72 Hours Before Go-Live", Some("T-72h")),
            ("Phase 2: Deployment (T+0 to T+30 min)", Some("T+0")),
            ("T+60 to T+180 min: Extended Watch", Some("T+60m")),
            ("T+15m: Early Watch", Some("T+15m")),
            ("T-0: 12:00 PM — Cutover", Some("T+0")),
            ("T-7 days", Some("T-7d")),
            ("Phase 5: Go-Live (Day 0)", Some("T+0")),
            ("Phase 1: Infrastructure (Day -7)", Some("T-7d")),
            ("1 hour after", Some("T+1h")),
            (
                "Immediate Monitoring (0-2 hours post-deployment)",
                Some("T+0"),
            ),
            (
                "Extended Monitoring (2-24 hours post-deployment)",
                Some("T+2h"),
            ),
            ("30 minutes prior to launch", Some("T-30m")),
            ("T+1 day", Some("T+1d")),
            ("T0", Some("T+0")),
            ("Day +2", Some("T+2d")),
            ("Branch cut (D-5)", Some("T-5d")),
            ("Regression (D-4 … D-3)", Some("T-4d")),
            ("Wrap-up (D+7)", Some("T+7d")),
            ("Go / No-Go meeting (H-1, 13:00 UTC)", Some("T-1h")),
            ("H-0 — Failover", Some("T+0")),
            ("H+30m — Verification", Some("T+30m")),
            ("CHG-48213", None),
            ("Route AMS2-3", None),
            ("Go-live", None),
            ("Pre-Deployment Validation", None),
            ("Phase 1: Infrastructure Deployment (Est. 15 minutes)", None),
            ("LESSONS LEARNED (Complete within 48 hours)", None),
            ("24-HOUR MONITORING CHECKLIST", None),
            ("Day 1", None),
            ("Post-Deployment Actions", None),
            ("Settings", None),
            ("T-", None),
            ("", None),
        ];
        for (title, want) in table {
            assert_eq!(recognise(title).as_deref(), want, "{title}");
        }
    }

    #[test]
    fn clocks_and_periods() {
        assert_eq!(clock("12:30 PM — Switch"), Some(12 * 60 + 30));
        assert_eq!(clock("1:00 PM — Validate"), Some(13 * 60));
        assert_eq!(clock("12:05 AM"), Some(5));
        assert_eq!(clock("14:45 rollback window"), Some(14 * 60 + 45));
        assert_eq!(clock("Ratio 3: 4"), None);
        assert_eq!(clock("Phase 2"), None);
        assert_eq!(from_minutes(30), "T+30m");
        assert_eq!(from_minutes(60), "T+1h");
        assert_eq!(from_minutes(-15), "T-15m");
        assert_eq!(from_minutes(0), "T+0");
        assert_eq!(period("Day 1", false).as_deref(), Some("T+0"));
        assert_eq!(period("Day 2", false).as_deref(), Some("T+1d"));
        assert_eq!(period("Day 1", true).as_deref(), Some("T+1d"));
        assert_eq!(period("Week 1", false).as_deref(), Some("T+0"));
        assert_eq!(period("Follow-up (Week 2)", false).as_deref(), Some("T+7d"));
        assert_eq!(period("First 24 Hours", false).as_deref(), Some("T+0"));
        assert_eq!(period("Day -1", false), None);
        assert_eq!(period("Post-launch", false), None);
    }

    #[test]
    fn huge_numbers_do_not_panic() {
        assert_eq!(recognise("T-99999999999999999999999 days"), None);
        assert_eq!(recognise("Day -184467440737095516150"), None);
    }
}
