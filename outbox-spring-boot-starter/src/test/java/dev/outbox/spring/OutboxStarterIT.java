package dev.outbox.spring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.outbox.consumer.ProcessedMessages;
import dev.outbox.core.MessageIds;
import dev.outbox.core.OutboxMessage;
import dev.outbox.http.server.IdempotencyOutcome;
import dev.outbox.http.server.IdempotencyRequest;
import dev.outbox.http.server.IdempotencyStore;
import dev.outbox.http.server.StoredResponse;
import dev.outbox.relay.Relay;
import dev.outbox.spring.internal.OutboxPurges;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.boot.health.contributor.Status;
import org.springframework.boot.kafka.autoconfigure.KafkaConnectionDetails;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.stereotype.Service;
import org.springframework.test.annotation.DirtiesContext;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import org.springframework.transaction.PlatformTransactionManager;
import org.springframework.transaction.annotation.Transactional;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * The starter in a Spring Boot application on real PostgreSQL and the in-JVM Kafka broker: {@code
 * @Transactional} appends commit and roll back with the business write (G1, G2), the embedded relay
 * publishes what committed (G1), and a {@code @KafkaListener} skips a redelivery through the dedup
 * claim made in the same transaction as its business write (G4). The scheduled purges delete expired
 * idempotency keys and the template's claims older than the retention. Kafka's brokers come from a
 * {@code KafkaConnectionDetails} bean, as a service connection ({@code @ServiceConnection}, Docker
 * Compose) gives them, and no {@code spring.kafka.bootstrap-servers} is set: the relay and the
 * listener both take them from the bean.
 */
