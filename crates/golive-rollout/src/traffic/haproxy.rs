//! The HAProxy actuator: server weights set through HAProxy's runtime API
//! (its `stats socket`, which must be `level admin`), over a unix socket or
//! TCP.
//!
//! The canary's server gets weight `w` and the stable's `100 - w` (HAProxy
//! accepts 0–256; weight 0 stops new requests to a server without cutting
//! its established connections). One command per connection, the API's
//! non-interactive mode: HAProxy answers and closes, so the answer is
//! exactly what it said about that command — empty for success, the error
//! text otherwise. `current()` asks `get weight` for both servers.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use super::{Applied, TrafficError, share};

/// Time to open the socket: a local admin socket that does not accept
/// quickly is not going to.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time for HAProxy to answer one command and close.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest answer read; `set`/`get weight` answers are a line.
const MAX_ANSWER: u64 = 64 * 1024;

/// Where the runtime API listens.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Address {
    /// A unix socket path.
    Unix(String),
    /// A TCP host and port.
    Tcp(String, u16),
}

/// HAProxy weights of one backend's stable and canary servers.
#[derive(Debug)]
pub struct Haproxy {
    /// The socket as the plan gives it, for messages.
    socket: String,
    address: Address,
    backend: String,
    stable: String,
    canary: String,
    /// One change at a time: the order of a change depends on the weights
    /// read at its start.
    lock: tokio::sync::Mutex<()>,
}

impl Haproxy {
    /// Checks the settings: a socket address HAProxy's way
    /// (`/run/haproxy/admin.sock`, `unix:PATH`, `unix@PATH`,
    /// `tcp:HOST:PORT`, `ipv4@HOST:PORT`, `ipv6@[ADDR]:PORT`, `HOST:PORT`)
    /// and names that cannot smuggle a second command in (`;`, spaces).
    pub(super) fn new(
        socket: &str,
        backend: &str,
        stable: &str,
        canary: &str,
    ) -> Result<Haproxy, TrafficError> {
        let address = parse_address(socket.trim()).map_err(config)?;
        for (what, name) in [("backend", backend), ("stable", stable), ("canary", canary)] {
            check_name(what, name).map_err(config)?;
        }
        if stable == canary {
            return Err(config(format!(
                "stable and canary are the same server `{stable}`"
            )));
        }
        Ok(Haproxy {
            socket: socket.trim().to_string(),
            address,
            backend: backend.to_string(),
            stable: stable.to_string(),
            canary: canary.to_string(),
            lock: tokio::sync::Mutex::new(()),
        })
    }

    /// `haproxy /run/haproxy.sock backend app (stable s1, canary s2)`.
    pub(super) fn describe(&self) -> String {
        format!(
            "haproxy {} backend {} (stable {}, canary {})",
            self.socket, self.backend, self.stable, self.canary
        )
    }

    /// Reads both weights, then raises whichever server goes up before
    /// lowering the other: at no moment are both at 0 (which would make
    /// HAProxy answer 503), whichever way the canary moves.
    pub(super) async fn set_weight(&self, canary: u8) -> Result<Applied, TrafficError> {
        let _one_at_a_time = self.lock.lock().await;
        let stable = 100 - canary;
        let before_canary = self.get_weight(&self.canary).await?;
        let before_stable = self.get_weight(&self.stable).await?;
        let set_canary = (self.canary.as_str(), canary, before_canary);
        let set_stable = (self.stable.as_str(), stable, before_stable);
        let order = if u32::from(canary) >= before_canary {
            [set_canary, set_stable]
        } else {
            [set_stable, set_canary]
        };
        let mut applied: Vec<String> = Vec::new();
        let mut sent = Vec::new();
        for (server, weight, _) in order {
            let command = format!("set server {}/{server} weight {weight}", self.backend);
            let answer = self.send(&command).await.map_err(|e| match e {
                TrafficError::HaproxyUnreachable { socket, message } if !applied.is_empty() => {
                    TrafficError::HaproxyUnreachable {
                        socket,
                        message: format!("{message}{}", super::already(&applied)),
                    }
                }
                other => other,
            })?;
            if !answer.is_empty() {
                return Err(TrafficError::HaproxyAnswer {
                    socket: self.socket.clone(),
                    command,
                    answer,
                    applied,
                });
            }
            sent.push(json!({"command": command, "answer": answer}));
            applied.push(command);
        }
        Ok(Applied {
            canary,
            stable,
            detail: json!({
                "backend": "haproxy",
                "socket": self.socket,
                "haproxy_backend": self.backend,
                "before": {"canary": before_canary, "stable": before_stable},
                "after": {"canary": canary, "stable": stable},
                "commands": sent,
            }),
        })
    }

