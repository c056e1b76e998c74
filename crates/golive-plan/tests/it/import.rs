//! `golive import` on real checklists and on hostile input.
//!
//! The fixtures are copies of checklists teams actually wrote (one of them
//! with mis-decoded emoji). For each: the generated plan must validate, keep
//! (nearly) every checklist item, and read like the checklist (snapshot).
//! The kept-items count here is made independently of the importer, from a
//! plain line scan of the Markdown.

use golive_plan::import::{NoteKind, import};
use golive_plan::{Severity, compile};

const FLAKEGUARD: &str = include_str!("../../../../examples/checklists/flakeguard-go-live.md");
const PAGER: &str = include_str!("../../../../examples/checklists/pager-system-go-live.md");
/// Written for these tests, not against the importer: a Kubernetes service
/// released with Helm.
const LEDGER: &str = include_str!("../checklists/ledger-api-helm.md");
/// A database migration with a rollback decision tree and clock times.
const ORDERS: &str = include_str!("../checklists/orders-db-migration.md");
/// A mobile and API launch with stakeholder tables and a canary ramp.
const WAYFARE: &str = include_str!("../checklists/wayfare-mobile-launch.md");

/// Written before reading the importer, in styles the documents above
/// lack: numbered steps and sub-steps under Setext headings, `console`
/// sessions with prompts and output, HTML comments, `(@handle)` owners and
/// rollback criteria in prose (a DNS cut-over).
const DNS: &str = include_str!("../checklists/dns-cutover-numbered.md");
/// A step table (`| # | Time | Step | Owner | Command |`), `H-1`, a go/no-go
/// table of named approvers, `T+30m …` items (a Kafka migration).
const KAFKA: &str = include_str!("../checklists/kafka-orders-migration.md");
/// A Confluence export: no Markdown headings but bold lines, CRLF line
/// ends, non-breaking spaces, `<br>`, ⬜/✅ status markers, `(Owner: SRE)`,
/// `D-2`/`H-0`/`H+30m` (a data-centre failover).
const DC: &str = include_str!("../checklists/dc-failover-confluence.md");
/// A Notion-style mobile release train: `D-5 … D+7`, nested sub-checklists,
/// an `<aside>`, go/no-go approvers as `Name — Role` checkboxes, a
/// conditional halt command, a hotfix instead of a rollback.
const TRAIN: &str = include_str!("../checklists/mobile-release-train.md");

/// Every test document, with its file name.
const ALL: [(&str, &str); 9] = [
    ("flakeguard-go-live.md", FLAKEGUARD),
    ("pager-system-go-live.md", PAGER),
    ("ledger-api-helm.md", LEDGER),
    ("orders-db-migration.md", ORDERS),
    ("wayfare-mobile-launch.md", WAYFARE),
    ("dns-cutover-numbered.md", DNS),
    ("kafka-orders-migration.md", KAFKA),
    ("dc-failover-confluence.md", DC),
    ("mobile-release-train.md", TRAIN),
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
        // Wiki exports write their checkboxes as status emoji.
        for marker in [
            "- [ ]", "- [x]", "- [X]", "* [ ]", "* [x]", "+ [ ]", "⬜ ", "✅ ",
        ] {
            if let Some(rest) = t.strip_prefix(marker) {
                let rest = rest.trim();
                out.push(rest.strip_suffix("<br>").unwrap_or(rest).to_string());
                break;
            }
        }
    }
    out
}

/// The error messages of compiling `yaml`.
fn errors_of(yaml: &str) -> Vec<String> {
    compile(yaml, &|_: &str| false)
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.message.clone())
        .collect()
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
    // A document of numbered steps has no checkboxes to count.
    let ratio = if items.is_empty() {
        1.0
    } else {
        kept as f64 / items.len() as f64
    };
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
        "- status < 400",
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
        assert_imports_safely(name, &md);
    }
}

/// Importing `md` returns (no panic) a plan that reads back without errors.
fn assert_imports_safely(name: &str, md: &str) {
    let imported = import(md, name);
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

#[test]
fn hostile_exports_tables_and_sessions_do_not_panic() {
    // The constructs read since the unseen documents, degenerate and at
    // scale (quadratic work would show as a hung test).
    let table = format!(
        "## Steps\n\n| # | Step | Owner | Command |\n|---|---|---|---|\n{}",
        "| 1 | Do it (Owner: SRE) | @a | `kubectl get pods -A` |\n".repeat(5_000)
    );
    let inputs: Vec<(&str, String)> = vec![
        ("status markers", "⬜ x<br>\n✅ \u{fe0f}\n⬜\n- ✅ y\n".repeat(10_000)),
        ("bold headings", "**Phase**\n\n⬜ step\n\n".repeat(3_000)),
        ("bold only", "**x**".into()),
        ("br soup", "a<br>".repeat(50_000)),
        ("step table", table),
        ("empty step table", "| Step | Owner |\n|---|---|\n| | |\n|\n".into()),
        (
            "session",
            format!("```console\n{}\n```\n", "$ a \\\n  b\nout\n$\n".repeat(10_000)),
        ),
        ("substeps", format!("1. a {}\n", "1.1 B ".repeat(20_000))),
        ("comments", "<!--".repeat(20_000)),
        ("aside", "<aside>\n\n</aside>\n<!-- -->\n".into()),
        (
            "owners",
            "## S\n1. x (Owner: )\n2. y (@)\n3. z (Owner: (Owner: a))\n4. (owner: @é)\n".into(),
        ),
        (
            "criteria",
            "## Rollback\nIf , roll back\nIf or or, roll back.\nRoll back if\nHalt if > 2%\n".into(),
        ),
        (
            "conditional steps",
            "## Go\n- [ ] Halt it if x > 2% or\n  ```bash\n  ./halt\n  ```\n".into(),
        ),
        ("offsets", "## D-\n## H+\n## D+99999999999999999999\n## H-0m\n- [ ] x\n".into()),
        (
            "go/no-go",
            "## Go/No-Go\n- [ ] A B — \n- [ ] — Role\n- Lead (@): ___\n| Approver | Role | Decision |\n|---|---|---|\n| | | |\n".into(),
        ),
        ("cr only", "# T\r## A\r- [ ] x\r".into()),
    ];
    for (name, md) in inputs {
        assert_imports_safely(name, &md);
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

// Where things land, per document. The assertions read the compiled plan,
// so each imported plan is also checked to validate.

use golive_plan::time::TOffset;
use golive_plan::{ItemKind, LevelAction, Plan, Probe};

fn plan_of(name: &str, md: &str) -> Plan {
    let imported = import(md, name);
    assert_validates(&imported.yaml);
    compile(&imported.yaml, &|_: &str| false)
        .plan
        .expect("validated above")
}

/// The forward item whose title contains `title`, with its phase.
fn forward<'p>(plan: &'p Plan, title: &str) -> (&'p golive_plan::Phase, &'p golive_plan::Item) {
    plan.items()
        .find(|(_, i)| i.title.contains(title))
        .unwrap_or_else(|| panic!("no forward item “{title}”"))
}

fn phase<'p>(plan: &'p Plan, title: &str) -> &'p golive_plan::Phase {
    plan.phases
        .iter()
        .find(|p| p.title.contains(title))
        .unwrap_or_else(|| panic!("no phase “{title}”"))
}

