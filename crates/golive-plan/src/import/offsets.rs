//! T-offsets recognised in headings: `T-24 hours`, `Day -3`, `72 Hours Before
//! Go-Live`, `(T+0 to T+30 min)`, `(Day 0)`, `2-24 hours post-deployment`.
//!
//! Go-live checklists place their sections in time in many spellings; the
//! importer turns the common ones into a phase's `at` so the run can be laid
//! on a calendar. Durations that are not placements (`Est. 15 minutes`,
//! `within 48 hours`, `24-HOUR MONITORING`) are deliberately not read: only a
//! `T±`, a signed `Day`, or an amount followed by before/after counts.

use crate::time::TOffset;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(u64),
    Word(String),
    Sign(i8),
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
            let u = unit(word(toks.get(i + 3))?)?;
            Some(format(*sign, n, u))
        }
        _ => None,
    }
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
    fn huge_numbers_do_not_panic() {
        assert_eq!(recognise("T-99999999999999999999999 days"), None);
        assert_eq!(recognise("Day -184467440737095516150"), None);
    }
}
