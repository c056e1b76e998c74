//! Plan format tests: the example plan, diagnostics for planted mistakes, the schema.

use golive_plan::{Compiled, ItemKind, Located, Severity, Source, compile};
use std::time::Duration;

fn no_env(_: &str) -> bool {
    false
}

fn located(src: &str, c: &Compiled) -> Vec<Located> {
    let source = Source::new("plan.yaml", src);
    c.diagnostics
        .iter()
        .map(|d| Located::new(&source, d))
        .collect()
}

fn line_of(src: &str, needle: &str) -> usize {
    src.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("`{needle}` not in source"))
}

#[test]
fn the_example_plan_is_valid_and_uses_every_item_kind() {
    let c = compile(golive_plan::EXAMPLE_PLAN, &no_env);
    assert!(
        c.diagnostics.is_empty(),
        "{:#?}",
        located(golive_plan::EXAMPLE_PLAN, &c)
    );
    let plan = c.plan.expect("valid");
    let mut kinds: Vec<&str> = plan.items().map(|(_, i)| i.kind.name()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut all = ItemKind::NAMES.to_vec();
    all.sort_unstable();
    assert_eq!(kinds, all);
    assert_eq!(plan.phases.len(), 4);
    assert_eq!(
        plan.phases[0].at.map(|t| t.to_string()).as_deref(),
        Some("T-24h")
    );
    assert_eq!(plan.rollback.levels.len(), 3);
}

const PLANTED: &str = r#"name: planted
roles:
  ops: {members: [carol]}
  security: {members: []}
phases:
  - title: Prepare
    at: T-2h
    items:
      - id: migrate
        run:
          command: ./migrate.sh
          tmeout: 5m
      - id: migrate
        owner: opps
        task: {}
  - title: Earlier by mistake
    at: T-24h
    items:
      - id: sign-off
        approval: {roles: [ops, security]}
      - id: health
        check:
          http: {url: "http://127.0.0.1/health"}
          expect: ["status = 200"]
      - id: canary
        rollout:
          strategy: canary
          traffic: {flag: {key: new}}
          steps: [{weight: 10}, {weight: 100}]
"#;

#[test]
fn planted_mistakes_are_all_reported_with_their_lines() {
    let c = compile(PLANTED, &no_env);
    assert!(c.plan.is_none());
    let found = located(PLANTED, &c);
    let errors: Vec<&Located> = found
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    let expect = [
        (
            "unknown field `tmeout`",
            "tmeout:",
            Some("did you mean `timeout`?"),
        ),
        ("duplicate item id `migrate`", "- id: migrate", None),
        (
            "unknown role `opps`",
            "owner: opps",
            Some("did you mean `ops`?"),
        ),
        (
            "no one can give this approval: role `security` has no members",
            "approval:",
            None,
        ),
        ("unknown operator `=`", "expect:", None),
        ("this rollout has no `analysis`", "id: canary", None),
    ];
    for (message, line_text, help) in expect {
        let line = if message.starts_with("duplicate") {
            // The second `- id: migrate`.
            PLANTED
                .lines()
                .enumerate()
                .filter(|(_, l)| l.contains(line_text))
                .nth(1)
                .map(|(i, _)| i + 1)
                .expect("twice")
        } else {
            line_of(PLANTED, line_text)
        };
        let hit = errors
            .iter()
            .find(|d| d.message.contains(message))
            .unwrap_or_else(|| panic!("no error `{message}` in {errors:#?}"));
        assert_eq!(hit.line, line, "line of `{message}`");
        if let Some(h) = help {
            assert_eq!(hit.help.as_deref(), Some(h), "help of `{message}`");
        }
    }
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
    let warning = found
        .iter()
        .find(|d| d.severity == Severity::Warning && d.message.contains("phase starts at"))
        .expect("out-of-order warning");
    assert!(
        warning.message.contains("before the previous phase"),
        "{warning:?}"
    );
    assert_eq!(warning.line, line_of(PLANTED, "at: T-24h"));
}

#[test]
fn a_bad_condition_points_at_the_operator_column() {
    let c = compile(PLANTED, &no_env);
    let d = located(PLANTED, &c)
        .into_iter()
        .find(|d| d.message.contains("unknown operator"))
        .expect("reported");
    let line = PLANTED.lines().nth(d.line - 1).expect("line");
    let col = line.find("= 200").expect("op") + 1;
    assert_eq!(d.column, col, "{line}");
}

#[test]
fn undefined_variables_are_errors_unless_defined_outside() {
    let src = "name: v\nphases:\n  - title: P\n    items:\n      - id: r\n        check: {http: {url: 'http://${GREETING}/${NAME}'}}\n      - id: shell\n        run: {command: 'for f in *; do echo ${f} ${HOME}; done'}\n";
    let c = compile(src, &no_env);
    let msgs: Vec<String> = c.diagnostics.iter().map(|d| d.message.clone()).collect();
    assert_eq!(
        msgs,
        ["undefined variable `GREETING`", "undefined variable `NAME`"]
    );
    let c = compile(src, &|n: &str| n == "GREETING" || n == "NAME");
    assert!(c.plan.is_some(), "{:?}", c.diagnostics);
}

#[test]
fn hostile_plans_get_errors_not_panics() {
    let cases = [
        String::new(),
        "[1, 2".into(),
        "just a string".into(),
        "name: x\nphases: 3\n".into(),
        "name: [1]\nphases: []\n".into(),
        "a: &a [*a]\n".into(),
        "{".repeat(10_000),
        "name: x\nphases:\n".to_string() + &"  - title: p\n    items: [{id: a, task: {}}]\n".repeat(2_000),
        "\u{0}\u{1}name: x".into(),
        // A condition cut short at the very end of the file (found by fuzzing).
        "name: x\nphases:\n  - title: p\n    items:\n      - id: a\n        check:\n          tcp: {address: 'h:1'}\n          expect:\n            - connected <".into(),
        // One long line of multibyte text: positions must not cost a scan per value.
        format!("name: x\nphases: [{}]\n", "é, ".repeat(300_000)),
        "name: x\nphases:\n  - title: p\n    items:\n      - id: a\n        run: {command: x, retries: 99999999999999999999}\n".into(),
    ];
    for src in &cases {
        let c = compile(src, &no_env);
        for d in &c.diagnostics {
            let span = d.span.expect("every diagnostic here has a span");
            assert!(
                span.start <= span.end && span.end <= src.len(),
                "{d:?} in {src:.80}"
            );
        }
        let _ = located(src, &c);
    }
    // The first and the large valid one.
    assert!(
        compile(&cases[0], &no_env).diagnostics[0]
            .message
            .contains("empty")
    );
    let big = compile(&cases[7], &no_env);
    assert!(
        big.diagnostics
            .iter()
            .any(|d| d.message.contains("duplicate item id"))
    );
}

#[test]
fn the_committed_schema_is_the_generated_one() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../schema/golive.schema.json"
    );
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = golive_plan::schema::json();
    assert!(
        committed == generated,
        "schema/golive.schema.json is stale: run `cargo run -p golive -- schema > schema/golive.schema.json`"
    );
    let v: serde_json::Value = serde_json::from_str(&generated).expect("json");
    assert_eq!(v["title"], "golive plan");
    assert!(v["properties"]["phases"].is_object());
}

