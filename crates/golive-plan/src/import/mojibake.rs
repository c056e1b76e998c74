//! Repair of text damaged by a wrong decoding, and removal of decorative emoji.
//!
//! Checklists pass through editors, wikis and chat tools; a common casualty
//! is UTF-8 read as Mac Roman, which turns 🚀 into `üöÄ` and ✅ into `‚úÖ`
//! (often with the first byte of four-byte emoji lost: 0xF0 is the Apple
//! logo in Mac Roman and gets dropped on the way). The importer repairs such
//! runs where the repair is unambiguous and leaves genuine non-ASCII text
//! (`café`, `→`, `—`) alone; afterwards, emoji are stripped from titles
//! because they are decoration, not content.

use encoding_rs::MACINTOSH;

/// One repaired run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Repair {
    /// 1-based line of the run.
    pub line: usize,
    /// The damaged text.
    pub from: String,
    /// What it was repaired to.
    pub to: String,
}

/// Repairs Mac Roman mojibake in `text`, run by run. Returns the repaired
/// text and what was repaired (in order). Never fails: a run that cannot be
/// repaired unambiguously is left untouched.
pub(crate) fn repair(text: &str) -> (String, Vec<Repair>) {
    let mut out = String::with_capacity(text.len());
    let mut repairs = Vec::new();
    let mut line = 1usize;
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| !c.is_ascii()) {
        let (ascii, tail) = rest.split_at(start);
        line += ascii.matches('\n').count();
        out.push_str(ascii);
        let end = tail.find(|c: char| c.is_ascii()).unwrap_or(tail.len());
        let (run, after) = tail.split_at(end);
        match repair_run(run) {
            Some(fixed) => {
                repairs.push(Repair {
                    line,
                    from: run.to_string(),
                    to: fixed.clone(),
                });
                out.push_str(&fixed);
            }
            None => out.push_str(run),
        }
        rest = after;
    }
    out.push_str(rest);
    (out, repairs)
}

/// Repairs one maximal run of non-ASCII characters, or `None` when the run
/// is not (unambiguously) Mac Roman mojibake of UTF-8.
fn repair_run(run: &str) -> Option<String> {
    let (bytes, _, unmappable) = MACINTOSH.encode(run);
    if unmappable {
        return None;
    }
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let width = match b {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            // A continuation byte where a sequence should start: the lead byte
            // (0xF0 of a four-byte emoji) may have been lost. Only that case is
            // repaired, and only when it yields a pictograph.
            0x90..=0xBF => {
                let seq = [0xF0, b, *bytes.get(i + 1)?, *bytes.get(i + 2)?];
                let c = std::str::from_utf8(&seq).ok()?.chars().next()?;
                if !is_pictograph(c) {
                    return None;
                }
                out.push(c);
                i += 3;
                continue;
            }
            _ => return None,
        };
        let seq = bytes.get(i..i + width)?;
        let s = std::str::from_utf8(seq).ok()?;
        let c = s.chars().next()?;
        if !plausible(c) {
            return None;
        }
        out.push(c);
        i += width;
    }
    (!out.is_empty()).then_some(out)
}

/// Characters a repair may produce. Two-byte results are restricted to
/// Latin-1 (é, ü, ß, NBSP…): Mac Roman pairs that happen to form other
/// two-byte sequences (`«É` → U+01C3) are far more likely genuine text.
fn plausible(c: char) -> bool {
    let u = u32::from(c);
    (0xA0..=0xFF).contains(&u) || u >= 0x800
}

/// Emoji and pictographs (the four-byte planes golive strips from titles).
fn is_pictograph(c: char) -> bool {
    matches!(u32::from(c), 0x1F000..=0x1FAFF)
}

/// True for characters that decorate rather than say something: emoji,
/// pictographs, check marks and warning signs, their variation selectors and
/// joiners, and the Apple-logo remnant of damaged emoji.
pub(crate) fn is_decoration(c: char) -> bool {
    matches!(
        u32::from(c),
        0x1F000..=0x1FAFF
            | 0x2600..=0x2775
            | 0x2795..=0x2797
            | 0x27B0
            | 0x27BF
            | 0x231A..=0x231B
            | 0x23E9..=0x23FA
            | 0x2B05..=0x2B07
            | 0x2B1B..=0x2B1C
            | 0x2B50
            | 0x2B55
            | 0xFE00..=0xFE0F
            | 0x200D
            | 0x20E3
            | 0xE0000..=0xE007F
            | 0xF8FF
    )
}

/// `s` without decorative characters. Whitespace is left as it is (callers
/// collapse it).
pub(crate) fn strip_decorations(s: &str) -> String {
    s.chars().filter(|c| !is_decoration(*c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(s: &str) -> String {
        repair(s).0
    }

    #[test]
    fn repairs_mac_roman_mojibake() {
        let table = [
            // Lead byte 0xF0 lost.
            ("üöÄ Deploy", "🚀 Deploy"),
            // Lead byte kept, as the Apple logo U+F8FF.
            ("\u{F8FF}üö® CRITICAL", "🚨 CRITICAL"),
            ("API ‚úÖ", "API ✅"),
            ("**‚ö†Ô∏è All approvals**", "**⚠️ All approvals**"),
            ("it‚Äôs", "it’s"),
            ("caf√©", "café"),
            // Two emoji in one run, both missing their lead byte.
            ("üöÄüéâ", "🚀🎉"),
        ];
        for (input, want) in table {
            assert_eq!(fixed(input), want, "{input}");
        }
    }

    #[test]
    fn genuine_text_survives() {
        for s in [
            "café",
            "naïve Zürich",
            "A → B",
            "phase — done",
            "«Éric»",
            "™ ©",
            "日本語",
            "🚀 already fine",
            "ü",
            "",
            "plain ascii",
        ] {
            assert_eq!(fixed(s), s, "{s}");
            assert!(repair(s).1.is_empty(), "{s}");
        }
    }

    #[test]
    fn repairs_are_located() {
        let (_, repairs) = repair("# Title\n\nok\n## üöÄ Go\n- ‚úÖ x\n");
        let lines: Vec<usize> = repairs.iter().map(|r| r.line).collect();
        assert_eq!(lines, [4, 5]);
        assert_eq!(repairs[0].to, "🚀");
    }

    #[test]
    fn decorations_are_stripped() {
        assert_eq!(strip_decorations("🚨 CRITICAL"), " CRITICAL");
        assert_eq!(strip_decorations("ok ✅"), "ok ");
        assert_eq!(strip_decorations("⚠️ warn"), " warn");
        assert_eq!(strip_decorations("A → B — café"), "A → B — café");
    }
}
