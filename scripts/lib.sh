# Shared by scripts/dev, scripts/test and .ci/run: install what is missing, start the local
# servers on loopback, and export the environment the function and the tests read.
# Source it; it changes nothing outside ./.venv, ./.run and (for redis-server) apt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
RUN="$ROOT/.run"
REDIS_PORT="${REDIS_PORT:-6379}"
MOTO_PORT="${MOTO_PORT:-5005}"
MARIADB_PORT="${MARIADB_PORT:-3316}"
mkdir -p "$RUN"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_redis_server() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && command -v openssl >/dev/null && return
  log "installing redis-server and openssl from apt"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server openssl >/dev/null
  command -v redis-server >/dev/null || die "redis-server did not install"
}

# Installs a requirements file (default scripts/requirements.txt) into ./.venv, again only when
# that file changed.
ensure_venv() {
  local req="${1:-$ROOT/scripts/requirements.txt}" stamp want
  stamp="$VENV/.$(basename "$req").sha256"
  want="$(sha256sum "$req" | cut -d' ' -f1)"
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return; fi
  log "installing $(basename "$req") into .venv"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
  echo "$want" >"$stamp"
}

# Polls until "$@" succeeds: readiness of a server this script started, for at most 15 s.
wait_until() {
  local what="$1"; shift
  for _ in $(seq 150); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "$what did not become ready (see $RUN)"
}

start_redis() {
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then return; fi
  log "starting redis-server on 127.0.0.1:$REDIS_PORT"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --daemonize yes --pidfile "$RUN/redis.pid" --logfile "$RUN/redis.log"
  wait_until "redis-server" redis-cli -p "$REDIS_PORT" ping
  local version
  version="$(redis-cli -p "$REDIS_PORT" info server | sed -n 's/^redis_version:\([0-9.]*\).*/\1/p')"
  [ "$(printf '%s\n6.2\n' "$version" | sort -V | head -n1)" = 6.2 ] ||
    die "redis $version is too old: the SMS-code scripts are tested on 6.2 and newer (SET KEEPTTL needs 6.0)"
}

# Debian's mariadb-server, installed so that nothing starts on 3306 (a policy-rc.d that exits 101
# for the install's duration, unless the machine already has one): start_mariadb runs the
# project's own server instead.
ensure_mariadb() {
  command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null && return
  log "installing mariadb-server from apt (no service started)"
  local policy=/usr/sbin/policy-rc.d made=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null && as_root chmod +x "$policy"
    made=1
  fi
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq mariadb-server >/dev/null || {
    [ -z "$made" ] || as_root rm -f "$policy"; die "mariadb-server did not install"; }
  [ -z "$made" ] || as_root rm -f "$policy"
  command -v mariadbd >/dev/null || die "mariadbd is not on PATH after the install"
}

mariadb_up() {
  mariadb-admin --no-defaults --protocol=tcp -h127.0.0.1 -P"$MARIADB_PORT" -uroot ping
}

# MariaDB on 127.0.0.1:$MARIADB_PORT, data and socket under ./.run/mariadb, no systemd. Strict
# mode as production MySQL (STRICT_TRANS_TABLES: a value too long for its column is an error, not
# a silent truncation); utf8mb4 with MariaDB's default collation (PAD SPACE). root@127.0.0.1 has
# no password: the server listens on loopback only, for tests. Exports MARIADB_URL.
start_mariadb() {
  export MARIADB_URL="mysql+pymysql://root@127.0.0.1:$MARIADB_PORT"
  if mariadb_up >/dev/null 2>&1; then return; fi
  local dir="$RUN/mariadb"
  mkdir -p "$dir"
  if [ ! -d "$dir/data/mysql" ]; then
    log "creating the MariaDB data directory $dir/data"
    mariadb-install-db --no-defaults --datadir="$dir/data" --user=root \
      --auth-root-authentication-method=normal >"$dir/install.log" 2>&1 ||
      die "mariadb-install-db failed (see $dir/install.log)"
  fi
  log "starting mariadbd on 127.0.0.1:$MARIADB_PORT"
  nohup mariadbd --no-defaults --datadir="$dir/data" --user=root --port="$MARIADB_PORT" \
    --bind-address=127.0.0.1 --socket="$dir/mariadb.sock" --pid-file="$RUN/mariadb.pid" \
    --log-error="$dir/error.log" --skip-log-bin --innodb-buffer-pool-size=64M \
    --sql-mode=STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci >/dev/null 2>&1 &
  wait_until "mariadbd" mariadb_up
}

