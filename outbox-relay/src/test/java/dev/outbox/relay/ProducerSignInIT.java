package dev.outbox.relay;

import static dev.outbox.migrations.jooq.Tables.OUTBOX_MESSAGE;
import static dev.outbox.relay.Fixtures.message;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.OutboxMessage;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.jooq.DSLContext;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The relay's producers against a broker that refuses their sign-in: on a broker of its own, the
 * relay signs in over SASL/SCRAM-SHA-256 as a user of its own on a second listener, while the test's
 * clients connect without authentication. The operator creates the user's credential late, or revokes
 * it while the relay publishes and restores it later; the relay must then publish every row without a
 * restart.
 *
 * <p>What the Kafka client (4.3) does: an idempotent producer whose first sign-in fails loses its
 * request for a producer id and never gets one; once it can sign in, its records only expire ({@code
 * TimeoutException}). The failed sign-in is reported once, as a {@code SaslAuthenticationException},
 * to the first call that waits for metadata ({@code partitionsFor}, or a {@code send} to a topic it
 * has no metadata for), even after the credential exists. The relay takes that report as an error
 * that leaves the producer unusable and replaces it.
 *
 * <p>Every row has a key of its own: a failed record never has a later record of its key in flight, so
 * no replacement for per-key order ({@code KeyOrder}) helps the relay out.
 */
@ExtendWith(RealServices.class)
@Tag("integration")
class ProducerSignInIT {
    /** Nothing can be published for this long before the credential is created. */
    private static final Duration REFUSED_FOR = Duration.ofSeconds(8);
    /** The bound on publishing every row once the credential exists. */
    private static final Duration RECOVERY = Duration.ofSeconds(60);

    /** How long the circuit breaker stays open: no batch uses the producer meanwhile. */
    private static final Duration BREAKER_OPEN = Duration.ofSeconds(3);

    /** How long a sign-in lasts on the SCRAM listener, in ms. */
    private static final int REAUTHENTICATION = 2_000;

    private static final int MESSAGES = 200;
    private static final String PASSWORD = "relay-secret";

    /**
     * G1 (nothing lost) and availability in the idempotent mode, the relay's user without a credential
     * from the start: while it has none, nothing is published and nothing is deleted or parked; once
     * the operator creates it, every row is published and the outbox drains, without restarting the
     * relay. The credential is created early in an open period of the circuit breaker: the shared
     * producer in use then failed to sign in and has no producer id, and is first used after the
     * credential exists. Fails if the relay kept it: its batches would only time out until the process
     * restarts.
     */
    @Test
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void theSharedProducerPublishesOnceItsCredentialExists(TestDatabase db) throws Exception {
        publishesOnceTheCredentialExists(db, PublishMode.IDEMPOTENT, "relay-idempotent", false);
    }

    /**
     * G1 and availability in the idempotent mode, the credential revoked while the relay publishes: the
     * broker makes connections sign in again every {@link #REAUTHENTICATION} ms ({@code
     * connections.max.reauth.ms}), which fails once the credential is deleted. Nothing is parked; once
     * the operator restores the credential (early in an open period of the breaker, as above), every
     * row is published and the outbox drains, without a restart. Here the topic was known before the
     * revocation, so lookups of it may succeed on a producer that had its metadata.
     */
    @Test
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void theSharedProducerPublishesAgainOnceARevokedCredentialIsRestored(TestDatabase db) throws Exception {
        publishesOnceTheCredentialExists(db, PublishMode.IDEMPOTENT, "relay-idempotent", true);
    }

    /**
     * G1 and availability in the transactional mode, without a credential from the start: each shard's
     * {@code initTransactions()} fails while the credential is missing (with the failed sign-in, or a
     * timeout when the client lost its request), and the shard closes that producer and creates
     * another at its next round; once the credential exists, every row is published (visible to a
     * {@code read_committed} consumer) and the outbox drains, without restarting the relay.
     */
    @Test
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void theTransactionalProducersPublishOnceTheirCredentialExists(TestDatabase db) throws Exception {
        publishesOnceTheCredentialExists(db, PublishMode.TRANSACTIONAL, "relay-transactional", false);
    }

    /**
     * G1 and availability in the transactional mode, the credential revoked while the relay publishes
     * and restored later: the shards' producers fail their transactions, are closed and created again
     * until they can sign in.
     */
    @Test
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void theTransactionalProducersPublishAgainOnceARevokedCredentialIsRestored(TestDatabase db) throws Exception {
        publishesOnceTheCredentialExists(db, PublishMode.TRANSACTIONAL, "relay-transactional", true);
    }

