//! Any text given to the plan reader yields diagnostics or a plan, never a panic,
//! and every diagnostic can be placed in the source.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let compiled = golive_plan::compile(text, &|_: &str| false);
    let source = golive_plan::Source::new("fuzz.yaml", text);
    for d in &compiled.diagnostics {
        if let Some(span) = d.span {
            assert!(span.start <= span.end && span.end <= text.len(), "span {span:?} outside the source");
        }
        let _ = golive_plan::Located::new(&source, d);
    }
});
