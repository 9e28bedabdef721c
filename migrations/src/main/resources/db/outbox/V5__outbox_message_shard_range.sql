-- A writer that computes shards for more shards than this install has would store rows on shards
-- that have no lease row: no relay would ever publish them, and nothing would fail. Reject such
-- rows at insert instead. (Outbox itself compares its shard count with the lease table before its
-- first append; this guards every other writer of the table.) The placeholder was validated by V2.
-- [jooq ignore start]
alter table ${outbox_schema}.outbox_message
    add constraint outbox_message_shard_range check (shard < ${outbox_shards});
-- [jooq ignore stop]
