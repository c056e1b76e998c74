//! The TLS probe: a handshake with `host:port`, then the server's
//! certificate — `cert.days_left`, `cert.expires_in`, `cert.subject`,
//! `cert.issuer`, `cert.valid` — and `tls.version`.
//!
//! The certificate is read even when its chain does not verify: "expires in
//! 9 days" matters on a self-signed staging certificate too, and
//! `cert.valid == false` says the rest.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use golive_plan::RawTls;
use rustls::ProtocolVersion;
use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::Outcome;
use crate::observation::{Observation, Value};
use golive_runtime::Vars;

pub(crate) async fn observe(p: &RawTls, vars: &Vars) -> Outcome {
    let address = with_port(&vars.expand(&p.address.value));
    let name = match &p.server_name {
        Some(n) => vars.expand(&n.value),
        None => host_of(&address).to_string(),
    };
    let server_name = ServerName::try_from(name.clone())
        .map_err(|e| format!("`{name}` is not a valid server name: {e}"))?;
    let ca = p.ca.as_deref().map(|c| vars.expand(c));
    let (verifier, verdict) =
        golive_runtime::tls::Recording::new(golive_runtime::tls::roots(ca.as_deref())?)?;
    let config = golive_runtime::tls::config(verifier)?;

    let started = Instant::now();
    let tcp = TcpStream::connect(address.as_str())
        .await
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let mut stream = TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {address} ({name}) failed: {e}"))?;
    let elapsed = started.elapsed();

    let (_, conn) = stream.get_ref();
    let version = match conn.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "1.3".to_string(),
        Some(ProtocolVersion::TLSv1_2) => "1.2".to_string(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_string(),
    };
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .ok_or_else(|| format!("{address} sent no certificate"))?;
    let _ = stream.shutdown().await;

    let (_, cert) = x509_parser::parse_x509_certificate(&leaf)
        .map_err(|e| format!("{address}: cannot parse the certificate: {e}"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let left = cert.validity().not_after.timestamp().saturating_sub(now);

    let mut obs = Observation::default();
    obs.set("response_time", Value::duration(elapsed))
        .set("tls.version", Value::Text(version))
        .set("cert.expires_in", Value::Seconds(left as f64))
        .set(
            "cert.days_left",
            Value::Number(left.div_euclid(86_400) as f64),
        )
        .set("cert.subject", Value::Text(cert.subject().to_string()))
        .set("cert.issuer", Value::Text(cert.issuer().to_string()));
    let verdict = verdict.lock().ok().and_then(|v| v.clone());
    match verdict {
        Some(Ok(())) => {
            obs.set("cert.valid", Value::Bool(true));
        }
        Some(Err(e)) => {
            obs.set("cert.valid", Value::Bool(false))
                .note("cert.valid", e);
        }
        None => {
            obs.set("cert.valid", Value::Bool(false))
                .note("cert.valid", "the certificate was not verified");
        }
    }
    Ok(obs)
}

/// `host:port` as given, or `host:443` when no port is written.
fn with_port(address: &str) -> String {
    let has_port = match address.rfind(']') {
        Some(end) => address[end..].starts_with("]:"),
        None => address.matches(':').count() == 1,
    };
    if has_port {
        address.to_string()
    } else if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]:443")
    } else {
        format!("{address}:443")
    }
}

/// The host of `host:port` or `[v6]:port`.
fn host_of(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    address.rsplit_once(':').map_or(address, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(with_port("example.com"), "example.com:443");
        assert_eq!(with_port("example.com:8443"), "example.com:8443");
        assert_eq!(with_port("[::1]:8443"), "[::1]:8443");
        assert_eq!(with_port("::1"), "[::1]:443");
        assert_eq!(host_of("example.com:443"), "example.com");
        assert_eq!(host_of("[::1]:443"), "::1");
    }
}
