//! Every probe kind against a real server: servers started here on
//! 127.0.0.1:0 (HTTP, HTTPS, DNS, a second Redis, Prometheus) and the
//! machine's PostgreSQL and Redis. Timeouts are generous and nothing asserts
//! on timing: these tests say what is observed, not how fast.

mod util;

use std::io::Write;
use std::time::Duration;

use golive_probe::{Status, run_check};
use golive_runtime::Vars;
use util::*;

// ---------------------------------------------------------------- HTTP

#[tokio::test]
async fn http_ok_json_endpoint_passes() {
    let server = HttpServer::start().await;
    let r = run(&format!(
        r#"http:
  url: "{}"
expect:
  - status == 200
  - body.$.status == "UP"
  - body.$['db'].latency_ms < 100
  - len(body.$.items) == 3
  - body.$.items[0] == 1
  - body contains "1.4.2"
  - header.content-type == "application/json"
  - response_time < 20s
timeout: 20s"#,
        server.url("/ok")
    ))
    .await;
    assert_status(&r, Status::Pass);
    assert_eq!(r.attempts, 1);
    assert_eq!(observed(&r, "status == 200"), "200");
    assert_eq!(observed(&r, "body.$.status == \"UP\""), "\"UP\"");
}

#[tokio::test]
async fn http_defaults_to_a_2xx_status() {
    let server = HttpServer::start().await;
    let ok = run(&format!("http:\n  url: \"{}\"", server.url("/plain"))).await;
    assert_status(&ok, Status::Pass);
    assert_eq!(ok.conditions.len(), 2, "{ok:#?}");
    let down = run(&format!("http:\n  url: \"{}\"", server.url("/down"))).await;
    assert_status(&down, Status::Fail);
}

#[tokio::test]
async fn http_503_fails_with_the_observed_status() {
    let server = HttpServer::start().await;
    let r = run(&format!(
        "http:\n  url: \"{}\"\nexpect:\n  - status == 200\ntimeout: 20s",
        server.url("/down")
    ))
    .await;
    assert_status(&r, Status::Fail);
    assert_eq!(observed(&r, "status == 200"), "503");
    assert!(r.error.is_none());
}

#[tokio::test]
async fn http_slow_endpoint_times_out() {
    let server = HttpServer::start().await;
    let r = run(&format!(
        "http:\n  url: \"{}\"\nexpect:\n  - status == 200\ntimeout: 500ms",
        server.url("/slow")
    ))
    .await;
    assert_status(&r, Status::Error);
    assert!(r.conditions.is_empty());
    let error = r.error.as_deref().unwrap_or("");
    assert!(error.contains("timed out"), "{error}");
}

#[tokio::test]
async fn http_dropped_connection_is_an_error() {
    let server = HttpServer::start().await;
    let r = run(&format!(
        "http:\n  url: \"{}\"\ntimeout: 20s",
        server.url("/drop")
    ))
    .await;
    assert_status(&r, Status::Error);
    assert!(r.error.as_deref().unwrap_or("").contains("/drop"), "{r:#?}");
}

#[tokio::test]
async fn http_security_headers_present_and_absent() {
    let server = HttpServer::start().await;
    let body = |path: &str| {
        format!(
            r#"http:
  url: "{}"
expect:
  - header.Strict-Transport-Security contains "max-age"
  - header.X-Content-Type-Options == "nosniff"
timeout: 20s"#,
            server.url(path)
        )
    };
    let present = run(&body("/ok")).await;
    assert_status(&present, Status::Pass);
    let absent = run(&body("/plain")).await;
    assert_status(&absent, Status::Fail);
    assert_eq!(
        observed(
            &absent,
            "header.Strict-Transport-Security contains \"max-age\""
        ),
        "absent"
    );
}

