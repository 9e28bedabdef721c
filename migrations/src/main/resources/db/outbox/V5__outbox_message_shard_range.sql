-- A producer configured with more shards than this install has (Outbox.builder().shards(n) not
-- matching the outbox_shards placeholder) would write rows to shards that have no lease row: no
-- relay would ever publish them, and nothing would fail. Reject such rows at insert instead; the
-- producer's transaction then fails with this constraint's name, and Outbox turns it into a
-- message that says which setting to fix. The placeholder was validated by V2.
-- [jooq ignore start]
alter table ${outbox_schema}.outbox_message
    add constraint outbox_message_shard_range check (shard < ${outbox_shards});
-- [jooq ignore stop]
