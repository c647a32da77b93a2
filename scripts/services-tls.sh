#!/usr/bin/env bash
# The secured test servers, BESIDE the plain ones of scripts/services.sh (which calls this file
# after them): a throw-away CA and certificates, then servers that require TLS and credentials.
#   etcd     https://127.0.0.1:2479 (peer 2480): TLS, --client-cert-auth, auth enabled
#            (users root and poison), --auth-token-ttl 2 so token expiry can be tested;
#   Redis    127.0.0.1:6380: TLS only (client certificates required), ACL user poison;
#   PostgreSQL on the existing cluster (5432): ssl = on with the generated certificate, role
#            poison_tls (scram, TLS and a client certificate required), database poison_tls;
#   MariaDB  127.0.0.1:3307: a second mariadbd (own datadir and socket), TLS, user poison
#            (REQUIRE X509), database test.
# Idempotent. Plain servers are never stopped or restarted: PostgreSQL only reloads its
# configuration (SSL settings are reloadable; plain connections keep working). The TLS-only
# instances (etcd 2479, Redis 6380, MariaDB 3307) are restarted only when the certificates are
# regenerated (missing, or expiring within 7 days).
# Run as root. The credentials below are the tests' own (test/support/servers.ts): throw-away
# accounts on loopback-only servers.
set -uo pipefail

TLS_DIR="${POISON_TLS_DIR:-/var/lib/poison-store-tls}"
WAIT_SECONDS="${SERVICES_WAIT_SECONDS:-60}"
PASSWORD='Tls-p@ss:w0rd'
ETCD_ROOT_PASSWORD='root-Tls-p@ss'
ETCD_TLS_DATA_DIR=/var/lib/poison-store-etcd-tls
ETCD_TLS_LOG=/var/log/poison-store-etcd-tls.log
REDIS_TLS_DIR=/var/lib/poison-store-redis-tls
REDIS_TLS_PID=/run/poison-store-redis-tls.pid
MARIADB_TLS_DATA_DIR=/var/lib/poison-store-mariadb-tls
MARIADB_TLS_SOCKET=/run/mysqld/poison-store-tls.sock
MARIADB_TLS_PID=/run/mysqld/poison-store-tls.pid
MARIADB_TLS_LOG=/var/log/poison-store-mariadb-tls.log
REGENERATED=0
FAILED=()

say() { printf 'services(tls): %s\n' "$*"; }

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

# Stop a process of ours by its pid file (never by name: other servers run beside it).
stop_pidfile() {
  local pidfile=$1 pid
  pid=$(cat "$pidfile" 2>/dev/null) || return 0
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 1
  done
  kill -9 "$pid" 2>/dev/null || true
}

# ---- certificates -----------------------------------------------------------------------------
CERTS=(ca server client rogue-ca rogue-client)

certs_fresh() {
  local name
  for name in "${CERTS[@]}"; do
    [ -s "$TLS_DIR/$name.pem" ] && [ -s "$TLS_DIR/$name.key" ] || return 1
    openssl x509 -checkend $((7 * 86400)) -noout -in "$TLS_DIR/$name.pem" >/dev/null 2>&1 || return 1
  done
  openssl verify -CAfile "$TLS_DIR/ca.pem" "$TLS_DIR/server.pem" "$TLS_DIR/client.pem" >/dev/null 2>&1 &&
    openssl verify -CAfile "$TLS_DIR/rogue-ca.pem" "$TLS_DIR/rogue-client.pem" >/dev/null 2>&1
}

# make_ca DIR NAME COMMON-NAME; make_cert DIR NAME CA SUBJECT EXTENSIONS
make_ca() {
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 365 -subj "/CN=$3" \
    -keyout "$1/$2.key" -out "$1/$2.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
}
make_cert() {
  local dir=$1 name=$2 ca=$3 subject=$4 extensions=$5
  openssl req -newkey rsa:2048 -nodes -sha256 -subj "$subject" \
    -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null &&
    printf '%s\n' "$extensions" >"$dir/$name.ext" &&
    openssl x509 -req -sha256 -days 365 -in "$dir/$name.csr" -CA "$dir/$ca.pem" \
      -CAkey "$dir/$ca.key" -CAcreateserial -extfile "$dir/$name.ext" -out "$dir/$name.pem" \
      2>/dev/null &&
    rm -f "$dir/$name.csr" "$dir/$name.ext"
}