#[tokio::test]
async fn http_method_headers_and_body_with_variables() {
    let server = HttpServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let token = dir.path().join("token");
    std::fs::write(&token, "tok-secret-42\n").expect("write token");
    let plan = plan(
        &format!(
            "variables:\n  BASE: \"{}\"\nsecrets:\n  TOKEN: \"file:{}\"",
            server.url(""),
            token.display()
        ),
        r#"http:
  url: "${BASE}/echo"
  method: post
  headers:
    X-Token: "${TOKEN}"
  body: '{"deploy": "${BASE}"}'
expect:
  - body.$.method == "POST"
  - body.$.token == "tok-secret-42"
  - body.$.body contains "deploy"
  - body.$.token == "wrong"
timeout: 20s"#,
    );
    let vars = Vars::resolve(&plan, &[]).expect("vars");
    let r = run_check(&util::check_of(&plan), &vars).await;
    assert_status(&r, Status::Fail);
    let passed: Vec<bool> = r.conditions.iter().map(|c| c.passed).collect();
    assert_eq!(passed, [true, true, true, false], "{r:#?}");
    // The secret the server echoed back is redacted from what golive shows.
    assert_eq!(observed(&r, "body.$.token == \"wrong\""), "\"***\"");
}

#[tokio::test]
async fn http_retries_a_flaky_endpoint_until_it_passes() {
    let server = HttpServer::start().await;
    let r = run(&format!(
        "http:\n  url: \"{}\"\nexpect:\n  - status == 200\nretries: 2\nretry_delay: 50ms\ntimeout: 20s",
        server.url("/flaky")
    ))
    .await;
    assert_status(&r, Status::Pass);
    assert_eq!(r.attempts, 3);
}

#[tokio::test]
async fn http_stops_after_its_retries() {
    let server = HttpServer::start().await;
    let r = run(&format!(
        "http:\n  url: \"{}\"\nretries: 1\nretry_delay: 50ms\ntimeout: 20s",
        server.url("/down")
    ))
    .await;
    assert_status(&r, Status::Fail);
    assert_eq!(r.attempts, 2);
}

// ---------------------------------------------------------------- HTTPS and TLS

#[tokio::test]
async fn https_trusts_a_given_ca_or_skips_verification() {
    let pki = TestPki::new(10);
    let server = HttpServer::start_with(Some(pki.server.clone())).await;
    let url = format!("https://localhost:{}/ok", server.addr.port());
    let with_ca = run(&format!(
        "http:\n  url: \"{url}\"\n  ca: \"{}\"\ntimeout: 20s",
        pki.ca_path().display()
    ))
    .await;
    assert_status(&with_ca, Status::Pass);
    let untrusted = run(&format!("http:\n  url: \"{url}\"\ntimeout: 20s")).await;
    assert_status(&untrusted, Status::Error);
    let unverified = run(&format!(
        "http:\n  url: \"{url}\"\n  tls_verify: false\ntimeout: 20s"
    ))
    .await;
    assert_status(&unverified, Status::Pass);
}

#[tokio::test]
async fn tls_certificate_expiring_in_ten_days() {
    let pki = TestPki::new(10);
    let server = HttpServer::start_with(Some(pki.server.clone())).await;
    let address = format!("127.0.0.1:{}", server.addr.port());
    let body = |expect: &str, ca: bool| {
        let ca = if ca {
            format!("\n  ca: \"{}\"", pki.ca_path().display())
        } else {
            String::new()
        };
        format!(
            "tls:\n  address: \"{address}\"\n  server_name: localhost{ca}\nexpect:\n  - {expect}\ntimeout: 20s"
        )
    };
    let r = run(&body("cert.days_left > 30", true)).await;
    assert_status(&r, Status::Fail);
    // 10 days from when the certificate was made, less the seconds since.
    let days = observed(&r, "cert.days_left > 30");
    assert!(days == "9" || days == "10", "{r:#?}");
    assert_status(&run(&body("cert.days_left > 5", true)).await, Status::Pass);
    assert_status(
        &run(&body("cert.expires_in > 5d", true)).await,
        Status::Pass,
    );
    assert_status(
        &run(&body("cert.expires_in < 30d", true)).await,
        Status::Pass,
    );
    assert_status(&run(&body("cert.valid == true", true)).await, Status::Pass);
    assert_status(
        &run(&body("cert.subject contains \"golive test server\"", true)).await,
        Status::Pass,
    );
    assert_status(
        &run(&body("cert.issuer contains \"golive test CA\"", true)).await,
        Status::Pass,
    );
    assert_status(
        &run(&body("tls.version == \"1.3\"", true)).await,
        Status::Pass,
    );

    // Without the CA the chain is not trusted, yet the certificate is still read.
    let r = run(&body("cert.valid == true", false)).await;
    assert_status(&r, Status::Fail);
    assert!(
        observed(&r, "cert.valid == true").starts_with("false ("),
        "{r:#?}"
    );
    assert_status(
        &run(&body("cert.valid == false", false)).await,
        Status::Pass,
    );
    assert_status(&run(&body("cert.days_left > 5", false)).await, Status::Pass);
    // The defaults want a valid chain.
    let defaults = run(&format!(
        "tls:\n  address: \"{address}\"\n  server_name: localhost\ntimeout: 20s"
    ))
    .await;
    assert_status(&defaults, Status::Fail);
}

