#!/usr/bin/env bash
# The services the second test leg and the fault tests need, on this machine:
#   PostgreSQL on 127.0.0.1:5432 (user postgres, trust authentication on loopback) and
#   Redis on 127.0.0.1:6379 (no persistence: the tests own its contents).
# Idempotent: a service that already answers is left alone. A missing one is installed from Debian's packages
# (apt-get, as root, as CI runs) and started. The fault tests also need the binaries themselves (initdb,
# pg_ctl, redis-server), which these packages provide. Prints one line per service; exits 1 if either is down.
set -u

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q >/dev/null 2>&1; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

updated=0
apt_install() {  # quiet; `apt-get update` once, and only when something is missing
  if [ "$updated" = 0 ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}

# ---------------------------------------------------------------- PostgreSQL
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt_install postgresql postgresql-client
fi
if ! pg_up; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -n 1)
  if [ -z "$version" ]; then
    # packages present but no cluster (e.g. removed): make the default one
    version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
    pg_createcluster "$version" main >/dev/null 2>&1 || true
  fi
  hba=/etc/postgresql/$version/main/pg_hba.conf
  # A test machine: trust on loopback so the suite connects as postgres without a password.
  if [ -f "$hba" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 ||
    pg_ctlcluster "$version" main start >/dev/null 2>&1 || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi

# ---------------------------------------------------------------- Redis
command -v redis-server >/dev/null 2>&1 || apt_install redis-server
if ! redis_up; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/xinyi-ci.log >/dev/null 2>&1 || true
  for _ in $(seq 1 15); do redis_up && break; sleep 1; done
fi

status=0
if pg_up; then echo "postgresql: up on 127.0.0.1:5432"; else echo "postgresql: DOWN"; status=1; fi
if redis_up; then echo "redis: up on 127.0.0.1:6379"; else echo "redis: DOWN"; status=1; fi
exit $status
