-- the application's own first migration, run by Spring Boot's Flyway into the public schema
create table app_orders (id text primary key);