fn at(p: &golive_plan::Phase) -> Option<String> {
    p.at.map(|t| t.to_string())
}

/// The shell text an item would run: a command, or a command check.
fn command_of(i: &golive_plan::Item) -> Option<&str> {
    match &i.kind {
        ItemKind::Run(r) => Some(&r.command),
        ItemKind::Check(c) => match &c.probe {
            Probe::Command(c) => Some(&c.command.value),
            _ => None,
        },
        _ => None,
    }
}

fn probe_kind(i: &golive_plan::Item) -> Option<&'static str> {
    match &i.kind {
        ItemKind::Check(c) => Some(c.probe.name()),
        _ => None,
    }
}

/// Commands that undo a release, by the words teams use for them; written
/// here independently of the importer's own list.
fn undoes(cmd: &str) -> bool {
    let c = cmd.to_ascii_lowercase().replace(['_', '-'], " ");
    [
        "rollback",
        "roll back",
        "rollout undo",
        "undo",
        "revert",
        "downgrade",
        "migrate down",
    ]
    .iter()
    .any(|w| c.contains(w))
}

#[test]
fn no_rollback_command_runs_in_a_forward_phase_of_any_document() {
    for (name, md) in ALL {
        let plan = plan_of(name, md);
        for (p, i) in plan.items() {
            if let Some(cmd) = command_of(i) {
                assert!(
                    !undoes(cmd),
                    "{name}: `{cmd}` ({}) runs forward in phase “{}”",
                    i.id,
                    p.title
                );
            }
        }
        assert!(
            !plan.rollback.items.is_empty() || !plan.rollback.levels.is_empty(),
            "{name}: its rollback section went nowhere"
        );
        for p in &plan.phases {
            assert!(
                !p.title.to_lowercase().contains("level "),
                "{name}: decision-tree level “{}” became a forward phase",
                p.title
            );
        }
    }
}

#[test]
fn helm_service_rollback_checks_and_timeline_land_where_they_belong() {
    let plan = plan_of("ledger-api-helm.md", LEDGER);

    // The `**Rollback Procedure**` block inside "Deploy (T-0)" is the rollback.
    let rb = &plan.rollback.items;
    let helm = rb
        .iter()
        .position(|i| command_of(i).is_some_and(|c| c.contains("helm rollback")))
        .expect("helm rollback in the rollback");
    assert_eq!(
        rb[helm].on_failure,
        golive_plan::OnFailure::Continue,
        "the fallback runs when helm rollback fails"
    );
    // "helm rollback, or if that fails the manual fallback": one task, not a chain.
    let fallback = rb.get(helm + 1).expect("a fallback after helm rollback");
    let ItemKind::Task(t) = &fallback.kind else {
        panic!("fallback is {:?}", fallback.kind.name())
    };
    let steps = t.instructions.as_deref().unwrap_or("");
    assert!(
        steps.contains("Scale the new ReplicaSet to zero"),
        "{steps}"
    );
    assert!(steps.contains("Re-apply the saved values"), "{steps}");
    assert!(fallback.review);
    assert_eq!(rb.len(), helm + 2, "nothing chained after the fallback");

    // Probes become checks, in code blocks and in inline code.
    let probes: Vec<(&str, &str)> = [
        ("Current release is healthy", "command"),
        ("Database reachable from the cluster", "command"),
        ("Wait for the new pods", "command"),
        ("Smoke test the public endpoint", "http"),
        ("Readiness endpoint answers", "http"),
        ("DNS still points at the ingress", "dns"),
        ("Ingress port open", "tcp"),
        ("Cache answers", "redis"),
    ]
    .into_iter()
    .collect();
    for (title, kind) in probes {
        let (_, i) = forward(&plan, title);
        assert_eq!(probe_kind(i), Some(kind), "{title}");
    }
    // The numbered block is three items in order, in the T-0 phase.
    let deploy = phase(&plan, "Deploy");
    assert_eq!(at(deploy).as_deref(), Some("T+0"));
    let titles: Vec<&str> = deploy.items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(
        &titles[..3],
        [
            "Upgrade the chart",
            "Wait for the new pods",
            "Smoke test the public endpoint"
        ]
    );
    assert!(
        matches!(&deploy.items[0].kind, ItemKind::Run(r) if r.command.contains("helm upgrade"))
    );

    // Offsets keep their sign in ids too.
    let verify = phase(&plan, "Verify");
    assert_eq!(at(verify).as_deref(), Some("T+15m"));
    assert!(verify.id.as_str().contains("plus-15m"), "{}", verify.id);

    // The sign-off written at the end is asked for before the deploy.
    let pos = |t: &str| plan.phases.iter().position(|p| p.title.contains(t));
    assert!(pos("Sign-off") < pos("Deploy"), "sign-off after go-live");
    let (_, signoff) = forward(&plan, "Sign-off");
    let ItemKind::Approval(a) = &signoff.kind else {
        panic!("sign-off is a {}", signoff.kind.name())
    };
    let roles: Vec<&str> = a.roles.iter().map(|r| r.as_str()).collect();
    assert_eq!(roles, ["payments-lead", "sre-on-call"]);
    assert!(plan.roles.keys().all(|r| !r.as_str().contains("date")));
}