# The client certificates carry no Common Name: with --client-cert-auth and auth enabled, etcd's
# JSON gateway refuses (HTTP 400) any client certificate that has one.
certificates() {
  if certs_fresh; then
    say "certificates: fresh in $TLS_DIR"
  else
    say "certificates: generating a throw-away CA and certificates in $TLS_DIR"
    local work
    work=$(mktemp -d "${TLS_DIR%/}.new.XXXXXX") || { FAILED+=(certificates); return 1; }
    if make_ca "$work" ca "poison-store test CA" &&
      make_cert "$work" server ca /CN=localhost \
        "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" &&
      make_cert "$work" client ca "/O=poison-store test client" \
        "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth" &&
      make_ca "$work" rogue-ca "untrusted test CA" &&
      make_cert "$work" rogue-client rogue-ca "/O=poison-store test client" \
        "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"; then
      rm -rf "$TLS_DIR.old"
      [ -d "$TLS_DIR" ] && mv "$TLS_DIR" "$TLS_DIR.old"
      mv "$work" "$TLS_DIR" && rm -rf "$TLS_DIR.old"
      REGENERATED=1
    else
      rm -rf "$work"
      say "certificates: openssl failed"
      FAILED+=(certificates)
      return 1
    fi
  fi
  # Certificates and the client key are readable by the tests (any user: a throw-away test
  # identity); the server and CA keys only by root, with copies for the servers that run as
  # their own users (PostgreSQL and MariaDB insist on owning their key).
  chmod 0755 "$TLS_DIR"
  chmod 0644 "$TLS_DIR"/*.pem "$TLS_DIR/client.key" "$TLS_DIR/rogue-client.key"
  chmod 0600 "$TLS_DIR/ca.key" "$TLS_DIR/rogue-ca.key" "$TLS_DIR/server.key"
  local owner
  for owner in postgres mysql; do
    id "$owner" >/dev/null 2>&1 || continue
    mkdir -p "$TLS_DIR/$owner"
    cp "$TLS_DIR/server.pem" "$TLS_DIR/ca.pem" "$TLS_DIR/$owner/"
    install -m 0600 -o "$owner" "$TLS_DIR/server.key" "$TLS_DIR/$owner/server.key"
    chown -R "$owner" "$TLS_DIR/$owner"
    chmod 0755 "$TLS_DIR/$owner"
  done
}

CURL_TLS=(--cacert "$TLS_DIR/ca.pem" --cert "$TLS_DIR/client.pem" --key "$TLS_DIR/client.key")

# ---- etcd (TLS, client certificates, auth) ----------------------------------------------------
etcd_tls_url=https://127.0.0.1:2479
etcd_tls_call() { # PATH JSON [TOKEN]
  curl -sS --max-time 5 "${CURL_TLS[@]}" ${3:+-H "Authorization: $3"} \
    -X POST "$etcd_tls_url$1" -d "$2"
}
etcd_tls_ready() { curl -fsS --max-time 2 "${CURL_TLS[@]}" "$etcd_tls_url/health" | grep -q '"health":"true"'; }
etcd_tls_token() { # USER PASSWORD → token, or nothing
  etcd_tls_call /v3/auth/authenticate "{\"name\":\"$1\",\"password\":\"$2\"}" 2>/dev/null |
    sed -n 's/.*"token":"\([^"]*\)".*/\1/p'
}
etcd_tls() {
  local pidfile=$ETCD_TLS_DATA_DIR/etcd.pid
  if [ "$REGENERATED" = 1 ] && [ -f "$pidfile" ]; then
    say "etcd-tls: restarting for the new certificates"
    stop_pidfile "$pidfile"
  fi
  if etcd_tls_ready 2>/dev/null; then
    say "etcd-tls: already running on 127.0.0.1:2479"
  elif ! command -v etcd >/dev/null; then
    say "etcd-tls: etcd is not installed (scripts/services.sh installs it)"
    FAILED+=(etcd-tls)
    return
  else
    mkdir -p "$ETCD_TLS_DATA_DIR" "$(dirname "$ETCD_TLS_LOG")"
    say "etcd-tls: starting on https://127.0.0.1:2479 (peer 2480), data in $ETCD_TLS_DATA_DIR"
    env -u ETCD_NAME -u ETCD_DATA_DIR setsid etcd \
      --name poison-store-tls \
      --data-dir "$ETCD_TLS_DATA_DIR" \
      --listen-client-urls https://127.0.0.1:2479 \
      --advertise-client-urls https://127.0.0.1:2479 \
      --listen-peer-urls http://127.0.0.1:2480 \
      --initial-advertise-peer-urls http://127.0.0.1:2480 \
      --initial-cluster poison-store-tls=http://127.0.0.1:2480 \
      --initial-cluster-state new \
      --cert-file "$TLS_DIR/server.pem" --key-file "$TLS_DIR/server.key" \
      --trusted-ca-file "$TLS_DIR/ca.pem" --client-cert-auth \
      --auth-token simple --auth-token-ttl 2 \
      >>"$ETCD_TLS_LOG" 2>&1 </dev/null 9>&- &
    echo $! >"$pidfile"
    disown
  fi
  wait_for etcd-tls etcd_tls_ready || return
  if [ -n "$(etcd_tls_token poison "$PASSWORD")" ]; then
    say "etcd-tls: auth enabled, user poison can log in"
    return
  fi
  say "etcd-tls: creating users root, poison, poison-noperm and enabling auth"
  local b64_slash b64_end token
  b64_slash=$(printf / | base64)
  b64_end=$(printf 0 | base64)
  # Before auth is enabled every call is allowed; after, these need root's token.
  token=$(etcd_tls_token root "$ETCD_ROOT_PASSWORD")
  {
    etcd_tls_call /v3/auth/user/add "{\"name\":\"root\",\"password\":\"$ETCD_ROOT_PASSWORD\"}" "$token"
    etcd_tls_call /v3/auth/role/add '{"name":"root"}' "$token"
    etcd_tls_call /v3/auth/user/grant '{"user":"root","role":"root"}' "$token"
    etcd_tls_call /v3/auth/user/add "{\"name\":\"poison\",\"password\":\"$PASSWORD\"}" "$token"
    etcd_tls_call /v3/auth/role/add '{"name":"poison-rw"}' "$token"
    etcd_tls_call /v3/auth/role/grant \
      "{\"name\":\"poison-rw\",\"perm\":{\"permType\":\"READWRITE\",\"key\":\"$b64_slash\",\"range_end\":\"$b64_end\"}}" "$token"
    etcd_tls_call /v3/auth/user/grant '{"user":"poison","role":"poison-rw"}' "$token"
    # A user that can log in but may touch nothing: the permission-denied test.
    etcd_tls_call /v3/auth/user/add "{\"name\":\"poison-noperm\",\"password\":\"$PASSWORD\"}" "$token"
    etcd_tls_call /v3/auth/enable '{}' "$token"
  } >/dev/null 2>&1
  if [ -n "$(etcd_tls_token poison "$PASSWORD")" ]; then
    say "etcd-tls: auth enabled, user poison can log in"
  else
    say "etcd-tls: user poison cannot log in (see $ETCD_TLS_LOG)"
    FAILED+=(etcd-tls-auth)
  fi
}

