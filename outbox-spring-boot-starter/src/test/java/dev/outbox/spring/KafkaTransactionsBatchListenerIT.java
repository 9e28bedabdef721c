package dev.outbox.spring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.outbox.consumer.ProcessedMessages;
import dev.outbox.core.MessageIds;
import dev.outbox.spring.internal.ListenerRetries;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.kafka.autoconfigure.KafkaConnectionDetails;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.stereotype.Service;
import org.springframework.test.annotation.DirtiesContext;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import org.springframework.transaction.annotation.Transactional;

/**
 * A batch {@code @KafkaListener} in containers that run Kafka transactions, which sends a receipt per
 * record through the transactional {@code KafkaTemplate}. Spring Kafka's error handler delivers a
 * failed batch again itself, inside the same Kafka transaction: the receipts of the failed attempts
 * stayed in it and were committed with those of the attempt that succeeded. The starter's handler
 * fails the delivery at once, so each failed attempt's receipts are rolled back with it, and its
 * after-rollback processor waits before the batch is delivered again.
 */
@ExtendWith(DropDatabaseAtEnd.class)
@SpringBootTest(classes = KafkaTransactionsBatchListenerIT.App.class)
@DirtiesContext
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class KafkaTransactionsBatchListenerIT {
    static final TestDatabase DB = ListenerApps.database(ListenerApps.PAYMENTS_DDL);
    static final TestKafka KAFKA = TestKafka.shared();
    static final String TOPIC = TestKafka.uniqueTopic("starter-kafka-tx-batch");
    static final String RECEIPTS = TestKafka.uniqueTopic("starter-kafka-tx-batch-receipts");

    /** Deliveries left to fail after the listener sent its receipts. */
    static final AtomicInteger FAILURES_LEFT = new AtomicInteger(2);
    /** Deliveries of a batch. */
    static final AtomicInteger DELIVERIES = new AtomicInteger();

    @Autowired
    JdbcTemplate jdbc;

    private final ListAppender<ILoggingEvent> log = new ListAppender<>();

    private final Logger retries = (Logger) LoggerFactory.getLogger(ListenerRetries.class);

    @BeforeEach
    void captureTheRetriesLog() {
        log.start();
        retries.addAppender(log);
    }

    @AfterEach
    void releaseTheRetriesLog() {
        retries.detachAppender(log);
    }

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        KAFKA.createTopic(TOPIC, 1);
        KAFKA.createTopic(RECEIPTS, 1);
        ListenerApps.properties(registry, DB, TOPIC);
        registry.add("spring.kafka.listener.type", () -> "batch");
        registry.add("spring.kafka.producer.transaction-id-prefix", () -> "starter-kafka-tx-batch-");
    }

    /**
     * A batch whose listener sent its receipt and failed twice is applied once, its receipt read once by
     * a {@code read_committed} consumer; each failed attempt is logged once at WARN with its number.
     */
    @Test
    void theReceiptsOfFailedAttemptsAreRolledBackWithThem() throws Exception {
        UUID id = MessageIds.next();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(KAFKA.producerProperties())) {
            producer.send(ListenerApps.record(TOPIC, id, "o-1")).get(30, TimeUnit.SECONDS);
        }
        await().atMost(Duration.ofSeconds(60))
                .untilAsserted(() -> assertThat(ListenerApps.payments(jdbc, id))
                        .as("payments of the message")
                        .isEqualTo(1));
        await().atMost(Duration.ofSeconds(30))
                .untilAsserted(() -> assertThat(ListenerApps.committedValues(KAFKA, RECEIPTS))
                        .as("receipts a read_committed consumer reads")
                        .containsExactly("paid " + id));
        assertThat(DELIVERIES)
                .as("deliveries: two that failed, one that committed")
                .hasValue(3);

        List<String> warnings = log.list.stream()
                .filter(e -> e.getLevel() == Level.WARN)
                .map(ILoggingEvent::getFormattedMessage)
                .toList();
        assertThat(warnings).as("the listener retries' WARN lines").hasSize(2);
        for (int attempt = 1; attempt <= 2; attempt++) {
            assertThat(warnings.get(attempt - 1))
                    .startsWith(
                            "[outbox] batch @KafkaListener failed on a batch of 1 records (attempt " + attempt + ")")
                    .contains("ledger unavailable");
        }
    }

    @SpringBootConfiguration
    @EnableAutoConfiguration
    @Import({ReceiptsListener.class, ListenerApps.JdbcTransactions.class})
    static class App {
        /** The brokers as a service connection gives them. */
        @Bean
        KafkaConnectionDetails kafkaServiceConnection() {
            return () -> List.of(KAFKA.bootstrapServers());
        }
    }

    /**
     * Each record's claim and payment row in one JDBC transaction, its receipt in the Kafka one. (An
     * application's claiming listener sends through {@code OutboxTemplate}, the starter's README says
     * why; this one sends through the {@code KafkaTemplate} to show what the Kafka transaction keeps.)
     */
    @Service
    static class ReceiptsListener {
        private final JdbcTemplate jdbc;
        private final ProcessedMessagesTemplate processed;
        private final KafkaTemplate<String, String> kafka;

        ReceiptsListener(JdbcTemplate jdbc, ProcessedMessagesTemplate processed, KafkaTemplate<String, String> kafka) {
            this.jdbc = jdbc;
            this.processed = processed;
            this.kafka = kafka;
        }

        @KafkaListener(topics = "${test.topic}", groupId = "kafka-tx-batch-receipts")
        @Transactional("transactionManager")
        public void onOrders(List<ConsumerRecord<String, byte[]>> records) {
            DELIVERIES.incrementAndGet();
            for (ConsumerRecord<String, byte[]> record : records) {
                if (!processed.claim("receipts", record)) {
                    continue;
                }
                UUID id = ProcessedMessages.messageId(record.headers()).orElseThrow();
                jdbc.update("insert into payments(message_id, order_id) values (?, ?)", id, record.key());
                kafka.send(RECEIPTS, record.key(), "paid " + id);
            }
            if (FAILURES_LEFT.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
                throw new IllegalStateException("ledger unavailable");
            }
        }
    }
}
