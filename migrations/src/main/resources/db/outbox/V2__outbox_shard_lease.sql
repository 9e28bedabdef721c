-- outbox_shard_lease: one row per shard. A relay owns a shard while lease_until is in the future;
-- every claim or takeover bumps epoch, and every write a relay makes to outbox rows is fenced by
-- (shard, owner, epoch). The shard count is fixed at install time by the outbox_shards placeholder.
-- outbox_relay_member: the live relays, each renewing heartbeat_until, so that every relay can
-- compute its fair share of the shards.

-- [jooq ignore start]
do $$
declare
    requested text := '${outbox_shards}';
    shards    int;
begin
    if requested ~ '^[0-9]{1,9}$' then
        shards := requested::int;
    end if;
    if shards is null or shards < 1 or shards > 4096 then
        raise exception 'Flyway placeholder outbox_shards must be an integer between 1 and 4096, got ''%''', requested
            using hint = 'Set the placeholder outbox_shards (default 64) when configuring Flyway; it is fixed at install time.';
    end if;
end
$$;
-- [jooq ignore stop]

create table ${outbox_schema}.outbox_shard_lease (
    shard       int         not null,
    owner       text,                                   -- null = never claimed or handed back
    epoch       bigint      not null default 0,         -- fencing token, bumped on every change of owner
    -- Expired (free to claim) until first claimed. A finite instant rather than '-infinity', which
    -- jOOQ cannot read into an OffsetDateTime.
    lease_until timestamptz not null default '1970-01-01 00:00:00+00',
    constraint outbox_shard_lease_pkey primary key (shard),
    constraint outbox_shard_lease_shard_check check (shard >= 0),
    constraint outbox_shard_lease_epoch_check check (epoch >= 0)
);

-- [jooq ignore start]
insert into ${outbox_schema}.outbox_shard_lease (shard)
select s from generate_series(0, ${outbox_shards} - 1) as s;
-- [jooq ignore stop]

create table ${outbox_schema}.outbox_relay_member (
    owner           text        not null,
    heartbeat_until timestamptz not null,
    started_at      timestamptz not null
-- [jooq ignore start]
                                default clock_timestamp()
-- [jooq ignore stop]
    ,
    constraint outbox_relay_member_pkey primary key (owner)
);

-- Both tables are tiny and renewed every few seconds, so almost every version of a row is dead soon
-- after it is written. Only the key is indexed, so renewals can be HOT updates if the page has room:
-- leave half of each page free.
-- [jooq ignore start]
alter table ${outbox_schema}.outbox_shard_lease set (fillfactor = 50);
alter table ${outbox_schema}.outbox_relay_member set (fillfactor = 50);
-- [jooq ignore stop]
