//! Durations (`30s`, `5m`, `1h30m`, `1d`) and T-offsets (`T-24h`, `T+0`).
//!
//! Go-live documents count time relative to the go-live moment; a plan keeps
//! those offsets as signed seconds so the engine can place each phase once a
//! T-0 is known, and print them back the way people write them.

use std::fmt;
use std::time::Duration;

/// Parses `500ms`, `30s`, `5m`, `2h`, `1d`, `1w`, or a sum such as `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    let mut total_ms: u128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "`{t}` is not a duration; write a number and a unit, e.g. `30s`, `5m`, `2h`, `1d`"
            ));
        }
        let n: u128 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{t}` is too large a duration"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        let ms = match unit {
            "ms" => 1,
            "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
            "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000,
            "d" | "day" | "days" => 86_400_000,
            "w" | "week" | "weeks" => 604_800_000,
            "" => {
                return Err(format!("`{t}` has no unit; write e.g. `{n}s` or `{n}m`"));
            }
            other => {
                return Err(format!(
                    "unknown unit `{other}` in `{t}`; use ms, s, m, h, d or w"
                ));
            }
        };
        total_ms = n
            .checked_mul(ms)
            .and_then(|v| total_ms.checked_add(v))
            .filter(|v| *v <= u128::from(u64::MAX))
            .ok_or_else(|| format!("`{t}` is too large a duration"))?;
        rest = &rest[unit_len..];
    }
    u64::try_from(total_ms)
        .map(Duration::from_millis)
        .map_err(|_| format!("`{t}` is too large a duration"))
}

/// Formats a duration the way it is written in a plan (`1h30m`, `500ms`).
/// Whole days from two days on are written in days (`T-3d`, as in "Day -3"); a
/// single day stays `24h`, as go-live documents write `T-24h`.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    const DAY: u128 = 86_400_000;
    let day = if ms >= 2 * DAY && ms % DAY == 0 {
        DAY
    } else {
        u128::MAX
    };
    let mut out = String::new();
    for (unit, size) in [
        ("d", day),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// A moment relative to T-0, in whole seconds (negative = before go-live).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TOffset(pub i64);

impl TOffset {
    /// Parses `T-24h`, `T+30m`, `T+0`, `T0`, `T-1d12h`.
    pub fn parse(text: &str) -> Result<TOffset, String> {
        let t = text.trim();
        let Some(rest) = t.strip_prefix('T').or_else(|| t.strip_prefix('t')) else {
            return Err(format!(
                "`{t}` is not a T-offset; write e.g. `T-24h`, `T+0` or `T+30m`"
            ));
        };
        let rest = rest.trim_start();
        if rest.is_empty() || rest == "0" || rest == "+0" || rest == "-0" {
            return Ok(TOffset(0));
        }
        let (sign, amount) = match rest.as_bytes()[0] {
            b'-' => (-1i64, &rest[1..]),
            b'+' => (1, &rest[1..]),
            _ => {
                return Err(format!(
                    "`{t}` needs a sign: `T-…` before go-live, `T+…` after"
                ));
            }
        };
        let d = parse_duration(amount.trim())?;
        let secs = i64::try_from(d.as_secs()).map_err(|_| format!("`{t}` is too far away"))?;
        Ok(TOffset(sign * secs))
    }
}

impl fmt::Display for TOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("T+0");
        }
        let sign = if self.0 < 0 { '-' } else { '+' };
        write!(
            f,
            "T{sign}{}",
            format_duration(Duration::from_secs(self.0.unsigned_abs()))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("15 minutes"), Ok(Duration::from_secs(900)));
        assert!(
            parse_duration("5")
                .expect_err("no unit")
                .contains("no unit")
        );
        assert!(
            parse_duration("5y")
                .expect_err("unit")
                .contains("unknown unit `y`")
        );
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("99999999999999999999999d").is_err());
    }

    #[test]
    fn durations_round_trip() {
        for s in ["1h30m", "500ms", "24h", "3d", "7d", "36h", "2m5s"] {
            assert_eq!(format_duration(parse_duration(s).expect(s)), s);
        }
    }

    #[test]
    fn offsets() {
        assert_eq!(TOffset::parse("T-24h"), Ok(TOffset(-86400)));
        assert_eq!(TOffset::parse("T+0"), Ok(TOffset(0)));
        assert_eq!(TOffset::parse("T+30m"), Ok(TOffset(1800)));
        assert_eq!(
            TOffset::parse("T-7d").map(|t| t.to_string()),
            Ok("T-7d".into())
        );
        assert!(TOffset::parse("T24h").is_err());
        assert!(TOffset::parse("24h").is_err());
    }
}
