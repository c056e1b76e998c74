//! The command probe: `sh -c` with the plan's variables and secrets in its
//! environment — `exit_code`, `stdout`, `stderr`, `duration`. Process
//! handling (its own group, killed when the shell exits or the attempt times
//! out) is [`golive_runtime::shell`]'s.

use golive_plan::RawCommand;

use crate::Outcome;
use crate::observation::{Observation, Value};
use golive_runtime::Vars;
use golive_runtime::shell::{self, Shell};

/// Output kept per stream; the rest is read and dropped.
const MAX_OUTPUT: usize = 1 << 20;

pub(crate) async fn observe(p: &RawCommand, vars: &Vars) -> Outcome {
    let text = vars.expand(&p.command.value);
    // The attempt's time limit is applied around the whole probe; dropping
    // this future kills the command's process group.
    let done = shell::run(Shell {
        command: &text,
        env: vars
            .pairs()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        workdir: p.workdir.as_ref().map(|d| vars.expand(d)),
        timeout: None,
        max_output: MAX_OUTPUT,
    })
    .await?;
    let mut obs = Observation::default();
    obs.set(
        "exit_code",
        Value::Number(f64::from(done.exit_code.unwrap_or(-1))),
    )
    .set("stdout", Value::Text(done.stdout.text))
    .set("stderr", Value::Text(done.stderr.text))
    .set("duration", Value::duration(done.duration));
    Ok(obs)
}
