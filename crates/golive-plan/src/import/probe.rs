//! Commands of a checklist read for what they do: probes golive can run
//! itself (`curl -f`, `pg_isready`, `redis-cli ping`, `kubectl rollout
//! status`, `nc -z`, `dig`), calls to a feature-flag admin API, commands that
//! undo a release, and code blocks split at their numbered step comments.
//!
//! A probe becomes a `check`, so `golive ready` and the run verify it rather
//! than a person ticking a box. Only one-line commands are read; anything with
//! pipes, redirections or `${VAR}`s stays a command, because its meaning
//! depends on more than the probe.

use crate::raw::{RawCheck, RawCommand, RawDns, RawFlag, RawHttp, RawRedis, RawTcp};

/// Shell words of a one-line command: quotes removed, no expansion. `None`
/// for text a probe reading should not guess at (pipes, redirections,
/// `$(…)`, several lines, unbalanced quotes).
fn words(cmd: &str) -> Option<Vec<String>> {
    let line = cmd.trim().trim_start_matches("$ ").trim();
    if line.is_empty() || line.contains('\n') {
        return None;
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    any = true;
                }
                '|' | '>' | '<' | ';' | '&' | '`' => return None,
                c if c.is_whitespace() => {
                    if any || !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                    any = false;
                }
                c => cur.push(c),
            },
        }
    }
    if quote.is_some() {
        return None;
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    (!out.is_empty()).then_some(out)
}

/// A readiness probe drafted from a one-line command, with what it checks
/// (for the import notes). `None` when the command is not a known probe.
pub(crate) fn check(cmd: &str) -> Option<(RawCheck, String)> {
    if cmd.contains("${") || cmd.contains("$(") {
        return None;
    }
    let w = words(cmd)?;
    let program = w.first()?.as_str();
    let args = &w[1..];
    match program {
        "curl" => curl_probe(args),
        "wget" if args.iter().any(|a| a == "--spider") => {
            let urls: Vec<&String> = args.iter().filter(|a| a.starts_with("http")).collect();
            let flags_ok = args.iter().filter(|a| a.starts_with('-')).all(|a| {
                ["--spider", "-q", "--quiet", "-S", "--server-response"].contains(&a.as_str())
            });
            let [url] = urls.as_slice() else {
                return None;
            };
            if !flags_ok {
                return None;
            }
            let check = RawCheck {
                http: Some(RawHttp {
                    url: crate::de::Spanned::new(url.to_string()),
                    ..RawHttp::default()
                }),
                expect: vec![crate::de::Spanned::new("status < 400".into())],
                ..RawCheck::default()
            };
            Some((
                check,
                format!("`wget --spider` drafted as an HTTP check of {url}"),
            ))
        }
        "systemctl" if args.first().is_some_and(|a| a == "is-active") => Some((
            command(cmd),
            "`systemctl is-active` drafted as a command check".into(),
        )),
        "mysqladmin" if args.iter().any(|a| a == "ping") => Some((
            command(cmd),
            "`mysqladmin ping` drafted as a command check".into(),
        )),
        "pg_isready" => {
            // `pg_isready` asks the server whether it accepts connections,
            // without credentials: run as is, it is the exact check.
            Some((
                command(cmd),
                "`pg_isready` drafted as a command check".into(),
            ))
        }
        "kubectl"
            if args.iter().any(|a| a == "rollout") && args.iter().any(|a| a == "status")
                || args.iter().any(|a| a == "wait") =>
        {
            Some((
                command(cmd),
                "`kubectl rollout status`/`wait` drafted as a command check".into(),
            ))
        }
        "redis-cli" if args.last().is_some_and(|a| a.eq_ignore_ascii_case("ping")) => {
            let (mut host, mut port) = ("127.0.0.1".to_string(), "6379".to_string());
            let mut i = 0;
            while i < args.len() {
                match args[i].as_str() {
                    "-h" => host = args.get(i + 1)?.clone(),
                    "-p" => port = args.get(i + 1)?.clone(),
                    "ping" | "PING" => {}
                    _ => return None,
                }
                i += if args[i].starts_with('-') { 2 } else { 1 };
            }
            let url = format!("redis://{host}:{port}");
            let check = RawCheck {
                redis: Some(RawRedis {
                    url: crate::de::Spanned::new(url.clone()),
                }),
                ..RawCheck::default()
            };
            Some((
                check,
                format!("`redis-cli ping` drafted as a Redis check of {url}"),
            ))
        }
        "nc" | "ncat" | "netcat" => {
            let flags: Vec<&String> = args.iter().filter(|a| a.starts_with('-')).collect();
            if !flags.iter().any(|f| f.contains('z'))
                || flags
                    .iter()
                    .any(|f| !f[1..].chars().all(|c| "zvwn".contains(c)))
            {
                return None;
            }
            let rest: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
            let [host, port] = rest.as_slice() else {
                return None;
            };
            port.parse::<u16>().ok()?;
            let address = format!("{host}:{port}");
            let check = RawCheck {
                tcp: Some(RawTcp {
                    address: crate::de::Spanned::new(address.clone()),
                }),
                ..RawCheck::default()
            };
            Some((
                check,
                format!("`nc -z` drafted as a TCP check of {address}"),
            ))
        }
        "dig" | "host" | "nslookup" => {
            let names: Vec<&String> = args
                .iter()
                .filter(|a| !a.starts_with('+') && !a.starts_with('-') && !a.starts_with('@'))
                .collect();
            let [name] = names.as_slice() else {
                return None;
            };
            if !name.contains('.') {
                return None;
            }
            let check = RawCheck {
                dns: Some(RawDns {
                    name: crate::de::Spanned::new(name.to_string()),
                    ..RawDns::default()
                }),
                ..RawCheck::default()
            };
            Some((
                check,
                format!("`{program}` drafted as a DNS check of {name}"),
            ))
        }
        _ => None,
    }
}

