# Shared by scripts/dev, scripts/test and .ci/run: install what is missing, start the local
# servers on loopback, and export the environment the function and the tests read.
# Source it; it changes nothing outside ./.venv, ./.run and (for redis-server) apt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
RUN="$ROOT/.run"
REDIS_PORT="${REDIS_PORT:-6379}"
MOTO_PORT="${MOTO_PORT:-5005}"
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

ensure_servers() {
  ensure_redis_server
  ensure_venv
  start_redis
  start_moto
  export_local_env
}

# The cold-start floor of scripts/bench and scripts/power-tune (issue 16): benches/hello, a
# hello-world lambda_http function, built as the function is (cargo lambda, the release profile
# it copies) into target/lambda/hello. Sets HELLO_BOOTSTRAP.
build_hello_floor() {
  HELLO_BOOTSTRAP="$ROOT/target/lambda/hello/hello-floor/bootstrap"
  (cd "$ROOT/benches/hello" && CARGO_TARGET_DIR="$ROOT/target/hello" PATH="$VENV/bin:$PATH" \
    cargo lambda build --release --locked --lambda-dir "$ROOT/target/lambda/hello")
}