const PLANTED_ANALYSIS: &str = r#"name: planted-analysis
channels:
  war-room: {log: true}
phases:
  - title: Release
    items:
      - id: canary
        rollout:
          strategy: canary
          traffic: {flag: {key: new}}
          steps: [{weight: 10, pause: 1m}, {weight: 100}]
          analysis:
            interval: 10s
            scrape:
              stable: http://127.0.0.1:9/metrics
              canary: http://127.0.0.1:9/metrics
            inconclusive_limit: 0
            min_requests: {metric: request, count: 10}
            metrics:
              - name: requests
                expr: sum(increase(http_requests_total[30s]))
              - name: error_rate
                expr: sum(rate(http_requests_total{code="500"}[1m]) / sum(rate(http_requests_total[1m]))
              - name: requests
                expr: sum(rate(http_requests_total[1m]))
              - name: short
                expr: rate(http_requests_total[10s])
              - name: regex
                expr: http_requests_total{code=~"(("}
            rules:
              - canary.eror_rate - stable.error_rate > 2%
              - requests > 5x
              - requests = 1
            judge:
              - {metric: latency, tolerance: -1}
rollback:
  levels:
    - name: slow
      when: [canary.p95 > 1.3 * stable.p95 for 1m]
      actions: [{rollback-after: soon}]
"#;

#[test]
fn analysis_mistakes_are_all_reported_with_their_lines() {
    let c = compile(PLANTED_ANALYSIS, &no_env);
    assert!(c.plan.is_none());
    let found = located(PLANTED_ANALYSIS, &c);
    let errors: Vec<&Located> = found
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    let expect = [
        (
            "`inconclusive_limit` must be at least 1",
            "inconclusive_limit: 0",
        ),
        ("unknown metric `request`", "min_requests:"),
        (
            "metric `error_rate`: expected `)`",
            "expr: sum(rate(http_requests_total{code=\"500\"}",
        ),
        (
            "metric `requests` is defined twice",
            "expr: sum(rate(http_requests_total[1m]))",
        ),
        (
            "the range [10s] is not longer than the interval 10s",
            "rate(http_requests_total[10s])",
        ),
        ("metric `regex`:", "code=~\"((\""),
        ("unknown metric `eror_rate`", "canary.eror_rate"),
        ("`5x` is not a number", "requests > 5x"),
        ("expected a comparison, found `=`", "requests = 1"),
        ("unknown metric `latency`", "{metric: latency"),
        ("`tolerance` must be a number ≥ 0", "{metric: latency"),
        ("level `slow`: unknown metric `p95`", "canary.p95"),
        ("`soon` is not a duration", "rollback-after: soon"),
    ];
    for (message, line_text) in expect {
        let line = if message.contains("defined twice") {
            PLANTED_ANALYSIS
                .lines()
                .position(|l| l.contains("- name: requests"))
                .and_then(|first| {
                    PLANTED_ANALYSIS
                        .lines()
                        .enumerate()
                        .skip(first + 1)
                        .find(|(_, l)| l.contains("- name: requests"))
                })
                .map(|(i, _)| i + 1)
                .expect("twice")
        } else {
            line_of(PLANTED_ANALYSIS, line_text)
        };
        let hit = errors
            .iter()
            .find(|d| d.message.contains(message))
            .unwrap_or_else(|| panic!("no error `{message}` in {errors:#?}"));
        assert_eq!(hit.line, line, "line of `{message}`");
    }
    let twice = errors
        .iter()
        .find(|d| d.message.contains("defined twice"))
        .expect("duplicate");
    assert!(
        twice.help.as_deref().is_some_and(|h| h.contains(&format!(
            "line {}",
            line_of(PLANTED_ANALYSIS, "- name: requests")
        ))),
        "{twice:?}"
    );
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
}

/// Asserts the diagnostics, in order, are on `want`'s lines and contain its
/// texts; returns their messages.
fn assert_errors(src: &str, c: &Compiled, want: &[(usize, &str)]) -> Vec<String> {
    let got: Vec<(usize, String)> = located(src, c)
        .into_iter()
        .map(|l| (l.line, l.message))
        .collect();
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for ((line, message), (wl, wm)) in got.iter().zip(want) {
        assert_eq!(line, wl, "{message}");
        assert!(message.contains(wm), "{message} lacks {wm}");
    }
    got.into_iter().map(|(_, m)| m).collect()
}

#[test]
fn channel_and_notify_mistakes_name_the_field() {
    let src = r#"name: channels
secrets:
  PD: env:PD_KEY
  HOOK: env:HOOK_URL
channels:
  chat: {slack: "${HOOK}", secret: "${PD}"}
  pager: {pagerduty: "${PD}", events_url: "http://127.0.0.1:9", retries: 1}
  hook: {webhook: "${HOOK}", secret: "${PD}", required: true}
phases:
  - title: a
    items:
      - id: ack
        notify: {channel: pager, message: m, event: acknowledge}
      - id: odd
        notify: {channel: pager, message: m, event: page, dedup_key: k}
      - id: loud
        notify: {channel: pager, message: m, severity: loud}
      - id: not-pd
        notify: {channel: hook, message: m, dedup_key: k}
      - id: fine
        notify: {channel: pager, message: m, event: resolve, dedup_key: "golive-${PD}"}
"#;
    let c = compile(src, &no_env);
    let want = [
        (
            line_of(src, "chat: {slack"),
            "`secret` applies to `webhook` channels only",
        ),
        (
            line_of(src, "id: ack") + 1,
            "`event: acknowledge` needs the `dedup_key`",
        ),
        (line_of(src, "event: page"), "unknown `event` `page`"),
        (line_of(src, "severity: loud"), "unknown `severity` `loud`"),
        (
            line_of(src, "id: not-pd") + 1,
            "apply to PagerDuty channels; `hook` is not one",
        ),
    ];
    assert_errors(src, &c, &want);
}

#[test]
fn email_channel_mistakes_name_the_field_all_at_once() {
    let src = r#"name: mail
secrets:
  SMTP_URL: env:SMTP_URL
channels:
  ok: {email: {to: [oncall@example.com, "${ONCALL}"], from: golive@example.com, smtp: "${SMTP_URL}"}, retries: 2}
  relay: {email: {to: [a@example.com], from: b@example.com, smtp: "smtp://127.0.0.1:25?tls=none"}}
  nobody: {email: {from: golive@example.com, smtp: "${SMTP_URL}"}}
  bad: {email: {to: [not-an-address, "Ops <ops@example.com>"], from: "@example.com", smtp: "http://mail.example.com"}}
  leaky: {email: {to: [a@example.com], from: b@example.com, smtp: "smtp://golive:hunter2@mail.example.com:587"}}
  half: {email: {to: [a@example.com]}}
variables:
  ONCALL: oncall@example.com
phases:
  - title: a
    items:
      - id: tell
        notify: {channel: ok, message: m}
"#;
    let c = compile(src, &no_env);
    let want = [
        (line_of(src, "nobody:"), "`email` needs `to`"),
        (
            line_of(src, "bad:"),
            "`to`: `not-an-address` is not an email address (no `@`)",
        ),
        (
            line_of(src, "bad:"),
            "`to`: `Ops <ops@example.com>` is not an email address",
        ),
        (
            line_of(src, "bad:"),
            "`from`: `@example.com` is not an email address",
        ),
        (
            line_of(src, "bad:"),
            "`smtp`: the URL must start with `smtp://` or `smtps://`",
        ),
        (
            line_of(src, "leaky:"),
            "`smtp`: the password is written in the plan",
        ),
        (line_of(src, "half:"), "`email` needs `from`"),
        (line_of(src, "half:"), "`email` needs `smtp`"),
    ];
    for message in assert_errors(src, &c, &want) {
        // Never the password, not even in a message about it.
        assert!(!message.contains("hunter2"), "{message}");
    }
}

#[test]
fn an_email_channel_compiles_to_templates() {
    let src = "name: mail\nsecrets:\n  SMTP_URL: env:SMTP_URL\nchannels:\n  mail: {email: {to: [a@example.com, b@example.com], from: golive@example.com, smtp: \"${SMTP_URL}\"}, required: true}\nphases:\n  - title: a\n    items:\n      - id: tell\n        notify: {channel: mail, message: m}\n";
    let c = compile(src, &no_env);
    let plan = c.plan.expect("compiles");
    let ch = &plan.channels["mail"];
    assert!(ch.required);
    assert_eq!(
        ch.kind,
        golive_plan::ChannelKind::Email {
            to: vec!["a@example.com".into(), "b@example.com".into()],
            from: "golive@example.com".into(),
            smtp: "${SMTP_URL}".into(),
        }
    );
}

#[test]
fn a_watch_cadence_reads_in_order_and_its_mistakes_are_named() {
    let plan = |cadence: &str| {
        format!(
            "name: w\nchannels:\n  c: {{log: true}}\nphases:\n  - title: a\n    items:\n      - id: up\n        check: {{tcp: {{address: '127.0.0.1:1'}}}}\nmonitor:\n  window: 24h\n  interval: 1h\n  checks: [up]\n  cadence: {cadence}\n"
        )
    };
    let src = plan("[{every: 2m, until: 30m}, {every: 5m, until: 1h}]");
    let c = compile(&src, &no_env);
    let monitor = c
        .plan
        .as_ref()
        .and_then(|p| p.monitor.clone())
        .unwrap_or_else(|| panic!("{:#?}", c.diagnostics));
    let m = |s: u64| std::time::Duration::from_secs(s * 60);
    // Every 2m until 30m, every 5m until 1h, then the interval (1h).
    assert_eq!(monitor.period_at(m(0)), m(2));
    assert_eq!(monitor.period_at(m(29)), m(2));
    assert_eq!(monitor.period_at(m(30)), m(5));
    assert_eq!(monitor.period_at(m(61)), m(60));

    let src = plan("[{every: 2m}, {every: 0s, until: 1h}, {every: 5m, until: 30m}]");
    let c = compile(&src, &no_env);
    let got: Vec<String> = located(&src, &c).into_iter().map(|l| l.message).collect();
    assert_eq!(
        got,
        [
            "only the last stretch of a cadence may leave out `until`",
            "a cadence's `every` must be longer than 0s",
            "each `until` of a cadence must be later than the one before",
        ],
        "{got:#?}"
    );
}

const PLANTED_CONTEXTS: &str = r#"name: planted-contexts
phases:
  - title: Release
    items:
      - id: health
        check:
          http: {url: "http://127.0.0.1/health"}
          expect:
            - stable.status == 200
            - body matches "(unclosed"
            - status == 200 for 1m
            - status matches 5
            - response_time < 2 * 250ms
      - id: canary
        rollout:
          strategy: canary
          traffic: {flag: {key: new}}
          steps: [{weight: 100}]
          analysis:
            scrape: {stable: "http://127.0.0.1:9/m", canary: "http://127.0.0.1:9/m"}
            metrics: [{name: error_rate, expr: "sum(rate(http_requests_total[1m]))"}]
            rules:
              - error_rate matches "^0"
              - error_rate == "high"
              - canary.error_rate - stable.error_rate > 2%
rollback:
  levels:
    - name: counted
      when: [len(error_rate) > 0]
      actions: [pause]
"#;

#[test]
fn conditions_a_context_cannot_read_are_rejected_where_they_are_written() {
    let c = compile(PLANTED_CONTEXTS, &no_env);
    assert!(c.plan.is_none());
    let errors: Vec<Located> = located(PLANTED_CONTEXTS, &c)
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    // (message, the line's text, the token the error points at)
    let expect = [
        (
            "only analysis rules and rollback levels read",
            "stable.status",
            "stable.status",
        ),
        ("invalid regular expression", "(unclosed", "\"(unclosed\""),
        ("`for` is only allowed", "for 1m", "for 1m"),
        (
            "`matches` takes a quoted regular expression",
            "matches 5",
            "5",
        ),
        ("`matches` compares text", "matches \"^0\"", "matches"),
        ("text has no place in a rule", "\"high\"", "\"high\""),
        ("`len(…)` counts the items", "len(error_rate)", "len("),
    ];
    for (message, line_text, token) in expect {
        let hit = errors
            .iter()
            .find(|d| d.message.contains(message))
            .unwrap_or_else(|| panic!("no error `{message}` in {errors:#?}"));
        assert_eq!(hit.line, line_of(PLANTED_CONTEXTS, line_text), "{message}");
        let line = PLANTED_CONTEXTS.lines().nth(hit.line - 1).expect("line");
        let col = line.find(token).expect("token") + 1;
        assert_eq!(hit.column, col, "column of `{message}` in {line}");
    }
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
}

#[test]
fn watch_window_rules_compile_over_the_last_rollouts_metrics() {
    let src = r#"name: watched
channels:
  pager: {log: true}
phases:
  - title: a
    items:
      - id: canary
        rollout:
          strategy: canary
          traffic: {command: 'true'}
          steps: [{weight: 100}]
          analysis:
            prometheus: http://127.0.0.1:9090
            metrics:
              - {name: error_rate, query: 'sum(rate(errors{version="{{version}}"}[1m]))'}
              - {name: p95_latency, query: 'p95{version="{{version}}"}'}
            rules: [canary.error_rate - stable.error_rate > 1%]
monitor:
  window: 1h
  cadence: [{every: 2m, until: 30m}, {every: 5m}]
  rules:
    - {when: error_rate > 5% for 2m, severity: critical, level: on-call}
    - {when: p95_latency > 1000ms, severity: warning, level: tech lead}
    - {when: error_rate > 1%}
  escalation:
    - {name: on-call, after: 0s, notify: pager}
    - {name: tech lead, after: 15m, notify: pager}
    - {name: commander, after: 45m, notify: pager}
"#;
    let c = compile(src, &no_env);
    let plan = c.plan.unwrap_or_else(|| panic!("{:?}", c.diagnostics));
    let m = plan.monitor.expect("monitor");
    assert!(m.watches());
    let a = m.analysis.as_ref().expect("analysis");
    assert_eq!(a.metrics.len(), 2, "the rollout's metrics");
    assert!(a.judges.is_empty());
    assert_eq!(a.interval, Duration::from_secs(120), "the fastest period");
    let texts: Vec<String> = a.rules.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        texts,
        [
            "error_rate > 5% for 2m",
            "p95_latency > 1000ms",
            "error_rate > 1%"
        ]
    );
    let how: Vec<(&str, Option<usize>)> = m
        .rules
        .iter()
        .map(|r| (r.severity.as_str(), r.level))
        .collect();
    assert_eq!(
        how,
        [("critical", Some(0)), ("warning", Some(1)), ("error", None)]
    );
    // Entered at the tech lead: paged at once, the commander 30 min later,
    // never the on-call below; from the start, the ladder's own times.
    assert_eq!(m.escalates_after(Some(1), 1), Some(Duration::ZERO));
    assert_eq!(
        m.escalates_after(Some(1), 2),
        Some(Duration::from_secs(1800))
    );
    assert_eq!(m.escalates_after(Some(1), 0), None);
    assert_eq!(m.escalates_after(None, 1), Some(Duration::from_secs(900)));
}

