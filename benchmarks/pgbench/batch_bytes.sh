#!/usr/bin/env bash
# What bounding a batch by payload bytes costs the relay's read: see ../RELAY.md, "Batches bounded by
# payload bytes". Connection from the usual libpq variables (PGHOST, PGPORT, PGUSER, PGDATABASE);
# everything happens in schema batch_bytes_bench, dropped and created again.
#
#   benchmarks/pgbench/batch_bytes.sh [rounds]
#
# Part 1, 1 KiB payloads (80,000 rows on 4 shards): the shard's 500-row read as it was (no cap), as
# it is (the payload only up to the inline limit, and its length), and with a running sum in a window
# (the alternative not taken). Per round and variant: the mean execution time of 200 executions
# (EXPLAIN ANALYZE, timing off: PostgreSQL's own work, no transfer), then pgbench's mean latency over
# 5 s (with the transfer of every row to the client). The variants alternate within each round.
# Part 2, 16 KiB payloads of random bytes (4,000 rows): a read of 256 rows with the payloads, against
# the capped read (none of these payloads inline) followed by the fetch of the 256 payloads by id.
set -euo pipefail
rounds=${1:-4}
export PGOPTIONS="-c search_path=batch_bytes_bench -c client_min_messages=warning"
psql -q -v ON_ERROR_STOP=1 <<'SQL'
drop schema if exists batch_bytes_bench cascade;
create schema batch_bytes_bench;
create table outbox_message (
    id bigint generated always as identity primary key, message_id uuid not null unique,
    shard int not null, topic text not null, message_key text, message_type text not null,
    content_type text not null, headers jsonb not null default '{}', payload bytea,
    created_at timestamptz not null default clock_timestamp(), attempts int not null default 0,
    last_error text, parked_at timestamptz) with (fillfactor = 90);
create index outbox_message_publishable_idx on outbox_message (shard, id) where parked_at is null;
create index outbox_message_parked_key_idx on outbox_message (shard, message_key, id) where parked_at is not null;
create table big (like outbox_message including all);
insert into outbox_message (message_id, shard, topic, message_key, message_type, content_type, payload)
    select gen_random_uuid(), i % 4, 'orders', 'k-' || (i % 10000), 'T', 'c', decode(repeat('ab', 1024), 'hex')
    from generate_series(1, 80000) i;
insert into big (message_id, shard, topic, message_key, message_type, content_type, payload)
    select gen_random_uuid(), i % 4, 'orders', 'k-' || i, 'T', 'c',
        (select string_agg(decode(md5(random()::text || i || g), 'hex'), ''::bytea) from generate_series(1, 1024) g)
    from generate_series(1, 4000) i;
vacuum analyze outbox_message;
vacuum analyze big;
SQL
cols="m.id, m.message_id, m.topic, m.message_key, m.message_type, m.content_type, m.headers::text"
hold="and (m.message_key is null or not exists (select 1 from outbox_message p0 where p0.shard = \$1
 and p0.parked_at is not null) or not exists (select 1 from outbox_message p where p.shard = m.shard
 and p.parked_at is not null and p.message_key = m.message_key and p.id < m.id))"
where="from outbox_message m where m.shard = \$1 and m.parked_at is null $hold order by m.id limit 500"
declare -A read
read[uncapped]="select $cols, m.payload, m.created_at $where"
# 4 MiB / 500 rows: the inline limit of the defaults
read[capped]="select $cols, case when octet_length(m.payload) <= 8388 then m.payload end, m.created_at,
 octet_length(m.payload) $where"
read[window]="select c.* from (select q.*, sum(coalesce(octet_length(q.payload), 0)) over (order by q.id
 rows unbounded preceding) - coalesce(octet_length(q.payload), 0) as before from (select $cols as headers,
 m.payload, m.created_at $where) q) c where c.before < 4194304 order by c.id"
big_one="select $cols, m.payload, m.created_at from big m where m.shard = :s and m.parked_at is null
 order by m.id limit 256"
big_two="select $cols, case when octet_length(m.payload) <= 8388 then m.payload end, m.created_at,
 octet_length(m.payload) from big m where m.shard = :s and m.parked_at is null order by m.id limit 256;
select m.id, m.payload from big m where m.id = any(:ids::bigint[])"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the ids each shard's fetch names: its 256 lowest, as the capped read would find them
for s in 0 1 2 3; do
    psql -At -c "select '{' || string_agg(id::text, ',' order by id) || '}' from (select id from big
        where shard = $s and parked_at is null order by id limit 256) x" > "$tmp/ids$s"
done
for variant in uncapped capped window; do
    printf '\\set s random(0, 3)\n%s;\n' "$(echo "${read[$variant]}" | sed 's/\$1/:s/g')" > "$tmp/$variant.sql"
done
printf '\\set s random(0, 3)\n%s;\n' "$big_one" > "$tmp/big_one.sql"
# pgbench cannot bind an array from a variable: one script per shard, picked at random with equal weight
for s in 0 1 2 3; do
    printf '%s;\n' "$(echo "$big_two" | sed "s/:s/$s/; s/:ids/'$(cat "$tmp/ids$s")'/")" > "$tmp/big_two$s.sql"
done
for round in $(seq 1 "$rounds"); do
    for variant in uncapped capped window; do
        ms=$( { echo "prepare r(int) as ${read[$variant]};"
                for i in $(seq 1 200); do echo "explain (analyze, timing off, costs off) execute r($((i % 4)));"; done; } \
              | psql -At -v ON_ERROR_STOP=1 | awk '/^Execution Time/ { s += $3; n++ } END { printf "%.3f", s / n }')
        lat=$(pgbench -n -M prepared -c 1 -T 5 -f "$tmp/$variant.sql" 2>/dev/null | awk '/latency average/ { print $4; exit }')
        echo "round $round 1KiB $variant: execution $ms ms, pgbench $lat ms per 500-row read"
    done
    for variant in big_one big_two; do
        if [ "$variant" = big_one ]; then
            scripts=(-f "$tmp/big_one.sql")
        else
            scripts=(-f "$tmp/big_two0.sql" -f "$tmp/big_two1.sql" -f "$tmp/big_two2.sql" -f "$tmp/big_two3.sql")
        fi
        lat=$(pgbench -n -M prepared -c 1 -T 5 "${scripts[@]}" 2>/dev/null | awk '/latency average/ { print $4; exit }')
        echo "round $round 16KiB $variant: pgbench $lat ms per 256-row read"
    done
done
psql -q -c "drop schema batch_bytes_bench cascade"