#[test]
fn migration_decision_tree_clock_times_and_announcements() {
    let plan = plan_of("orders-db-migration.md", ORDERS);

    // Levels with their thresholds, and what each level does.
    let levels = &plan.rollback.levels;
    assert_eq!(levels.len(), 3, "{levels:#?}");
    let when = |k: usize| -> Vec<String> { levels[k].when.iter().map(|c| c.to_string()).collect() };
    let cond = |c: &str| golive_plan::rule::Rule::parse(c).expect(c).to_string();
    assert!(levels[0].name.contains("Don't Rollback"));
    assert_eq!(levels[0].actions, [LevelAction::Continue]);
    assert_eq!(levels[1].actions, [LevelAction::Pause]);
    assert!(
        when(1).contains(&cond("error_rate > 2% for 5m")),
        "{:?}",
        when(1)
    );
    assert!(
        when(1).contains(&cond("p95_latency > 800ms for 10m")),
        "{:?}",
        when(1)
    );
    assert_eq!(levels[2].actions, [LevelAction::Rollback]);
    assert!(
        when(2).contains(&cond("error_rate > 5% for 2m")),
        "{:?}",
        when(2)
    );
    assert!(levels.iter().all(|l| l.review));
    // "Don't Rollback" is a level, not something the rollback runs.
    assert!(
        plan.rollback
            .items
            .iter()
            .all(|i| !i.title.to_lowercase().contains("don't") && !i.title.contains("Error rate")),
        "{:#?}",
        plan.rollback
            .items
            .iter()
            .map(|i| &i.title)
            .collect::<Vec<_>>()
    );
    // The rollback steps are split at their numbered comments.
    let titles: Vec<&str> = plan
        .rollback
        .items
        .iter()
        .map(|i| i.title.as_str())
        .collect();
    assert_eq!(
        titles,
        [
            "Stop writes again",
            "Point the pooler back to the old primary",
            "Re-enable writes"
        ]
    );

    // Clock times are read against "T-0: 12:00 PM"; a range takes its start.
    for (title, want) in [
        ("T-24h: Preparation", "T-24h"),
        ("12:00 PM — Stop writes", "T+0"),
        ("12:10 PM — Switch", "T+10m"),
        ("12:30 PM — Validate", "T+30m"),
        ("T+45m: Early Watch", "T+45m"),
        ("T+60 to T+180 min", "T+60m"),
    ] {
        let want = TOffset::parse(want).expect("offset").to_string();
        assert_eq!(at(phase(&plan, title)), Some(want), "{title}");
    }
    // "Week 1" starts no earlier than the phase before it.
    let follow = at(phase(&plan, "Follow-up")).expect("placed");
    assert!(TOffset::parse(&follow).expect("offset") >= TOffset::parse("T+60m").expect("offset"));

    // Probes in inline code and in a bare code block.
    assert_eq!(
        probe_kind(forward(&plan, "pg_isready -h orders-pg16").1),
        Some("command")
    );
    assert_eq!(
        probe_kind(forward(&plan, "Old primary health").1),
        Some("command")
    );
    assert_eq!(
        probe_kind(forward(&plan, "Connection pooler up").1),
        Some("tcp")
    );

    // T-marked communication lines are timed notify items, not roles.
    assert!(
        plan.roles.is_empty(),
        "{:?}",
        plan.roles.keys().collect::<Vec<_>>()
    );
    let notifies: Vec<(&str, Option<String>)> = plan
        .items()
        .filter(|(_, i)| matches!(i.kind, ItemKind::Notify(_)))
        .map(|(p, i)| (i.title.as_str(), at(p)))
        .collect();
    assert_eq!(notifies.len(), 4, "{notifies:?}");
    assert!(notifies.contains(&(
        "T+0: post \"migration started\" in #orders",
        Some("T+0".into())
    )));
    assert!(
        notifies
            .iter()
            .any(|(t, at)| t.starts_with("T-24h") && at.as_deref() == Some("T-24h"))
    );
}