#[tokio::test]
async fn tls_to_a_closed_port_is_an_error() {
    let port = free_port();
    let r = run(&format!(
        "tls:\n  address: \"127.0.0.1:{port}\"\ntimeout: 20s"
    ))
    .await;
    assert_status(&r, Status::Error);
}

// ---------------------------------------------------------------- TCP

#[tokio::test]
async fn tcp_listening_port_passes_and_closed_port_fails() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let open = listener.local_addr().expect("address");
    let r = run(&format!(
        "tcp:\n  address: \"{open}\"\nexpect:\n  - connected == true\ntimeout: 20s"
    ))
    .await;
    assert_status(&r, Status::Pass);

    let closed = free_port();
    let r = run(&format!(
        "tcp:\n  address: \"127.0.0.1:{closed}\"\ntimeout: 20s"
    ))
    .await;
    assert_status(&r, Status::Fail);
    assert!(
        observed(&r, "connected == true").starts_with("false"),
        "{r:#?}"
    );
}

// ---------------------------------------------------------------- DNS

#[tokio::test]
async fn dns_answers_and_nxdomain() {
    let dns = DnsServer::start().await;
    let r = run(&format!(
        r#"dns:
  name: app.golive.test
  resolver: "{}"
expect:
  - answers contains "10.1.2.3"
  - len(answers) == 1
  - rcode == "NoError"
timeout: 20s"#,
        dns.addr
    ))
    .await;
    assert_status(&r, Status::Pass);

    let r = run(&format!(
        "dns:\n  name: nope.golive.test\n  resolver: \"{}\"\ntimeout: 20s",
        dns.addr
    ))
    .await;
    assert_status(&r, Status::Fail);
    assert_eq!(observed(&r, "rcode == \"NoError\""), "\"NXDomain\"");

    let r = run(&format!(
        "dns:\n  name: nope.golive.test\n  resolver: \"{}\"\nexpect:\n  - rcode == NXDomain\ntimeout: 20s",
        dns.addr
    ))
    .await;
    assert_status(&r, Status::Pass);
}

// ---------------------------------------------------------------- PostgreSQL

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";

#[tokio::test]
async fn postgres_query_value_and_recovery() {
    let r = run(&format!(
        r#"postgres:
  url: "{PG}"
  query: select 1
expect:
  - connected == true
  - value == 1
  - in_recovery == false
  - connections >= 1
timeout: 20s"#
    ))
    .await;
    assert_status(&r, Status::Pass);

    let r = run(&format!(
        "postgres:\n  url: \"{PG}\"\n  query: select 'ready'::text, 2\nexpect:\n  - value == \"ready\"\n  - value == \"down\"\ntimeout: 20s"
    ))
    .await;
    assert_status(&r, Status::Fail);
    assert_eq!(observed(&r, "value == \"down\""), "\"ready\"");

    let r = run(&format!(
        "postgres:\n  url: \"{PG}\"\n  query: select 2.50::numeric\nexpect:\n  - value > 2\ntimeout: 20s"
    ))
    .await;
    assert_status(&r, Status::Pass);
}

