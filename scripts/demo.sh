#!/usr/bin/env bash
# The main job: a real checklist becomes a plan (import, validate, timeline),
# the machine's readiness is checked, then a small go-live runs for real on
# a fresh journal — two people sign it off and confirm a task from a second
# process while `golive run` waits — and its filled-in record is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p golive
golive=$PWD/target/release/golive
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== golive import examples/checklists/flakeguard-go-live.md -o flakeguard.yaml"
$golive import examples/checklists/flakeguard-go-live.md -o "$tmp/flakeguard.yaml" 2>/dev/null
$golive validate "$tmp/flakeguard.yaml"
echo
echo "== golive plan show flakeguard.yaml"
$golive plan show "$tmp/flakeguard.yaml"
echo
echo "== golive ready examples/readiness.yaml"
# Readiness finds a real gap on this machine (Redis keeps nothing on disk):
# "not ready" (exit 1) is an answer here, not a failure of the demo.
$golive ready examples/readiness.yaml || [ $? -eq 1 ]
echo

# The go-live: a fresh journal in the temp dir, t0 = now.
db=$tmp/journal.db
echo "== golive run examples/golive-demo.yaml --db journal.db (in the background)"
$golive run examples/golive-demo.yaml --db "$db" --var OUT="$tmp/out" \
  --t0 "$(date -u +%Y-%m-%dT%H:%M:%SZ)" 2> >(tee "$tmp/run.log" >&2) &
run_pid=$!

# Waits (up to 30 s) for the run's stderr to show a line matching $1.
await() {
  for _ in $(seq 300); do
    grep -q "$1" "$tmp/run.log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "demo: timed out waiting for '$1'" >&2
  kill "$run_pid" 2>/dev/null || true
  exit 1
}
await "started"
run=$(awk '/started/ {print $2; exit}' "$tmp/run.log")

await "waiting .*go-no-go"
echo "== alice and bob sign off from another terminal"
$golive approve "$run" go-no-go --as release-manager --by alice --comment "readiness is green" --db "$db"
$golive approve "$run" go-no-go --as ops --by bob --db "$db"

await "waiting .*smoke-test"
echo "== bob confirms the smoke test and fills in the blanks"
$golive confirm "$run" smoke-test --by bob --evidence "3 test orders placed and paid" \
  --field "Orders placed=3" --field "Verified at=$(date -u +%H:%M)" \
  --field "Change Ticket=CHG-1042" --db "$db"

wait "$run_pid"
echo
echo "== golive report $run"
$golive report "$run" --db "$db"
