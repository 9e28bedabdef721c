BEGIN;
insert into business_order values (gen_random_uuid(), 'customer-1', 4200, now());
COMMIT;