#[tokio::test]
async fn postgres_wrong_database_is_an_error() {
    let r = run(
        "postgres:\n  url: \"postgres://postgres@127.0.0.1:5432/golive_no_such_db\"\ntimeout: 20s",
    )
    .await;
    assert_status(&r, Status::Error);
    assert!(
        r.error
            .as_deref()
            .unwrap_or("")
            .contains("golive_no_such_db"),
        "{r:#?}"
    );
}

#[tokio::test]
async fn postgres_password_from_a_secret_never_shows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("pg-password");
    std::fs::write(&secret, "Sup3r-Secret-PW\n").expect("write secret");
    let port = free_port();
    let plan = plan(
        &format!("secrets:\n  PG_PASSWORD: \"file:{}\"", secret.display()),
        &format!(
            "postgres:\n  url: \"postgres://postgres:${{PG_PASSWORD}}@127.0.0.1:{port}/test\"\ntimeout: 20s"
        ),
    );
    let vars = Vars::resolve(&plan, &[]).expect("vars");
    let r = run_check(&check_of(&plan), &vars).await;
    assert_status(&r, Status::Error);
    let error = r.error.as_deref().unwrap_or("");
    assert!(!error.contains("Sup3r-Secret-PW"), "{error}");
    assert!(error.contains("***"), "{error}");
}

// ---------------------------------------------------------------- Redis

#[tokio::test]
async fn redis_machine_server_and_a_password_protected_one() {
    // The machine's server: no password, nothing on disk.
    let open = "redis:\n  url: \"redis://127.0.0.1:6379\"\ntimeout: 20s\nexpect:\n";
    let r = run(&format!(
        "{open}  - ping == true\n  - persistence == \"none\"\n  - memory_used > 0"
    ))
    .await;
    assert_status(&r, Status::Pass);
    let r = run(&format!("{open}  - auth_required == true")).await;
    assert_status(&r, Status::Fail);
    let r = run(&format!("{open}  - persistence == \"aof\"")).await;
    assert_status(&r, Status::Fail);

    // A second server with a password and an append-only file.
    let redis_server = which("redis-server").expect("redis-server on PATH");
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let log = dir.path().join("redis.log");
    let args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--requirepass",
        "secretpw",
        "--appendonly",
        "yes",
        "--save",
        "",
        "--dir",
        &dir.path().display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut guard = ChildGuard::spawn("redis-server", &redis_server.to_string_lossy(), &args, &log);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let up = wait_until(Duration::from_secs(30), || accepts(addr)).await;
    guard.assert_running(&log);
    assert!(up, "redis-server did not listen on {addr}");

    let locked =
        format!("redis:\n  url: \"redis://:secretpw@127.0.0.1:{port}\"\ntimeout: 20s\nexpect:\n");
    let r = run(&format!(
        "{locked}  - ping == true\n  - auth_required == true\n  - persistence == \"aof\"\n  - memory_used > 0"
    ))
    .await;
    assert_status(&r, Status::Pass);
    // Without the password: the server answers, refuses, and says so.
    let r = run(&format!(
        "redis:\n  url: \"redis://127.0.0.1:{port}\"\ntimeout: 20s\nexpect:\n  - auth_required == true\n  - ping == true"
    ))
    .await;
    assert_status(&r, Status::Fail);
    assert!(r.conditions[0].passed, "{r:#?}");
    assert!(observed(&r, "ping == true").contains("NOAUTH"), "{r:#?}");
    drop(guard);
}

#[tokio::test]
async fn redis_unreachable_is_an_error() {
    let port = free_port();
    let r = run(&format!(
        "redis:\n  url: \"redis://127.0.0.1:{port}\"\ntimeout: 20s"
    ))
    .await;
    assert_status(&r, Status::Error);
}

// ---------------------------------------------------------------- Prometheus

