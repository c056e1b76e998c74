#!/usr/bin/env bash
# Journal overhead benchmark: 1,000 trivial `run` items, each journaled
# durably, against bare bash doing the same 1,000 fork/execs.
#   (a) `golive run plan.yaml` on a generated plan of N items, each
#       `run: {command: 'true'}` — golive starts `sh -c true` per item (one
#       fork/exec of sh; `true` is a shell builtin) under its supervisor
#       (`golive __supervise`, one more exec and its records), and commits
#       `item.started` before each and `item.finished` after it (in the same
#       transaction as the next item's start), on
#       - SQLite: a fresh journal file per run (WAL, synchronous = FULL),
#       - PostgreSQL: a fresh schema per run (default synchronous_commit = on);
#   (b) `bash script.sh`, a generated script of N lines `sh -c true` — bash
#       forks and execs `sh -c true` N times, the same processes golive starts.
# Wall time of the whole process (start-up and plan parsing included),
# median of RUNS runs.
#
# Usage: bench/engine-journal.sh        (N=1000 RUNS=5 by default;
#        PG=postgres://postgres@127.0.0.1:5432/test, PG= to skip PostgreSQL;
#        GOLIVE=PATH times that binary instead of building one, e.g. an older
#        build for a comparison in the same session)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
RUNS=${RUNS:-5}
PG=${PG-postgres://postgres@127.0.0.1:5432/test}

if [ -n "${GOLIVE:-}" ]; then
  golive=$GOLIVE
else
  cargo build --release --locked -q -p golive
  golive=${CARGO_TARGET_DIR:-$PWD/target}/release/golive
fi

work=$(mktemp -d)
schemas=()
cleanup() {
  for s in "${schemas[@]}"; do psql -q "$PG" -c "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

{
  printf 'name: journal-bench\nphases:\n  - title: all\n    items:\n'
  for i in $(seq -w 0 $((N - 1))); do printf "      - id: t%s\n        run: {command: 'true'}\n" "$i"; done
} >"$work/plan.yaml"
for _ in $(seq "$N"); do echo 'sh -c true'; done >"$work/script.sh"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ms() { local start; start=$(date +%s%N); "$@"; echo $(( ($(date +%s%N) - start) / 1000000 )); }

: >"$work/bash.ms"; : >"$work/sqlite.ms"; : >"$work/pg.ms"
for run in $(seq "$RUNS"); do
  ms bash "$work/script.sh" >>"$work/bash.ms"

  rm -rf "$work"/j.db*
  ms env -u GOLIVE_DATABASE_URL "$golive" run "$work/plan.yaml" --db "$work/j.db" 2>"$work/sqlite.log" >>"$work/sqlite.ms" \
    || { cat "$work/sqlite.log" >&2; exit 1; }
  grep -q 'succeeded' "$work/sqlite.log"

  if [ -n "$PG" ]; then
    schema="golive_bench_$$_$run"; schemas+=("$schema")
    psql -q "$PG" -c "CREATE SCHEMA $schema" >/dev/null
    sep='?'; case $PG in *\?*) sep='&';; esac
    ms env GOLIVE_DATABASE_URL="$PG${sep}options=-csearch_path%3D$schema" "$golive" run "$work/plan.yaml" 2>"$work/pg.log" >>"$work/pg.ms" \
      || { cat "$work/pg.log" >&2; exit 1; }
    grep -q 'succeeded' "$work/pg.log"
  fi
done

b=$(median <"$work/bash.ms"); s=$(median <"$work/sqlite.ms")
echo "items=$N runs=$RUNS (medians)"
echo "| side | wall time | per item | vs bash |"
echo "| --- | ---: | ---: | ---: |"
echo "| bash, $N lines \`sh -c true\` | ${b} ms | $(awk "BEGIN {printf \"%.2f\", $b/$N}") ms | 1× |"
echo "| golive run, SQLite | ${s} ms | $(awk "BEGIN {printf \"%.2f\", $s/$N}") ms | $(awk "BEGIN {printf \"%.2f\", $s/$b}")× |"
if [ -n "$PG" ]; then
  p=$(median <"$work/pg.ms")
  echo "| golive run, PostgreSQL | ${p} ms | $(awk "BEGIN {printf \"%.2f\", $p/$N}") ms | $(awk "BEGIN {printf \"%.2f\", $p/$b}")× |"
fi