#[test]
fn launch_tables_labels_flags_and_canary_become_roles_approvals_and_a_rollout() {
    let imported = import(WAYFARE, "wayfare-mobile-launch.md");
    let plan = plan_of("wayfare-mobile-launch.md", WAYFARE);

    // `| Role | Name | Contact |` and "Primary On-call: …" fill in roles.
    let members = |r: &str| -> Vec<String> {
        plan.roles
            .get(r)
            .unwrap_or_else(|| panic!("no role {r}: {:?}", plan.roles.keys().collect::<Vec<_>>()))
            .members
            .clone()
    };
    assert_eq!(members("launch-captain"), ["dana.whitfield@wayfare.app"]);
    assert_eq!(members("api-lead"), ["mei.chen@wayfare.app"]);
    assert_eq!(members("primary-on-call"), ["mei.chen@wayfare.app"]);
    assert_eq!(members("secondary-on-call"), ["ravi.patel@wayfare.app"]);
    // Blank fields are record fields, never roles.
    for r in plan.roles.keys() {
        assert!(
            !["date-time", "release-build", "date"].contains(&r.as_str()),
            "role {r}"
        );
    }
    let launch = phase(&plan, "Launch Day");
    assert_eq!(launch.record, ["Date/Time", "Release build"]);

    // The approvals table is one approval by its roles, asked before launch.
    let (ap, approvals) = forward(&plan, "Approvals");
    let ItemKind::Approval(a) = &approvals.kind else {
        panic!("{}", approvals.kind.name())
    };
    let roles: Vec<&str> = a.roles.iter().map(|r| r.as_str()).collect();
    assert_eq!(roles, ["launch-captain", "product-owner", "api-lead"]);
    let pos = |id: &str| plan.phases.iter().position(|p| p.id.as_str() == id);
    assert!(pos(ap.id.as_str()) < pos(launch.id.as_str()));
    // "X approval" / "sign-off from Y" items are approvals by that role.
    for (title, role) in [
        ("Legal approval", "legal"),
        ("Security review sign-off", "appsec"),
    ] {
        let (_, i) = forward(&plan, title);
        assert!(
            matches!(&i.kind, ItemKind::Approval(a) if a.roles.iter().any(|r| r.as_str() == role)),
            "{title}: {}",
            i.kind.name()
        );
    }
    // A bold role label owns the list under it.
    let (_, dark) = forward(&plan, "Confirm API 5.0 is deployed dark");
    assert_eq!(
        dark.owner.as_ref().map(|o| o.as_str()),
        Some("technical-lead")
    );

    // Flag admin API calls are flag changes; the ramp is a rollout for review.
    let (_, on) = forward(&plan, "Set flag `trips_v5`");
    assert!(
        matches!(&on.kind, ItemKind::Flag(f) if f.key == "trips_v5" && f.enabled == Some(true))
    );
    let (_, ramp) = plan
        .items()
        .find(|(_, i)| matches!(i.kind, ItemKind::Rollout(_)))
        .expect("a rollout");
    let ItemKind::Rollout(r) = &ramp.kind else {
        unreachable!()
    };
    let weights: Vec<u8> = r.steps.iter().map(|s| s.weight).collect();
    assert_eq!(weights, [5, 25, 50, 100]);
    assert!(ramp.review);
    assert!(matches!(&r.traffic, golive_plan::Traffic::Flag { key } if key == "trips_v5"));
    assert!(
        plan.items()
            .all(|(_, i)| !i.title.starts_with("5% of users")),
        "canary steps left as tasks"
    );

    // The incident playbook: symptoms are a level, actions and the flag-off
    // call are the rollback.
    assert!(plan.rollback.levels.iter().any(|l| l.when.iter().any(|c| {
        c.to_string()
            == golive_plan::rule::Rule::parse("v5_trips_5xx > 2%")
                .expect("condition")
                .to_string()
    })));
    // Levels apply to every rollout: the drafted one declares what they
    // read, for the reviewer to wire to real metrics.
    assert!(
        r.analysis.metrics.iter().any(|m| m.name == "v5_trips_5xx"),
        "{:?}",
        r.analysis.metrics
    );
    assert!(plan.rollback.items.iter().any(
        |i| matches!(&i.kind, ItemKind::Flag(f) if f.key == "trips_v5" && f.enabled == Some(false))
    ));
    assert!(
        plan.rollback
            .items
            .iter()
            .any(|i| i.title.contains("Halt the Android"))
    );

    // Day 1 / First 24 Hours / Week 1 are placed; contents, risks and
    // metrics are description, not steps.
    for t in ["Day 1", "First 24 Hours", "Week 1"] {
        assert_eq!(at(phase(&plan, t)).as_deref(), Some("T+0"), "{t}");
    }
    for t in ["Table of Contents", "Risks", "Success Metrics"] {
        assert!(
            plan.phases.iter().all(|p| !p.title.contains(t)),
            "{t} is a phase"
        );
    }
    let description = plan.description.as_deref().unwrap_or("");
    assert!(
        description.contains("Push notification quota"),
        "{description}"
    );
    assert!(
        description.contains("Trip booking conversion"),
        "{description}"
    );
    assert_eq!(imported.kept_items, imported.checklist_items);
}

#[test]
fn multibyte_text_next_to_numbers_and_signs_never_breaks_the_import() {
    // Byte positions found next to a digit, `%`, `:` or `+` must fall on
    // character boundaries whatever surrounds them.
    for (name, md) in ALL {
        for (from, to) in [
            ("%", "%é"),
            ("% ", " ±%→ "),
            ("1", "±1"),
            (":", "→:"),
            ("T+", "T+é"),
            (" ", " ±"),
            ("- [ ] ", "- [ ] ±"),
        ] {
            let text = md.replace(from, to);
            let imported = import(&text, name);
            assert!(
                errors_of(&imported.yaml).is_empty(),
                "{name} with {from:?} → {to:?}:\n{}",
                imported.yaml
            );
        }
    }
}

#[test]
fn every_cut_of_every_document_imports_into_a_plan_that_validates() {
    // A document cut anywhere (a half-written table, a label with nothing
    // under it, a decision tree without its levels) still gives a valid plan.
    for (name, md) in ALL {
        let lines: Vec<&str> = md.lines().collect();
        for cut in (1..lines.len()).step_by(3) {
            let head = lines[..cut].join("\n");
            let tail = lines[cut..].join("\n");
            for part in [head, tail] {
                let imported = import(&part, name);
                let errors = errors_of(&imported.yaml);
                assert!(
                    errors.is_empty(),
                    "{name} cut at line {cut}: {errors:?}\n{}",
                    imported.yaml
                );
                assert!(imported.kept_items <= imported.checklist_items);
            }
        }
    }
}

