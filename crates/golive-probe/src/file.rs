//! The file probe: does a path exist, how big is it, and how long ago was
//! it last modified (`exists`, `size`, `age`).

use std::io::ErrorKind;
use std::time::SystemTime;

use golive_plan::RawFileCheck;

use crate::Outcome;
use crate::observation::{Observation, Value};
use golive_runtime::Vars;

pub(crate) async fn observe(p: &RawFileCheck, vars: &Vars) -> Outcome {
    let path = vars.expand(&p.path.value);
    // A hung network mount must not block the runtime; the attempt's timeout still applies.
    let probe_path = path.clone();
    let meta = tokio::task::spawn_blocking(move || std::fs::metadata(probe_path))
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    let mut obs = Observation::default();
    match meta {
        Ok(meta) => {
            obs.set("exists", Value::Bool(true));
            obs.set("size", Value::Number(meta.len() as f64));
            if let Ok(modified) = meta.modified() {
                let age = match SystemTime::now().duration_since(modified) {
                    Ok(d) => d.as_secs_f64(),
                    Err(e) => -e.duration().as_secs_f64(),
                };
                obs.set("age", Value::Seconds(age));
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            obs.set("exists", Value::Bool(false));
            obs.note("exists", format!("{path}: no such file"));
        }
        Err(e) => return Err(format!("{path}: {e}")),
    }
    Ok(obs)
}