fn command(cmd: &str) -> RawCheck {
    RawCheck {
        command: Some(RawCommand {
            command: crate::de::Spanned::new(cmd.trim().trim_start_matches("$ ").to_string()),
            workdir: None,
        }),
        ..RawCheck::default()
    }
}

/// `curl -f URL`, `curl -fsS URL`, `curl -I URL`: an HTTP check of the URL
/// (`-I` asks with HEAD). A method other than GET/HEAD, a body, headers or an
/// output file make it a command, not a probe.
fn curl_probe(args: &[String]) -> Option<(RawCheck, String)> {
    let mut url = None;
    let mut fail = false;
    let mut head = false;
    for a in args {
        match a.as_str() {
            "--fail" | "--fail-with-body" => fail = true,
            "--head" => head = true,
            "--silent" | "--show-error" | "--location" => {}
            w if w.starts_with("--") => return None,
            w if w.starts_with('-') && w.len() > 1 => {
                if !w[1..].chars().all(|c| "fsSLI".contains(c)) {
                    return None;
                }
                fail |= w.contains('f');
                head |= w.contains('I');
            }
            w if (w.starts_with("http://") || w.starts_with("https://")) && url.is_none() => {
                url = Some(w.to_string());
            }
            _ => return None,
        }
    }
    let url = url?;
    if !(fail || head) {
        return None;
    }
    let check = RawCheck {
        http: Some(RawHttp {
            url: crate::de::Spanned::new(url.clone()),
            method: head.then(|| crate::de::Spanned::new("HEAD".into())),
            ..RawHttp::default()
        }),
        expect: vec![crate::de::Spanned::new(
            if fail { "status < 400" } else { "status < 500" }.into(),
        )],
        ..RawCheck::default()
    };
    Some((check, format!("`curl` drafted as an HTTP check of {url}")))
}

/// A call to a feature-flag admin API (`curl -X POST …/feature-flags -d
/// '{"flag": "x", "enabled": true, "percentage": 5}'`) → the flag change it
/// makes. `None` when the command is not such a call or its body names no flag.
pub(crate) fn flag_call(cmd: &str) -> Option<RawFlag> {
    let joined = cmd.replace("\\\n", " ");
    let w = words(&joined.replace('\n', " "))?;
    if w.first()? != "curl" {
        return None;
    }
    if !w
        .iter()
        .any(|a| a.starts_with("http") && a.to_ascii_lowercase().contains("flag"))
    {
        return None;
    }
    let body = w
        .iter()
        .position(|a| a == "-d" || a == "--data" || a == "--data-raw" || a == "--json")
        .and_then(|i| w.get(i + 1))?;
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    let key = ["flag", "key", "name", "feature"]
        .iter()
        .find_map(|k| json.get(*k).and_then(|v| v.as_str()))?
        .to_string();
    let enabled = json.get("enabled").and_then(|v| v.as_bool());
    let percentage = json
        .get("percentage")
        .or_else(|| json.get("rollout"))
        .and_then(|v| v.as_f64())
        .filter(|p| (0.0..=100.0).contains(p));
    (enabled.is_some() || percentage.is_some()).then(|| RawFlag {
        key: crate::de::Spanned::new(key),
        enabled,
        percentage: percentage.map(crate::de::Spanned::new),
        variant: None,
    })
}

/// Words of a command or title that undo a release.
const UNDO: [&str; 7] = [
    "rollback",
    "roll back",
    "roll-back",
    "undo",
    "revert",
    "downgrade",
    "restore",
];

/// True when `cmd` undoes a release (`helm rollback`, `kubectl rollout
/// undo`, `./scripts/rollback_to_v1.sh`, `migrate down`…): such a command
/// belongs to the rollback, never to a forward phase.
pub fn is_undo_command(cmd: &str) -> bool {
    let c = cmd.to_ascii_lowercase().replace(['_', '-'], " ");
    UNDO.iter().any(|w| c.contains(&w.replace('-', " ")))
        || c.contains("migrate down")
        || c.contains("db:rollback")
}