@ExtendWith(DropDatabaseAtEnd.class)
@SpringBootTest(classes = OutboxStarterIT.App.class)
@DirtiesContext
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class OutboxStarterIT {
    static final TestDatabase DB = ListenerApps.database(
            "create table orders(id text primary key, amount bigint not null)", ListenerApps.PAYMENTS_DDL);
    static final TestKafka KAFKA = TestKafka.shared();
    static final String TOPIC = TestKafka.uniqueTopic("starter-orders");

    /** Keys the listener received, every delivery counted. */
    static final Set<String> RECEIVED = ConcurrentHashMap.newKeySet();
    /** Keys whose first handling fails after the claim and the business write, so both roll back. */
    static final Set<String> FAIL_ONCE = ConcurrentHashMap.newKeySet();
    /** Keys whose deliveries fail, each as many times as it says (its business write and claim rolled back). */
    static final Map<String, AtomicInteger> FAILURES_LEFT = new ConcurrentHashMap<>();

    @Autowired
    OrderService orders;

    @Autowired
    JdbcTemplate jdbc;

    @Autowired
    OutboxTemplate outbox;

    @Autowired
    ProcessedMessagesTemplate processed;

    @Autowired
    HealthIndicator outboxRelayHealthIndicator;

    @Autowired
    Relay relay;

    @Autowired
    ConfigurableApplicationContext context;

    @Autowired
    MeterRegistry meters;

    @Autowired
    IdempotencyStore idempotencyStore;

    @Autowired
    PlatformTransactionManager transactionManager;

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        KAFKA.createTopic(TOPIC, 3);
        ListenerApps.properties(registry, DB, TOPIC);
        registry.add("outbox.relay.enabled", () -> "true");
        registry.add("outbox.relay.idle-poll-interval", () -> "100ms");
        // the Idempotency-Key filter and its store, with keys that expire at once and a purge every second
        registry.add("outbox.idempotency.paths", () -> "/orders");
        registry.add("outbox.idempotency.ttl", () -> "1s");
        registry.add("outbox.idempotency.purge-interval", () -> "1s");
        registry.add("outbox.processed.retention", () -> "1h");
        registry.add("outbox.processed.purge-interval", () -> "1s");
    }

    /**
     * A stored refusal (422) of the store called inside a transaction of its caller's (the store bean used
     * from a {@code @Transactional} method) is rolled back to its savepoint, and the caller's transaction
     * commits with the caller's own write: the store does not end a transaction it did not begin. Stored
     * refusals of the filter's requests, whose transaction is their own, roll that transaction back
     * whole ({@code JpaApplicationIT}).
     */
    @Test
    void aRefusalInsideItsCallersTransactionLeavesThatTransactionToTheCaller() {
        String key = "nested-" + UUID.randomUUID();
        IdempotencyOutcome outcome = new TransactionTemplate(transactionManager).execute(status -> {
            jdbc.update("insert into orders(id, amount) values (?, ?)", key, 1);
            return idempotencyStore.execute(
                    new IdempotencyRequest("starter-it", key, "fingerprint"),
                    tx -> StoredResponse.of(422, "text/plain", new byte[] {2}));
        });
        assertThat(outcome).isInstanceOf(IdempotencyOutcome.Executed.class);
        assertThat(count("select count(*) from orders where id = '" + key + "'"))
                .as("the caller's own write, committed")
                .isOne();
    }

    /** The scheduled purge deletes a key once its ttl is over; before, only its reuse did. */
    @Test
    void anExpiredIdempotencyKeyIsPurged() {
        String key = "purged-" + UUID.randomUUID();
        IdempotencyOutcome outcome = idempotencyStore.execute(
                new IdempotencyRequest("starter-it", key, "fingerprint"),
                tx -> StoredResponse.of(201, "text/plain", new byte[] {1}));
        assertThat(outcome).isInstanceOf(IdempotencyOutcome.Executed.class);
        await().atMost(Duration.ofSeconds(20))
                .untilAsserted(() -> assertThat(
                                count("select count(*) from outbox.idempotency_key where idem_key = '" + key + "'"))
                        .as("the key is gone within a few seconds of its expiry")
                        .isZero());
        assertThat(meters.find(OutboxPurges.DELETED)
                        .tag("kind", OutboxPurges.IDEMPOTENCY_KEYS)
                        .counter()
                        .count())
                .isGreaterThanOrEqualTo(1);
    }

    /**
     * The template's claims older than the retention are purged, for the consumer names it claimed
     * for; younger claims, and the claims of consumer names it never saw, stay.
     */
    @Test
    void claimsOlderThanTheRetentionArePurgedForTheTemplatesConsumers() {
        String consumer = "purge-" + UUID.randomUUID();
        String stranger = "stranger-" + UUID.randomUUID();
        UUID fresh = MessageIds.next();
        UUID old = MessageIds.next();
        UUID strangers = MessageIds.next();
        Boolean claimed =
                new TransactionTemplate(transactionManager).execute(status -> processed.claim(consumer, fresh));
        assertThat(claimed).isTrue();
        assertThat(processed.consumers()).contains(consumer);
        // older than the retention (1h): as if claimed two hours ago
        jdbc.update(
                "insert into outbox.processed_message(consumer, message_id, processed_at)"
                        + " values (?, ?, now() - interval '2 hours')",
                consumer,
                old);
        jdbc.update(
                "insert into outbox.processed_message(consumer, message_id, processed_at)"
                        + " values (?, ?, now() - interval '2 hours')",
                stranger,
                strangers);
        await().atMost(Duration.ofSeconds(20))
                .untilAsserted(() ->
                        assertThat(claims(old)).as("the old claim is purged").isZero());
        assertThat(claims(fresh)).as("a claim younger than the retention stays").isEqualTo(1);
        assertThat(claims(strangers))
                .as("a consumer the template never claimed for is not its to purge")
                .isEqualTo(1);
        assertThat(meters.find(OutboxPurges.DELETED)
                        .tag("kind", OutboxPurges.PROCESSED_MESSAGES)
                        .counter()
                        .count())
                .isGreaterThanOrEqualTo(1);
    }

    private int claims(UUID messageId) {
        return count("select count(*) from outbox.processed_message where message_id = '" + messageId + "'");
    }

    /** G2: an exception after the append rolls back the business row and the outbox row together. */
    @Test
    void aTransactionThatThrowsLeavesNeitherRow() {
        assertThatThrownBy(() -> orders.place("o-rollback", 100, true)).hasMessageContaining("payment refused");
        assertThat(count("select count(*) from orders where id = 'o-rollback'")).isZero();
        assertThat(count("select count(*) from outbox.outbox_message where message_key = 'o-rollback'"))
                .isZero();

        // a later order goes all the way through; the rolled-back one never reaches Kafka
        UUID later = orders.place("o-after-rollback", 100, false);
        await().atMost(Duration.ofSeconds(60))
                .untilAsserted(() -> assertThat(payments(later)).isEqualTo(1));
        assertThat(RECEIVED).doesNotContain("o-rollback");
    }

    /** G1: a committed transaction leaves both rows, and the embedded relay publishes the message. */
    @Test
    void aTransactionThatCommitsLeavesBothRowsAndTheRelayPublishes() {
        UUID id = orders.place("o-commit", 250, false);
        assertThat(count("select count(*) from orders where id = 'o-commit'")).isEqualTo(1);
        await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
            assertThat(payments(id)).isEqualTo(1);
            assertThat(count("select count(*) from outbox.outbox_message where message_id = '" + id + "'"))
                    .as("the relay deletes a row once Kafka acknowledged it")
                    .isZero();
        });
        assertThat(outboxRelayHealthIndicator.health().getStatus()).isEqualTo(Status.UP);
        assertThat(meters.find("outbox.dedup.claims").tag("outcome", "claimed").counter())
                .isNotNull();
    }

    /**
     * G1 across a context stopped and started again (Spring Cloud's pause and resume, a CRaC checkpoint
     * and restore): the stop closes the embedded relay, which hands its leases back, and the start builds
     * and starts a new one with the same instance id, which publishes a message committed after it.
     * Before, the start failed, the relay saying it starts once.
     */
    @Test
    void aContextStoppedAndStartedAgainPublishesAgain() {
        String instance = relay.instanceId();
        context.stop();
        assertThat(relay.isLive()).as("stopped").isFalse();
        context.start();
        await().atMost(Duration.ofSeconds(30)).until(relay::isLive);
        assertThat(relay.instanceId())
                .as("the same instance to the lease table, the meters and the health details")
                .isEqualTo(instance);
        UUID id = orders.place("o-restarted", 125, false);
        await().atMost(Duration.ofSeconds(60))
                .untilAsserted(() -> assertThat(payments(id)).isEqualTo(1));
    }

    /**
     * G4: a redelivered record is skipped by the claim, and a claim rolled back with its failed
     * business write lets the retry apply the message, exactly once.
     */
    @Test
    void aKafkaListenerRedeliveryIsSkippedInTheSameTransactionAsItsBusinessWrite() throws Exception {
        UUID duplicated = MessageIds.next();
        UUID failing = MessageIds.next();
        FAIL_ONCE.add("o-fail-once");
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(KAFKA.producerProperties())) {
            for (int delivery = 0; delivery < 3; delivery++) {
                producer.send(record(duplicated, "o-redelivered")).get(30, TimeUnit.SECONDS);
            }
            producer.send(record(failing, "o-fail-once")).get(30, TimeUnit.SECONDS);
        }
        await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
            assertThat(payments(duplicated)).isEqualTo(1);
            assertThat(payments(failing)).isEqualTo(1);
            assertThat(meters.find("outbox.dedup.claims")
                            .tag("consumer", "payments")
                            .tag("outcome", "duplicate")
                            .counter()
                            .count())
                    .isGreaterThanOrEqualTo(2);
        });
        assertThat(FAIL_ONCE).as("the failing delivery ran and was retried").isEmpty();
    }

    /**
     * G4 with the starter's listener error handler: a record whose listener fails twelve times (its claim
     * and payment rolled back each time) is delivered again until it commits, then applied once, and
     * the record after it on its partition follows. Spring Kafka's default handler skips a record after
     * ten attempts and commits past it: the payment would never be made.
     */
    @Test
    void aRecordWhoseListenerFailsMoreThanTenTimesIsAppliedOnceNotSkipped() throws Exception {
        UUID stubborn = MessageIds.next();
        UUID next = MessageIds.next();
        FAILURES_LEFT.put("o-stubborn", new AtomicInteger(12));
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(KAFKA.producerProperties())) {
            // one key: one partition, the second record behind the first
            producer.send(record(stubborn, "o-stubborn")).get(30, TimeUnit.SECONDS);
            producer.send(record(next, "o-stubborn")).get(30, TimeUnit.SECONDS);
        }
        await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
            assertThat(payments(stubborn)).isEqualTo(1);
            assertThat(payments(next)).isEqualTo(1);
        });
        assertThat(FAILURES_LEFT.get("o-stubborn"))
                .as("every failing delivery ran")
                .hasValue(0);
    }

    /** Appends and claims outside a transaction would commit alone: both are refused. */
    @Test
    void refusesToAppendOrClaimOutsideATransaction() {
        OutboxMessage message = OutboxMessage.of(TOPIC, "o-none", "OrderPlaced", "text/plain", new byte[] {1});
        assertThatThrownBy(() -> outbox.append(message))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("@Transactional");
        assertThatThrownBy(() -> processed.claim("payments", MessageIds.next()))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("@Transactional");
        assertThat(count("select count(*) from outbox.outbox_message where message_key = 'o-none'"))
                .isZero();
    }

    private static ProducerRecord<byte[], byte[]> record(UUID id, String orderId) {
        return ListenerApps.record(TOPIC, id, orderId);
    }

    private int payments(UUID id) {
        return ListenerApps.payments(jdbc, id);
    }

    private int count(String sql) {
        Integer n = jdbc.queryForObject(sql, Integer.class);
        return n == null ? 0 : n;
    }

    @SpringBootConfiguration
    @EnableAutoConfiguration
    @Import({OrderService.class, PaymentsListener.class})
    static class App {
        @Bean
        MeterRegistry meterRegistry() {
            return new SimpleMeterRegistry();
        }

        /** The brokers as a service connection gives them (the relay publishes nowhere without this). */
        @Bean
        KafkaConnectionDetails kafkaServiceConnection() {
            return () -> List.of(KAFKA.bootstrapServers());
        }
    }

    /** The producer side: the order row and its message in one {@code @Transactional} method. */
    @Service
    static class OrderService {
        private final JdbcTemplate jdbc;
        private final OutboxTemplate outbox;

        OrderService(JdbcTemplate jdbc, OutboxTemplate outbox) {
            this.jdbc = jdbc;
            this.outbox = outbox;
        }

        @Transactional
        public UUID place(String orderId, long amount, boolean refuse) {
            jdbc.update("insert into orders(id, amount) values (?, ?)", orderId, amount);
            UUID id = outbox.append(OutboxMessage.of(
                    TOPIC,
                    orderId,
                    "OrderPlaced",
                    "text/plain",
                    Long.toString(amount).getBytes(StandardCharsets.UTF_8)));
            if (refuse) {
                throw new IllegalStateException("payment refused for " + orderId);
            }
            return id;
        }
    }

    /** The consumer side: the claim and the payment row in the listener's transaction. */
    @Service
    static class PaymentsListener {
        private final JdbcTemplate jdbc;
        private final ProcessedMessagesTemplate processed;

        PaymentsListener(JdbcTemplate jdbc, ProcessedMessagesTemplate processed) {
            this.jdbc = jdbc;
            this.processed = processed;
        }

        @KafkaListener(topics = "${test.topic}", groupId = "payments")
        @Transactional
        public void onOrder(ConsumerRecord<String, byte[]> record) {
            RECEIVED.add(record.key());
            if (!processed.claim("payments", record)) {
                return;
            }
            UUID id = ProcessedMessages.messageId(record.headers()).orElseThrow();
            jdbc.update("insert into payments(message_id, order_id) values (?, ?)", id, record.key());
            AtomicInteger left = FAILURES_LEFT.get(record.key());
            if (left != null && left.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
                throw new IllegalStateException("ledger unavailable for " + record.key());
            }
            if (FAIL_ONCE.remove(record.key())) {
                throw new IllegalStateException("card processor timed out for " + record.key());
            }
        }
    }
}