    /// The canary's share of the two servers' current weights (rounded);
    /// weights set by hand (say 1 and 3) count by their ratio.
    pub(super) async fn current(&self) -> Result<Option<u8>, TrafficError> {
        let canary = self.get_weight(&self.canary).await?;
        let stable = self.get_weight(&self.stable).await?;
        Ok(Some(share(canary, stable)))
    }

    /// `get weight BACKEND/SERVER`, answered `25 (initial 1)`.
    async fn get_weight(&self, server: &str) -> Result<u32, TrafficError> {
        let command = format!("get weight {}/{server}", self.backend);
        let answer = self.send(&command).await?;
        parse_weight(&answer).ok_or_else(|| TrafficError::HaproxyAnswer {
            socket: self.socket.clone(),
            command,
            answer: if answer.is_empty() {
                "(nothing)".to_string()
            } else {
                answer
            },
            applied: Vec::new(),
        })
    }

    /// Sends one command and returns HAProxy's answer, trimmed.
    async fn send(&self, command: &str) -> Result<String, TrafficError> {
        let unreachable = |message: String| TrafficError::HaproxyUnreachable {
            socket: self.socket.clone(),
            message,
        };
        let answer = match &self.address {
            Address::Unix(path) => {
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(path))
                    .await
                    .map_err(|_| unreachable(connect_timed_out()))?
                    .map_err(|e| unreachable(format!("cannot connect: {e}")))?;
                exchange(stream, command).await
            }
            Address::Tcp(host, port) => {
                let stream = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    TcpStream::connect((host.as_str(), *port)),
                )
                .await
                .map_err(|_| unreachable(connect_timed_out()))?
                .map_err(|e| unreachable(format!("cannot connect: {e}")))?;
                exchange(stream, command).await
            }
        };
        answer.map_err(|e| unreachable(format!("`{command}`: {e}")))
    }
}

fn connect_timed_out() -> String {
    format!(
        "cannot connect: no answer within {}s",
        CONNECT_TIMEOUT.as_secs()
    )
}

/// Writes the command line and reads until HAProxy closes (it does after
/// answering one command in non-interactive mode).
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    command: &str,
) -> Result<String, String> {
    let talk = async {
        stream.write_all(format!("{command}\n").as_bytes()).await?;
        stream.flush().await?;
        let mut answer = Vec::new();
        (&mut stream)
            .take(MAX_ANSWER)
            .read_to_end(&mut answer)
            .await?;
        Ok::<_, std::io::Error>(answer)
    };
    match tokio::time::timeout(ANSWER_TIMEOUT, talk).await {
        Err(_) => Err(format!("no answer within {}s", ANSWER_TIMEOUT.as_secs())),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(bytes)) => Ok(String::from_utf8_lossy(&bytes).trim().to_string()),
    }
}

/// The current weight in `get weight`'s answer (`25 (initial 1)`).
fn parse_weight(answer: &str) -> Option<u32> {
    let mut words = answer.split_whitespace();
    let weight: u32 = words.next()?.parse().ok()?;
    // Only a weight followed by the initial one is an answer to `get
    // weight`; a bare number could be anything.
    words.next()?.starts_with("(initial").then_some(weight)
}

