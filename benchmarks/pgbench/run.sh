#!/usr/bin/env bash
# The producer's second insert measured by pgbench alone, without a JVM: see ../PRODUCER.md,
# "The second insert without the JVM". Connection from the usual libpq variables (PGHOST, PGPORT,
# PGUSER, PGDATABASE); the database must exist. Everything happens in its schema producer_pgbench,
# which setup.sql drops and creates again.
#
#   benchmarks/pgbench/run.sh [rounds] [seconds] [clients] [script ...]
#
# Each round runs every script once for the given seconds with the given clients (default 3 rounds
# of 8 s, 16 clients, a and c and outbox_message), the order rotating every round, the tables
# truncated and a checkpoint taken before each run. Prints one line per run: round, script, tx/s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=${1:-3}
seconds=${2:-8}
clients=${3:-16}
shift $(($# < 3 ? $# : 3))
scripts=("$@")
if [ ${#scripts[@]} -eq 0 ]; then
    scripts=(a c outbox_message)
fi
export PGOPTIONS="-c search_path=producer_pgbench -c client_min_messages=warning"
psql -q -v ON_ERROR_STOP=1 -f "$here/setup.sql" >/dev/null
# a, c and outbox_slim have scripts of their own; every table of setup.sql with the outbox's full row
# (a content_type column; partitions left out, they take rows through their parent) takes
# outbox_row.template
full_rows=$(psql -Atq -c "select string_agg(c.relname, ' ' order by c.relname) from pg_class c
    join pg_namespace n on n.oid = c.relnamespace join pg_attribute a on a.attrelid = c.oid
    where n.nspname = 'producer_pgbench' and c.relkind in ('r', 'p') and not c.relispartition
    and a.attname = 'content_type'")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for s in "${scripts[@]}"; do
    if [ -f "$here/$s.sql" ]; then
        cp "$here/$s.sql" "$work/$s.sql"
    elif [[ " $full_rows " == *" $s "* ]]; then
        sed "s/@TABLE@/$s/" "$here/outbox_row.template" > "$work/$s.sql"
    else
        echo "no script '$s'; the scripts are: a c outbox_slim $full_rows" >&2
        exit 2
    fi
done
# every table but outbox_generation, whose one row names the generation outbox_by_generation routes to
tables=$(psql -Atq -c "select string_agg(tablename, ', ') from pg_tables where schemaname = 'producer_pgbench'
    and tablename <> 'outbox_generation'")
n=${#scripts[@]}
for r in $(seq 1 "$rounds"); do
    for i in $(seq 0 $((n - 1))); do
        s=${scripts[$(((i + r - 1) % n))]}
        psql -q -c "truncate $tables" -c checkpoint
        tps=$(pgbench -n -M prepared -c "$clients" -j 2 -T "$seconds" -f "$work/$s.sql" 2>/dev/null \
            | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
        echo "$r $s $tps"
    done
done
