#!/usr/bin/env bash
# The war room's page weight and the time from a `golive confirm` (the
# binary, through the server or straight into the journal) to the item's
# new state in the page, in headless chromium against a `golive serve`
# process with its default settings: runs the browser tests RUNS times
# (default 3) and prints what they measure (5 confirms a run, SQLite and
# PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for _ in $(seq "$RUNS"); do
  cargo test -q -p golive --test it --locked web:: -- --nocapture --test-threads=1 2>&1 |
    grep -E 'page weight|latencies' | tee -a "$log"
done
grep -o 'latencies: \[[^]]*\]' "$log" | sed 's/latencies: //' | tr -d '[] ' | tr ',' '\n' |
  awk '/ms$/ { sub(/ms$/, ""); print $0 + 0; next }
       /µs$/ { sub(/µs$/, ""); print $0 / 1000; next }
       /s$/  { sub(/s$/, "");  print $0 * 1000 }' | sort -n |
  awk '{ v[NR] = $1 } END {
    printf "confirm->page: %d samples, median %.0f ms, min %.0f ms, max %.0f ms\n", NR, v[int((NR + 1) / 2)], v[1], v[NR] }'
