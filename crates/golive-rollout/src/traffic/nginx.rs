//! The nginx actuator: golive owns one small file holding one `upstream`
//! block (the main configuration `include`s it), rewrites it at each step
//! and runs the plan's reload command.
//!
//! nginx weights must be at least 1, so a server at 0 % is written `down`
//! (a parameter of the default round-robin balancer that takes the server
//! out of the rotation): canary 0 % → `server CANARY down;`, 100 % →
//! `server STABLE down;`. The file is replaced atomically (a temporary file
//! in the same directory, then `rename`), so nginx never reads half of it;
//! when the reload command fails, the previous content is put back so that
//! the file matches what nginx still runs, and the error quotes the
//! command's output (`nginx -t`'s complaint). `current()` reads the file —
//! it cannot see whether nginx has loaded it — and gives `None` when the
//! file is missing or is not one golive wrote.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use golive_runtime::Vars;
use golive_runtime::shell::{self, Shell};
use serde_json::json;

use super::{Applied, DEFAULT_TIMEOUT, TrafficError, outcome, output_tail, share};

/// The first line of every file golive writes; a file without it is not
/// golive's and is never overwritten.
const HEADER: &str = "# Written by golive's nginx traffic actuator";
/// Output kept per stream of the reload command.
const MAX_OUTPUT: usize = 64 * 1024;
/// Output quoted in an error or the journal.
const QUOTED_OUTPUT: usize = 2000;

/// An nginx upstream block in a file golive owns, and how to reload nginx.
pub struct Nginx {
    path: PathBuf,
    upstream: String,
    stable: String,
    canary: String,
    reload: String,
    timeout: Duration,
    /// For redacting secrets from the reload command and its output.
    vars: Vars,
    /// One change at a time: a change restores the content it replaced.
    lock: tokio::sync::Mutex<()>,
}

