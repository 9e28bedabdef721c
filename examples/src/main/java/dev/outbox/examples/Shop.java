package dev.outbox.examples;

import static org.jooq.impl.DSL.field;
import static org.jooq.impl.DSL.name;
import static org.jooq.impl.DSL.table;

import java.time.OffsetDateTime;
import java.util.UUID;
import javax.sql.DataSource;
import org.jooq.DSLContext;
import org.jooq.Field;
import org.jooq.Record;
import org.jooq.SQLDialect;
import org.jooq.Table;
import org.jooq.impl.DSL;

/**
 * The example's business tables, in schema {@code shop}. {@code payments} deliberately has no
 * unique constraint on {@code order_id}: a double charge would show up as a second row rather
 * than be hidden by the database.
 */
public final class Shop {
    public static final Table<Record> ORDERS = table(name("shop", "orders"));
    public static final Field<UUID> ORDER_ID = field(name("order_id"), UUID.class);
    public static final Field<String> CLIENT_REF = field(name("client_ref"), String.class);
    public static final Field<String> CUSTOMER_ID = field(name("customer_id"), String.class);
    public static final Field<Long> AMOUNT_CENTS = field(name("amount_cents"), Long.class);
    public static final Field<String> CURRENCY = field(name("currency"), String.class);
    public static final Field<String> SKU = field(name("sku"), String.class);
    public static final Field<Integer> QUANTITY = field(name("quantity"), Integer.class);
    public static final Field<OffsetDateTime> CREATED_AT = field(name("created_at"), OffsetDateTime.class);

    public static final Table<Record> PAYMENTS = table(name("shop", "payments"));
    public static final Field<UUID> PAYMENT_ID = field(name("payment_id"), UUID.class);
    public static final Field<UUID> MESSAGE_ID = field(name("message_id"), UUID.class);
    public static final Field<String> CHARGE_ID = field(name("processor_charge_id"), String.class);

    private Shop() {}

    /**
     * Creates the schema and tables unless they exist.
     *
     * @param dataSource the shop's database
     */
    public static void create(DataSource dataSource) {
        DSLContext dsl = DSL.using(dataSource, SQLDialect.POSTGRES);
        dsl.execute("create schema if not exists shop");
        dsl.execute("""
        create table if not exists shop.orders (
          order_id     uuid primary key,
          client_ref   text not null,
          customer_id  text not null,
          amount_cents bigint not null check (amount_cents > 0),
          currency     text not null,
          sku          text not null,
          quantity     int not null check (quantity > 0),
          created_at   timestamptz not null default clock_timestamp()
        )""");
        dsl.execute("""
        create table if not exists shop.payments (
          payment_id          uuid primary key,
          order_id            uuid not null,
          message_id          uuid not null,
          amount_cents        bigint not null,
          processor_charge_id text not null,
          created_at          timestamptz not null default clock_timestamp()
        )""");
        dsl.execute("create index if not exists payments_order_id on shop.payments (order_id)");
    }
}
