-- outbox_message: the transactional outbox. A producing service appends rows here in the same
-- transaction as its business write; the relay reads each shard in id order, publishes the rows
-- to Kafka and deletes them once every record is acknowledged. A row that can never be published
-- is parked (parked_at set, last_error kept) instead of deleted, and is skipped by the read path.

create schema if not exists ${outbox_schema};

create table ${outbox_schema}.outbox_message (
    id           bigint generated always as identity,              -- read order within a shard
    message_id   uuid        not null,                              -- UUIDv7, the dedup identity downstream
    shard        int         not null,                              -- stableHash(key) mod shard count
    topic        text        not null,
    message_key  text,                                              -- Kafka record key, null for keyless messages
    message_type text        not null,
    content_type text        not null,
    headers      jsonb       not null default '{}',                 -- extra string headers, e.g. traceparent
    payload      bytea,                                             -- null is a tombstone
    created_at   timestamptz not null
-- [jooq ignore start]
                             default clock_timestamp()              -- wall clock at append, not transaction start
-- [jooq ignore stop]
    ,
    attempts     int         not null default 0,
    last_error   text,
    parked_at    timestamptz,                                       -- null = publishable
    constraint outbox_message_pkey primary key (id),
    constraint outbox_message_message_id_key unique (message_id),
    constraint outbox_message_shard_check check (shard >= 0),
    constraint outbox_message_attempts_check check (attempts >= 0),
    constraint outbox_message_topic_check check (length(topic) > 0)  -- i.e. topic <> ''
);

-- The relay's read path: next publishable rows of one shard in id order.
create index outbox_message_publishable_idx
    on ${outbox_schema}.outbox_message (shard, id)
    where parked_at is null;

-- Parked rows: listing, requeue and purge, and the hold-back check for a shard.
create index outbox_message_parked_idx
    on ${outbox_schema}.outbox_message (shard, id)
    where parked_at is not null;

-- A queue table: every row is inserted once, updated rarely and deleted soon after. The default
-- autovacuum trigger (20% of the table dead) lets dead tuples pile up behind a large backlog, and
-- the relay's index scans then walk over them. Vacuum instead after a fixed number of dead rows,
-- whatever the table size, and without cost throttling so it keeps up with the delete rate.
-- fillfactor 90 leaves room on each page for HOT updates of attempts / last_error.
-- [jooq ignore start]
alter table ${outbox_schema}.outbox_message set (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 5000,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 5000,
    fillfactor = 90
);
-- [jooq ignore stop]
