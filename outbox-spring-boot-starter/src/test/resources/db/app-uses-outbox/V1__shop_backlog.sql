-- an application migration that uses the outbox's tables, in a schema of the outbox's own
create view shop_backlog as select count(*) as backlog from shop_outbox.outbox_message;
