//! Small text helpers of the importer: blanks (`______`) and the field names
//! they stand for, readable titles from SHOUTING headings, and short ids.
//!
//! Kept apart from the Markdown walk and the plan building so that each rule
//! ("a blank's name is the label before its colon") is written and tested once.

use crate::compile::slug;

/// Words that join two blanks (`___ to ___`).
const CONNECTORS: [&str; 7] = ["and", "or", "to", "-", "/", "x", "by"];

/// Shortest run of underscores read as a blank to fill in.
const BLANK_MIN: usize = 3;

/// Longest generated item id.
pub(crate) const MAX_ID: usize = 40;

/// Whitespace runs → one space, trimmed.
pub(crate) fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Byte ranges of the blanks (`___`, at least three underscores) in `s`.
pub(crate) fn blanks(s: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices().chain(std::iter::once((s.len(), ' '))) {
        match (c == '_', start) {
            (true, None) => start = Some(i),
            (false, Some(st)) => {
                if i - st >= BLANK_MIN {
                    out.push((st, i));
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// True when `s` has a blank to fill in.
pub(crate) fn has_blank(s: &str) -> bool {
    !blanks(s).is_empty()
}

/// `s` with every blank written as `___`, and a trailing `: ___` dropped
/// (the blank becomes a field of the item instead).
pub(crate) fn clean_title(s: &str) -> String {
    let mut out = String::new();
    let mut last = 0;
    for (a, b) in blanks(s) {
        out.push_str(&s[last..a]);
        out.push_str("___");
        last = b;
    }
    out.push_str(&s[last..]);
    let mut t = collapse(&out);
    if let Some(head) = t.strip_suffix("___")
        && let Some(head) = head.trim_end().strip_suffix(':')
    {
        t = head.trim_end().to_string();
    }
    t
}

/// Words after a blank that name its unit (`___ MB`, `___%`, `___/10`).
fn unit_after(after: &str) -> Option<String> {
    let end = after.find(['(', ')', ',', ';', '[']).unwrap_or(after.len());
    let u = collapse(&after[..end]);
    let starts_well = u.starts_with(|c: char| c.is_alphanumeric() || c == '%' || c == '/');
    if !starts_well || u.contains([':', '_']) || u.len() > 20 || u.split(' ').count() > 2 {
        return None;
    }
    if let Some(n) = u.strip_prefix('/')
        && !n.is_empty()
        && n.chars().all(|c| c.is_ascii_digit())
    {
        return Some(format!("of {n}"));
    }
    Some(u)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The fields (names of the blanks) of a line of text.
///
/// A blank's name is the label before it: the words after the last `(`,
/// `:`, `;` or `,` (`Average query time ___ ms` → `Average query time (ms)`),
/// or, when the blank directly follows a colon, the label before that colon
/// (`(expires: ___)` → `Expires`). `lead` (the line's bold lead-in) names a
/// blank whose label would be the whole sentence; `fallback` names a blank
/// with no label at all (`- ___` in a "What Went Well" section).
pub(crate) fn fields(s: &str, lead: Option<&str>, fallback: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut prev = 0;
    let found = blanks(s);
    for (i, &(a, b)) in found.iter().enumerate() {
        let before = s[prev..a].trim_end();
        let (label, from_start) = match before.strip_suffix(':') {
            Some(head) => {
                let head = head.trim_end();
                let cut = label_cut(head);
                (head[cut.unwrap_or(0)..].trim(), cut.is_none() && prev == 0)
            }
            None => {
                let cut = before.rfind(['(', ':', ';', ',', ')']).map(|i| i + 1);
                (
                    before[cut.unwrap_or(0)..].trim(),
                    cut.is_none() && prev == 0,
                )
            }
        };
        let label = label
            .trim_end_matches(|c: char| !c.is_alphanumeric() && c != ')')
            .trim_start_matches(|c: char| !c.is_alphanumeric());
        let label = strip_trailing_preposition(label);
        let connector = CONNECTORS.contains(&label.to_ascii_lowercase().as_str());
        let mut name = match (lead, out.last()) {
            // `___ to ___`: the second blank shares the first one's label.
            (_, Some(first)) if connector || label.is_empty() => {
                format!("{first} {}", out.len() + 1)
            }
            (Some(l), _) if from_start && !l.is_empty() && label.starts_with(l) => {
                l.trim().to_string()
            }
            _ if label.is_empty() => fallback.to_string(),
            _ => label.to_string(),
        };
        let next = found.get(i + 1).map(|x| x.0);
        let between = &s[b..next.unwrap_or(s.len())];
        let joined =
            next.is_some() && CONNECTORS.contains(&between.trim().to_ascii_lowercase().as_str());
        if !joined && let Some(u) = unit_after(between) {
            name = format!("{name} ({u})");
        }
        let name = capitalise(&collapse(&name));
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
        prev = b;
    }
    out
}

/// Where the label of a blank after `head:` starts: after the last `(`,
/// `:`, `;` or `,` of `head` that opens its last clause. A clock's colon
/// (`02:05 — Take a baseline`) and a closed parenthesis (`Edge lead
/// (@mpetrov)`) do not; the end of a sentence (`. `) does.
fn label_cut(head: &str) -> Option<usize> {
    let b = head.as_bytes();
    let mut closed = false;
    for (i, c) in head.char_indices().rev() {
        match c {
            ')' => closed = true,
            '(' if closed => closed = false,
            '(' | ';' | ',' => return Some(i + 1),
            // A sentence before the blank's own (`… dashboard. Baseline: ___`).
            '.' if b.get(i + 1) == Some(&b' ') => return Some(i + 1),
            ':' => {
                let digits = i > 0
                    && b[i - 1].is_ascii_digit()
                    && b.get(i + 1).is_some_and(u8::is_ascii_digit);
                if !digits {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

fn strip_trailing_preposition(s: &str) -> &str {
    let t = s.trim_end();
    for p in [" for", " at", " on", " by", " of", " to", " in"] {
        if t.len() > p.len() && t.to_ascii_lowercase().ends_with(p) {
            return t[..t.len() - p.len()].trim_end();
        }
    }
    t
}

/// Words kept in capitals when a SHOUTING heading is made readable.
const ACRONYMS: &[&str] = &[
    "API", "APIS", "CD", "CDN", "CI", "CPU", "DB", "DNS", "ETA", "GDPR", "HTTP", "HTTPS", "ID",
    "IP", "JWT", "K8S", "MFA", "PR", "QA", "RAM", "RBAC", "RPO", "RTO", "SLA", "SLO", "SQL", "SRE",
    "SSL", "SSO", "TLS", "UAT", "UI", "URL", "UX", "VPN", "AWS", "GCP",
];

/// Words written in lower case inside a title.
const SMALL: &[&str] = &[
    "a", "an", "and", "as", "at", "but", "by", "for", "in", "of", "on", "or", "the", "to", "vs",
    "with",
];

/// A heading written in capitals (`CRITICAL DEPLOYMENT APPROVAL`) in title
/// case (`Critical Deployment Approval`). Only the part outside parentheses
/// decides and is changed: `LESSONS LEARNED (Complete within 48 hours)` →
/// `Lessons Learned (Complete within 48 hours)`. Other text is unchanged.
pub(crate) fn readable(s: &str) -> String {
    let mut depth = 0usize;
    let (mut letters, mut lower) = (0usize, false);
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 && c.is_alphabetic() => {
                letters += 1;
                lower |= c.is_lowercase();
            }
            _ => {}
        }
    }
    if letters < 2 || lower {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut word = String::new();
    let mut first = true;
    let mut depth = 0usize;
    let flush = |word: &mut String, out: &mut String, first: &mut bool, depth: usize| {
        if word.is_empty() {
            return;
        }
        let lower = word.to_lowercase();
        if depth > 0 || ACRONYMS.contains(&word.as_str()) {
            out.push_str(word);
        } else if !*first && SMALL.contains(&lower.as_str()) {
            out.push_str(&lower);
        } else {
            out.push_str(&capitalise(&lower));
        }
        *first = false;
        word.clear();
    };
    for c in s.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out, &mut first, depth);
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                _ => {}
            }
            out.push(c);
        }
    }
    flush(&mut word, &mut out, &mut first, depth);
    out
}

/// `1. Infrastructure Readiness` → `Infrastructure Readiness`.
pub(crate) fn strip_numbering(s: &str) -> &str {
    let t = s.trim_start();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits == 0 || digits > 3 {
        return t;
    }
    match t[digits..].strip_prefix(['.', ')']) {
        Some(rest) if rest.starts_with(' ') => rest.trim_start(),
        _ => t,
    }
}

/// A short id: the slug of `base`, cut at a `-` to at most [`MAX_ID`] bytes.
pub(crate) fn short_id(base: &str) -> String {
    // `T+15m` and `T-15m` are different moments: keep the plus as a word.
    let mut signed = String::with_capacity(base.len());
    let mut chars = base.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '+' && chars.peek().is_some_and(char::is_ascii_digit) {
            signed.push_str(" plus ");
        } else {
            signed.push(c);
        }
    }
    let s = slug(&signed);
    if s.len() <= MAX_ID {
        return s;
    }
    // Slugs are ASCII, so byte positions are character positions.
    let cut = s
        .get(..=MAX_ID)
        .and_then(|head| head.rfind('-'))
        .filter(|&i| i >= 12)
        .unwrap_or(MAX_ID);
    s[..cut].trim_end_matches('-').to_string()
}

/// Looks like an e-mail address (`pm@pager-system.com`).
pub(crate) fn is_email(s: &str) -> bool {
    let t = s.trim();
    match t.split_once('@') {
        Some((user, host)) => {
            !user.is_empty()
                && host.contains('.')
                && !t.contains(char::is_whitespace)
                && !host.starts_with('.')
                && !host.ends_with('.')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_are_found() {
        assert_eq!(blanks("a: ___________  b"), vec![(3, 14)]);
        assert_eq!(blanks("snake_case __ x"), vec![]);
        assert_eq!(blanks("___"), vec![(0, 3)]);
    }

    #[test]
    fn fields_are_named_by_their_labels() {
        let table: &[(&str, Option<&str>, &[&str])] = &[
            (
                "Start Time: ___________",
                Some("Start Time"),
                &["Start Time"],
            ),
            (
                "SSL certificates installed and valid (expires: _______)",
                Some("SSL certificates"),
                &["Expires"],
            ),
            (
                "Security scan passed in CI/CD (latest run: _______)",
                None,
                &["Latest run"],
            ),
            (
                "On-call engineer identified and available: ___________",
                Some("On-call engineer"),
                &["On-call engineer"],
            ),
            (
                "All verification checks passed: ______/10",
                Some("All verification checks passed"),
                &["All verification checks passed (of 10)"],
            ),
            (
                "API throughput: _______ requests/second (target: >100/sec)",
                Some("API throughput"),
                &["API throughput (requests/second)"],
            ),
            (
                "Database performance: Average query time _______ ms (target: <100ms)",
                Some("Database performance"),
                &["Average query time (ms)"],
            ),
            (
                "CPU utilization: _______% (target: <70% under normal load)",
                Some("CPU utilization"),
                &["CPU utilization (%)"],
            ),
            (
                "Plan post-deployment review: Meeting scheduled for _______",
                Some("Plan post-deployment review"),
                &["Meeting scheduled"],
            ),
            ("___________", None, &["What Went Well"]),
            ("Time: ___  Date: ___", None, &["Time", "Date"]),
            ("Backup size: _______ GB", None, &["Backup size (GB)"]),
            ("Range: ___ to ___", None, &["Range", "Range 2"]),
            (
                "Field only: ___ and ___",
                Some("Field only"),
                &["Field only", "Field only 2"],
            ),
        ];
        for &(text, lead, want) in table {
            assert_eq!(fields(text, lead, "What Went Well"), want, "{text}");
        }
    }

    #[test]
    fn titles_keep_blanks_short() {
        assert_eq!(
            clean_title("On-call engineer identified and available: ___________"),
            "On-call engineer identified and available"
        );
        assert_eq!(
            clean_title("SSL certificates installed and valid (expires: _______)"),
            "SSL certificates installed and valid (expires: ___)"
        );
    }

    #[test]
    fn shouting_becomes_readable() {
        assert_eq!(
            readable("CRITICAL DEPLOYMENT APPROVAL"),
            "Critical Deployment Approval"
        );
        assert_eq!(
            readable("24-HOUR MONITORING CHECKLIST"),
            "24-Hour Monitoring Checklist"
        );
        assert_eq!(
            readable("COMMUNICATION & MONITORING"),
            "Communication & Monitoring"
        );
        assert_eq!(readable("API AND DNS CHECKS"), "API and DNS Checks");
        assert_eq!(readable("Already Fine"), "Already Fine");
        assert_eq!(
            readable("LESSONS LEARNED (Complete within 48 hours)"),
            "Lessons Learned (Complete within 48 hours)"
        );
    }

    #[test]
    fn ids_are_short() {
        assert_eq!(short_id("Database server"), "database-server");
        let long = short_id("Database server (PostgreSQL 16) provisioned and secured");
        assert!(long.len() <= MAX_ID, "{long}");
        assert_eq!(long, "database-server-postgresql-16");
        assert_eq!(short_id("T+15m"), "t-plus-15m");
        assert_eq!(short_id("T-15m"), "t-15m");
        assert_eq!(
            strip_numbering("1. Infrastructure Readiness"),
            "Infrastructure Readiness"
        );
        assert_eq!(strip_numbering("2024 plan"), "2024 plan");
    }
}
