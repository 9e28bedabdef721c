\set k random(1, 1000000000)
BEGIN;
insert into business_order values (gen_random_uuid(), 'customer-1', 4200, now());
insert into outbox_slim (message_id, shard, topic, message_key, payload)
    values (time_ordered_uuid(), :k % 64, 'orders', :k, decode(repeat('ab', 512), 'hex'));
COMMIT;