/// Shows the reload command with secrets redacted: `{:?}` ends up in logs.
impl std::fmt::Debug for Nginx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nginx")
            .field("path", &self.path)
            .field("upstream", &self.upstream)
            .field("stable", &self.stable)
            .field("canary", &self.canary)
            .field("reload", &self.vars.redact(&self.reload))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Nginx {
    /// Checks the settings: the upstream name and the two server addresses
    /// must be single nginx words (no spaces, `;`, braces, quotes or `#`),
    /// so that what golive writes is exactly one upstream with two servers.
    pub(super) fn new(
        path: &str,
        upstream: &str,
        stable: &str,
        canary: &str,
        reload: &str,
        vars: &Vars,
    ) -> Result<Nginx, TrafficError> {
        if path.trim().is_empty() {
            return Err(config("`upstream_file` is empty".into()));
        }
        check_word("upstream", upstream)?;
        check_word("stable", stable)?;
        check_word("canary", canary)?;
        if stable == canary {
            return Err(config(format!(
                "stable and canary are the same server `{stable}`"
            )));
        }
        if reload.trim().is_empty() {
            return Err(config(
                "`reload` is empty: give the command that makes nginx read the file, \
                 e.g. `nginx -t && nginx -s reload`"
                    .into(),
            ));
        }
        Ok(Nginx {
            path: PathBuf::from(path),
            upstream: upstream.to_string(),
            stable: stable.to_string(),
            canary: canary.to_string(),
            reload: reload.to_string(),
            timeout: DEFAULT_TIMEOUT,
            vars: vars.clone(),
            lock: tokio::sync::Mutex::new(()),
        })
    }

    pub(super) fn with_timeout(mut self, timeout: Duration) -> Nginx {
        self.timeout = timeout;
        self
    }

    /// `nginx upstream app in /etc/nginx/golive/app.conf (stable …, canary …), reload `…``.
    pub(super) fn describe(&self) -> String {
        format!(
            "nginx upstream {} in {} (stable {}, canary {}), reload `{}`",
            self.upstream,
            self.path.display(),
            self.stable,
            self.canary,
            self.vars.redact(&self.reload)
        )
    }

    /// Writes the upstream for `canary` %, then reloads; on a failed reload
    /// puts the previous file back. Reloads even when the file already
    /// says `canary` %: a crash may have come between writing and reloading.
    pub(super) async fn set_weight(&self, canary: u8) -> Result<Applied, TrafficError> {
        let _one_at_a_time = self.lock.lock().await;
        let stable = 100 - canary;
        let content = render(&self.upstream, &self.stable, &self.canary, canary);
        let path = self.path.clone();
        let text = content.clone();
        let (target, previous) = blocking(move || {
            let target = resolve(&path)?;
            let previous = read_previous(&target)?;
            write_atomically(&target, text.as_bytes(), previous.as_ref().map(|p| p.mode))?;
            Ok((target, previous))
        })
        .await
        .map_err(|message| self.file_error(message))?;

        let command = self.vars.redact(&self.reload);
        let run = shell::run(Shell {
            command: &self.reload,
            env: vec![
                (
                    "GOLIVE_UPSTREAM_FILE".to_string(),
                    target.display().to_string(),
                ),
                ("GOLIVE_WEIGHT".to_string(), canary.to_string()),
                ("GOLIVE_STABLE_WEIGHT".to_string(), stable.to_string()),
            ],
            workdir: None,
            timeout: Some(self.timeout),
            max_output: MAX_OUTPUT,
        })
        .await;
        let failure = match &run {
            Ok(done) if done.exit_code == Some(0) && !done.timed_out => None,
            Ok(done) => Some((
                outcome(done, self.timeout),
                output_tail(done, QUOTED_OUTPUT),
            )),
            Err(e) => Some((format!("could not start: {e}"), "(none)".to_string())),
        };
        if let Some((outcome, output)) = failure {
            let restore_target = target.clone();
            let restored = blocking(move || restore(&restore_target, previous))
                .await
                .unwrap_or_else(|e| e);
            return Err(TrafficError::NginxReload {
                command,
                outcome,
                restored,
                output: self.vars.redact(&output),
            });
        }
        let reload_output = run
            .as_ref()
            .map(|done| self.vars.redact(&output_tail(done, QUOTED_OUTPUT)))
            .unwrap_or_default();
        let duration_ms = run
            .as_ref()
            .map(|done| u64::try_from(done.duration.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or_default();
        Ok(Applied {
            canary,
            stable,
            detail: json!({
                "backend": "nginx",
                "file": target.display().to_string(),
                "upstream": self.upstream,
                "content": content,
                "reload": {
                    "command": command,
                    "exit_code": 0,
                    "duration_ms": duration_ms,
                    "output": reload_output,
                },
            }),
        })
    }

    /// The canary's share the file gives; `None` when there is no file or
    /// it is not golive's upstream for these two servers.
    pub(super) async fn current(&self) -> Result<Option<u8>, TrafficError> {
        let path = self.path.clone();
        let text = blocking(move || match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read it: {e}")),
        })
        .await
        .map_err(|message| self.file_error(message))?;
        Ok(text.and_then(|t| parse(&t, &self.upstream, &self.stable, &self.canary)))
    }

    fn file_error(&self, message: String) -> TrafficError {
        TrafficError::NginxFile {
            path: self.path.display().to_string(),
            message,
        }
    }
}

/// The upstream file for `canary` %.
fn render(upstream: &str, stable: &str, canary: &str, weight: u8) -> String {
    let server = |address: &str, weight: u8| {
        if weight == 0 {
            format!("    server {address} down;\n")
        } else {
            format!("    server {address} weight={weight};\n")
        }
    };
    format!(
        "{HEADER}; it is rewritten at every rollout step, edits are lost.\n\
         # canary {weight}%, stable {}%\n\
         upstream {upstream} {{\n{}{}}}\n",
        100 - weight,
        server(stable, 100 - weight),
        server(canary, weight),
    )
}

/// The canary's share in a file [`render`] wrote for this upstream and
/// these servers.
fn parse(text: &str, upstream: &str, stable: &str, canary: &str) -> Option<u8> {
    if !text.starts_with(HEADER) {
        return None;
    }
    let mut inside = false;
    let (mut stable_weight, mut canary_weight) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !inside {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words != ["upstream", upstream, "{"] {
                return None;
            }
            inside = true;
            continue;
        }
        if line == "}" {
            break;
        }
        let words: Vec<&str> = line.strip_suffix(';')?.split_whitespace().collect();
        let weight = match words.as_slice() {
            ["server", _, "down"] => 0,
            ["server", _, w] => w.strip_prefix("weight=")?.parse::<u32>().ok()?,
            _ => return None,
        };
        match words.get(1) {
            Some(a) if *a == stable => stable_weight = Some(weight),
            Some(a) if *a == canary => canary_weight = Some(weight),
            _ => return None,
        }
    }
    match (canary_weight?, stable_weight?) {
        (0, 0) => None,
        (c, s) => Some(share(c, s)),
    }
}

