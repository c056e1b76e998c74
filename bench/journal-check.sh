#!/usr/bin/env bash
# Cost of the integrity check golive makes whenever it opens a SQLite
# journal (`PRAGMA quick_check`), on a journal holding one finished run of
# N items (N `run: {command: 'true'}` items: N items rows, 2N+ events),
# made by `golive run`. Timed with the sqlite3 shell (the same SQLite
# library code, built optimized), median of RUNS runs, beside the full
# `PRAGMA integrity_check` for comparison and a plain `golive status`
# and `golive runs` (which open the journal, so include one quick_check).
#
# Usage: bench/journal-check.sh        (N=10000 RUNS=5 by default;
#        GOLIVE=path/to/golive to use an existing build)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
RUNS=${RUNS:-5}
if [ -z "${GOLIVE:-}" ]; then
  cargo build --release --locked -q -p golive
  GOLIVE=$PWD/target/release/golive
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{
  printf 'name: check-bench\nphases:\n  - title: all\n    items:\n'
  for i in $(seq -w 0 $((N - 1))); do printf "      - id: t%s\n        run: {command: 'true'}\n" "$i"; done
} >"$work/plan.yaml"
db=$work/journal.db
"$GOLIVE" run "$work/plan.yaml" --db "$db" >/dev/null 2>&1

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ms() { # command… → wall ms
  local s e
  s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N)
  echo $(((e - s) / 1000000))
}
size=$(stat -c %s "$db")
echo "journal: $N items, $((size / 1024)) KiB, $(sqlite3 "$db" 'SELECT count(*) FROM events') events"
for pragma in quick_check integrity_check; do
  t=$(for _ in $(seq "$RUNS"); do ms sqlite3 "$db" "PRAGMA $pragma"; done | median)
  echo "PRAGMA $pragma: $t ms (sqlite3 $(sqlite3 --version | cut -d' ' -f1), median of $RUNS)"
done
t=$(for _ in $(seq "$RUNS"); do ms "$GOLIVE" runs --db "$db"; done | median)
echo "golive runs (start-up + open with quick_check + one small read): $t ms"
t=$(for _ in $(seq "$RUNS"); do ms "$GOLIVE" status --db "$db"; done | median)
echo "golive status (the same + reading and showing the 10,000 items): $t ms"
t=$(for _ in $(seq "$RUNS"); do ms sqlite3 "$db" "SELECT 1"; done | median)
echo "sqlite3 start-up alone: $t ms"