#[test]
fn a_signoff_section_is_one_approval_whose_roles_find_their_people() {
    let md = "\
# Search cutover

## Stakeholders
- **Release Manager**: jo@corp.example
- **On-call SRE**: sre-primary@corp.example

## Cutover (T+0)
- [ ] Switch traffic
  ```bash
  ./switch.sh v2
  ```

## Sign-offs
- [ ] Release Manager sign-off
- [ ] **SRE Approval**: ________
- [ ] **Date/Time**: ________
";
    let plan = plan_of("search.md", md);
    let signoffs = phase(&plan, "Sign-offs");
    assert_eq!(signoffs.record, ["Date/Time"]);
    let [item] = signoffs.items.as_slice() else {
        panic!("{:#?}", signoffs.items)
    };
    let ItemKind::Approval(a) = &item.kind else {
        panic!("{}", item.kind.name())
    };
    let roles: Vec<&str> = a.roles.iter().map(|r| r.as_str()).collect();
    assert_eq!(roles, ["release-manager", "sre"]);
    let members = |r: &str| {
        plan.roles
            .get(r)
            .map(|r| r.members.clone())
            .unwrap_or_default()
    };
    assert_eq!(members("release-manager"), ["jo@corp.example"]);
    assert_eq!(members("sre"), ["sre-primary@corp.example"]);
    // Asked before the cutover, not after it.
    let pos = |t: &str| plan.phases.iter().position(|p| p.title.contains(t));
    assert!(pos("Sign-offs") < pos("Cutover"));
}

#[test]
fn mutated_documents_never_panic_and_always_validate() {
    // Deterministic mutations of the test documents: lines deleted,
    // duplicated, swapped, re-indented, and tricky characters inserted.
    // `GOLIVE_IMPORT_MUTATIONS` runs more of them.
    let rounds: usize = std::env::var("GOLIVE_IMPORT_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let tricky = [
        "±",
        "→",
        "%",
        ":",
        "+",
        "|",
        "`",
        "**",
        "_",
        "#",
        "- ",
        "[ ]",
        "é",
        "😀",
        "\t",
        "7",
        "T+",
        "T-0 ",
        "12:30 PM ",
        "Level 2 ",
        "Rollback ",
        "| Role | Name |\n|---|---|\n",
        "```bash\n",
        "# 1. ",
        "curl -f http://x/h",
        "5% of users",
    ];
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |n: usize| -> usize {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n.max(1) as u64) as usize
    };
    for (name, md) in ALL {
        for round in 0..rounds {
            let mut lines: Vec<String> = md.lines().map(str::to_string).collect();
            for _ in 0..1 + next(6) {
                let n = lines.len();
                if n < 2 {
                    break;
                }
                let (a, b) = (next(n), next(n));
                match next(6) {
                    0 => {
                        lines.remove(a);
                    }
                    1 => {
                        let l = lines[a].clone();
                        lines.insert(b, l);
                    }
                    2 => lines.swap(a, b),
                    3 => lines[a].insert_str(0, "  "),
                    4 => {
                        let t = lines[a].trim_start().to_string();
                        lines[a] = t;
                    }
                    _ => {
                        let l = &mut lines[a];
                        let bounds: Vec<usize> = l
                            .char_indices()
                            .map(|(i, _)| i)
                            .chain(std::iter::once(l.len()))
                            .collect();
                        let at = bounds[next(bounds.len())];
                        l.insert_str(at, tricky[next(tricky.len())]);
                    }
                }
            }
            let text = lines.join("\n");
            let imported = import(&text, name);
            let errors = errors_of(&imported.yaml);
            assert!(
                errors.is_empty(),
                "{name} round {round}: {errors:?}\n--- input\n{text}\n--- plan\n{}",
                imported.yaml
            );
            assert!(imported.kept_items <= imported.checklist_items);
        }
    }
}

#[test]
fn canary_steps_nested_under_a_task_are_a_rollout_not_sub_steps() {
    let md = "\
# Checkout v2

## Go-live (T+0)
- [ ] Enable `checkout_v2`:
  ```bash
  curl -X PATCH https://flags.example.com/api/flags -d '{\"key\": \"checkout_v2\", \"enabled\": true}'
  ```
- [ ] Ramp the canary, 10 minutes per step
  - [ ] 5%
  - [ ] 25%
  - [ ] 100%
";
    let imported = import(md, "checkout.md");
    assert_eq!(imported.kept_items, imported.checklist_items);
    let plan = plan_of("checkout.md", md);
    let (_, flag) = forward(&plan, "Enable");
    assert!(matches!(&flag.kind, ItemKind::Flag(f) if f.key == "checkout_v2"));
    let (_, ramp) = forward(&plan, "Canary rollout");
    let ItemKind::Rollout(r) = &ramp.kind else {
        panic!("{}", ramp.kind.name())
    };
    assert!(ramp.subtasks.is_empty());
    let steps: Vec<(u8, String)> = r
        .steps
        .iter()
        .map(|s| (s.weight, format!("{:?}", s.pause)))
        .collect();
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert_eq!(steps[0].0, 5);
    assert!(steps[0].1.contains("600s"), "{steps:?}");
    assert!(matches!(&r.traffic, golive_plan::Traffic::Flag { key } if key == "checkout_v2"));
}

#[test]
fn sibling_rollback_procedures_are_alternatives_chosen_by_one_task() {
    let plan = plan_of("pager-system-go-live.md", PAGER);
    let first = plan.rollback.items.first().expect("rollback items");
    assert!(
        first
            .title
            .contains("Emergency Rollback or Controlled Rollback"),
        "{}",
        first.title
    );
    assert!(matches!(first.kind, ItemKind::Task(_)) && first.review);
    // The helm service has one procedure: nothing to choose.
    let ledger = plan_of("ledger-api-helm.md", LEDGER);
    assert!(
        ledger
            .rollback
            .items
            .iter()
            .all(|i| !i.title.starts_with("Choose"))
    );
}

