#!/usr/bin/env bash
# Runs one load scenario the way load-tests/RESULTS.md records them: a release build of the server
# on a fresh database, the scenario against it over loopback, then the server stopped.
#
#   load-tests/run.sh <scenario> [load-tests flags...]
#   load-tests/run.sh open --clients 64 --duration 20s
#   SERVER_ENV="BCRYPT_COST=12" load-tests/run.sh logins --clients 16 --duration 20s
#
# PostgreSQL is the local one (as everywhere in this repository); the database `tutoring_bench`
# is dropped and created again. SERVER_ENV adds settings to the server's environment; NO_BUILD=1
# skips the build (to repeat a run without touching the binaries).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ]; then
  sed -n '2,11p' "$0"
  exit 2
fi
scenario=$1
shift

port=${BENCH_PORT:-18081}
database=tutoring_bench
psql_admin() { psql -qX -h 127.0.0.1 -U postgres -d postgres "$@"; }

[ -n "${NO_BUILD:-}" ] || cargo build --release --workspace --quiet
psql_admin -c "DROP DATABASE IF EXISTS $database WITH (FORCE)"

# shellcheck disable=SC2086 # SERVER_ENV is a list of NAME=value words
env DATABASE_URL="postgres://postgres@127.0.0.1:5432/$database" \
  BIND_ADDR="127.0.0.1:$port" BCRYPT_COST=4 \
  JWT_SECRET=bench-secret-bench-secret-bench-secret-123 RUST_LOG=warn ${SERVER_ENV:-} \
  target/release/tutoring > "target/bench-server.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    break
  fi
  sleep 0.1
done

target/release/load-tests "$scenario" --base-url "http://127.0.0.1:$port" \
  --server-pid "$server" "$@"
