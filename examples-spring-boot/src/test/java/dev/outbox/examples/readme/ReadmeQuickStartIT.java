package dev.outbox.examples.readme;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.consumer.IdempotentConsumer;
import dev.outbox.core.Outbox;
import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.relay.Relay;
import dev.outbox.schemas.orders.OrderLine;
import dev.outbox.schemas.orders.OrderPlaced;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import javax.sql.DataSource;
import org.jooq.DSLContext;
import org.jooq.Record;
import org.jooq.SQLDialect;
import org.jooq.TableField;
import org.jooq.impl.DSL;
import org.jooq.impl.SQLDataType;
import org.jooq.impl.TableImpl;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The root README's Java quick start, compiled and run: {@link #quickStart} holds the README's
 * code block line for line ({@link #theReadmeShowsThisCode} fails when they differ), and {@link
 * #theQuickStartRunsEndToEnd} runs it against real PostgreSQL and Kafka with a relay, so the code a
 * new user copies is known to work (G1, G4).
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class ReadmeQuickStartIT {
    private static final String BEGIN = "// README quick start: begin";
    private static final String END = "// README quick start: end";

    /** The user's generated jOOQ table classes in the README: {@code ORDERS} and {@code PAYMENTS}. */
    static final class Orders extends TableImpl<Record> {
        final TableField<Record, UUID> ID = createField(DSL.name("id"), SQLDataType.UUID, this);
        final TableField<Record, Long> AMOUNT = createField(DSL.name("amount"), SQLDataType.BIGINT, this);

        Orders() {
            super(DSL.name("orders"));
        }
    }

    static final class Payments extends TableImpl<Record> {
        final TableField<Record, String> ORDER_ID = createField(DSL.name("order_id"), SQLDataType.VARCHAR, this);

        Payments() {
            super(DSL.name("payments"));
        }
    }

    static final Orders ORDERS = new Orders();
    static final Payments PAYMENTS = new Payments();

    @Test
    void theReadmeShowsThisCode() throws IOException {
        assertThat(normalize(readmeQuickStart())).isEqualTo(normalize(testQuickStart()));
    }

    @Test
    void theQuickStartRunsEndToEnd() throws Exception {
        try (TestDatabase db = TestDatabase.create()) {
            db.dsl().execute("create table public.orders(id uuid primary key, amount bigint not null)");
            db.dsl().execute("create table public.payments(id bigserial primary key, order_id text not null)");
            UUID orderId = UUID.randomUUID();
            OrderPlaced orderPlaced = OrderPlaced.newBuilder()
                    .setOrderId(orderId.toString())
                    .setCustomerId("c-1")
                    .setAmountCents(1250)
                    .setCurrency("EUR")
                    .setPlacedAt(Instant.now())
                    .setLines(List.of(OrderLine.newBuilder()
                            .setSku("sku-1")
                            .setQuantity(1)
                            .build()))
                    .build();
            DataSource dataSource = db.dataSource();
            DSLContext dsl = DSL.using(dataSource, SQLDialect.POSTGRES);
            TestKafka kafka = TestKafka.shared();
            kafka.createTopic("orders", 3);

            IdempotentConsumer payments = quickStart(dataSource, dsl, orderId, orderPlaced, kafka.bootstrapServers());
            try (payments;
                    Relay relay = Relay.builder()
                            .dataSource(dataSource)
                            .producerProperties(Map.of("bootstrap.servers", kafka.bootstrapServers()))
                            .build()) {
                relay.start();
                await().atMost(Duration.ofMinutes(2))
                        .untilAsserted(
                                () -> assertThat(dsl.fetchCount(PAYMENTS, PAYMENTS.ORDER_ID.eq(orderId.toString())))
                                        .isEqualTo(1));
            }
            assertThat(dsl.fetchCount(ORDERS, ORDERS.ID.eq(orderId))).isEqualTo(1);
        }
    }

    @SuppressWarnings("resource")
    private static IdempotentConsumer quickStart(
            DataSource dataSource, DSLContext dsl, UUID orderId, OrderPlaced orderPlaced, String bootstrapServers) {
        // README quick start: begin
        // Producer: the business write and its message commit together (outbox-core).
        OutboxMigrations.migrate(dataSource); // or add OutboxMigrations.LOCATION to your own Flyway
        Outbox outbox = Outbox.builder().build(); // schema "outbox", 64 shards
        dsl.transaction(tx -> {
            tx.dsl()
                    .insertInto(ORDERS)
                    .set(ORDERS.ID, orderId)
                    .set(ORDERS.AMOUNT, 1250L)
                    .execute();
            outbox.append(tx.dsl(), "orders", orderId.toString(), orderPlaced); // an Avro SpecificRecord
            // or JSON: outbox.appendJson(tx.dsl(), "orders", orderId.toString(), new OrderPlaced(...)) with a record
        });

        // Relay, its own process:  OUTBOX_RELAY_JDBC_URL=jdbc:postgresql://db/shop \
        //   OUTBOX_RELAY_BOOTSTRAP_SERVERS=kafka:9092 java -jar outbox-relay-0.1.0-SNAPSHOT-all.jar

        // Consumer: the dedup row and the business write commit together (consumer-dedup).
        IdempotentConsumer payments = IdempotentConsumer.builder()
                .kafkaProperties(Map.of("bootstrap.servers", bootstrapServers, "group.id", "payments"))
                .topics("orders")
                .consumerName("payments")
                .dataSource(dataSource)
                .handler((message, tx) -> tx.insertInto(PAYMENTS)
                        .set(
                                PAYMENTS.ORDER_ID,
                                message.payload(OrderPlaced.class).getOrderId())
                        .execute())
                .build();
        payments.start();
        // README quick start: end
        return payments;
    }

    /** The lines between the markers in this file. */
    private static List<String> testQuickStart() throws IOException {
        List<String> lines =
                Files.readAllLines(Path.of("src/test/java/dev/outbox/examples/readme/ReadmeQuickStartIT.java"));
        int from = indexOf(lines, BEGIN, 0);
        return lines.subList(from + 1, indexOf(lines, END, from));
    }

    /** The java code block under "## Quick start" in the root README. */
    private static List<String> readmeQuickStart() throws IOException {
        List<String> lines = Files.readAllLines(Path.of("../README.md"));
        int section = indexOf(lines, "## Quick start", 0);
        int from = indexOf(lines, "```java", section);
        return lines.subList(from + 1, indexOf(lines, "```", from + 1));
    }

    private static int indexOf(List<String> lines, String marker, int from) {
        for (int i = from; i < lines.size(); i++) {
            if (lines.get(i).trim().equals(marker)) {
                return i;
            }
        }
        throw new AssertionError("no line '" + marker + "' after line " + from);
    }

    /** Drops the common indentation, so the method body compares with the README block. */
    private static String normalize(List<String> lines) {
        int indent = lines.stream()
                .filter(l -> !l.isBlank())
                .mapToInt(l -> l.length() - l.stripLeading().length())
                .min()
                .orElse(0);
        return lines.stream().map(l -> l.isBlank() ? "" : l.substring(indent)).collect(Collectors.joining("\n"));
    }
}