/// A code block cut at its numbered step comments (`# 1. Upgrade the
/// chart`, `# 2) Wait`): (title, command) per step. `None` when the block
/// has fewer than two numbered comments.
pub(crate) fn numbered_steps(code: &str) -> Option<Vec<(String, String)>> {
    let mut steps: Vec<(String, Vec<&str>)> = Vec::new();
    let mut preamble: Vec<&str> = Vec::new();
    for line in code.lines() {
        let t = line.trim();
        if let Some(c) = t.strip_prefix('#')
            && !t.starts_with("#!")
            && let Some(title) = numbered(c.trim())
        {
            steps.push((title.to_string(), Vec::new()));
            continue;
        }
        match steps.last_mut() {
            Some((_, body)) => body.push(line),
            None => preamble.push(line),
        }
    }
    if steps.len() < 2 {
        return None;
    }
    if let Some((_, first)) = steps.first_mut() {
        let mut body: Vec<&str> = preamble
            .into_iter()
            .filter(|l| !l.trim().is_empty())
            .collect();
        body.append(first);
        *first = body;
    }
    Some(
        steps
            .into_iter()
            .map(|(t, body)| (t, body.join("\n").trim_matches('\n').to_string()))
            .collect(),
    )
}

/// `1. Upgrade the chart` → `Upgrade the chart`.
fn numbered(c: &str) -> Option<&str> {
    let c = c.strip_prefix("Step ").unwrap_or(c);
    let digits = c.find(|ch: char| !ch.is_ascii_digit()).unwrap_or(c.len());
    if digits == 0 || digits > 2 {
        return None;
    }
    let rest = c[digits..].strip_prefix(['.', ')', ':'])?.trim();
    (!rest.is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(cmd: &str) -> Option<&'static str> {
        check(cmd).map(|(c, _)| {
            if c.http.is_some() {
                "http"
            } else if c.tcp.is_some() {
                "tcp"
            } else if c.dns.is_some() {
                "dns"
            } else if c.redis.is_some() {
                "redis"
            } else {
                "command"
            }
        })
    }

    #[test]
    fn probes_are_recognised() {
        let table = [
            ("curl -f https://x.io/health", Some("http")),
            ("curl -fsS https://x.io/readyz", Some("http")),
            ("curl -I https://x.io/", Some("http")),
            ("curl https://x.io/", None),
            ("curl -f -X POST https://x.io/", None),
            ("curl -f ${API}/health", None),
            ("pg_isready -h db.internal -p 5432", Some("command")),
            (
                "kubectl -n p rollout status deployment/x --timeout=60s",
                Some("command"),
            ),
            (
                "kubectl wait --for=condition=ready pod -l app=x",
                Some("command"),
            ),
            ("kubectl -n p rollout undo deployment/x", None),
            ("redis-cli -h cache.internal ping", Some("redis")),
            ("redis-cli -h cache.internal flushall", None),
            ("nc -z db.internal 6432", Some("tcp")),
            ("nc -zv db.internal 6432", Some("tcp")),
            ("nc db.internal 6432", None),
            ("dig +short api.example.com", Some("dns")),
            ("curl -f https://a | jq .", None),
            ("helm upgrade x y", None),
            ("wget -q --spider https://x.io/health", Some("http")),
            ("wget https://x.io/file.tar.gz", None),
            ("systemctl is-active nginx", Some("command")),
            ("systemctl restart nginx", None),
            ("mysqladmin -h db ping", Some("command")),
        ];
        for (cmd, want) in table {
            assert_eq!(kind(cmd), want, "{cmd}");
        }
        let (c, _) = check("redis-cli -h cache.internal -p 6380 ping").expect("probe");
        assert_eq!(
            c.redis.expect("redis").url.value,
            "redis://cache.internal:6380"
        );
    }

    #[test]
    fn flag_api_calls_are_flag_changes() {
        let cmd = "curl -X POST https://flags.example.com/api/admin/feature-flags \\\n  -H \"Authorization: Bearer $T\" \\\n  -d '{\"flag\": \"trips_v5\", \"enabled\": true, \"percentage\": 5}'";
        let f = flag_call(cmd).expect("flag");
        assert_eq!(f.key.value, "trips_v5");
        assert_eq!(f.enabled, Some(true));
        assert_eq!(f.percentage.map(|p| p.value), Some(5.0));
        assert!(
            flag_call("curl -X POST https://api.example.com/orders -d '{\"id\": 1}'").is_none()
        );
    }

    #[test]
    fn undo_commands() {
        for c in [
            "helm rollback ledger-api 0",
            "kubectl rollout undo deployment/x",
            "./scripts/rollback_to_v1.sh",
            "git revert HEAD",
            "alembic downgrade -1",
            "npm run migrate down",
        ] {
            assert!(is_undo_command(c), "{c}");
        }
        assert!(!is_undo_command("helm upgrade x y"));
    }

    #[test]
    fn blocks_split_at_numbered_comments() {
        let steps =
            numbered_steps("# 1. Upgrade\nhelm upgrade x\n# 2. Wait\nkubectl rollout status d/x\n")
                .expect("steps");
        assert_eq!(
            steps,
            vec![
                ("Upgrade".to_string(), "helm upgrade x".to_string()),
                ("Wait".to_string(), "kubectl rollout status d/x".to_string())
            ]
        );
        assert!(numbered_steps("# deploy\nhelm upgrade x\n").is_none());
    }
}
