#!/usr/bin/env bash
# Installs what golive's tests need on a fresh machine. Idempotent and quiet
# when everything is already there.
set -euo pipefail
if ! command -v cargo >/dev/null; then
  echo "setup: cargo is required (https://rustup.rs)" >&2
  exit 1
fi
