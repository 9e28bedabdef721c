#!/usr/bin/env bash
# The HOLD_KEY read of a shard after an incident that parked many rows, with the index of parked rows
# of migration V1, (shard, id), against V8's, (shard, message_key, id): see ../RELAY.md, "Reading
# behind many parked rows". Connection from the usual libpq variables (PGHOST, PGPORT, PGUSER,
# PGDATABASE); everything happens in schema hold_back_bench, dropped and created again.
#
#   benchmarks/pgbench/hold_back.sh [rounds] [parked rows per shard]
#
# Four shards, each with the given parked rows (default 5,000, of distinct keys) and 20,000
# publishable rows of 10,000 keys, 1 KiB payloads, the shards' rows interleaved. Each round builds one
# index, drops the other, analyzes, and runs the relay's read of 500 rows (as Db.shardRead renders it,
# server-side prepared, its plan forced generic as the relay's is after five executions) once per
# shard; the variants alternate, V1's first. Prints per round and variant the read's mean execution
# time and buffers.
set -euo pipefail
rounds=${1:-3}
parked=${2:-5000}
export PGOPTIONS="-c search_path=hold_back_bench -c client_min_messages=warning"
psql -q -v ON_ERROR_STOP=1 <<SQL
drop schema if exists hold_back_bench cascade;
create schema hold_back_bench;
create table outbox_message (
    id bigint generated always as identity primary key, message_id uuid not null unique,
    shard int not null, topic text not null, message_key text, message_type text not null,
    content_type text not null, headers jsonb not null default '{}', payload bytea,
    created_at timestamptz not null default clock_timestamp(), attempts int not null default 0,
    last_error text, parked_at timestamptz) with (fillfactor = 90);
create index outbox_message_publishable_idx on outbox_message (shard, id) where parked_at is null;
insert into outbox_message (message_id, shard, topic, message_key, message_type, content_type, parked_at)
    select gen_random_uuid(), i % 4, 'gone', 'parked-' || i, 'T', 'c', now()
    from generate_series(1, 4 * $parked) i;
insert into outbox_message (message_id, shard, topic, message_key, message_type, content_type, payload)
    select gen_random_uuid(), i % 4, 'orders', 'k-' || (i % 10000), 'T', 'c', decode(repeat('ab', 1024), 'hex')
    from generate_series(1, 80000) i;
vacuum analyze outbox_message;
SQL
read="select m.id, m.message_id, m.topic, m.message_key, m.message_type, m.content_type, m.headers::text,
 m.payload, m.created_at from outbox_message m where m.shard = \$1 and m.parked_at is null
 and (m.message_key is null or not exists (select 1 from outbox_message p0 where p0.shard = \$1
 and p0.parked_at is not null) or not exists (select 1 from outbox_message p where p.shard = m.shard
 and p.parked_at is not null and p.message_key = m.message_key and p.id < m.id)) order by m.id limit \$2"
for round in $(seq 1 "$rounds"); do
    for variant in V1 V8; do
        if [ "$variant" = V1 ]; then
            index="(shard, id)"
        else
            index="(shard, message_key, id)"
        fi
        psql -q -v ON_ERROR_STOP=1 -c "drop index if exists parked_idx" \
            -c "create index parked_idx on outbox_message $index where parked_at is not null" \
            -c "analyze outbox_message"
        plans=$( { echo "set plan_cache_mode = force_generic_plan;"
                   echo "prepare r(int, int) as $read;"
                   for shard in 0 1 2 3; do
                       echo "explain (analyze, buffers, costs off) execute r($shard, 500);"
                   done; } | psql -At -v ON_ERROR_STOP=1)
        echo "$plans" | awk -v round="$round" -v variant="$variant" '
            /^Execution Time/ { ms += $3; n++ }
            /^Limit/ { top = 1; next }
            top && /Buffers: shared/ { split($0, a, "hit="); split(a[2], b, " "); hit += b[1];
                if (index($0, "read=")) { split($0, c, "read="); hit += c[2] + 0 } top = 0 }
            END { printf "round %d  %s  %.1f ms per read  %d buffers per read\n", round, variant, ms / n, hit / n }'
    done
done
