#!/usr/bin/env bash
# The contacts page benchmark: this server against PostGraphile 4, side by
# side over the same PostgreSQL table of a million contacts.
#
#   bash bench/run.sh            # seeds once (kept for later runs), then measures
#   CONTACTS=200000 bash bench/run.sh
#   RESEED=1 bash bench/run.sh   # drop the bench database and seed again
#   SKIP_BUILD=1 bash bench/run.sh  # measure target/release/contacts as built
#
# Needs PostgreSQL on 127.0.0.1:5432 (trust auth), Node 20 and npm; installs
# wrk (apt) and PostGraphile (npm, into bench/node_modules) when missing.
# Prints a Markdown table and keeps raw wrk output under bench/results/.
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
RESULTS=bench/results
mkdir -p "$RESULTS"

step() { printf '\n==> %s\n' "$*" >&2; }
psql_admin() { psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -qtAX "$@"; }
psql_bench() { psql "$DB_URL" -v ON_ERROR_STOP=1 -qtAX "$@"; }

step "tools"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
[ -x bench/node_modules/.bin/postgraphile ] || (cd bench && npm install --no-audit --no-fund --silent)
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
TOTAL="$(psql_bench -c "SELECT count(*) FROM contacts WHERE project_id = '$PROJECT_ID'")"
step "$TOTAL contacts in project $PROJECT_ID"

step "starting both servers"
LISTEN_ADDR="127.0.0.1:$OURS_PORT" "$BIN" serve >"$RESULTS/ours.log" 2>&1 &
OURS_PID=$!
# PostGraphile as it runs by default (one Node process), and with two
# workers, as this server uses both cores; no query log, no GraphiQL.
PG_ARGS=(-c "$DB_URL" --schema public --host 127.0.0.1
  --append-plugins postgraphile-plugin-connection-filter --disable-query-log --disable-graphiql)
bench/node_modules/.bin/postgraphile "${PG_ARGS[@]}" --port "$PG_PORT" >"$RESULTS/postgraphile.log" 2>&1 &
PG_PID=$!
bench/node_modules/.bin/postgraphile "${PG_ARGS[@]}" --port "$((PG_PORT + 1))" --cluster-workers 2 \
  >"$RESULTS/postgraphile-2.log" 2>&1 &
PG2_PID=$!
trap 'kill "$OURS_PID" "$PG_PID" "$PG2_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do
  curl -sf "http://127.0.0.1:$OURS_PORT/healthz" >/dev/null \
    && curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
         -d '{"query":"{__typename}"}' "http://127.0.0.1:$PG_PORT/graphql" \
    && curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
         -d '{"query":"{__typename}"}' "http://127.0.0.1:$((PG_PORT + 1))/graphql" && break
  sleep 1
done

TOKEN="$(curl -sf -X POST -H 'Content-Type: application/json' \
  -d "{\"query\":\"mutation { login(email: \\\"$AGENT_EMAIL\\\", password: \\\"$AGENT_PASSWORD\\\") { token } }\"}" \
  "http://127.0.0.1:$OURS_PORT/graphql" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["login"]["token"])')"

