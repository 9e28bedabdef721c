package dev.outbox.spring;

import dev.outbox.core.OutboxHeaders;
import dev.outbox.testkit.TestDatabase;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.UUID;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.test.context.DynamicPropertyRegistry;

/**
 * What the starter's {@code @KafkaListener} applications under test share: a database with a payments
 * table, the Spring properties of a listener that reads the test's topic, the records sent to it and the
 * payments counted.
 */
final class ListenerApps {
    /** No unique constraint on order_id: a second effect of one message would show as a second row. */
    static final String PAYMENTS_DDL =
            "create table payments(id bigserial primary key, message_id uuid not null, order_id text not null)";

    private ListenerApps() {}

    /** @return a new database with these tables */
    static TestDatabase database(String... ddl) {
        TestDatabase db = TestDatabase.create();
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            for (String statement : ddl) {
                st.execute(statement);
            }
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
        return db;
    }

    /**
     * Registers the data source of {@code db}, a consumer that reads {@code topic} (property {@code
     * test.topic}) from the earliest offset with String keys and byte[] values, and listener retries of 10 ms
     * doubling up to 100 ms.
     */
    static void properties(DynamicPropertyRegistry registry, TestDatabase db, String topic) {
        registry.add("spring.datasource.url", db::jdbcUrl);
        registry.add("spring.datasource.username", db::user);
        registry.add("spring.datasource.password", db::password);
        registry.add("spring.kafka.consumer.auto-offset-reset", () -> "earliest");
        registry.add(
                "spring.kafka.consumer.key-deserializer",
                () -> "org.apache.kafka.common.serialization.StringDeserializer");
        registry.add(
                "spring.kafka.consumer.value-deserializer",
                () -> "org.apache.kafka.common.serialization.ByteArrayDeserializer");
        registry.add("test.topic", () -> topic);
        registry.add("outbox.listener-retries.initial-interval", () -> "10ms");
        registry.add("outbox.listener-retries.max-interval", () -> "100ms");
    }

    /** @return a record of order {@code orderId} (its key) with message id {@code id} */
    static ProducerRecord<byte[], byte[]> record(String topic, UUID id, String orderId) {
        ProducerRecord<byte[], byte[]> r = new ProducerRecord<>(
                topic, orderId.getBytes(StandardCharsets.UTF_8), "100".getBytes(StandardCharsets.UTF_8));
        r.headers().add(OutboxHeaders.MESSAGE_ID, id.toString().getBytes(StandardCharsets.UTF_8));
        return r;
    }

    /** @return the payment rows of message {@code id} */
    static int payments(JdbcTemplate jdbc, UUID id) {
        Integer n = jdbc.queryForObject("select count(*) from payments where message_id = ?", Integer.class, id);
        return n == null ? 0 : n;
    }
}
