#!/usr/bin/env bash
# Runs every test of the workspace. Installs what the tests need first, so it
# works on a fresh machine; `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# No doc-tests: the crates have none, and their empty runs would close the log.
# --no-fail-fast: one failing binary must not hide the others' results.
cargo test --workspace --locked --no-fail-fast --lib --bins --tests 2>&1 | tee "$log"
# One closing line for the whole suite.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