# The DEEP-th contact of the newest-first list, and its cursor in each
# server's format (this server's: base64url of [sort, nanoseconds, id]).
read -r DEEP_ID DEEP_NANOS DEEP_AT < <(psql_bench -F ' ' -c "
  SELECT id, (extract(epoch FROM created_at) * 1000000)::bigint * 1000, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')
  FROM contacts WHERE project_id = '$PROJECT_ID'
  ORDER BY created_at DESC, id DESC OFFSET $((DEEP - 1)) LIMIT 1")
OURS_CURSOR="$(python3 -c "import base64,json,sys; print(base64.urlsafe_b64encode(json.dumps(['created_at', int(sys.argv[1]), sys.argv[2]], separators=(',',':')).encode()).decode().rstrip('='))" "$DEEP_NANOS" "$DEEP_ID")"
PG_CURSOR="$(curl -sf -X POST -H 'Content-Type: application/json' \
  -d "{\"query\":\"query(\$p: UUID!) { allContacts(condition: {projectId: \$p}, orderBy: [CREATED_AT_DESC, ID_DESC], first: 1, offset: $((DEEP - 1))) { edges { cursor node { id } } } }\",\"variables\":{\"p\":\"$PROJECT_ID\"}}" \
  "http://127.0.0.1:$PG_PORT/graphql" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["allContacts"]["edges"][0]["cursor"])')"

OURS_FIELDS='edges { cursor node { id name email phone createdAt location { countryCode city } } } pageInfo { hasNextPage endCursor }'
PG_FIELDS='edges { cursor node { id name email phone createdAt countryCode city } } pageInfo { hasNextPage endCursor }'
PG_ORDER='orderBy: [CREATED_AT_DESC, ID_DESC]'
PG_SEARCH="filter: {or: [{name: {includesInsensitive: \\\"$SEARCH\\\"}}, {email: {includesInsensitive: \\\"$SEARCH\\\"}}, {phone: {includes: \\\"$SEARCH\\\"}}]}"

# The request body (JSON) of each query on each server.
OURS_FIRST="{\"query\":\"query(\$p: ID!) { contacts(projectId: \$p, first: 50) { $OURS_FIELDS } }\",\"variables\":{\"p\":\"$PROJECT_ID\"}}"
PG_FIRST="{\"query\":\"query(\$p: UUID!) { allContacts(condition: {projectId: \$p}, $PG_ORDER, first: 50) { $PG_FIELDS } }\",\"variables\":{\"p\":\"$PROJECT_ID\"}}"
OURS_DEEP="{\"query\":\"query(\$p: ID!, \$a: String) { contacts(projectId: \$p, first: 50, after: \$a) { $OURS_FIELDS } }\",\"variables\":{\"p\":\"$PROJECT_ID\",\"a\":\"$OURS_CURSOR\"}}"
PG_DEEP="{\"query\":\"query(\$p: UUID!, \$a: Cursor) { allContacts(condition: {projectId: \$p}, $PG_ORDER, first: 50, after: \$a) { $PG_FIELDS } }\",\"variables\":{\"p\":\"$PROJECT_ID\",\"a\":\"$PG_CURSOR\"}}"
OURS_SEARCH="{\"query\":\"query(\$p: ID!) { contacts(projectId: \$p, first: 50, filter: {search: \\\"$SEARCH\\\"}) { $OURS_FIELDS } }\",\"variables\":{\"p\":\"$PROJECT_ID\"}}"
PG_SEARCH_BODY="{\"query\":\"query(\$p: UUID!) { allContacts(condition: {projectId: \$p}, $PG_SEARCH, $PG_ORDER, first: 50) { $PG_FIELDS } }\",\"variables\":{\"p\":\"$PROJECT_ID\"}}"

# name|server|body; each query runs on the three servers one after the other.
# PostGraphile's deep pages come last: PostgreSQL goes on running them long
# after wrk has given up, which would slow whatever was measured next.
SCENARIOS=(
  "first page|ours|$OURS_FIRST"
  "first page|postgraphile|$PG_FIRST"
  "first page|postgraphile-2|$PG_FIRST"
  "search '$SEARCH'|ours|$OURS_SEARCH"
  "search '$SEARCH'|postgraphile|$PG_SEARCH_BODY"
  "search '$SEARCH'|postgraphile-2|$PG_SEARCH_BODY"
  "page $DEEP deep|ours|$OURS_DEEP"
  "page $DEEP deep|postgraphile|$PG_DEEP"
  "page $DEEP deep|postgraphile-2|$PG_DEEP"
)

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

url_of() {
  case "$1" in
    ours) echo "http://127.0.0.1:$OURS_PORT/graphql" ;;
    postgraphile) echo "http://127.0.0.1:$PG_PORT/graphql" ;;
    *) echo "http://127.0.0.1:$((PG_PORT + 1))/graphql" ;;
  esac
}

# Every request must answer 50 contacts, the same ones on both servers.
step "checking the answers"
declare -A FIRST_IDS
for scenario in "${SCENARIOS[@]}"; do
  IFS='|' read -r name server body <<<"$scenario"
  answer="$(curl -sf -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" -d "$body" "$(url_of "$server")")"
  ids="$(python3 -c '
import json, sys
data = json.loads(sys.argv[1])
assert "errors" not in data, data
conn = next(iter(data["data"].values()))
ids = [edge["node"]["id"] for edge in conn["edges"]]
assert len(ids) == 50, len(ids)
print(",".join(ids))' "$answer")"
  if [ -n "${FIRST_IDS[$name]:-}" ] && [ "${FIRST_IDS[$name]}" != "$ids" ]; then
    echo "the servers disagree on: $name" >&2; exit 1
  fi
  FIRST_IDS[$name]="$ids"
done

step "measuring: wrk, $THREADS thread, $CONNECTIONS connections, $WARMUP warm-up then $DURATION per row"
declare -A RPS
printf '| query | server | requests/s | p50 | p99 |\n|---|---|---|---|---|\n'
for scenario in "${SCENARIOS[@]}"; do
  IFS='|' read -r name server body <<<"$scenario"
  script="$RESULTS/request.lua"
  python3 - "$body" "$TOKEN" >"$script" <<'PY'
import json, sys
body, token = sys.argv[1], sys.argv[2]
print('wrk.method = "POST"')
print('wrk.headers["Content-Type"] = "application/json"')
print('wrk.headers["Authorization"] = "Bearer " .. %s' % json.dumps(token))
print('wrk.body = %s' % json.dumps(body))
PY
  url="$(url_of "$server")"
  settle
  wrk -t "$THREADS" -c "$CONNECTIONS" -d "$WARMUP" -s "$script" "$url" >/dev/null
  out="$RESULTS/$(echo "$name-$server" | tr -c 'a-zA-Z0-9-' '_').txt"
  wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --latency -s "$script" "$url" >"$out"
  if grep -q "Non-2xx" "$out"; then echo "$server answered errors: $out" >&2; exit 1; fi
  rps="$(awk '/Requests\/sec/ {print $2}' "$out")"
  p50="$(awk '/^ +50%/ {print $2}' "$out")"
  p99="$(awk '/^ +99%/ {print $2}' "$out")"
  printf '| %s | %s | %s | %s | %s |\n' "$name" "$server" "$rps" "$p50" "$p99"
  RPS["$name|$server"]="$rps"
done

printf '\n| query | ours / postgraphile | ours / postgraphile, 2 workers |\n|---|---|---|\n'
for name in "first page" "search '$SEARCH'" "page $DEEP deep"; do
  python3 -c '
import sys
ours, *others = map(float, sys.argv[2:])
print("| %s | %s |" % (sys.argv[1], " | ".join("%.2f" % (ours / other) if other else "no answer in time" for other in others)))' \
    "$name" "${RPS[$name|ours]}" "${RPS[$name|postgraphile]}" "${RPS[$name|postgraphile-2]}"
done