/// HAProxy's spellings of a runtime API address.
fn parse_address(socket: &str) -> Result<Address, String> {
    if socket.is_empty() {
        return Err("`socket` is empty: give the stats socket's path or tcp:HOST:PORT".into());
    }
    for prefix in ["unix:", "unix@"] {
        if let Some(path) = socket.strip_prefix(prefix) {
            return if path.is_empty() {
                Err(format!("`{socket}` names no socket path"))
            } else {
                Ok(Address::Unix(path.to_string()))
            };
        }
    }
    for prefix in ["tcp:", "tcp@", "ipv4@", "ipv6@", "tcp4@", "tcp6@"] {
        if let Some(rest) = socket.strip_prefix(prefix) {
            return host_port(rest).ok_or_else(|| {
                format!("`{socket}` is not {prefix}HOST:PORT (e.g. {prefix}127.0.0.1:9999)")
            });
        }
    }
    if !socket.contains('/')
        && let Some(address) = host_port(socket)
    {
        return Ok(address);
    }
    Ok(Address::Unix(socket.to_string()))
}

/// `HOST:PORT`, `[V6]:PORT` or `V6:PORT` (the last colon is the port's).
fn host_port(text: &str) -> Option<Address> {
    let (host, port) = text.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
        return None;
    }
    Some(Address::Tcp(host.to_string(), port))
}

/// HAProxy proxy and server names are letters, digits, `-`, `_`, `.` and
/// `:`; anything else (a space, `;`) would be read as another argument or
/// another command.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("`{what}` is empty"));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        Some(c) => Err(format!(
            "`{what}` `{name}` contains {c:?}; HAProxy names are letters, digits, '-', '_', '.' and ':'"
        )),
        None => Ok(()),
    }
}

fn config(message: String) -> TrafficError {
    TrafficError::Config {
        backend: "haproxy",
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_spellings() {
        let unix = |p: &str| Ok(Address::Unix(p.into()));
        let tcp = |h: &str, p| Ok(Address::Tcp(h.into(), p));
        assert_eq!(
            parse_address("/run/haproxy/admin.sock"),
            unix("/run/haproxy/admin.sock")
        );
        assert_eq!(parse_address("unix:/a.sock"), unix("/a.sock"));
        assert_eq!(parse_address("unix@/a.sock"), unix("/a.sock"));
        assert_eq!(parse_address("admin.sock"), unix("admin.sock"));
        assert_eq!(parse_address("tcp:127.0.0.1:9999"), tcp("127.0.0.1", 9999));
        assert_eq!(parse_address("ipv4@127.0.0.1:9999"), tcp("127.0.0.1", 9999));
        assert_eq!(parse_address("ipv6@[::1]:9999"), tcp("::1", 9999));
        assert_eq!(parse_address("ipv6@::1:9999"), tcp("::1", 9999));
        assert_eq!(parse_address("lb1:9999"), tcp("lb1", 9999));
        assert!(parse_address("tcp:127.0.0.1").is_err());
        assert!(parse_address("tcp:127.0.0.1:0").is_err());
        assert!(parse_address("ipv4@:80").is_err());
        assert!(parse_address("unix:").is_err());
        assert!(parse_address("").is_err());
    }

    #[test]
    fn names_cannot_carry_commands() {
        assert!(check_name("backend", "app_v2.eu-1:x").is_ok());
        for bad in ["", "a b", "a;shutdown sessions", "a\nb", "a/b"] {
            assert!(check_name("backend", bad).is_err(), "{bad:?}");
        }
        assert!(Haproxy::new("/s", "app", "s1", "s1").is_err());
    }

    #[test]
    fn get_weight_answers() {
        assert_eq!(parse_weight("25 (initial 1)"), Some(25));
        assert_eq!(parse_weight("0 (initial 0)"), Some(0));
        assert_eq!(parse_weight("No such server."), None);
        assert_eq!(parse_weight("12"), None);
        assert_eq!(parse_weight(""), None);
    }
}