#[test]
fn standing_work_is_description_not_steps() {
    let md = "\
# API launch

## After launch

**Week 1:**
- [ ] Review the error budget

**Quarterly:**
- [ ] Rotate API keys

## Ongoing Maintenance
- [ ] Patch the base image monthly
";
    let imported = import(md, "api.md");
    assert_eq!(imported.kept_items, imported.checklist_items);
    let plan = plan_of("api.md", md);
    let titles: Vec<&str> = plan.items().map(|(_, i)| i.title.as_str()).collect();
    assert_eq!(titles, ["Review the error budget"]);
    let d = plan.description.as_deref().unwrap_or("");
    assert!(
        d.contains("Rotate API keys") && d.contains("Patch the base image"),
        "{d}"
    );
}

/// A rule's text as golive writes it, for comparing drafted conditions.
fn rule(text: &str) -> String {
    golive_plan::rule::Rule::parse(text)
        .expect("condition")
        .to_string()
}

fn has_level(plan: &Plan, condition: &str) -> bool {
    let want = rule(condition);
    plan.rollback
        .levels
        .iter()
        .any(|l| l.review && l.when.iter().any(|c| c.to_string() == want))
}

fn members(plan: &Plan, role: &str) -> Vec<String> {
    plan.roles
        .get(role)
        .unwrap_or_else(|| {
            panic!(
                "no role {role}: {:?}",
                plan.roles.keys().collect::<Vec<_>>()
            )
        })
        .members
        .clone()
}

fn approval_roles(i: &golive_plan::Item) -> Vec<String> {
    match &i.kind {
        ItemKind::Approval(a) => a.roles.iter().map(|r| r.as_str().to_string()).collect(),
        other => panic!("{}: {} is not an approval", i.title, other.name()),
    }
}

fn fields(i: &golive_plan::Item) -> Vec<String> {
    match &i.kind {
        ItemKind::Task(t) => t.fields.clone(),
        other => panic!("{}: {} is not a task", i.title, other.name()),
    }
}

/// The rollback item whose title contains `title`.
fn rollback_item<'p>(plan: &'p Plan, title: &str) -> &'p golive_plan::Item {
    plan.rollback
        .items
        .iter()
        .find(|i| i.title.contains(title))
        .unwrap_or_else(|| panic!("no rollback item “{title}”"))
}

/// `text` is there and contains `what`.
fn says(text: &Option<String>, what: &str) -> bool {
    text.as_deref().is_some_and(|d| d.contains(what))
}

fn owner(i: &golive_plan::Item) -> Option<&str> {
    i.owner.as_ref().map(|o| o.as_str())
}

#[test]
fn pasted_terminal_sessions_run_only_their_commands() {
    // `$ ` prompts are stripped and the lines a command printed are never
    // part of what golive runs, in every document.
    for (name, md) in ALL {
        let plan = plan_of(name, md);
        let all = plan
            .items()
            .map(|(_, i)| i)
            .chain(plan.rollback.items.iter());
        for i in all {
            if let Some(cmd) = command_of(i) {
                for l in cmd.lines() {
                    assert!(
                        !l.trim_start().starts_with("$ "),
                        "{name}: {}: `{cmd}`",
                        i.id
                    );
                }
                for printed in [
                    "Switched to a new branch",
                    "Successfully uploaded",
                    "IN\tCNAME",
                    "Updated api.",
                ] {
                    assert!(
                        !cmd.contains(printed),
                        "{name}: {}: output in `{cmd}`",
                        i.id
                    );
                }
            }
        }
    }
    let plan = plan_of("mobile-release-train.md", TRAIN);
    let (_, cut) = forward(&plan, "Cut `release/26.49`");
    assert_eq!(
        command_of(cut),
        Some(
            "git fetch origin && git switch -c release/26.49 origin/main\ngit push -u origin release/26.49"
        )
    );
    assert!(
        says(&cut.description, "Switched to a new branch 'release/26.49'"),
        "the output is kept as what to expect"
    );
}

