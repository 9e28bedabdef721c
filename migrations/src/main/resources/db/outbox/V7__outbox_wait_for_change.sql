-- Lets an idle relay wait inside PostgreSQL for the next commit instead of asking every few
-- milliseconds. The relay's probe asks PostgreSQL every probe interval (5 ms by default) whether its
-- idle shards hold new rows, and skips the read while no transaction ended since its last one (rows
-- become visible only at a commit, and every ended transaction changes the snapshot). While nothing
-- changes, each of those 200 statements a second still costs a round trip in the relay. With this
-- function the relay sends one statement that returns as soon as the snapshot differs from the one
-- it passes (true), or after max_ms without a change (false); PostgreSQL looks every step_ms, which
-- costs a sleeping backend far less than a statement. The backend holds a snapshot while it waits,
-- but one that holds nothing back: it returns within step_ms of any transaction ending. A relay
-- started on a schema without this function keeps asking every probe interval.
-- [jooq ignore start]
create or replace function ${outbox_schema}.outbox_wait_for_change(since text, step_ms integer, max_ms integer)
    returns boolean
    language plpgsql
    volatile
    set search_path = pg_catalog
as $$
declare
    step double precision := least(greatest(coalesce(step_ms, 1), 1), 1000) / 1000.0;
    deadline timestamptz := clock_timestamp() + make_interval(secs => least(greatest(coalesce(max_ms, 0), 0), 10000) / 1000.0);
begin
    loop
        -- a volatile function takes a new snapshot for every expression it evaluates
        if pg_current_snapshot()::text is distinct from since then
            return true;
        end if;
        if clock_timestamp() >= deadline then
            return false;
        end if;
        perform pg_sleep(step);
    end loop;
end
$$;
-- [jooq ignore stop]
