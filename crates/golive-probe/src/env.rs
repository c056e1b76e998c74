//! The env probe: which of the listed environment variables are unset or
//! empty (`missing`), in the environment golive itself runs in (as much of
//! it as plans may see: see [`golive_runtime::host_env`]).

use golive_plan::RawEnvCheck;

use crate::observation::{Observation, Value};
use golive_runtime::Vars;

pub(crate) fn observe(p: &RawEnvCheck, vars: &Vars) -> Observation {
    let missing = p
        .vars
        .iter()
        .map(|v| vars.expand(&v.value))
        .filter(|name| golive_runtime::host_env::var(name).is_none_or(|v| v.is_empty()))
        .collect();
    let mut obs = Observation::default();
    obs.set("missing", Value::List(missing));
    obs
}
