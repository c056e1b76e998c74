//! `golive import` on real checklists and on hostile input.
//!
//! The fixtures are copies of checklists teams actually wrote (one of them
//! with mis-decoded emoji). For each: the generated plan must validate, keep
//! (nearly) every checklist item, and read like the checklist (snapshot).
//! The kept-items count here is made independently of the importer, from a
//! plain line scan of the Markdown.

use golive_plan::import::{NoteKind, import};
use golive_plan::{Severity, compile};

const FLAKEGUARD: &str = include_str!("../../../examples/checklists/flakeguard-go-live.md");
const PAGER: &str = include_str!("../../../examples/checklists/pager-system-go-live.md");
/// Written for these tests, not against the importer: a Kubernetes service
/// released with Helm.
const LEDGER: &str = include_str!("checklists/ledger-api-helm.md");
/// A database migration with a rollback decision tree and clock times.
const ORDERS: &str = include_str!("checklists/orders-db-migration.md");
/// A mobile and API launch with stakeholder tables and a canary ramp.
const WAYFARE: &str = include_str!("checklists/wayfare-mobile-launch.md");

/// Every test document, with its file name.
const ALL: [(&str, &str); 5] = [
    ("flakeguard-go-live.md", FLAKEGUARD),
    ("pager-system-go-live.md", PAGER),
    ("ledger-api-helm.md", LEDGER),
    ("orders-db-migration.md", ORDERS),
    ("wayfare-mobile-launch.md", WAYFARE),
];

/// Lower-case ASCII words, space-separated, with a space at each end.
fn normalise(s: &str) -> String {
    let words: Vec<String> = s
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    format!(" {} ", words.join(" "))
}

/// The texts of the checklist items of `md`, by a line scan.
fn checklist_lines(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in md.lines() {
        let t = line.trim_start();
        for marker in ["- [ ]", "- [x]", "- [X]", "* [ ]", "* [x]", "+ [ ]"] {
            if let Some(rest) = t.strip_prefix(marker) {
                out.push(rest.trim().to_string());
                break;
            }
        }
    }
    out
}

fn assert_validates(yaml: &str) {
    let compiled = compile(yaml, &|_: &str| false);
    let errors: Vec<String> = compiled
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{d:?}"))
        .collect();
    assert!(
        errors.is_empty(),
        "errors:\n{}\n\n{yaml}",
        errors.join("\n")
    );
    assert!(compiled.plan.is_some(), "no plan:\n{yaml}");
}

/// Imports `md`, checks validation and kept items, returns the YAML.
fn check_fixture(name: &str, md: &str) -> String {
    let imported = import(md, &format!("{name}.md"));
    assert_validates(&imported.yaml);

    let items = checklist_lines(md);
    let yaml = normalise(&imported.yaml);
    let missing: Vec<&String> = items
        .iter()
        .filter(|t| !yaml.contains(&normalise(t)))
        .collect();
    let kept = items.len() - missing.len();
    let ratio = kept as f64 / items.len() as f64;
    println!(
        "{name}: kept {kept} of {} checklist items ({:.1}%)",
        items.len(),
        ratio * 100.0
    );
    assert!(
        ratio >= 0.95,
        "{name}: only {kept}/{} kept; missing: {missing:#?}",
        items.len()
    );
    assert_eq!(
        imported.checklist_items,
        items.len(),
        "{name}: importer's own count"
    );
    assert_eq!(
        imported.kept_items, imported.checklist_items,
        "{name}: importer reports items lost"
    );
    assert!(missing.is_empty(), "{name}: missing {missing:#?}");
    imported.yaml
}

#[test]
fn flakeguard_imports_validates_and_keeps_every_item() {
    let yaml = check_fixture("flakeguard-go-live", FLAKEGUARD);
    insta::assert_snapshot!("flakeguard", yaml);
}

#[test]
fn pager_system_imports_validates_and_keeps_every_item() {
    let yaml = check_fixture("pager-system-go-live", PAGER);
    insta::assert_snapshot!("pager_system", yaml);
}

#[test]
fn unseen_documents_import_validate_and_keep_every_item() {
    for (name, md) in &ALL[2..] {
        check_fixture(name.trim_end_matches(".md"), md);
    }
}

#[test]
fn mojibake_is_repaired_and_reported() {
    let imported = import(FLAKEGUARD, "flakeguard-go-live.md");
    assert!(!imported.yaml.contains("üö"), "mojibake left in the plan");
    assert!(!imported.yaml.contains('\u{F8FF}'));
    assert!(!imported.yaml.contains("‚úÖ"));
    let repaired = imported
        .notes
        .iter()
        .filter(|n| n.kind == NoteKind::Repaired)
        .count();
    assert!(repaired >= 10, "{repaired} repair notes");
    assert!(
        imported
            .yaml
            .contains("title: \"Critical Deployment Approval: Pre-Deployment Sign-Off\""),
        "{}",
        imported.yaml
    );
}

