-- processed_message: the idempotent consumer's memory. A consumer inserts (consumer, message_id)
-- in the same transaction as its business write; a redelivered message hits the primary key and is
-- skipped. Rows are purged by processed_at after a retention longer than any redelivery window.

create table ${outbox_schema}.processed_message (
    consumer     text        not null,                  -- the dedup scope, one per consumer name
    message_id   uuid        not null,
    processed_at timestamptz not null
-- [jooq ignore start]
                             default clock_timestamp()
-- [jooq ignore stop]
    ,
    outcome      text        not null default 'HANDLED',
    constraint processed_message_pkey primary key (consumer, message_id),
    constraint processed_message_outcome_check check (outcome in ('HANDLED', 'DEAD_LETTERED'))
);

-- The retention purge deletes by age.
create index processed_message_processed_at_idx
    on ${outbox_schema}.processed_message (processed_at);

-- Insert-heavy, never updated, deleted in bulk by the purge. Vacuum after inserts so the visibility
-- map stays current, vacuum soon after a purge rather than after 20% of a large table is dead, and
-- keep statistics on processed_at fresh so the purge's range scan is planned well.
-- [jooq ignore start]
alter table ${outbox_schema}.processed_message set (
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_vacuum_insert_threshold = 10000,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 10000,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_analyze_threshold = 10000
);
-- [jooq ignore stop]
