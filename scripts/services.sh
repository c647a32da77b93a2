#!/usr/bin/env bash
# Make every server the tests need answer on loopback, idempotently, and say what was done:
#   PostgreSQL 127.0.0.1:5432 (database `test`), MariaDB 127.0.0.1:3306 (database `test`),
#   Redis 127.0.0.1:6379, etcd 127.0.0.1:2379;
# then, beside them, the secured servers of scripts/services-tls.sh (TLS and credentials: etcd
# 2479, Redis 6380, MariaDB 3307, PostgreSQL's ssl on 5432) with a throw-away CA.
# A server that already answers is left alone (never stopped or restarted: others may use it).
# One that is installed but stopped is started; one that is missing is installed from Debian
# (`apt-get update` once). Exits non-zero when any server still does not answer.
# Run as root (CI and the development machines are). Usage: npm run services
set -uo pipefail

WAIT_SECONDS="${SERVICES_WAIT_SECONDS:-60}"
ETCD_DATA_DIR="${ETCD_DATA_DIR:-/var/lib/poison-store-etcd}"
ETCD_LOG="${ETCD_LOG:-/var/log/poison-store-etcd.log}"
APT_UPDATED=0
FAILED=()

say() { printf 'services: %s\n' "$*"; }

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || say "apt-get update failed"
    APT_UPDATED=1
  fi
  say "installing Debian package(s): $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# wait_for NAME CHECK-COMMAND...: run the check once a second until it succeeds or time runs out.
wait_for() {
  local name=$1
  shift
  local deadline=$((SECONDS + WAIT_SECONDS))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "$name: NOT answering after ${WAIT_SECONDS}s"
      FAILED+=("$name")
      return 1
    fi
    sleep 1
  done
  say "$name: answering"
}

# ---- PostgreSQL -------------------------------------------------------------------------------
postgres_ready() { pg_isready -q -h 127.0.0.1 -p 5432; }
postgres() {
  if postgres_ready 2>/dev/null; then
    say "postgres: already running on 127.0.0.1:5432"
  else
    if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
      apt_install postgresql || { FAILED+=(postgres); return; }
    fi
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    if [ -z "$version" ]; then
      say "postgres: no cluster found in /etc/postgresql"
      FAILED+=(postgres)
      return
    fi
    if ! pg_lsclusters -h 2>/dev/null | grep -q "^$version main"; then
      say "postgres: creating cluster $version/main"
      pg_createcluster "$version" main >/dev/null
    fi
    # The tests connect over TCP without a password, as on the development machines.
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
      say "postgres: trusting loopback connections in $hba"
      sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    say "postgres: starting cluster $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  wait_for postgres postgres_ready || return
  # Administration goes through the local socket as the postgres user (peer or trust auth).
  if [ "$(su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname = 'test'\"" 2>/dev/null)" != 1 ]; then
    say "postgres: creating database test"
    su postgres -c "psql -qc 'CREATE DATABASE test'" || FAILED+=(postgres-db)
  else
    say "postgres: database test exists"
  fi
  if [ "$(su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname = 'root'\"" 2>/dev/null)" != 1 ]; then
    say "postgres: creating superuser role root"
    su postgres -c "psql -qc 'CREATE ROLE root SUPERUSER LOGIN'" || true
  fi
}

# ---- MariaDB ----------------------------------------------------------------------------------
mariadb_ready() { mariadb-admin --protocol=tcp -h 127.0.0.1 -P 3306 -u root ping; }
mariadb() {
  if mariadb_ready >/dev/null 2>&1; then
    say "mariadb: already running on 127.0.0.1:3306"
  else
    if [ ! -x /usr/sbin/mariadbd ]; then
      apt_install mariadb-server || { FAILED+=(mariadb); return; }
    fi
    if [ ! -d /var/lib/mysql/mysql ]; then
      say "mariadb: initialising /var/lib/mysql"
      mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    say "mariadb: starting mariadbd"
    # The pid file tells this server from the secured twin on 3307 (same binary): matched by
    # --exec alone, a running twin would make this start nothing.
    start-stop-daemon --start --oknodo --background --pidfile /run/mysqld/mysqld.pid --exec /usr/sbin/mariadbd
  fi
  wait_for mariadb mariadb_ready || return
  say "mariadb: ensuring database test"
  command mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -u root -e 'CREATE DATABASE IF NOT EXISTS test' ||
    FAILED+=(mariadb-db)
}

# ---- Redis ------------------------------------------------------------------------------------
redis_ready() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }
redis() {
  if redis_ready; then
    say "redis: already running on 127.0.0.1:6379"
  else
    if ! command -v redis-server >/dev/null; then
      apt_install redis-server || { FAILED+=(redis); return; }
    fi
    mkdir -p /var/lib/redis /var/log/redis
    say "redis: starting redis-server"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
  fi
  wait_for redis redis_ready
}

# ---- etcd -------------------------------------------------------------------------------------
etcd_ready() { curl -fsS --max-time 2 http://127.0.0.1:2379/health | grep -q '"health":"true"'; }
etcd_service() {
  if etcd_ready 2>/dev/null; then
    say "etcd: already running on 127.0.0.1:2379"
  else
    if ! command -v etcd >/dev/null; then
      apt_install etcd-server || { FAILED+=(etcd); return; }
    fi
    if port_open 2379; then
      say "etcd: something listens on 2379 but is not healthy yet; waiting for it"
    else
      mkdir -p "$ETCD_DATA_DIR" "$(dirname "$ETCD_LOG")"
      say "etcd: starting on 127.0.0.1:2379 (peer 2380), data in $ETCD_DATA_DIR, log $ETCD_LOG"
      # Debian's unit sets ETCD_UNSUPPORTED_ARCH etc. via /etc/default/etcd; ignore it: this
      # instance is configured entirely by flags so it is the same everywhere.
      env -u ETCD_NAME -u ETCD_DATA_DIR setsid etcd \
        --name poison-store-test \
        --data-dir "$ETCD_DATA_DIR" \
        --listen-client-urls http://127.0.0.1:2379 \
        --advertise-client-urls http://127.0.0.1:2379 \
        --listen-peer-urls http://127.0.0.1:2380 \
        --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster poison-store-test=http://127.0.0.1:2380 \
        --initial-cluster-state new \
        >>"$ETCD_LOG" 2>&1 </dev/null &
      disown
    fi
  fi
  wait_for etcd etcd_ready
}

command -v curl >/dev/null || apt_install curl
postgres
mariadb
redis
etcd_service

command -v openssl >/dev/null || apt_install openssl
bash "$(dirname "$0")/services-tls.sh" || FAILED+=(secured-servers)

if [ "${#FAILED[@]}" -gt 0 ]; then
  say "FAILED: ${FAILED[*]} (see the messages above)"
  exit 1
fi
say "all servers answer: postgres 5432, mariadb 3306, redis 6379, etcd 2379, and the secured ones"