#[test]
fn genuine_non_ascii_text_survives() {
    let md = "# Café launch\n\n## Étape 1 → prod — go\n- [ ] Vérifier le café ✅\n";
    let imported = import(md, "x.md");
    assert_validates(&imported.yaml);
    assert!(
        imported.yaml.contains("Étape 1 → prod — go"),
        "{}",
        imported.yaml
    );
    assert!(
        imported.yaml.contains("Vérifier le café\n"),
        "{}",
        imported.yaml
    );
}

#[test]
fn the_importer_recognises_the_documented_constructs() {
    let md = "\
# Checkout v2 Go-Live Checklist

**Environment**: production
**Version**: 2.1.0
**Deployment Date**: ______

## T-24 hours
- [ ] **Backups** verified (file: ______)
- [ ] **Deploy** the release
  ```bash
  ./deploy.sh --prod
  # Pods become ready
  ```
- [ ] Health: `curl -f https://checkout.example.com/health`

## Sign-Off
- [ ] **Tech Lead Approval**: ______ (Signature & Date)
- [ ] **Security Review**: ______ (Signature & Date)

## Rollback Criteria
- [ ] **Error rate** > 5% for 2 minutes
- [ ] **p95 latency** > 1000ms
- [ ] **Payment failures** detected
";
    let imported = import(md, "checkout.md");
    assert_validates(&imported.yaml);
    let y = &imported.yaml;
    for want in [
        "name: checkout-v2",
        "version: \"2.1.0\"",
        "environment: production",
        "  - Deployment Date",
        "at: T-24h",
        "command: ./deploy.sh --prod",
        "description: Pods become ready",
        "url: https://checkout.example.com/health",
        "- status == 200",
        "fields:\n            - File",
        "roles:\n            - tech-lead\n            - security",
        "members:\n      - TODO-tech-lead",
        "- error_rate > 5% for 2m",
        "- p95_latency > 1000ms",
        "- payment_failures_detected",
        "review: true",
    ] {
        assert!(y.contains(want), "missing {want:?} in:\n{y}");
    }
    assert_eq!(imported.kept_items, 8);
}

#[test]
fn hostile_inputs_do_not_panic() {
    let mut deep = String::new();
    let mut i = 0usize;
    while deep.len() < 1_000_000 {
        deep.push_str(&"  ".repeat(i % 500));
        deep.push_str("- [ ] x\n");
        i += 1;
    }
    let mut bytes = Vec::with_capacity(100_000);
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..100_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        bytes.push((seed >> 24) as u8);
    }
    let random = String::from_utf8_lossy(&bytes).into_owned();
    let inputs: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("deep list", deep),
        ("random bytes", random),
        ("heading only", "# Only a heading\n".into()),
        ("headings only", "# A\n## B\n### C\n".into()),
        (
            "unclosed fence",
            "# X\n## Y\n- [ ] a\n  ```bash\n  echo hi\n".into(),
        ),
        (
            "nested quotes",
            format!("{} - [ ] quoted\n", ">".repeat(10_000)),
        ),
        (
            "nested quote lines",
            format!("{}\n", ">".repeat(10_000)).repeat(3),
        ),
        (
            "nested emphasis",
            format!("{}x{}", "*".repeat(5_000), "*".repeat(5_000)),
        ),
        ("brackets", "[".repeat(50_000)),
        ("blanks", "_".repeat(100_000)),
        ("html", "<div>\n- [ ] inside\n</div>\n".into()),
        ("only rule", "---\n".into()),
        ("mojibake soup", "üöÄ‚úÖ‚ö†Ô∏è\u{F8FF}".repeat(1_000)),
        ("same title everywhere", "## A\n- [ ] x\n".repeat(2_000)),
    ];
    for (name, md) in inputs {
        let imported = import(&md, name);
        assert!(imported.kept_items <= imported.checklist_items, "{name}");
        assert!(
            imported.yaml.starts_with("# Imported by `golive import`"),
            "{name}"
        );
        // The output always reads back (it may carry warnings).
        let compiled = compile(&imported.yaml, &|_: &str| false);
        let errors: Vec<_> = compiled
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
}

#[test]
fn a_megabyte_of_items_is_imported_whole() {
    // Quadratic work here would show as a hung test; speed itself is measured in benchmarks.
    let md = "- [ ] x\n".repeat(130_000);
    let imported = import(&md, "flat.md");
    assert_eq!(imported.checklist_items, 130_000);
    assert_eq!(imported.kept_items, 130_000);
    assert!(imported.yaml.contains("id: x-130000"));
}

#[test]
fn deep_checklists_keep_every_item() {
    let md: String = (0..500)
        .map(|i| format!("{}- [ ] item {i}\n", "  ".repeat(i)))
        .collect();
    let imported = import(&md, "deep.md");
    assert_eq!(imported.checklist_items, 500);
    assert_eq!(imported.kept_items, 500);
    assert_validates(&imported.yaml);
}
