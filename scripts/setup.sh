#!/usr/bin/env bash
# Installs what golive's tests need on a fresh machine. Idempotent and quiet
# when everything is already there.
set -euo pipefail
if ! command -v cargo >/dev/null; then
  echo "setup: cargo is required (https://rustup.rs)" >&2
  exit 1
fi

# golive-probe's integration tests start their own Prometheus and a second
# redis-server, and use the machine's PostgreSQL (trust auth) and Redis.
export DEBIAN_FRONTEND=noninteractive
apt_updated=0
need_pkg() { # need_pkg COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq >/dev/null
    apt_updated=1
  fi
  apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}
need_pkg prometheus prometheus
need_pkg redis-server redis-server
# The rollout tests put HAProxy and nginx in front of demo services.
need_pkg haproxy haproxy
need_pkg nginx nginx
# golive-server's Alertmanager test sends real webhooks from Alertmanager.
need_pkg prometheus-alertmanager prometheus-alertmanager
# golive-server's web tests drive Debian's chromium headless through chromedriver.
need_pkg chromium chromium
need_pkg chromedriver chromium-driver

# golive-notify's tests verify Standard Webhooks signatures with the
# reference Python implementation, and send email to an aiosmtpd server.
need_py() { # need_py MODULE PACKAGE
  python3 -c "import $1" >/dev/null 2>&1 && return 0
  pip install -q --root-user-action=ignore "$2" >/dev/null 2>&1 ||
    pip install -q --root-user-action=ignore --break-system-packages "$2" >/dev/null
}
need_py standardwebhooks standardwebhooks
need_py aiosmtpd aiosmtpd

# The machine's PostgreSQL (127.0.0.1:5432, trust auth, database `test`) and
# Redis (127.0.0.1:6379) are normally running; start them if they are not.
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if command -v redis-cli >/dev/null && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
