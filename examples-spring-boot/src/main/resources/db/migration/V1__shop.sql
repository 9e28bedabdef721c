-- The application's own migrations, run by Spring Boot's Flyway with its own history table.
-- The outbox tables come from the starter, with theirs, so both can start at V1.
create table orders (
  id text primary key,
  customer_id text not null,
  amount_cents bigint not null,
  currency text not null,
  created_at timestamptz not null default now()
);

-- no unique constraint on order_id: a double charge would show as a second row
create table payments (
  id bigserial primary key,
  order_id text not null,
  amount_cents bigint not null,
  currency text not null,
  charged_at timestamptz not null default now()
);
