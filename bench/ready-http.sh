#!/usr/bin/env bash
# Readiness benchmark: 1,000 HTTP targets on loopback, checked by
#   (a) `golive ready` at concurrency C,
#   (b) Prometheus's blackbox_exporter, its /probe endpoint driven at the same
#       concurrency by crates/golive-probe/examples/http_load.rs,
#   (c) a sequential `curl -f` loop, as go-live documents write it.
# All three probe the same nginx (one server, N paths, `return 200`), in the
# same run. Wall time and peak memory (max RSS) are medians of RUNS runs.
#
# Usage: bench/ready-http.sh            (N=1000 C=64 RUNS=5 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
C=${C:-64}
RUNS=${RUNS:-5}

need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null; }; }
need nginx nginx
need prometheus-blackbox-exporter prometheus-blackbox-exporter
need curl curl
[ -x /usr/bin/time ] || need /usr/bin/time time

cargo build --release --locked -q -p golive
cargo build --release --locked -q -p golive-probe --example http_load
golive=$PWD/target/release/golive
driver=$PWD/target/release/examples/http_load

work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
web=$(free_port)
bb=$(free_port)

cat >"$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work; uwsgi_temp_path $work; scgi_temp_path $work;
  server { listen 127.0.0.1:$web; keepalive_requests 100000; location / { return 200 'ok'; } }
}
EOF
nginx -c "$work/nginx.conf" -p "$work"

cat >"$work/blackbox.yml" <<EOF
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
EOF

cleanup() {
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  [ -n "${bbpid:-}" ] && kill "$bbpid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

python3 - "$N" "$web" >"$work/plan.yaml" <<'EOF'
import sys
n, port = int(sys.argv[1]), sys.argv[2]
print("name: bench\nphases:\n  - title: targets\n    items:")
for i in range(n):
    print(f"      - id: t{i:04d}\n        check:\n          http: {{url: 'http://127.0.0.1:{port}/p/{i}'}}\n          expect: [status == 200]")
EOF
seq 0 $((N - 1)) | sed "s|.*|http://127.0.0.1:$bb/probe?module=http_2xx\&target=http://127.0.0.1:$web/p/&|" >"$work/probes.txt"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

: >"$work/golive.ms"; : >"$work/golive.kb"; : >"$work/bb.ms"; : >"$work/bb.kb"; : >"$work/curl.ms"
for run in $(seq "$RUNS"); do
  # (a) golive ready: whole process, plan parsing included.
  /usr/bin/time -f '%e %M' -o "$work/t" "$golive" ready "$work/plan.yaml" --concurrency "$C" --output json >"$work/report.json"
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert r['counts']['pass']==$N, r['counts']" "$work/report.json"
  awk '{printf "%d\n", $1*1000}' "$work/t" >>"$work/golive.ms"
  awk '{print $2}' "$work/t" >>"$work/golive.kb"

  # (b) blackbox_exporter, fresh process per run so its peak RSS is this run's.
  prometheus-blackbox-exporter --config.file="$work/blackbox.yml" --web.listen-address="127.0.0.1:$bb" >"$work/bb.log" 2>&1 &
  bbpid=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$bb/metrics" >/dev/null && break; sleep 0.1; done
  read -r ms failures < <("$driver" --concurrency "$C" --expect 'probe_success 1' <"$work/probes.txt")
  [ "$failures" = 0 ] || { echo "blackbox: $failures probes failed" >&2; exit 1; }
  echo "$ms" >>"$work/bb.ms"
  awk '/VmHWM/ {print $2}' "/proc/$bbpid/status" >>"$work/bb.kb"
  kill "$bbpid"; wait "$bbpid" 2>/dev/null || true; bbpid=

  # (c) the curl loop, sequential as in the documents.
  start=$(date +%s%N)
  for i in $(seq 0 $((N - 1))); do curl -fsS -o /dev/null "http://127.0.0.1:$web/p/$i"; done
  echo $(( ($(date +%s%N) - start) / 1000000 )) >>"$work/curl.ms"
done

g=$(median <"$work/golive.ms"); gk=$(median <"$work/golive.kb")
b=$(median <"$work/bb.ms"); bk=$(median <"$work/bb.kb")
c=$(median <"$work/curl.ms")
echo "targets=$N concurrency=$C runs=$RUNS (medians)"
echo "| tool | wall time | peak RSS | vs golive |"
echo "| --- | ---: | ---: | ---: |"
echo "| golive ready | ${g} ms | $((gk / 1024)) MiB | 1× |"
echo "| blackbox_exporter /probe | ${b} ms | $((bk / 1024)) MiB | $(awk "BEGIN {printf \"%.1f\", $b/$g}")× slower |"
echo "| sequential curl -f loop | ${c} ms | — | $(awk "BEGIN {printf \"%.0f\", $c/$g}")× slower |"