moto_up() { curl -sf -o /dev/null "http://127.0.0.1:$MOTO_PORT/moto-api/"; }

start_moto() {
  if moto_up; then return; fi
  log "starting moto_server (DynamoDB) on 127.0.0.1:$MOTO_PORT"
  nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$RUN/moto.log" 2>&1 &
  echo $! >"$RUN/moto.pid"
  wait_until "moto_server" moto_up
}

# The environment of the function and the tests, pointed at the local servers. Credentials
# and region are the dummies a local server accepts; nothing here is a real secret.
export_local_env() {
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$MOTO_PORT"
  export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_DEFAULT_REGION="${AWS_REGION:-us-east-1}"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
  unset AWS_PROFILE AWS_SESSION_TOKEN
}

# Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver), for selenium.
ensure_chromium() {
  command -v chromium >/dev/null && command -v chromedriver >/dev/null && return
  log "installing chromium and chromium-driver from apt"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium chromium-driver >/dev/null
}

# jQuery from npm, the version iHome's pages load (3.7.1 unless given); exports JQUERY_JS.
ensure_jquery() {
  local version="${1:-3.7.1}"
  export JQUERY_JS="$RUN/jquery-$version/package/dist/jquery.min.js"
  [ -s "$JQUERY_JS" ] && return
  log "fetching jquery@$version from npm"
  mkdir -p "$RUN/jquery-$version"
  (cd "$RUN/jquery-$version" && npm pack --silent "jquery@$version" >/dev/null &&
     tar xzf "jquery-$version.tgz")
  [ -s "$JQUERY_JS" ] || die "jquery did not unpack"
}

ensure_servers() {
  ensure_redis_server
  ensure_venv
  start_redis
  start_moto
  export_local_env
}

# The importer's tests: a database on the local MariaDB, and werkzeug in the versions the
# legacy fixture's hashes come from (scripts/seed-legacy-users.py), each in .venv/werkzeug-<v>.
export_import_test_env() {
  mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$MARIADB_PORT" -u root \
    -e 'CREATE DATABASE IF NOT EXISTS ihome_import_test CHARACTER SET utf8mb4'
  export IMPORT_TEST_MYSQL_URL="mysql://root@127.0.0.1:$MARIADB_PORT/ihome_import_test"
}

# The site's werkzeug over the years, each one's default hash (scripts/seed-legacy-users.py).
WERKZEUG_VERSIONS="0.11.15 0.16.1 2.0.3 2.3.8 3.1.9"

# Installs werkzeug==<version> into .venv/werkzeug-<version>, once.
ensure_werkzeug() {
  local version="$1" dir="$ROOT/.venv/werkzeug-$1"
  [ -x "$dir/bin/python" ] && "$dir/bin/python" -c 'import werkzeug.security' 2>/dev/null && return
  log "installing werkzeug $version into .venv/werkzeug-$version"
  python3 -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check "werkzeug==$version"
}

# The cold-start floor of scripts/bench and scripts/power-tune (issue 16): benches/hello, a
# hello-world lambda_http function, built as the function is (cargo lambda, the release profile
# it copies) into target/lambda/hello. Sets HELLO_BOOTSTRAP.
build_hello_floor() {
  HELLO_BOOTSTRAP="$ROOT/target/lambda/hello/hello-floor/bootstrap"
  (cd "$ROOT/benches/hello" && CARGO_TARGET_DIR="$ROOT/target/hello" PATH="$VENV/bin:$PATH" \
    cargo lambda build --release --locked --lambda-dir "$ROOT/target/lambda/hello")
}

# --- TLS to both stores (issue 22): a test CA made per run, moto behind a TLS front, a private
# redis-server speaking TLS as well as plain. Used by scripts/bench and scripts/power-tune.

TLS_DIR="$RUN/tls"
MOTO_TLS_PORT="${MOTO_TLS_PORT:-5443}"
TLS_REDIS_PORT="${TLS_REDIS_PORT:-6390}"
TLS_REDIS_PLAIN_PORT="${TLS_REDIS_PLAIN_PORT:-6389}"

