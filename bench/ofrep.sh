#!/usr/bin/env bash
# OFREP over HTTP on loopback: `golive serve` evaluating a 25% sticky
# rollout against nginx serving an identical JSON body from a static file,
# in the same run, on the same machine.
#   (1) throughput: wrk, WRK_THREADS threads, WRK_CONN keep-alive connections,
#       WRK_SECONDS s, POST with a body (a Lua script), RUNS times each,
#       alternating; medians of requests/s and p99.
#   (2) latency at a fixed 1,000 requests/s (open loop):
#       crates/golive-server/examples/ofrep_rate.rs, RATE_SECONDS s; p50/p99.
# Usage: bench/ofrep.sh      (RUNS=5 WRK_THREADS=1 WRK_CONN=32 WRK_SECONDS=10)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
WRK_THREADS=${WRK_THREADS:-1}
WRK_CONN=${WRK_CONN:-32}
WRK_SECONDS=${WRK_SECONDS:-10}
RATE_SECONDS=${RATE_SECONDS:-10}

need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null; }; }
need nginx nginx
need wrk wrk

cargo build --release --locked -q -p golive
cargo build --release --locked -q -p golive-server --example ofrep_rate
golive=$PWD/target/release/golive
rate=$PWD/target/release/examples/ofrep_rate

work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
gp=$(free_port)
np=$(free_port)
path=/ofrep/v1/evaluate/flags/new_checkout

token=$("$golive" token create --db "$work/j.db" --name bench --role operator 2>/dev/null)
"$golive" serve --db "$work/j.db" --listen "127.0.0.1:$gp" 2>"$work/serve.log" &
gpid=$!
trap 'kill $gpid 2>/dev/null; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$gp/health" >/dev/null && break; sleep 0.1; done
curl -sf -XPOST "http://127.0.0.1:$gp/api/admin/feature-flags" -H "Authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"flag":"new_checkout","enabled":true,"percentage":25}' >/dev/null

# nginx: the body golive answers for one user, as a static file.
mkdir -p "$work/www$(dirname $path)"
curl -sf -XPOST "http://127.0.0.1:$gp$path" -H "Authorization: Bearer $token" \
  -d '{"context":{"targetingKey":"user-1"}}' >"$work/www$path"
cat >"$work/nginx.conf" <<NGINX
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work; uwsgi_temp_path $work; scgi_temp_path $work;
  server {
    listen 127.0.0.1:$np;
    default_type application/json;
    root $work/www;
    # The static module refuses POST with 405; serve the file anyway.
    error_page 405 =200 \$uri;
  }
}
NGINX
nginx -c "$work/nginx.conf" -p "$work"
for _ in $(seq 100); do curl -sf -XPOST "http://127.0.0.1:$np$path" >/dev/null && break; sleep 0.1; done

cat >"$work/post.lua" <<LUA
local n = 0
request = function()
  n = n + 1
  local body = '{"context":{"targetingKey":"user-' .. (n % 10000) .. '"}}'
  return wrk.format("POST", "$path", {["Content-Type"]="application/json", ["Authorization"]="Bearer $token"}, body)
end
LUA

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
wrk_once() { # URL -> "rps p99_ms"
  wrk -t"$WRK_THREADS" -c"$WRK_CONN" -d"${WRK_SECONDS}s" --latency -s "$work/post.lua" "$1" |
    awk '/Requests\/sec/ {rps=$2} / 99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; p99=v} END {print rps, p99}'
}
: >"$work/g.txt"; : >"$work/n.txt"
for i in $(seq "$RUNS"); do
  wrk_once "http://127.0.0.1:$gp" >>"$work/g.txt"
  wrk_once "http://127.0.0.1:$np" >>"$work/n.txt"
done
g_rps=$(cut -d' ' -f1 "$work/g.txt" | median); g_p99=$(cut -d' ' -f2 "$work/g.txt" | median)
n_rps=$(cut -d' ' -f1 "$work/n.txt" | median); n_p99=$(cut -d' ' -f2 "$work/n.txt" | median)
echo "wrk -t$WRK_THREADS -c$WRK_CONN -d${WRK_SECONDS}s, medians of $RUNS:"
echo "  golive serve  OFREP  ${g_rps} req/s  p99 ${g_p99} ms"
echo "  nginx static  file   ${n_rps} req/s  p99 ${n_p99} ms"
awk -v g="$g_rps" -v n="$n_rps" 'BEGIN {printf "  golive / nginx = %.0f%%\n", 100*g/n}'
echo "fixed 1,000 req/s for ${RATE_SECONDS}s (open loop):"
echo "  golive: $("$rate" "http://127.0.0.1:$gp$path" --rate 1000 --seconds "$RATE_SECONDS" --token "$token")"
echo "  nginx:  $("$rate" "http://127.0.0.1:$np$path" --rate 1000 --seconds "$RATE_SECONDS")"