/// One word of nginx configuration that cannot end the directive or the
/// block, or start a comment.
fn check_word(what: &str, value: &str) -> Result<(), TrafficError> {
    if value.is_empty() {
        return Err(config(format!("`{what}` is empty")));
    }
    match value
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "{};#'\"\\".contains(*c))
    {
        Some(c) => Err(config(format!(
            "`{what}` `{value}` contains {c:?}; golive writes it into nginx configuration as one word \
             (an address like 10.0.0.5:8080 or unix:/run/app.sock)"
        ))),
        None => Ok(()),
    }
}

fn config(message: String) -> TrafficError {
    TrafficError::Config {
        backend: "nginx",
        message,
    }
}

/// The file's content and permission bits before this change.
struct Previous {
    content: Vec<u8>,
    mode: u32,
}

/// The file to replace: a symlink's target, so that the link stays.
fn resolve(path: &Path) -> Result<PathBuf, String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).map_err(|e| format!("cannot follow the symbolic link: {e}"))
        }
        _ => Ok(path.to_path_buf()),
    }
}

/// The current file, if any — refusing one golive did not write (an empty
/// file counts as golive's: it is how one prepares an `include`).
fn read_previous(path: &Path) -> Result<Option<Previous>, String> {
    let content = match std::fs::read(path) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    if !content.is_empty() && !content.starts_with(HEADER.as_bytes()) {
        return Err(format!(
            "it exists and golive did not write it (its first line is not `{HEADER}`); \
             golive owns its upstream file and rewrites it whole, so point `upstream_file` at a \
             file of its own, included from nginx's `http` block"
        ));
    }
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    Ok(Some(Previous { content, mode }))
}

/// Replaces `path` by `content` through a temporary file in the same
/// directory and `rename`, syncing both, so a reader (nginx, a crash)
/// sees the old file or the new one, never a mix.
fn write_atomically(path: &Path, content: &[u8], mode: Option<u32>) -> Result<(), String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| "it names no file".to_string())?
        .to_string_lossy();
    let temp = dir.join(format!(".{name}.golive-{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode.unwrap_or(0o644))
            .open(&temp)?;
        file.write_all(content)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        // The rename itself is durable once the directory is synced.
        std::fs::File::open(&dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        format!("cannot write it (through {}): {e}", temp.display())
    })
}

/// Puts back what was there before; says what it did, for the error.
fn restore(path: &Path, previous: Option<Previous>) -> Result<String, String> {
    match previous {
        Some(p) => write_atomically(path, &p.content, Some(p.mode))
            .map(|()| "the previous upstream file was restored".to_string())
            .map_err(|e| format!("restoring the previous upstream file failed: {e}")),
        None => match std::fs::remove_file(path) {
            Ok(()) => Ok("the new upstream file was removed (there was none before)".to_string()),
            Err(e) => Err(format!("removing the new upstream file failed: {e}")),
        },
    }
}

/// Runs file work off the async threads; a panic there becomes an error.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(format!("file operation failed unexpectedly: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_weights_and_down() {
        let text = render("app", "10.0.0.1:80", "10.0.0.2:80", 25);
        assert!(text.starts_with(HEADER));
        assert!(text.contains(
            "upstream app {\n    server 10.0.0.1:80 weight=75;\n    server 10.0.0.2:80 weight=25;\n}\n"
        ));
        let zero = render("app", "a:1", "b:1", 0);
        assert!(zero.contains("server a:1 weight=100;\n    server b:1 down;\n"));
        let full = render("app", "a:1", "b:1", 100);
        assert!(full.contains("server a:1 down;\n    server b:1 weight=100;\n"));
    }

    #[test]
    fn parses_only_its_own_file() {
        for w in [0, 1, 5, 25, 50, 99, 100] {
            let text = render("app", "a:1", "unix:/b.sock", w);
            assert_eq!(parse(&text, "app", "a:1", "unix:/b.sock"), Some(w));
        }
        let text = render("app", "a:1", "b:1", 30);
        assert_eq!(parse(&text, "other", "a:1", "b:1"), None);
        assert_eq!(parse(&text, "app", "a:1", "c:1"), None);
        assert_eq!(
            parse("upstream app { server a:1; }", "app", "a:1", "b:1"),
            None
        );
        assert_eq!(
            parse(&text.replace("weight=30", "weight=x"), "app", "a:1", "b:1"),
            None
        );
    }

    #[test]
    fn words_are_checked() {
        let vars = Vars::default();
        let new = |stable: &str| Nginx::new("/f", "app", stable, "b:1", "true", &vars);
        assert!(new("10.0.0.1:8080").is_ok());
        assert!(new("unix:/run/app.sock").is_ok());
        for bad in ["a:1 backup", "a:1;", "a:1}", "a#", "", "b:1"] {
            assert!(new(bad).is_err(), "{bad:?}");
        }
    }
}
