#!/usr/bin/env bash
# The main job, for now: import a real go-live checklist, validate the plan it
# becomes, show its timeline, then check readiness of the machine's own
# PostgreSQL and Redis with the shipped example plan.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p golive
golive=target/release/golive
out=$(mktemp -d)/flakeguard.yaml
echo "== golive import examples/checklists/flakeguard-go-live.md -o $out"
$golive import examples/checklists/flakeguard-go-live.md -o "$out"
echo
echo "== golive validate $out"
$golive validate "$out"
echo
echo "== golive plan show $out"
$golive plan show "$out"
echo
echo "== golive ready examples/readiness.yaml"
$golive ready examples/readiness.yaml
