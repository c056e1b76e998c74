#!/usr/bin/env bash
# Detection-to-rollback: a canary turns to 20% errors at the 25% step of a
# HAProxy rollout judged from Prometheus (scrape every 1 s, analysis every
# 1 s, `error_rate > 0.05` on a 5 s rate window); measured from the fault's
# start to the moment every new request reaches v1 again, by the load
# generator's 100 ms buckets (200 req/s through HAProxy). Fresh HAProxy,
# Prometheus, demo services and SQLite journal for every run:
# crates/golive/examples/rollback_bench.rs. Flagger's figure beside it is
# computed from its documented defaults, not measured.
#   VIA=nginx runs the same scenario through nginx instead of HAProxy: golive
#   rewrites nginx's upstream file and runs `nginx -t && nginx -s reload`
#   (default VIA=haproxy).
#   FAULT_AFTER=6s also runs RUNS runs with the fault 6 s into the 25% step
#   (steady traffic in the window, the fault out of step with the analysis).
#   FOR=2m also runs, once, the rule as go-live documents write it
#   (`error_rate > 0.05 for 2m`); it takes over 2 minutes.
# Usage: bench/rollback.sh      (RUNS=5, VIA=haproxy, FAULT_AFTER and FOR unset)
#        VIA=nginx bench/rollback.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
VIA=${VIA:-haproxy}
case "$VIA" in
  haproxy|nginx) ;;
  *) echo "VIA=$VIA: haproxy or nginx" >&2; exit 2 ;;
esac
FAULT_AFTER=${FAULT_AFTER:-}
FOR=${FOR:-}

need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null; }; }
need "$VIA" "$VIA"
need prometheus prometheus

cargo build --release --locked -q -p golive --example rollback_bench
bench=$PWD/target/release/examples/rollback_bench

echo "\$ $bench --via $VIA --runs $RUNS"
"$bench" --via "$VIA" --runs "$RUNS"
if [ -n "$FAULT_AFTER" ]; then
  echo "\$ $bench --via $VIA --runs $RUNS --fault-after $FAULT_AFTER"
  "$bench" --via "$VIA" --runs "$RUNS" --fault-after "$FAULT_AFTER"
fi
if [ -n "$FOR" ]; then
  echo "\$ $bench --via $VIA --for $FOR"
  "$bench" --via "$VIA" --for "$FOR"
fi
