//! Any Markdown given to the importer yields a plan that validates, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let imported = golive_plan::import::import(&text, "fuzz.md");
    let compiled = golive_plan::compile(&imported.yaml, &|_: &str| true);
    if compiled.plan.is_none() && !text.trim().is_empty() {
        let errors: Vec<_> = compiled.diagnostics.iter().map(|d| d.message.clone()).collect();
        // An input with no checklist content may legitimately give an empty plan;
        // anything else must validate.
        if imported.checklist_items > 0 {
            panic!("imported plan does not validate: {errors:?}\n{}", imported.yaml);
        }
    }
    assert!(imported.kept_items <= imported.checklist_items);
});
