-- The hold-back check of the HOLD_KEY park policy asks, for every row the relay reads, whether an
-- earlier row of its key is parked in its shard. V1's index of parked rows is ordered by (shard, id),
-- so that check walked every parked row of the shard for each row read: after an incident that parked
-- 5,000 rows in a shard, a read of 500 rows visited 233,000 buffers and took over a second. Ordered by
-- (shard, message_key, id), the check is one index descent per row read. The index stays partial: a
-- row enters it only when parked, so appends do not write to it and it stays as small as the parked
-- rows are few. It replaces V1's index: the check for whether a shard has parked rows at all, and the
-- per-shard counts of `outbox status`, use it the same way; listing, requeue and purge find parked
-- rows by id.
--
-- Building the index scans the table while appends wait (a SHARE lock): milliseconds for a table the
-- relay keeps small. Where the table is large, create the same index by hand first, without blocking
-- writers, and this script then skips it:
--   create index concurrently outbox_message_parked_key_idx on <schema>.outbox_message
--       (shard, message_key, id) where parked_at is not null;
create index if not exists outbox_message_parked_key_idx
    on ${outbox_schema}.outbox_message (shard, message_key, id)
    where parked_at is not null;

drop index if exists ${outbox_schema}.outbox_message_parked_idx;
