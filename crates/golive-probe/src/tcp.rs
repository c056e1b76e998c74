//! The TCP probe: can a connection be opened to `host:port`, and how fast.
//!
//! A refused connection is an observation (`connected == false`), so a plan
//! can also check that a port is closed; a name that does not resolve is an
//! error.

use std::io::ErrorKind;
use std::time::Instant;

use golive_plan::RawTcp;
use tokio::net::TcpStream;

use crate::Outcome;
use crate::observation::{Observation, Value};
use golive_runtime::Vars;

pub(crate) async fn observe(p: &RawTcp, vars: &Vars) -> Outcome {
    let address = vars.expand(&p.address.value);
    let targets: Vec<_> = tokio::net::lookup_host(address.as_str())
        .await
        .map_err(|e| format!("cannot resolve `{address}`: {e}"))?
        .collect();
    let started = Instant::now();
    let mut obs = Observation::default();
    let mut last = None;
    for target in &targets {
        match TcpStream::connect(target).await {
            Ok(stream) => {
                obs.set("response_time", Value::duration(started.elapsed()));
                obs.set("connected", Value::Bool(true));
                drop(stream);
                return Ok(obs);
            }
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e)
            if matches!(
                e.kind(),
                ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset
            ) =>
        {
            obs.set("response_time", Value::duration(started.elapsed()));
            obs.set("connected", Value::Bool(false));
            obs.note("connected", format!("{address}: {e}"));
            Ok(obs)
        }
        Some(e) => Err(format!("cannot connect to {address}: {e}")),
        None => Err(format!("`{address}` resolves to no address")),
    }
}