#[tokio::test]
async fn prometheus_query_and_alerts() {
    let prometheus =
        which("prometheus").expect("prometheus on PATH (scripts/setup.sh installs it)");
    let target = HttpServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: golive\n    rules:\n      - alert: GoliveTestAlert\n        expr: vector(1)\n        for: 0s\n        labels:\n          severity: test\n",
    )
    .expect("write rules");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: golive\n    static_configs:\n      - targets: ['{}']\n",
            rules.display(),
            target.addr
        ),
    )
    .expect("write config");
    let port = free_port();
    let log = dir.path().join("prometheus.log");
    let args = vec![
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", dir.path().join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--log.level=warn".to_string(),
    ];
    let mut guard = ChildGuard::spawn("prometheus", &prometheus.to_string_lossy(), &args, &log);
    let base = format!("http://127.0.0.1:{port}");
    let query = |expect: &str| {
        format!(
            "prometheus:\n  url: \"{base}\"\n  query: golive_test_up\nexpect:\n  - {expect}\ntimeout: 20s"
        )
    };
    let alerts = |severity: &str| {
        format!("prometheus:\n  url: \"{base}\"\n  alerts:\n    severity: {severity}\ntimeout: 20s")
    };

    let scraped = wait_until(Duration::from_secs(30), || async {
        run(&query("value == 1")).await.status == Status::Pass
    })
    .await;
    guard.assert_running(&log);
    assert!(scraped, "Prometheus has no golive_test_up sample after 30s");
    let firing = wait_until(Duration::from_secs(30), || async {
        run(&alerts("test")).await.status == Status::Fail
    })
    .await;
    assert!(firing, "the test alert did not fire within 30s");

    assert_status(&run(&query("value == 1")).await, Status::Pass);
    let r = run(&query("value > 5")).await;
    assert_status(&r, Status::Fail);
    assert_eq!(observed(&r, "value > 5"), "1");
    let r = run(&alerts("test")).await;
    assert_status(&r, Status::Fail);
    assert_eq!(observed(&r, "alerts == 0"), "1");
    assert_status(&run(&alerts("none")).await, Status::Pass);

    let r = run(&format!(
        "prometheus:\n  url: \"{base}\"\n  query: golive_no_such_metric\ntimeout: 20s"
    ))
    .await;
    assert_status(&r, Status::Error);
    assert!(
        r.error.as_deref().unwrap_or("").contains("no data"),
        "{r:#?}"
    );
    drop(guard);
}

// ---------------------------------------------------------------- command

#[tokio::test]
async fn command_exit_codes_and_output() {
    let r = run("command:\n  command: exit 0\ntimeout: 20s").await;
    assert_status(&r, Status::Pass);
    let r = run("command:\n  command: exit 3\ntimeout: 20s").await;
    assert_status(&r, Status::Fail);
    assert_eq!(observed(&r, "exit_code == 0"), "3");
    let r = run(
        "command:\n  command: echo ready; echo warn >&2\nexpect:\n  - stdout contains ready\n  - stderr matches \"^warn\"\n  - duration < 20s\ntimeout: 20s",
    )
    .await;
    assert_status(&r, Status::Pass);
}

#[tokio::test]
async fn command_gets_plan_variables_and_workdir() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plan = plan(
        "variables:\n  GREETING: hello",
        &format!(
            "command:\n  command: echo \"$GREETING ${{GREETING}}\"; pwd\n  workdir: \"{}\"\nexpect:\n  - stdout contains \"hello hello\"\n  - stdout contains \"{}\"\ntimeout: 20s",
            dir.path().display(),
            dir.path().display()
        ),
    );
    let vars = Vars::resolve(&plan, &[]).expect("vars");
    let r = run_check(&check_of(&plan), &vars).await;
    assert_status(&r, Status::Pass);
}

#[tokio::test]
async fn command_times_out_and_its_processes_are_killed() {
    let r = run("command:\n  command: sleep 5\ntimeout: 500ms").await;
    assert_status(&r, Status::Error);
    assert!(
        r.error.as_deref().unwrap_or("").contains("timed out"),
        "{r:#?}"
    );

    // A background child of the shell goes with it.
    let dir = tempfile::tempdir().expect("temp dir");
    let pidfile = dir.path().join("pid");
    let r = run(&format!(
        "command:\n  command: sleep 30 & echo $! > {}; wait\ntimeout: 3s",
        pidfile.display()
    ))
    .await;
    assert_status(&r, Status::Error);
    let pid = std::fs::read_to_string(&pidfile).expect("the command wrote its child's pid");
    let proc_dir = format!("/proc/{}", pid.trim());
    let gone = wait_until(Duration::from_secs(10), || {
        let stat = std::fs::read_to_string(format!("{proc_dir}/stat"));
        // Gone, or a zombie waiting for a reaper: either way no longer running.
        async move {
            stat.map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
        }
    })
    .await;
    assert!(gone, "{proc_dir} still runs after the timeout");
}

