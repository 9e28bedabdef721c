package dev.outbox.spring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.IThrowableProxy;
import ch.qos.logback.core.read.ListAppender;
import dev.outbox.consumer.ProcessedMessages;
import dev.outbox.core.MessageIds;
import dev.outbox.spring.internal.ListenerRetries;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.FeatureUpdate;
import org.apache.kafka.clients.admin.UpdateFeaturesOptions;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.ExtensionContext;
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
 * The listener retries' back-off in containers that run Kafka transactions, with waits longer than the
 * producer's {@code transaction.timeout.ms}. Spring Kafka calls the error handler inside the delivery's
 * Kafka transaction: a wait there held the transaction open until the broker aborted it and bumped the
 * producer's epoch, and the rollback then failed with the producer fenced. The starter's handler fails
 * such a delivery at once, and its after-rollback processor waits, after the rollback.
 *
 * <p>A broker of its own, which aborts timed-out transactions within 200 ms of their timeout (Kafka's
 * default checks every 10 s), and a producer whose transactions time out after 2 s; the waits are 1.5 s,
 * 3 s and 6 s.
 */
@ExtendWith({DropDatabaseAtEnd.class, KafkaTransactionTimeoutIT.StopBrokerAtEnd.class})
@SpringBootTest(classes = KafkaTransactionTimeoutIT.App.class)
@DirtiesContext
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class KafkaTransactionTimeoutIT {
    static final TestDatabase DB = ListenerApps.database(ListenerApps.PAYMENTS_DDL);
    static final TestKafka KAFKA = brokerOnTransactionVersion1();
    static final String TOPIC = TestKafka.uniqueTopic("starter-tx-timeout");
    static final String RECEIPTS = TestKafka.uniqueTopic("starter-tx-timeout-receipts");
    static final Duration TRANSACTION_TIMEOUT = Duration.ofSeconds(2);
    static final List<Duration> WAITS = List.of(Duration.ofMillis(1500), Duration.ofSeconds(3), Duration.ofSeconds(6));

    /** Deliveries left to fail after the listener sent its receipt. */
    static final AtomicInteger FAILURES_LEFT = new AtomicInteger(WAITS.size());
    /** When each delivery began, in {@link System#nanoTime()}. */
    static final List<Long> DELIVERIES = new CopyOnWriteArrayList<>();

    @Autowired
    JdbcTemplate jdbc;

    /** Everything logged while the test runs: the listener retries', Spring Kafka's, Kafka's clients'. */
    private final ListAppender<ILoggingEvent> log = new ListAppender<>();

    private final Logger root = (Logger) LoggerFactory.getLogger(Logger.ROOT_LOGGER_NAME);

    @BeforeEach
    void captureTheLog() {
        log.start();
        root.addAppender(log);
    }

    @AfterEach
    void releaseTheLog() {
        root.detachAppender(log);
    }

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        KAFKA.createTopic(TOPIC, 1);
        KAFKA.createTopic(RECEIPTS, 1);
        ListenerApps.properties(registry, DB, TOPIC);
        registry.add("spring.kafka.producer.transaction-id-prefix", () -> "starter-tx-timeout-");
        registry.add(
                "spring.kafka.producer.properties.transaction.timeout.ms",
                () -> String.valueOf(TRANSACTION_TIMEOUT.toMillis()));
        registry.add(
                "outbox.listener-retries.initial-interval",
                () -> WAITS.getFirst().toMillis() + "ms");
        registry.add(
                "outbox.listener-retries.max-interval", () -> WAITS.getLast().toMillis() + "ms");
    }

    /**
     * A listener that sends a receipt through the transactional {@code KafkaTemplate} and then fails
     * three times is applied once, its receipt read once by a {@code read_committed} consumer, and no
     * transaction timed out: the waits, which still double, were spent after each rollback, not inside
     * the transaction. Each failed attempt is logged once at WARN with its position and number.
     */
    @Test
    void waitsLongerThanTheTransactionTimeoutAreSpentAfterTheRollback() throws Exception {
        UUID id = MessageIds.next();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(KAFKA.producerProperties())) {
            producer.send(ListenerApps.record(TOPIC, id, "o-1")).get(30, TimeUnit.SECONDS);
        }
        await().atMost(Duration.ofSeconds(90))
                .untilAsserted(() -> assertThat(ListenerApps.payments(jdbc, id))
                        .as("payments of the message")
                        .isEqualTo(1));
        await().atMost(Duration.ofSeconds(30))
                .untilAsserted(() -> assertThat(ListenerApps.committedValues(KAFKA, RECEIPTS))
                        .as("receipts a read_committed consumer reads")
                        .containsExactly("paid " + id));

        assertThat(DELIVERIES)
                .as("deliveries: one per failure, and the one that committed")
                .hasSize(WAITS.size() + 1);
        List<Duration> gaps = new ArrayList<>();
        for (int i = 1; i < DELIVERIES.size(); i++) {
            gaps.add(Duration.ofNanos(DELIVERIES.get(i) - DELIVERIES.get(i - 1)));
        }
        for (int i = 0; i < WAITS.size(); i++) {
            assertThat(gaps.get(i))
                    .as("the time between deliveries %d and %d (all gaps: %s)", i + 1, i + 2, gaps)
                    .isGreaterThanOrEqualTo(WAITS.get(i))
                    .isLessThan(WAITS.get(i).plusSeconds(5));
        }

        assertThat(log.list)
                .as("what was logged, the broker's transaction coordinator included")
                .noneSatisfy(e -> assertThat(e.getFormattedMessage()).contains("due to timeout"));
        assertThat(log.list.stream()
                        .filter(e -> e.getLevel().isGreaterOrEqual(Level.WARN))
                        .toList())
                .as("what was logged at WARN and above")
                .noneSatisfy(e -> assertThat(causes(e))
                        .containsAnyOf("ProducerFencedException", "InvalidProducerEpochException", "InvalidTxnState"))
                .noneSatisfy(e -> assertThat(e.getFormattedMessage()).containsIgnoringCase("fenced"));
        List<String> retries = log.list.stream()
                .filter(e -> e.getLoggerName().equals(ListenerRetries.class.getName()))
                .filter(e -> e.getLevel() == Level.WARN)
                .map(ILoggingEvent::getFormattedMessage)
                .toList();
        assertThat(retries).as("the listener retries' WARN lines").hasSize(WAITS.size());
        for (int attempt = 1; attempt <= WAITS.size(); attempt++) {
            assertThat(retries.get(attempt - 1))
                    .startsWith("[outbox] @KafkaListener failed on " + TOPIC + "-0@0 (attempt " + attempt + ")")
                    .contains("ledger unavailable");
        }
    }

    /**
     * @return a broker that aborts timed-out transactions within 200 ms of their timeout, with the
     *     transaction protocol of Kafka 3 ({@code transaction.version} 1), as clusters upgraded from
     *     Kafka 3 keep it
     */
    private static TestKafka brokerOnTransactionVersion1() {
        TestKafka kafka =
                TestKafka.startInJvm(Map.of("transaction.abort.timed.out.transaction.cleanup.interval.ms", "200"));
        try (Admin admin = kafka.admin()) {
            admin.updateFeatures(
                            Map.of(
                                    "transaction.version",
                                    new FeatureUpdate((short) 1, FeatureUpdate.UpgradeType.SAFE_DOWNGRADE)),
                            new UpdateFeaturesOptions())
                    .all()
                    .get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            kafka.close();
            throw new IllegalStateException("could not set the broker's transaction.version to 1", e);
        }
        return kafka;
    }

    /** @return the class names and messages of the event's exception and its causes */
    private static String causes(ILoggingEvent event) {
        StringBuilder s = new StringBuilder();
        for (IThrowableProxy t = event.getThrowableProxy(); t != null; t = t.getCause()) {
            s.append(t.getClassName()).append(": ").append(t.getMessage()).append('\n');
        }
        return s.toString();
    }

    /** Stops the class's broker at the end of the test run, after Spring closed the class's context. */
    static final class StopBrokerAtEnd implements BeforeAllCallback {
        @Override
        public void beforeAll(ExtensionContext context) {
            context.getRoot().getStore(ExtensionContext.Namespace.GLOBAL).put(KAFKA.toString(), KAFKA);
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
     * The claim and the payment row in the listener's JDBC transaction, and a receipt sent in the
     * container's Kafka transaction, before the failure. (An application's claiming listener sends
     * through {@code OutboxTemplate}, the starter's README says why; this one sends through the {@code
     * KafkaTemplate} to show what the Kafka transaction keeps.)
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

        @KafkaListener(topics = "${test.topic}", groupId = "tx-timeout-receipts")
        @Transactional("transactionManager")
        public void onOrder(ConsumerRecord<String, byte[]> record) {
            DELIVERIES.add(System.nanoTime());
            if (!processed.claim("receipts", record)) {
                return;
            }
            UUID id = ProcessedMessages.messageId(record.headers()).orElseThrow();
            jdbc.update("insert into payments(message_id, order_id) values (?, ?)", id, record.key());
            kafka.send(RECEIPTS, record.key(), "paid " + id);
            if (FAILURES_LEFT.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
                throw new IllegalStateException("ledger unavailable for " + record.key());
            }
        }
    }
}