    /**
     * @param revoked the credential exists at the start and the relay publishes a first batch of rows
     *     with it, then it is deleted; else it does not exist at the start
     */
    private static void publishesOnceTheCredentialExists(
            TestDatabase db, PublishMode mode, String user, boolean revoked) throws Exception {
        String topic = "sign-in";
        MeterRegistry registry = new SimpleMeterRegistry();
        DSLContext dsl = db.dsl();
        try (TestKafka kafka = TestKafka.startInJvmWithScramListener(
                Map.of("connections.max.reauth.ms", String.valueOf(REAUTHENTICATION)))) {
            kafka.createTopic(topic, 4);
            if (revoked) {
                kafka.createScramCredential(user, PASSWORD);
            }
            List<UUID> ids = append(dsl, topic, 0, MESSAGES);
            Map<String, String> isolation = Map.of(
                    "isolation.level", mode == PublishMode.TRANSACTIONAL ? "read_committed" : "read_uncommitted");
            try (Fixtures.Collector kafkaSide = new Fixtures.Collector(kafka.bootstrapServers(), topic, isolation);
                    Relay relay = Fixtures.outageRelay(
                                    db,
                                    kafka.scramBootstrapServers(),
                                    "sign-in-" + mode,
                                    registry,
                                    kafka.scramClientProperties(user, PASSWORD))
                            .publishMode(mode)
                            .circuitBreaker(CircuitBreakerConfig.custom()
                                    .slidingWindowType(CircuitBreakerConfig.SlidingWindowType.COUNT_BASED)
                                    .slidingWindowSize(5)
                                    .minimumNumberOfCalls(5)
                                    .failureRateThreshold(100)
                                    .waitDurationInOpenState(BREAKER_OPEN)
                                    .permittedNumberOfCallsInHalfOpenState(1)
                                    .automaticTransitionFromOpenToHalfOpenEnabled(true)
                                    .build())
                            .build()) {
                relay.start();
                if (revoked) {
                    await().atMost(RECOVERY)
                            .untilAsserted(() -> assertThat(dsl.fetchCount(OUTBOX_MESSAGE))
                                    .as("published with the credential")
                                    .isZero());
                    kafka.deleteScramCredential(user);
                    // the producer signs in again at its first send after its session ended: past it, it fails to
                    Thread.sleep(2 * REAUTHENTICATION);
                    ids.addAll(append(dsl, topic, MESSAGES, 2 * MESSAGES));
                }
                double before = Fixtures.counter(registry, "outbox.relay.errors", "kind", "retriable");
                long refusedFrom = System.nanoTime();
                await().atMost(RECOVERY).pollInterval(Duration.ofMillis(200)).untilAsserted(() -> {
                    assertThat(Fixtures.counter(registry, "outbox.relay.errors", "kind", "retriable") - before)
                            .as("batches refused while the relay cannot sign in")
                            .isGreaterThanOrEqualTo(3);
                    assertThat(System.nanoTime() - refusedFrom).isGreaterThan(REFUSED_FOR.toNanos());
                });
                if (mode == PublishMode.IDEMPOTENT) {
                    // the credential is created early in an open period of the breaker: the batch that opened it
                    // replaced the shared producer, whose successor fails to sign in at its start and is first
                    // used after the credential exists (a failed initTransactions() is not the breaker's)
                    await().atMost(RECOVERY)
                            .pollInterval(Duration.ofMillis(10))
                            .until(() -> Fixtures.gauge(registry, "outbox.relay.breaker.state") != 1);
                    await().atMost(RECOVERY)
                            .pollInterval(Duration.ofMillis(10))
                            .until(() -> Fixtures.gauge(registry, "outbox.relay.breaker.state") == 1);
                    Thread.sleep(BREAKER_OPEN.toMillis() / 3);
                }
                if (!revoked) {
                    assertThat(kafkaSide.ids())
                            .as("nothing published without a credential")
                            .isEmpty();
                    assertThat(dsl.fetchCount(OUTBOX_MESSAGE))
                            .as("nothing deleted without a credential")
                            .isEqualTo(MESSAGES);
                } else {
                    assertThat(dsl.fetchCount(OUTBOX_MESSAGE))
                            .as("rows wait while the credential is revoked")
                            .isPositive();
                }
                assertThat(dsl.fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.PARKED_AT.isNotNull()))
                        .as("nothing parked")
                        .isZero();

                kafka.createScramCredential(user, PASSWORD);
                long created = System.nanoTime();
                ids.addAll(append(dsl, topic, ids.size(), ids.size() + MESSAGES));

                await().atMost(RECOVERY)
                        .pollInterval(Duration.ofMillis(200))
                        .untilAsserted(() -> assertThat(missing(kafkaSide.ids(), ids))
                                .as("rows not published once the credential exists")
                                .isZero());
                await().atMost(Duration.ofSeconds(30))
                        .untilAsserted(() -> assertThat(dsl.fetchCount(OUTBOX_MESSAGE))
                                .as("the outbox drains")
                                .isZero());
                System.out.printf(
                        "[sign-in %s%s] %d messages published %d ms after the credential was created; errors: %s%n",
                        mode,
                        revoked ? ", revoked" : "",
                        ids.size(),
                        TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - created),
                        errorCounts(registry));
                assertThat(Fixtures.counter(registry, "outbox.relay.parked"))
                        .as("nothing parked")
                        .isZero();
                if (mode == PublishMode.IDEMPOTENT) {
                    assertThat(Fixtures.counter(registry, "outbox.relay.producer.replaced"))
                            .as("shared producers replaced after the failed sign-in")
                            .isPositive();
                }
            }
        }
    }

    private static List<UUID> append(DSLContext dsl, String topic, int from, int to) {
        List<OutboxMessage> batch = new ArrayList<>();
        for (int i = from; i < to; i++) {
            batch.add(message(topic, "key-" + i, "m-" + i));
        }
        return new ArrayList<>(Fixtures.commit(dsl, batch));
    }

    /** @return how many of {@code ids} are not in {@code seen} */
    private static long missing(Set<UUID> seen, List<UUID> ids) {
        return ids.stream().filter(id -> !seen.contains(id)).count();
    }

    private static Map<String, Double> errorCounts(MeterRegistry registry) {
        Map<String, Double> out = new HashMap<>();
        registry.find("outbox.relay.errors")
                .counters()
                .forEach(c -> out.put(c.getId().getTag("kind"), c.count()));
        return out;
    }
}
