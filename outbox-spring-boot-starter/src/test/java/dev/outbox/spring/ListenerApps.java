package dev.outbox.spring;

import dev.outbox.core.OutboxHeaders;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import javax.sql.DataSource;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Primary;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.datasource.DataSourceTransactionManager;
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

    /**
     * @return the values of partition 0 of {@code topic} up to its last stable offset, as a {@code
     *     read_committed} consumer reads them: none of an aborted transaction
     */
    static List<String> committedValues(TestKafka kafka, String topic) {
        Properties p = kafka.consumerProperties("committed-" + UUID.randomUUID());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        TopicPartition partition = new TopicPartition(topic, 0);
        List<String> values = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            consumer.assign(List.of(partition));
            consumer.seekToBeginning(List.of(partition));
            long end = consumer.endOffsets(List.of(partition)).get(partition);
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (consumer.position(partition) < end && System.nanoTime() < deadline) {
                consumer.poll(Duration.ofMillis(200))
                        .forEach(r -> values.add(new String(r.value(), StandardCharsets.UTF_8)));
            }
        }
        return values;
    }

    /** @return the payment rows of message {@code id} */
    static int payments(JdbcTemplate jdbc, UUID id) {
        Integer n = jdbc.queryForObject("select count(*) from payments where message_id = ?", Integer.class, id);
        return n == null ? 0 : n;
    }

    /**
     * The application's JDBC transactions, beside Spring Boot's Kafka transaction manager: Boot's own
     * JDBC one backs off once the Kafka one exists, so an application with both declares this one.
     */
    @Configuration(proxyBeanMethods = false)
    static class JdbcTransactions {
        @Bean
        @Primary
        DataSourceTransactionManager transactionManager(DataSource dataSource) {
            return new DataSourceTransactionManager(dataSource);
        }
    }
}