# ---- Redis (TLS only, ACL user) ---------------------------------------------------------------
redis_tls_ready() {
  [ "$(redis-cli --tls --cacert "$TLS_DIR/ca.pem" --cert "$TLS_DIR/client.pem" \
    --key "$TLS_DIR/client.key" -h 127.0.0.1 -p 6380 --user poison --pass "$PASSWORD" \
    --no-auth-warning ping 2>/dev/null)" = PONG ]
}
redis_tls() {
  if [ "$REGENERATED" = 1 ] && [ -f "$REDIS_TLS_PID" ]; then
    say "redis-tls: restarting for the new certificates"
    stop_pidfile "$REDIS_TLS_PID"
  fi
  if redis_tls_ready; then
    say "redis-tls: already running on 127.0.0.1:6380"
  elif ! command -v redis-server >/dev/null; then
    say "redis-tls: redis-server is not installed (scripts/services.sh installs it)"
    FAILED+=(redis-tls)
    return
  else
    mkdir -p "$REDIS_TLS_DIR"
    say "redis-tls: starting on 127.0.0.1:6380 (TLS only)"
    redis-server --daemonize yes --bind 127.0.0.1 --port 0 --tls-port 6380 \
      --tls-cert-file "$TLS_DIR/server.pem" --tls-key-file "$TLS_DIR/server.key" \
      --tls-ca-cert-file "$TLS_DIR/ca.pem" --tls-auth-clients yes \
      --requirepass "root-$PASSWORD" \
      --user poison on ">$PASSWORD" '~*' '&*' '+@all' \
      --save "" --appendonly no --dir "$REDIS_TLS_DIR" --pidfile "$REDIS_TLS_PID" \
      --logfile /var/log/poison-store-redis-tls.log 9>&-
  fi
  wait_for redis-tls redis_tls_ready
}