# make_test_ca DIR: a root CA, an intermediate and a leaf for 127.0.0.1 and localhost, RSA 2048
# as the certificates DynamoDB presents (leaf, "Amazon RSA 2048 Mxx", Amazon Root CA 1), made
# afresh by openssl in DIR; valid two days. DIR/ca.pem is the root to trust, DIR/chain.pem (leaf
# then intermediate) and DIR/key.pem are the server's. The keys never leave DIR (under .run,
# ignored by git).
make_test_ca() {
  local dir="$1"
  rm -rf "$dir" && mkdir -p "$dir" && chmod 700 "$dir"
  printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$dir/int.ext"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >"$dir/leaf.ext"
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ihome test root CA $(date +%s)" \
      -keyout ca.key -out ca.pem
    openssl req -newkey rsa:2048 -nodes -subj "/CN=ihome test intermediate" -keyout int.key -out int.csr
    openssl x509 -req -in int.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile int.ext -out int.pem
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout key.pem -out leaf.csr
    openssl x509 -req -in leaf.csr -CA int.pem -CAkey int.key -CAcreateserial -days 2 -extfile leaf.ext -out leaf.pem
    cat leaf.pem int.pem >chain.pem
    rm -f ca.key int.key ./*.csr
  ) >"$dir/openssl.log" 2>&1 || die "openssl could not make the test CA (see $dir/openssl.log)"
}

# Stops a process this library started, by its pid file.
stop_pidfile() {
  local file="$1" pid
  [ -s "$file" ] || return 0
  pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$file"
}

# start_tls_stores: a new test CA (per run), then, signed by it, a private redis-server (TLS on
# $TLS_REDIS_PORT, plain on $TLS_REDIS_PLAIN_PORT for the harness, same data) and
# scripts/tls-front.py on $MOTO_TLS_PORT in front of moto. Earlier ones from this library are
# stopped first, as they hold the last run's certificate. Needs ensure_servers first (moto).
# Exports BENCH_FUNCTION_REDIS_URL and BENCH_FUNCTION_DYNAMODB_URL (the function's, over TLS),
# BENCH_HARNESS_REDIS_URL (the harness's, plain, to the same server) and IHOME_TEST_CA_FILE,
# which only a build with the `test-ca` feature reads.
start_tls_stores() {
  stop_pidfile "$RUN/tls-redis.pid"
  stop_pidfile "$RUN/tls-front.pid"
  log "making a test CA for this run ($TLS_DIR)"
  make_test_ca "$TLS_DIR"
  log "starting redis-server with TLS on 127.0.0.1:$TLS_REDIS_PORT (plain on $TLS_REDIS_PLAIN_PORT)"
  redis-server --bind 127.0.0.1 --port "$TLS_REDIS_PLAIN_PORT" --tls-port "$TLS_REDIS_PORT" \
    --tls-cert-file "$TLS_DIR/chain.pem" --tls-key-file "$TLS_DIR/key.pem" \
    --tls-ca-cert-file "$TLS_DIR/ca.pem" --tls-auth-clients no \
    --save '' --appendonly no --daemonize yes --pidfile "$RUN/tls-redis.pid" \
    --logfile "$RUN/tls-redis.log"
  wait_until "redis-server (TLS)" redis-cli -p "$TLS_REDIS_PORT" --tls --cacert "$TLS_DIR/ca.pem" ping
  log "starting the TLS front for moto on 127.0.0.1:$MOTO_TLS_PORT"
  nohup python3 "$ROOT/scripts/tls-front.py" --listen "127.0.0.1:$MOTO_TLS_PORT" \
    --to "127.0.0.1:$MOTO_PORT" --cert "$TLS_DIR/chain.pem" --key "$TLS_DIR/key.pem" \
    >"$RUN/tls-front.log" 2>&1 &
  echo $! >"$RUN/tls-front.pid"
  wait_until "the TLS front" curl -sf -o /dev/null --cacert "$TLS_DIR/ca.pem" \
    "https://127.0.0.1:$MOTO_TLS_PORT/moto-api/"
  export IHOME_TEST_CA_FILE="$TLS_DIR/ca.pem"
  export BENCH_FUNCTION_REDIS_URL="rediss://127.0.0.1:$TLS_REDIS_PORT/0"
  export BENCH_FUNCTION_DYNAMODB_URL="https://127.0.0.1:$MOTO_TLS_PORT"
  export BENCH_HARNESS_REDIS_URL="redis://127.0.0.1:$TLS_REDIS_PLAIN_PORT/0"
}

# Stops what start_tls_stores started.
stop_tls_stores() {
  stop_pidfile "$RUN/tls-front.pid"
  stop_pidfile "$RUN/tls-redis.pid"
}
