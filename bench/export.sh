#!/usr/bin/env bash
# The contact export benchmark: `contacts export` (the workers' own code
# path: keyset chunks → CSV file → store) against `psql \copy` of the same
# rows, on a PostgreSQL database of its own (seeded like bench/run.sh), interleaved
# RUNS times (3) with medians, and the XLSX export of all rows; with the peak
# memory of the export at about 100k and at all (1M) rows.
#
#   bash bench/export.sh          # seeds like bench/run.sh when needed
#
# Needs PostgreSQL on 127.0.0.1:5432 (trust auth) and GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL="${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DB_NAME="${DB_NAME:-contacts_bench_export}"
DB_URL="${ADMIN_URL%/*}/$DB_NAME"
CONTACTS="${CONTACTS:-1000000}"
SMALL="${SMALL:-100000}"
OUT="bench/results/export"
mkdir -p "$OUT"

step() { printf '\n==> %s\n' "$*" >&2; }
psql_admin() { psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -qtAX "$@"; }
psql_bench() { psql "$DB_URL" -v ON_ERROR_STOP=1 -qtAX "$@"; }

cargo build --release --quiet --bin contacts
BIN=target/release/contacts
if [ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" ]; then
  psql_admin -c "CREATE DATABASE \"$DB_NAME\""
fi
export DATABASE_URL="$DB_URL" DATA_DIR="$OUT/data" RUST_LOG=warn
"$BIN" migrate
AGENT_EMAIL=bench@example.com
if [ -z "$(psql_bench -c "SELECT 1 FROM agents WHERE email = '$AGENT_EMAIL'")" ]; then
  CONTACTS_AGENT_PASSWORD=bench-password-1 "$BIN" create-agent --email "$AGENT_EMAIL" --name Bench >/dev/null
  "$BIN" create-project --name "Bench shop" --owner "$AGENT_EMAIL" >/dev/null
fi
PROJECT_ID="$(psql_bench -c "SELECT project_id FROM memberships m JOIN agents a ON a.id = m.agent_id WHERE a.email = '$AGENT_EMAIL' LIMIT 1")"
HAVE="$(psql_bench -c "SELECT count(*) FROM contacts WHERE project_id = '$PROJECT_ID'")"
if [ "$HAVE" -lt "$CONTACTS" ]; then
  step "seeding $((CONTACTS - HAVE)) contacts"
  "$BIN" seed --project "$PROJECT_ID" --contacts "$((CONTACTS - HAVE))" --seed "$HAVE"
  psql_bench -c "VACUUM ANALYZE contacts"
fi

ALL_FROM="1970-01-01T00:00:00Z"
ALL_TO="2100-01-01T00:00:00Z"
# The newest SMALL contacts: the range starts at the SMALL-th newest.
SMALL_FROM="$(psql_bench -c "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM contacts WHERE project_id = '$PROJECT_ID' ORDER BY created_at DESC, id DESC OFFSET $((SMALL - 1)) LIMIT 1")"

# The same rows and columns as the export, in the same order.
copy_query() {
  echo "SELECT c.id, c.name, c.email, c.phone, c.company, c.country_code, c.state_name, c.province_name, c.city, c.postal_code, c.time_zone, c.created_at, c.last_seen_at, c.custom_attributes FROM contacts c WHERE c.project_id = '$PROJECT_ID' AND c.created_at >= '$1' AND c.created_at < '$2' ORDER BY c.created_at, c.id"
}

measure_export() { # from to label [format]
  local format="${4:-csv}"
  step "contacts export ($format): $3"
  /usr/bin/time -f "%e %M" -o "$OUT/time-$3" \
    "$BIN" export --project "$PROJECT_ID" --agent "$AGENT_EMAIL" --from "$1" --to "$2" --format "$format" | tee "$OUT/export-$3.log" >&2
  rows="$(grep -o 'completed: [0-9]*' "$OUT/export-$3.log" | grep -o '[0-9]*')"
  read -r seconds kb < "$OUT/time-$3"
  rm -rf "$OUT/data/exports"
  echo "$rows $seconds $kb"
}

measure_copy() { # from to label
  step "psql \\copy: $3"
  /usr/bin/time -f "%e %M" -o "$OUT/time-copy-$3" \
    psql "$DB_URL" -v ON_ERROR_STOP=1 -qtAX -c "\\copy ($(copy_query "$1" "$2")) TO '$OUT/copy-$3.csv' WITH (FORMAT csv, HEADER)"
  rows="$(($(wc -l < "$OUT/copy-$3.csv") - 1))"
  read -r seconds kb < "$OUT/time-copy-$3"
  rm -f "$OUT/copy-$3.csv"
  echo "$rows $seconds $kb"
}

# Warm the cache once so that neither side pays for the first read.
psql_bench -c "SELECT count(*) FROM contacts WHERE project_id = '$PROJECT_ID'" >/dev/null

RUNS="${RUNS:-3}"
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
rate() { awk -v r="$1" -v s="$2" 'BEGIN { printf "%.0f", r / s }'; }
: > "$OUT/runs"
# Interleaved: each run measures the export, then psql, then the small
# export and the XLSX export, so that the machine's drift touches all alike.
for run in $(seq 1 "$RUNS"); do
  read -r big_rows big_s big_kb < <(measure_export "$ALL_FROM" "$ALL_TO" all)
  read -r copy_rows copy_s copy_kb < <(measure_copy "$ALL_FROM" "$ALL_TO" all)
  read -r small_rows small_s small_kb < <(measure_export "$SMALL_FROM" "$ALL_TO" small)
  read -r xlsx_rows xlsx_s xlsx_kb < <(measure_export "$ALL_FROM" "$ALL_TO" xlsx xlsx)
  echo "$run $big_rows $big_s $big_kb $copy_rows $copy_s $copy_kb $small_rows $small_s $small_kb $xlsx_rows $xlsx_s $xlsx_kb" >> "$OUT/runs"
done

column_of() { awk -v c="$1" '{ print $c }' "$OUT/runs"; }
printf '\n| run | export CSV 1M (s, MiB) | psql \\copy 1M (s, MiB) | ratio (psql s ÷ export s) | export CSV newest %s (s, MiB) | export XLSX 1M (s, MiB) |\n|---|---|---|---|---|---|\n' "$SMALL"
while read -r run big_rows big_s big_kb copy_rows copy_s copy_kb small_rows small_s small_kb xlsx_rows xlsx_s xlsx_kb; do
  [ "$big_rows" = "$copy_rows" ] || echo "rows differ in run $run: export $big_rows, psql $copy_rows" >&2
  echo "| $run | $big_s, $((big_kb / 1024)) | $copy_s, $((copy_kb / 1024)) | $(ratio "$copy_s" "$big_s") | $small_s, $((small_kb / 1024)) | $xlsx_s, $((xlsx_kb / 1024)) |"
done < "$OUT/runs"
big_median="$(column_of 3 | median)"
copy_median="$(column_of 6 | median)"
cat <<SUMMARY

rows: export $(column_of 2 | head -1), psql $(column_of 5 | head -1), XLSX $(column_of 11 | head -1)
median seconds: export CSV $big_median, psql \\copy $copy_median, XLSX $(column_of 12 | median)
export speed ÷ psql speed (medians): $(ratio "$copy_median" "$big_median"); per run: $(paste -d' ' <(column_of 6) <(column_of 3) | awk '{ printf "%.2f ", $1 / $2 }')
peak memory (median MiB): CSV 1M $(($(column_of 4 | median | cut -d. -f1) / 1024)), CSV newest $SMALL $(($(column_of 10 | median | cut -d. -f1) / 1024)), XLSX 1M $(($(column_of 13 | median | cut -d. -f1) / 1024))
SUMMARY
