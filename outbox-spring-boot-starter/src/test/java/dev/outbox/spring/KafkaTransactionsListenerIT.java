package dev.outbox.spring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.outbox.consumer.ProcessedMessages;
import dev.outbox.core.MessageIds;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
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
import org.springframework.stereotype.Service;
import org.springframework.test.annotation.DirtiesContext;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import org.springframework.transaction.annotation.Transactional;

/**
 * G4 with the starter on an application whose listener containers run Kafka transactions
 * ({@code spring.kafka.producer.transaction-id-prefix} set, so Spring Boot puts its Kafka transaction
 * manager on them, and the application declares its JDBC one): a record whose listener fails twelve
 * times (its claim and payment rolled back each time) is delivered again until it commits, then applied
 * once, and the record after it on its partition follows. Spring Kafka's defaults skip a record after ten
 * attempts; the starter's error handler does not, inside the containers' Kafka transactions too, and
 * neither does the starter's after-rollback processor, which runs after each of those rollbacks.
 */
@ExtendWith(DropDatabaseAtEnd.class)
@SpringBootTest(classes = KafkaTransactionsListenerIT.App.class)
@DirtiesContext
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class KafkaTransactionsListenerIT {
    static final TestDatabase DB = ListenerApps.database(ListenerApps.PAYMENTS_DDL);
    static final TestKafka KAFKA = TestKafka.shared();
    static final String TOPIC = TestKafka.uniqueTopic("starter-kafka-tx");

    /** Keys whose deliveries fail, each as many times as it says (its business write and claim rolled back). */
    static final Map<String, AtomicInteger> FAILURES_LEFT = new ConcurrentHashMap<>();

    @Autowired
    JdbcTemplate jdbc;

    /** What Spring Kafka's listener classes log, its after-rollback processors' included. */
    private final ListAppender<ILoggingEvent> kafkaLog = new ListAppender<>();

    private final Logger kafkaListeners = (Logger) LoggerFactory.getLogger("org.springframework.kafka.listener");

    @BeforeEach
    void captureTheListenersLog() {
        kafkaLog.start();
        kafkaListeners.addAppender(kafkaLog);
    }

    @AfterEach
    void releaseTheListenersLog() {
        kafkaListeners.detachAppender(kafkaLog);
    }

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        KAFKA.createTopic(TOPIC, 1);
        ListenerApps.properties(registry, DB, TOPIC);
        registry.add("spring.kafka.producer.transaction-id-prefix", () -> "starter-kafka-tx-");
    }

    /**
     * A record whose listener fails twelve times is applied once when the failure stops, and the record
     * behind it follows. After each rollback the containers' after-rollback processor runs: Spring
     * Kafka's default one counted the failures and at the tenth "recovered" the record, logging at ERROR
     * that its back-off was exhausted (the record was delivered again all the same); the starter's
     * never recovers, so no such ERROR is logged.
     */
    @Test
    void aRecordWhoseListenerFailsMoreThanTenTimesInAKafkaTransactionIsAppliedOnceNotSkipped() throws Exception {
        UUID stubborn = MessageIds.next();
        UUID next = MessageIds.next();
        FAILURES_LEFT.put("o-stubborn", new AtomicInteger(12));
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(KAFKA.producerProperties())) {
            // one partition: the second record behind the first
            producer.send(record(stubborn, "o-stubborn")).get(30, TimeUnit.SECONDS);
            producer.send(record(next, "o-next")).get(30, TimeUnit.SECONDS);
        }
        await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
            assertThat(payments(stubborn))
                    .as("payments of the record that failed twelve times")
                    .isEqualTo(1);
            assertThat(payments(next)).as("payments of the record behind it").isEqualTo(1);
        });
        assertThat(FAILURES_LEFT.get("o-stubborn"))
                .as("every failing delivery ran")
                .hasValue(0);
        assertThat(kafkaLog.list)
                .as("what Spring Kafka's listener classes logged")
                .noneSatisfy(e -> assertThat(e.getFormattedMessage()).contains("exhausted"));
    }

    private static ProducerRecord<byte[], byte[]> record(UUID id, String orderId) {
        return ListenerApps.record(TOPIC, id, orderId);
    }

    private int payments(UUID id) {
        return ListenerApps.payments(jdbc, id);
    }

    @SpringBootConfiguration
    @EnableAutoConfiguration
    @Import({PaymentsListener.class, ListenerApps.JdbcTransactions.class})
    static class App {
        /** The brokers as a service connection gives them. */
        @Bean
        KafkaConnectionDetails kafkaServiceConnection() {
            return () -> List.of(KAFKA.bootstrapServers());
        }
    }

    /** The claim and the payment row in the listener's JDBC transaction, inside the container's Kafka one. */
    @Service
    static class PaymentsListener {
        private final JdbcTemplate jdbc;
        private final ProcessedMessagesTemplate processed;

        PaymentsListener(JdbcTemplate jdbc, ProcessedMessagesTemplate processed) {
            this.jdbc = jdbc;
            this.processed = processed;
        }

        @KafkaListener(topics = "${test.topic}", groupId = "kafka-tx-payments")
        @Transactional("transactionManager")
        public void onOrder(ConsumerRecord<String, byte[]> record) {
            if (!processed.claim("payments", record)) {
                return;
            }
            UUID id = ProcessedMessages.messageId(record.headers()).orElseThrow();
            jdbc.update("insert into payments(message_id, order_id) values (?, ?)", id, record.key());
            AtomicInteger left = FAILURES_LEFT.get(record.key());
            if (left != null && left.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
                throw new IllegalStateException("ledger unavailable for " + record.key());
            }
        }
    }
}