# ---- PostgreSQL (ssl = on on the existing cluster) --------------------------------------------
pg_admin() { su postgres -c "psql -qtAX -v ON_ERROR_STOP=1 $*"; }
HBA_TAG='# poison-store-tls'
postgres_tls() {
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    say "postgres-tls: PostgreSQL is not answering on 5432"
    FAILED+=(postgres-tls)
    return
  fi
  local dir=$TLS_DIR/postgres reload=0
  declare -A want=(
    [ssl]=on
    [ssl_cert_file]=$dir/server.pem
    [ssl_key_file]=$dir/server.key
    [ssl_ca_file]=$dir/ca.pem
  )
  local name
  for name in ssl ssl_cert_file ssl_key_file ssl_ca_file; do
    if [ "$(pg_admin -c "'SHOW $name'")" != "${want[$name]}" ]; then
      pg_admin -c "\"ALTER SYSTEM SET $name = '${want[$name]}'\"" || FAILED+=(postgres-tls)
      reload=1
    fi
  done
  # Rules for the TLS role, first in pg_hba.conf (the first matching line wins): a password
  # over TLS with a client certificate from the test CA, and nothing without TLS.
  local hba
  hba=$(pg_admin -c "'SHOW hba_file'")
  if [ "$(grep -v '^\s*#' "$hba" | grep -v '^\s*$' | head -n 1)" != \
    "hostssl all poison_tls 127.0.0.1/32 scram-sha-256 clientcert=verify-ca $HBA_TAG" ]; then
    say "postgres-tls: adding the poison_tls rules at the top of $hba"
    sed -i "/$HBA_TAG\$/d" "$hba"
    sed -i "1i hostssl all poison_tls 127.0.0.1/32 scram-sha-256 clientcert=verify-ca $HBA_TAG\nhost all poison_tls 127.0.0.1/32 reject $HBA_TAG" "$hba"
    reload=1
  fi
  [ "$REGENERATED" = 1 ] && reload=1
  if [ "$reload" = 1 ]; then
    say "postgres-tls: reloading the configuration (plain connections are not affected)"
    pg_admin -c "'SELECT pg_reload_conf()'" >/dev/null || FAILED+=(postgres-tls)
    sleep 1
  fi
  if [ "$(pg_admin -c "\"SELECT 1 FROM pg_roles WHERE rolname = 'poison_tls'\"")" != 1 ]; then
    say "postgres-tls: creating role poison_tls"
    pg_admin -c "'CREATE ROLE poison_tls LOGIN'" || FAILED+=(postgres-tls)
  fi
  # Always set: cheap, and it repairs a role whose password was changed by hand.
  pg_admin -c "\"SET password_encryption = 'scram-sha-256'; ALTER ROLE poison_tls PASSWORD '$PASSWORD'\"" ||
    FAILED+=(postgres-tls)
  if [ "$(pg_admin -c "\"SELECT 1 FROM pg_database WHERE datname = 'poison_tls'\"")" != 1 ]; then
    say "postgres-tls: creating database poison_tls"
    pg_admin -c "'CREATE DATABASE poison_tls OWNER poison_tls'" || FAILED+=(postgres-tls)
  fi
  if [ "$(pg_admin -c "'SHOW ssl'")" = on ]; then
    say "postgres-tls: ssl = on, role poison_tls, database poison_tls"
  else
    say "postgres-tls: ssl is still off"
    FAILED+=(postgres-tls)
  fi
}