// ---------------------------------------------------------------- env and file

#[tokio::test]
async fn env_vars_set_and_missing() {
    let r = run("env:\n  vars: [PATH, HOME]").await;
    assert_status(&r, Status::Pass);
    let r = run("env:\n  vars: [PATH, GOLIVE_TEST_SURELY_UNSET_VAR]").await;
    assert_status(&r, Status::Fail);
    assert_eq!(observed(&r, "len(missing) == 0"), "1");
    let r = run(
        "env:\n  vars: [PATH, GOLIVE_TEST_SURELY_UNSET_VAR]\nexpect:\n  - missing contains GOLIVE_TEST_SURELY_UNSET_VAR\n  - missing !contains PATH",
    )
    .await;
    assert_status(&r, Status::Pass);
}

#[tokio::test]
async fn file_exists_size_and_age() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(b"backup-data").expect("write");
    let path = file.path().display().to_string();
    let r = run(&format!(
        "file:\n  path: \"{path}\"\nexpect:\n  - exists == true\n  - size == 11\n  - age < 1h"
    ))
    .await;
    assert_status(&r, Status::Pass);
    let r = run(&format!("file:\n  path: \"{path}.missing\"")).await;
    assert_status(&r, Status::Fail);
    assert!(
        observed(&r, "exists == true").starts_with("false"),
        "{r:#?}"
    );
}

// ---------------------------------------------------------------- variables

#[tokio::test]
async fn variables_plan_then_environment_then_overrides() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("api-key");
    std::fs::write(&secret, "key-from-file-123\n").expect("write secret");
    let header = format!(
        "variables:\n  PATH: from-plan\n  ONLY_PLAN: plan-value\n  REGION: plan-region\nsecrets:\n  API_KEY: \"file:{}\"\n  HOME_SECRET: env:HOME",
        secret.display()
    );
    let plan = plan(&header, "env:\n  vars: [PATH]");
    let vars = Vars::resolve(&plan, &[("REGION".into(), "cli-region".into())]).expect("vars");
    let path = std::env::var("PATH").expect("PATH is set");
    let home = std::env::var("HOME").expect("HOME is set");
    assert_eq!(vars.expand("${ONLY_PLAN}"), "plan-value");
    assert_eq!(
        vars.expand("${PATH}"),
        path,
        "the environment beats the plan"
    );
    assert_eq!(vars.expand("${REGION}"), "cli-region", "--var beats both");
    assert_eq!(vars.expand("${API_KEY}"), "key-from-file-123");
    assert_eq!(vars.expand("${HOME_SECRET}"), home);
    assert_eq!(
        vars.expand("${NOT_DEFINED_ANYWHERE_X}"),
        "${NOT_DEFINED_ANYWHERE_X}"
    );
    assert_eq!(
        vars.redact("key=key-from-file-123 home=".to_string().as_str()),
        "key=*** home="
    );

    let unset = util::plan(
        "secrets:\n  TOKEN: env:GOLIVE_TEST_SURELY_UNSET_VAR",
        "env:\n  vars: [PATH]",
    );
    let e = Vars::resolve(&unset, &[]).expect_err("unset secret");
    let msg = e.to_string();
    assert!(
        msg.contains("TOKEN") && msg.contains("env:GOLIVE_TEST_SURELY_UNSET_VAR"),
        "{msg}"
    );
    let unreadable = util::plan(
        "secrets:\n  CERT_KEY: file:/nonexistent/golive/key",
        "env:\n  vars: [PATH]",
    );
    let msg = Vars::resolve(&unreadable, &[])
        .expect_err("no file")
        .to_string();
    assert!(
        msg.contains("CERT_KEY") && msg.contains("file:/nonexistent/golive/key"),
        "{msg}"
    );
}
