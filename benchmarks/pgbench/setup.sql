-- Tables for the pgbench comparison in ../PRODUCER.md ("The second insert without the JVM"), in a
-- schema of their own that is dropped and created again: nothing else in the database is touched.
-- outbox_message has the shape the migrations give it (V1, with V5's shard range for 64 shards);
-- each other outbox_* table is that shape with one thing taken away.
drop schema if exists producer_pgbench cascade;
create schema producer_pgbench;
set search_path = producer_pgbench;

create table business_order (id uuid primary key, customer text, amount bigint, placed_at timestamptz);

create table debezium_outbox (
    id uuid primary key, aggregatetype text not null, aggregateid text not null, type text not null,
    payload bytea);

-- a UUID whose first 48 bits are the epoch milliseconds, like the UUIDv7 that Outbox generates
create function time_ordered_uuid() returns uuid language sql volatile as $$
    select (lpad(to_hex((extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0')
            || substr(md5(random()::text), 1, 20))::uuid
$$;

create table outbox_message (
    id           bigint generated always as identity,
    message_id   uuid        not null,
    shard        int         not null,
    topic        text        not null,
    message_key  text,
    message_type text        not null,
    content_type text        not null,
    headers      jsonb       not null default '{}',
    payload      bytea,
    created_at   timestamptz not null default clock_timestamp(),
    attempts     int         not null default 0,
    last_error   text,
    parked_at    timestamptz,
    constraint outbox_message_pkey primary key (id),
    constraint outbox_message_message_id_key unique (message_id),
    constraint outbox_message_shard_check check (shard >= 0),
    constraint outbox_message_attempts_check check (attempts >= 0),
    constraint outbox_message_topic_check check (length(topic) > 0),
    constraint outbox_message_shard_range check (shard < 64));
create index outbox_message_publishable_idx on outbox_message (shard, id) where parked_at is null;
create index outbox_message_parked_idx on outbox_message (shard, id) where parked_at is not null;
alter table outbox_message set (
    autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000, autovacuum_vacuum_cost_delay = 0,
    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 5000,
    autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 5000, fillfactor = 90);

create table outbox_no_message_id_key (like outbox_message including all);
alter table outbox_no_message_id_key drop constraint outbox_no_message_id_key_message_id_key;

create table outbox_no_partial_indexes (like outbox_message including all);
drop index outbox_no_partial_indexes_shard_id_idx, outbox_no_partial_indexes_shard_id_idx1;

create table outbox_no_identity (like outbox_message including all);
alter table outbox_no_identity drop constraint outbox_no_identity_pkey;
alter table outbox_no_identity alter column id drop identity, alter column id drop not null;

create table outbox_no_checks (like outbox_message including defaults including identity including indexes
    including storage);

create table outbox_slim (
    id bigint generated always as identity primary key, message_id uuid not null, shard int not null,
    topic text not null, message_key text, payload bytea);

-- The two tables of a layout without per-row deletes (../RELAY.md, "Storage layouts"): the relay
-- would read by a per-shard cursor with a snapshot filter on each row's transaction id, and empty
-- the table by truncating it. outbox_cursor_layout is one such table: no primary key, a transaction
-- id per row. outbox_by_generation is what rotating between two of them asks of the producer: a
-- table partitioned by generation, each row routed by a default that reads the current generation.
create table outbox_cursor_layout (like outbox_message including defaults including identity including storage
    including constraints);
alter table outbox_cursor_layout add column tx xid8 not null default pg_current_xact_id(),
    add constraint outbox_cursor_layout_message_id_key unique (message_id);
create index on outbox_cursor_layout (shard, id);
create index on outbox_cursor_layout (shard, id) where parked_at is not null;

create table outbox_generation (current_generation smallint not null);
insert into outbox_generation values (0);
create function outbox_current_generation() returns smallint language sql stable as $$
    select current_generation from producer_pgbench.outbox_generation
$$;
create table outbox_by_generation (like outbox_cursor_layout including defaults including identity
    including storage including constraints, generation smallint not null default outbox_current_generation())
    partition by list (generation);
create table outbox_by_generation_0 partition of outbox_by_generation for values in (0);
create table outbox_by_generation_1 partition of outbox_by_generation for values in (1);
alter table outbox_by_generation add constraint outbox_by_generation_message_id_key unique (message_id, generation);
create index on outbox_by_generation (shard, id);
create index on outbox_by_generation (shard, id) where parked_at is not null;
