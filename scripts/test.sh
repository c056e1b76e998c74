#!/usr/bin/env bash
# Runs every test of the workspace. Installs what the tests need first, so it
# works on a fresh machine; `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo test --workspace --locked