#[test]
fn numbered_dns_cutover_keeps_its_steps_commands_owners_and_criteria() {
    let plan = plan_of("dns-cutover-numbered.md", DNS);
    let titles: Vec<&str> = plan.phases.iter().map(|p| p.title.as_str()).collect();
    let pos = |t: &str| {
        titles
            .iter()
            .position(|x| x.contains(t))
            .unwrap_or_else(|| panic!("no phase {t}: {titles:?}"))
    };
    assert!(pos("Preparation") < pos("Cut-over") && pos("Cut-over") < pos("Verification"));
    // The sign-off written last is asked for before the untimed cut-over
    // between D-1 and T+30m.
    assert!(pos("Sign-off") < pos("Cut-over"), "{titles:?}");
    assert_eq!(
        at(phase(&plan, "Preparation (D-1)")).as_deref(),
        Some("T-24h")
    );
    assert_eq!(at(phase(&plan, "Verification")).as_deref(), Some("T+30m"));

    // Numbered steps stay steps, with their sub-steps and commands; a step
    // asking for a value is a task with that field, not the whole section.
    let prep = phase(&plan, "Preparation");
    assert_eq!(
        prep.items.len(),
        3,
        "{:?}",
        prep.items.iter().map(|i| &i.title).collect::<Vec<_>>()
    );
    let (_, ttl) = forward(&plan, "Lower TTLs");
    assert_eq!(ttl.title, "Lower TTLs");
    assert_eq!(probe_kind(ttl), Some("dns"));
    // The probe checks the name; the command as written (its resolver) and
    // what it printed are kept for the reader.
    let d = ttl.description.as_deref().unwrap_or_default();
    assert!(
        d.contains("dig +noall +answer api.shopwell.com @1.1.1.1"),
        "{d}"
    );
    assert!(d.contains("Expected output:"), "{d}");
    assert!(
        ttl.subtasks[0].starts_with("1.1 Set the TTL"),
        "{:?}",
        ttl.subtasks
    );
    assert_eq!(ttl.subtasks.len(), 2);
    let (_, fastly) = forward(&plan, "Check the Fastly service is ready");
    assert_eq!(owner(fastly), Some("edge"));
    assert!(command_of(fastly).is_some_and(|c| c.starts_with("curl -sS")));
    assert_eq!(fields(forward(&plan, "TLS certificate").1), ["Expiry"]);

    let cut = phase(&plan, "Cut-over");
    assert_eq!(cut.items.len(), 5);
    let (_, baseline) = forward(&plan, "Take a baseline");
    assert_eq!(fields(baseline), ["Baseline"]);
    let (_, switch) = forward(&plan, "Switch the record");
    assert_eq!(owner(switch), Some("hkowalski"));
    assert_eq!(members(&plan, "hkowalski"), ["@hkowalski"]);
    assert_eq!(
        command_of(switch),
        Some(
            "./bin/dns-switch --zone shopwell.com --record api \\\n    --target api.shopwell.com.global.prod.fastly.net --ttl 60"
        )
    );
    let (_, watch) = forward(&plan, "Watch resolution converge");
    assert_eq!(
        command_of(watch),
        Some("for r in 1.1.1.1 8.8.8.8 9.9.9.9; do dig +short api.shopwell.com @$r; done")
    );

    // Sign-off lines `Role (@handle): ____` are one approval; the handle
    // is the role's member, not part of its name.
    let (_, signoff) = forward(&plan, "Sign-off");
    assert_eq!(approval_roles(signoff), ["incident-commander", "edge-lead"]);
    assert_eq!(members(&plan, "edge-lead"), ["@mpetrov"]);

    // Rollback steps stay in the rollback; the prose criterion is a level.
    let back = rollback_item(&plan, "Point the record back");
    assert!(command_of(back).is_some_and(|c| c.contains("cdn.cloudflare.net")));
    assert!(
        plan.items()
            .all(|(_, i)| !i.title.contains("Point the record back"))
    );
    assert!(
        has_level(&plan, "m_5xx_rate > 2% for 10m"),
        "{:?}",
        plan.rollback.levels
    );

    // HTML comments are text to keep, not markup to drop.
    let imported = import(DNS, "dns-cutover-numbered.md");
    assert!(imported.yaml.contains("Copy this file per cut-over"));
    assert!(
        imported
            .yaml
            .contains("TODO: add the mobile-app pinning check")
    );
    assert!(!imported.notes.iter().any(|n| n.kind == NoteKind::Dropped));
}

#[test]
fn kafka_step_table_and_go_no_go_table_become_steps_and_an_approval() {
    let plan = plan_of("kafka-orders-migration.md", KAFKA);
    let go = phase(&plan, "Go / No-Go");
    assert_eq!(at(go).as_deref(), Some("T-1h"));
    assert_eq!(
        approval_roles(&go.items[0]),
        ["head-of-platform", "streaming-lead", "orders-service-owner"]
    );
    assert_eq!(members(&plan, "head-of-platform"), ["Rosa Gómez (@rgomez)"]);
    // The text around the table is what the approvers are asked.
    assert!(matches!(&go.items[0].kind, ItemKind::Approval(a)
        if says(&a.message, "No-go if MirrorMaker lag")));
    assert_eq!(at(phase(&plan, "Pre-checks")).as_deref(), Some("T-1h"));

    // One step per table row, in order, with command and owner.
    let steps = phase(&plan, "Migration steps");
    assert_eq!(steps.items.len(), 10);
    assert!(steps.items[0].title.starts_with("Announce start"));
    assert!(matches!(steps.items[0].kind, ItemKind::Task(_)));
    assert!(steps.items[9].title.starts_with("Stop MirrorMaker 2"));
    let (_, pause) = forward(&plan, "Pause the `order-archiver` consumer");
    assert_eq!(
        command_of(pause),
        Some("kubectl -n orders scale deploy/order-archiver --replicas=0")
    );
    assert_eq!(owner(pause), Some("bortiz"));
    assert_eq!(members(&plan, "bortiz"), ["@bortiz"]);
    assert!(says(&pause.description, "14:05"));
    let (_, producers) = forward(&plan, "Switch producers");
    assert!(command_of(producers).is_some_and(|c| c.starts_with("helm upgrade orders-api")));

    assert_eq!(at(phase(&plan, "After the move")).as_deref(), Some("T+30m"));
    assert!(
        plan.rollback
            .items
            .iter()
            .any(|i| i.title == "Scale the affected consumer to 0")
    );
    // A command with a `<placeholder>` is for a person to complete: a task.
    let sync = rollback_item(&plan, "mm2-offset-sync.sh --group <group>");
    assert!(matches!(sync.kind, ItemKind::Task(_)));
}

