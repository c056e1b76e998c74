#!/usr/bin/env bash
# Decision quality of the docs' plan (docs/examples/canary-haproxy-prometheus.yaml,
# unchanged) across the scenario suite of crates/golive/tests/it/rollout_e2e.rs:
# healthy, +2/+5/+12% canary errors, +30% canary latency, 8% errors on both
# versions, 5 req/s healthy and +12%; real HAProxy, Prometheus at 1 s, the
# demo services, three rigs at a time. Beside each golive verdict, Flagger's
# default check evaluated on the same data (the journaled canary error rate
# of every evaluation: success rate below 99% fails a check, the 5th failed
# check rolls back; canary only, no baseline).
# Usage: bench/decisions.sh            (TRIALS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${TRIALS:-3}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for t in $(seq 1 "$TRIALS"); do
  echo "trial $t/$TRIALS" >&2
  cargo test -q --locked -p golive --test it \
    rollout_e2e::the_docs_plan_promotes_healthy_and_shared_faults_and_rolls_back_regressions \
    -- --nocapture 2>/dev/null | grep '^scenario ' >>"$out" || true
done
echo "| scenario | golive: promoted / rolled back | golive: time to decision (median, s) | Flagger default: promoted / rolled back / undecided | Flagger: time to rollback (median, s) |"
echo "| --- | --- | --- | --- | --- |"
awk -F'|' '
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " "); if (n == 0) return "-"
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[(n + 1) / 2] : sprintf("%.1f", (a[n / 2] + a[n / 2 + 1]) / 2)
  }
  {
    name = $1; sub(/^scenario /, "", name); gsub(/ +$/, "", name)
    if (!(name in seen)) { seen[name] = 1; order[++n] = name }
    verdict = $2; gsub(/ /, "", verdict)
    t = $3; gsub(/[ s]/, "", t)
    f = $4; sub(/^ *flagger /, "", f); gsub(/ +$/, "", f)
    ft = $5; gsub(/[ s]/, "", ft)
    if (verdict == "promoted") p[name]++; else r[name]++
    times[name] = times[name] " " t
    if (f == "promoted") fp[name]++; else if (f == "rolled back") fr[name]++; else fu[name]++
    if (ft != "-") ftimes[name] = ftimes[name] " " ft
  }
  END {
    for (i = 1; i <= n; i++) {
      k = order[i]
      printf "| %s | %d / %d | %s | %d / %d / %d | %s |\n", k, p[k], r[k], median(times[k]), fp[k], fr[k], fu[k], median(ftimes[k])
    }
  }' "$out"