#[test]
fn watch_window_rule_mistakes_name_the_field_all_at_once() {
    let src = r#"name: watched
channels:
  pager: {log: true}
phases:
  - title: a
    items:
      - id: up
        check: {tcp: {address: "127.0.0.1:9"}}
monitor:
  window: 1h
  prometheus: http://127.0.0.1:9090
  metrics:
    - {name: error_rate, query: 'sum(rate(errors[1m]))'}
  rules:
    - {when: canary.error_rate > 1.5 * stable.error_rate, level: on-call}
    - {when: eror_rate > 5%}
    - {when: error_rate > 5%, severity: page}
    - {when: error_rate > 9%, level: on-cal}
  escalation:
    - {name: on-call, after: 0s, notify: pager}
"#;
    let c = compile(src, &no_env);
    let want = [
        (
            line_of(src, "canary.error_rate"),
            "a watch-window rule reads the version serving traffic",
        ),
        (line_of(src, "eror_rate"), "unknown metric `eror_rate`"),
        (line_of(src, "severity: page"), "unknown `severity` `page`"),
        (line_of(src, "on-cal}"), "unknown escalation level `on-cal`"),
    ];
    assert_errors(src, &c, &want);

    let bare = "name: w\nphases:\n  - title: a\n    items:\n      - id: up\n        check: {tcp: {address: '127.0.0.1:9'}}\nmonitor:\n  window: 1h\n  rules:\n    - {when: error_rate > 5%}\n";
    let c = compile(bare, &no_env);
    assert_errors(
        bare,
        &c,
        &[(
            line_of(bare, "error_rate > 5%"),
            "the monitor's `rules` need metrics",
        )],
    );
}

#[test]
fn communication_schedule_mistakes_name_the_field_all_at_once() {
    let src = r#"name: told
channels:
  chat: {log: true}
comms:
  - {at: T+15m, channel: chat, message: "{{plan}} is {{status}}"}
  - {at: tomorrow, channel: chat, message: "soon"}
  - {at: T-2h, channel: chta, message: "soon"}
  - {at: T+1h, channel: chat, message: "now {{stauts}}"}
  - {at: T+2h, channel: chat, message: "errors {{metrics.error_rate}}"}
phases:
  - title: a
    items:
      - id: up
        check: {tcp: {address: '127.0.0.1:9'}}
"#;
    let c = compile(src, &no_env);
    let want = [
        (line_of(src, "tomorrow"), "`tomorrow` needs a sign"),
        (line_of(src, "chta"), "unknown channel `chta`"),
        (line_of(src, "stauts"), "unknown placeholder `{{stauts}}`"),
        (
            line_of(src, "metrics.error_rate"),
            "unknown metric `error_rate`",
        ),
    ];
    assert_errors(src, &c, &want);
}