# ---- MariaDB (a second instance with TLS on 3307) ---------------------------------------------
mariadb_tls_sql() { command mariadb --no-defaults -S "$MARIADB_TLS_SOCKET" -u root "$@"; }
mariadb_tls_ready() { mariadb_tls_sql -e 'SELECT 1' && [ "$(mariadb_tls_sql -NBe "SELECT @@have_ssl")" = YES ]; }
mariadb_tls() {
  if [ "$REGENERATED" = 1 ] && [ -f "$MARIADB_TLS_PID" ]; then
    say "mariadb-tls: restarting for the new certificates"
    stop_pidfile "$MARIADB_TLS_PID"
  fi
  if mariadb_tls_ready >/dev/null 2>&1; then
    say "mariadb-tls: already running on 127.0.0.1:3307"
  elif [ ! -x /usr/sbin/mariadbd ]; then
    say "mariadb-tls: mariadbd is not installed (scripts/services.sh installs it)"
    FAILED+=(mariadb-tls)
    return
  else
    if [ ! -d "$MARIADB_TLS_DATA_DIR/mysql" ]; then
      say "mariadb-tls: initialising $MARIADB_TLS_DATA_DIR"
      mkdir -p "$MARIADB_TLS_DATA_DIR" && chown mysql:mysql "$MARIADB_TLS_DATA_DIR"
      mariadb-install-db --no-defaults --user=mysql --basedir=/usr --skip-test-db \
        --auth-root-authentication-method=socket --datadir="$MARIADB_TLS_DATA_DIR" >/dev/null ||
        { FAILED+=(mariadb-tls); return; }
    fi
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    say "mariadb-tls: starting a second mariadbd on 127.0.0.1:3307 (socket $MARIADB_TLS_SOCKET)"
    setsid /usr/sbin/mariadbd --no-defaults --user=mysql --basedir=/usr \
      --datadir="$MARIADB_TLS_DATA_DIR" --socket="$MARIADB_TLS_SOCKET" \
      --pid-file="$MARIADB_TLS_PID" --port=3307 --bind-address=127.0.0.1 --skip-name-resolve \
      --log-error="$MARIADB_TLS_LOG" --skip-log-bin --innodb-buffer-pool-size=32M \
      --ssl-ca="$TLS_DIR/mysql/ca.pem" --ssl-cert="$TLS_DIR/mysql/server.pem" \
      --ssl-key="$TLS_DIR/mysql/server.key" </dev/null >/dev/null 2>&1 9>&- &
    disown
  fi
  wait_for mariadb-tls mariadb_tls_ready || return
  mariadb_tls_sql -e "CREATE DATABASE IF NOT EXISTS test;
    CREATE USER IF NOT EXISTS 'poison'@'%' IDENTIFIED BY '$PASSWORD' REQUIRE X509;
    ALTER USER 'poison'@'%' IDENTIFIED BY '$PASSWORD' REQUIRE X509;
    GRANT ALL ON test.* TO 'poison'@'%';
    SET GLOBAL require_secure_transport = ON;" || { FAILED+=(mariadb-tls-user); return; }
  say "mariadb-tls: user poison (REQUIRE X509), database test, TLS required over TCP"
}

# One run at a time: two agents running `npm run services` at once must not both regenerate.
# The servers started below get `9>&-`: one that inherited the lock would hold it forever.
exec 9>/run/poison-store-services-tls.lock
flock 9
certificates || { say "FAILED: ${FAILED[*]}"; exit 1; }
etcd_tls
redis_tls
postgres_tls
mariadb_tls

if [ "${#FAILED[@]}" -gt 0 ]; then
  say "FAILED: ${FAILED[*]} (see the messages above)"
  exit 1
fi
say "all secured servers answer: etcd 2479, redis 6380, postgres 5432 (ssl), mariadb 3307"