#[test]
fn confluence_export_reads_bold_headings_status_emoji_and_owners() {
    let plan = plan_of("dc-failover-confluence.md", DC);
    assert_eq!(plan.name, "dc-failover-exercise-fra1-ams2-payments");
    let phases: Vec<(&str, Option<String>)> = plan
        .phases
        .iter()
        .map(|p| (p.title.as_str(), at(p)))
        .collect();
    assert_eq!(
        phases,
        [
            ("D-2 — Preparation", Some("T-2d".to_string())),
            ("H-1 — Readiness", Some("T-1h".to_string())),
            ("Approvals", None),
            ("H-0 — Failover", Some("T+0".to_string())),
            ("H+30m — Verification", Some("T+30m".to_string())),
            ("Post-exercise", None),
        ]
    );
    // ⬜/✅ lines are the checklist; `(Owner: X)` is who does them.
    let prep = phase(&plan, "Preparation");
    assert_eq!(prep.items.len(), 4);
    assert_eq!(owner(&prep.items[0]), Some("capacity"));
    assert_eq!(owner(&prep.items[1]), Some("release-mgmt"));
    assert_eq!(fields(&prep.items[2]), ["Reference"]);
    // The step table's rows, owners from its Owner column.
    let failover = phase(&plan, "H-0");
    let owners: Vec<Option<&str>> = failover.items.iter().map(owner).collect();
    assert_eq!(
        owners,
        [
            Some("sre"),
            Some("dba"),
            Some("dba"),
            Some("sre"),
            Some("payments-ops")
        ]
    );
    // The fail-back section is the rollback, its sentence a level.
    for t in [
        "Re-enable FRA1",
        "Point payments-api back",
        "Clear read-only",
    ] {
        assert!(
            plan.rollback.items.iter().any(|i| i.title.contains(t)),
            "{t}"
        );
        assert!(
            plan.items().all(|(_, i)| !i.title.contains(t)),
            "{t} runs forward"
        );
    }
    // In a rollback procedure, `Step: `cmd`` is the command it runs.
    let re_enable = rollback_item(&plan, "Re-enable FRA1 in the load balancer");
    assert_eq!(
        command_of(re_enable),
        Some("gslb-ctl pool undrain payments --site fra1")
    );
    assert!(has_level(&plan, "authorisation_success_rate < 97% for 5m"));
    let (_, approvals) = forward(&plan, "Approvals");
    assert_eq!(
        approval_roles(approvals),
        [
            "incident-commander",
            "head-of-infrastructure",
            "payments-product-owner"
        ]
    );
    assert_eq!(members(&plan, "incident-commander"), ["Lena Vogt"]);
    let yaml = import(DC, "dc-failover-confluence.md").yaml;
    assert!(!yaml.contains("<br"), "{yaml}");
    assert!(!yaml.contains('\r'));
    assert!(yaml.contains("Commands for steps 1–4"));
}

#[test]
fn release_train_days_go_no_go_people_and_a_conditional_halt() {
    let plan = plan_of("mobile-release-train.md", TRAIN);
    let phases: Vec<Option<String>> = plan.phases.iter().map(at).collect();
    let want = ["T-5d", "T-4d", "T-2d", "T-2d", "T+0", "T+7d"];
    assert_eq!(phases, want.map(|w| Some(w.to_string())));

    // `Name — Role` checkboxes under a go/no-go heading: one approval, the
    // people are the roles' members.
    let go = phase(&plan, "Go / No-Go");
    assert_eq!(go.items.len(), 1);
    assert_eq!(
        approval_roles(&go.items[0]),
        ["release-manager", "qa-lead", "product-manager-checkout"]
    );
    assert_eq!(members(&plan, "release-manager"), ["Nadia Haddad"]);

    let (_, submit) = forward(&plan, "Upload to App Store Connect");
    assert_eq!(
        command_of(submit),
        Some("bundle exec fastlane ios submit version:26.49.0")
    );
    let (_, qa) = forward(&plan, "QA regression suite");
    assert_eq!(owner(qa), Some("qa"));
    assert_eq!(qa.subtasks.len(), 3);

    // "Halt the rollout if …" runs only when something went wrong: it is a
    // rollback step with its condition drafted, never a forward command.
    assert!(
        plan.items()
            .all(|(_, i)| !i.title.starts_with("Halt the rollout"))
    );
    assert!(
        plan.rollback
            .items
            .iter()
            .any(|i| i.title.starts_with("Halt the rollout") && i.review)
    );
    assert!(has_level(&plan, "crash_free_rate < 99.5%"));
    assert!(
        says(
            &plan.description,
            "duplicated from the \"Release Train\" template"
        ),
        "the <aside> text is kept"
    );
}

#[test]
fn line_ends_do_not_change_the_plan() {
    // Checklists saved on Windows (or exported from a wiki) end lines with
    // CRLF; the plan must be the one their LF twin gives, with no `\r` in
    // a command.
    for (name, md) in ALL {
        let lf = md.replace("\r\n", "\n");
        let crlf = lf.replace('\n', "\r\n");
        let a = import(&lf, name).yaml;
        let b = import(&crlf, name).yaml;
        assert_eq!(a, b, "{name}");
        assert!(!b.contains('\r'), "{name}");
    }
}

#[test]
fn rollback_criteria_in_a_sentence_are_a_level_either_way_round() {
    let md = "\
# Search v2

## Deploy

- [ ] Ship it
  ```bash
  ./deploy.sh v2
  ```

## Rollback criteria

Roll back if the p99 latency stays above 800ms for 10 minutes.

## Rollback

If the error rate stays above 2% for 5 minutes, roll back:

1. Redeploy v1: `./deploy.sh v1`
";
    let plan = plan_of("search.md", md);
    assert!(
        has_level(&plan, "p99_latency > 800ms for 10m"),
        "{:?}",
        plan.rollback.levels
    );
    assert!(
        has_level(&plan, "error_rate > 2% for 5m"),
        "{:?}",
        plan.rollback.levels
    );
    let redeploy = rollback_item(&plan, "Redeploy v1");
    assert_eq!(command_of(redeploy), Some("./deploy.sh v1"));
}

#[test]
fn status_marker_lines_count_towards_the_size_limit() {
    // `⬜ x` lines become list items: a file of them too many to import is
    // refused before anything is built, like the `- [ ] x` file it reads as.
    let md = "⬜ x\n".repeat(golive_plan::import::MAX_CHECKLIST_ENTRIES + 1);
    assert!(matches!(
        golive_plan::import::check_size(md.len(), Some(&md)),
        Err(golive_plan::import::TooLarge::Entries { .. })
    ));
}
