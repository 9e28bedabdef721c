\set k random(1, 1000000000)
BEGIN;
insert into business_order values (gen_random_uuid(), 'customer-1', 4200, now());
insert into debezium_outbox values (gen_random_uuid(), 'order', :k, 'OrderPlaced', decode(repeat('ab', 512), 'hex'));
COMMIT;
