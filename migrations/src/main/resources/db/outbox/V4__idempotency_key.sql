-- idempotency_key: the server side of the Idempotency-Key header. The key row is inserted first, in
-- the same transaction as the business write, so the primary key decides concurrent duplicates. A
-- row whose response_status is null belongs to a request still in flight; otherwise the stored
-- response (status, headers, body) is replayed. fingerprint identifies the request body, so a key
-- reused with another request can be rejected. Rows are purged after expires_at.

create table ${outbox_schema}.idempotency_key (
    scope            text        not null,              -- principal or tenant + method + route
    idem_key         text        not null,
    fingerprint      text        not null,
    response_status  int,
    response_headers jsonb,
    response_body    bytea,
    created_at       timestamptz not null
-- [jooq ignore start]
                                 default clock_timestamp()
-- [jooq ignore stop]
    ,
    expires_at       timestamptz not null,
    constraint idempotency_key_pkey primary key (scope, idem_key),
    constraint idempotency_key_idem_key_check check (length(idem_key) between 1 and 255)
);

-- The expiry purge deletes by expires_at.
create index idempotency_key_expires_at_idx
    on ${outbox_schema}.idempotency_key (expires_at);

-- Each row is inserted, updated once with the stored response, and later purged. fillfactor 80
-- leaves room for that update to stay on the page (HOT: no indexed column changes).
-- [jooq ignore start]
alter table ${outbox_schema}.idempotency_key set (
    fillfactor = 80,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_analyze_threshold = 5000
);
-- [jooq ignore stop]
