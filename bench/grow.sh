#!/usr/bin/env bash
# Makes a bigger copy of the page benchmark's database for the scale
# figures: a new database from contacts_bench (bench/run.sh seeds it), whose
# project's contacts are copied FACTOR-1 times over with new ids and older
# creation times, so that the newest-first list and its search keep their
# shape at FACTOR times the rows. The copies' ids sort below the seeded
# ones (the copy number in front), so the primary key grows at one end;
# the other indexes are dropped for the copy and built again afterwards,
# which is many times faster than keeping a trigram index up to date row
# by row.
#
#   FACTOR=10 bash bench/grow.sh      # contacts_bench_10m, 10,000,000 contacts
#   DB_NAME=contacts_bench_10m CONTACTS=10000000 SKIP_BUILD=1 RUNS=1 bash bench/run.sh
set -euo pipefail
ADMIN_URL="${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
SOURCE="${SOURCE:-contacts_bench}"
FACTOR="${FACTOR:-10}"
TARGET="${TARGET:-contacts_bench_$((FACTOR))m}"
psql_admin() { psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -qtAX "$@"; }
if [ -n "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$TARGET'")" ]; then
  echo "$TARGET exists; drop it to grow it again" >&2
  exit 0
fi
# A template copy needs the source idle: stop servers using it first.
psql_admin -c "CREATE DATABASE \"$TARGET\" TEMPLATE \"$SOURCE\""
started=$(date +%s)
TARGET_URL="${ADMIN_URL%/*}/$TARGET"
psql "$TARGET_URL" -v ON_ERROR_STOP=1 -q <<SQL
SET maintenance_work_mem = '1GB';
CREATE TABLE grow_indexes AS
  SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  WHERE i.indrelid = 'contacts'::regclass AND NOT i.indisprimary;
DO \$\$ DECLARE index_name text; BEGIN
  FOR index_name IN SELECT name FROM grow_indexes LOOP
    EXECUTE format('DROP INDEX %I', index_name);
  END LOOP;
END \$\$;
INSERT INTO contacts (id, project_id, name, email, phone, company, custom_attributes, last_ip,
  country_code, country_name, state_name, state_code, province_name, province_code, city,
  postal_code, time_zone, latitude, longitude, accuracy_radius_km, location_corrected,
  external_id, field_sources, first_seen_at, last_seen_at, created_at, updated_at)
SELECT (lpad(to_hex(copy), 8, '0') || substr(id::text, 9))::uuid, project_id, name,
  CASE WHEN email IS NULL THEN NULL ELSE copy || '.' || email END,
  phone, company, custom_attributes, last_ip, country_code, country_name, state_name, state_code,
  province_name, province_code, city, postal_code, time_zone, latitude, longitude,
  accuracy_radius_km, location_corrected, NULL, field_sources,
  first_seen_at - copy * interval '400 days', last_seen_at - copy * interval '400 days',
  created_at - copy * interval '400 days', updated_at
FROM contacts, generate_series(1, $((FACTOR - 1))) AS copy;
DO \$\$ DECLARE statement text; BEGIN
  FOR statement IN SELECT definition FROM grow_indexes LOOP
    EXECUTE statement;
  END LOOP;
END \$\$;
DROP TABLE grow_indexes;
VACUUM ANALYZE contacts;
SQL
echo "$TARGET: $(psql "${ADMIN_URL%/*}/$TARGET" -qtAX -c 'SELECT count(*) FROM contacts') contacts in $(( $(date +%s) - started )) s"
