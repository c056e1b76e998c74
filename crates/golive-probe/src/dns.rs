//! The DNS probe: one lookup through hickory-resolver, against the system's
//! resolvers or a given `ip:port` — `rcode` (`NoError`, `NXDomain`, …),
//! `answers` (the records of the asked type, as text) and `response_time`.
//!
//! The hosts file and the cache are bypassed: a go-live checks what DNS
//! answers, not what this machine remembers.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use golive_plan::{DnsRecord, RawDns};
use hickory_resolver::config::{
    NameServerConfig, NameServerConfigGroup, ResolveHosts, ResolverConfig,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{Resolver, TokioResolver};

use crate::Outcome;
use crate::observation::{Observation, Value};
use golive_runtime::Vars;
use golive_runtime::error_chain;

pub(crate) async fn observe(p: &RawDns, vars: &Vars, timeout: Duration) -> Outcome {
    let name = vars.expand(&p.name.value);
    let record = p.record.unwrap_or(DnsRecord::A);
    let rtype = match record {
        DnsRecord::A => RecordType::A,
        DnsRecord::AAAA => RecordType::AAAA,
        DnsRecord::CNAME => RecordType::CNAME,
        DnsRecord::TXT => RecordType::TXT,
        DnsRecord::MX => RecordType::MX,
    };
    let resolver = resolver(
        p.resolver
            .as_ref()
            .map(|r| vars.expand(&r.value))
            .as_deref(),
        timeout,
    )?;
    let started = Instant::now();
    let result = resolver.lookup(name.as_str(), rtype).await;
    let elapsed = started.elapsed();
    let mut obs = Observation::default();
    obs.set("response_time", Value::duration(elapsed));
    match result {
        Ok(lookup) => {
            let answers = lookup
                .iter()
                .filter(|r| r.record_type() == rtype)
                .map(answer_text)
                .collect();
            obs.set("rcode", Value::Text("NoError".into()))
                .set("answers", Value::List(answers));
        }
        Err(e) => match e.proto().map(|p| p.kind()) {
            Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) => {
                obs.set("rcode", Value::Text(format!("{response_code:?}")))
                    .set("answers", Value::List(Vec::new()));
            }
            _ => return Err(format!("{name} {rtype}: {}", error_chain(&e))),
        },
    }
    Ok(obs)
}

fn resolver(server: Option<&str>, timeout: Duration) -> Result<TokioResolver, String> {
    let mut builder = match server {
        Some(server) => {
            let addr = server
                .parse::<SocketAddr>()
                .or_else(|_| server.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| {
                    format!("resolver `{server}` is not an address such as 127.0.0.1:53")
                })?;
            let servers = NameServerConfigGroup::from(vec![
                NameServerConfig::new(addr, Protocol::Udp),
                NameServerConfig::new(addr, Protocol::Tcp),
            ]);
            Resolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), servers),
                TokioConnectionProvider::default(),
            )
        }
        None => Resolver::builder_tokio()
            .map_err(|e| format!("cannot read the system's resolver settings: {e}"))?,
    };
    let opts = builder.options_mut();
    opts.timeout = timeout;
    opts.attempts = 1;
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    Ok(builder.build())
}

/// An answer as a plan would write it: an address, a name without the final
/// dot, TXT strings joined, `10 mail.example.com` for MX.
fn answer_text(r: &RData) -> String {
    let name = |n: &hickory_resolver::Name| n.to_string().trim_end_matches('.').to_string();
    match r {
        RData::A(a) => a.to_string(),
        RData::AAAA(a) => a.to_string(),
        RData::CNAME(c) => name(&c.0),
        RData::TXT(t) => t
            .txt_data()
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
        RData::MX(mx) => format!("{} {}", mx.preference(), name(mx.exchange())),
        other => other.to_string(),
    }
}
