package dev.outbox.relay;

import static dev.outbox.migrations.jooq.Tables.OUTBOX_MESSAGE;
import static dev.outbox.relay.Fixtures.message;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.OutboxMessage;
import dev.outbox.core.retry.Backoff;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.distribution.CountAtBucket;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jooq.DSLContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(RealServices.class)
class KafkaOutageIT {

    /**
     * G1 across a Kafka outage and G6 bounded retries: with the broker stopped for over 10 s while
     * messages are pending, the shard loops back off with full-jitter delays whose ceilings grow (the
     * backoff metric holds delays in several buckets and some above the first ceiling), the circuit
     * breaker opens (breaker-state gauge 1), and once the broker is back every message is delivered
     * and deleted.
     *
     * <p>G7 does not misfire in an outage: with {@code maxAttempts} 2, no failure during the outage is
     * counted as an attempt of a row (every row keeps attempts 0) and nothing is parked, because
     * nothing was acknowledged while the rows failed.
     *
     * <p>Outage mechanism: the broker of a dedicated in-JVM KRaft cluster is shut down and started
     * again on the same port ({@link TestKafka#stopBroker()}), which clients see as connection refused.
     */
    @Test
    void backsOffOpensTheBreakerAndDeliversEverythingAfterTheBrokerReturns(TestDatabase db) throws Exception {
        String topic = "outage";
        Backoff backoff = Backoff.of(Duration.ofMillis(50), Duration.ofSeconds(2));
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (TestKafka broker = TestKafka.startInJvm()) {
            broker.createTopic(topic, 4);
            DSLContext dsl = db.dsl();
            List<UUID> ids = new ArrayList<>();
            try (Relay relay = Fixtures.relay(db, broker.bootstrapServers(), "outage-relay", registry)
                            .producerProperties(Map.of(
                                    "bootstrap.servers", broker.bootstrapServers(),
                                    "delivery.timeout.ms", 3_000,
                                    "request.timeout.ms", 1_000,
                                    "linger.ms", 5,
                                    "max.block.ms", 1_000,
                                    "reconnect.backoff.max.ms", 500))
                            .leaseDuration(
                                    Duration.ofSeconds(9)) // delivery.timeout.ms must fit in a third of the lease
                            .backoff(backoff)
                            .maxAttempts(2)
                            .circuitBreaker(CircuitBreakerConfig.custom()
                                    .slidingWindowType(CircuitBreakerConfig.SlidingWindowType.COUNT_BASED)
                                    .slidingWindowSize(5)
                                    .minimumNumberOfCalls(5)
                                    .failureRateThreshold(100)
                                    .waitDurationInOpenState(Duration.ofSeconds(3))
                                    .permittedNumberOfCallsInHalfOpenState(1)
                                    .automaticTransitionFromOpenToHalfOpenEnabled(true)
                                    .build())
                            .build();
                    Fixtures.Collector before = new Fixtures.Collector(broker.bootstrapServers(), topic)) {
                relay.start();
                ids.addAll(append(dsl, topic, 0, 100));
                await().atMost(Duration.ofSeconds(60))
                        .untilAsserted(() -> assertThat(before.ids()).containsAll(ids));
                // a record is readable before the relay has processed its ack and deleted the row: stopping
                // the broker in that window would leave rows of the first round behind (retried, counted in
                // the outage), so wait until the relay has finished them
                await().atMost(Duration.ofSeconds(30))
                        .untilAsserted(
                                () -> assertThat(dsl.fetchCount(OUTBOX_MESSAGE)).isZero());
                before.close();

                broker.stopBroker();
                long stoppedAt = System.nanoTime();
                ids.addAll(append(dsl, topic, 100, 600));
                AtomicBoolean sawOpen = new AtomicBoolean();
                // the outage lasts at least 10 s, and until the breaker was seen open and several retries waited
                await().atMost(Duration.ofSeconds(120))
                        .pollInterval(Duration.ofMillis(20))
                        .untilAsserted(() -> {
                            if (Fixtures.gauge(registry, "outbox.relay.breaker.state") == 1) {
                                sawOpen.set(true);
                            }
                            assertThat(sawOpen)
                                    .as("breaker state gauge was 1 at some point")
                                    .isTrue();
                            assertThat(backoffTimer(registry).count()).isGreaterThanOrEqualTo(10);
                            assertThat(System.nanoTime() - stoppedAt)
                                    .isGreaterThanOrEqualTo(TimeUnit.SECONDS.toNanos(10));
                        });
                assertThat(dsl.fetchCount(OUTBOX_MESSAGE))
                        .as("nothing deleted while Kafka was down")
                        .isEqualTo(500);
                assertThat(dsl.fetchCount(
                                OUTBOX_MESSAGE, OUTBOX_MESSAGE.ATTEMPTS.gt(0).or(OUTBOX_MESSAGE.PARKED_AT.isNotNull())))
                        .as("an outage counts no attempts and parks nothing")
                        .isZero();
                assertThat(relay.isLive()).isTrue();

                Timer delays = backoffTimer(registry);
                Set<Double> occupied = new HashSet<>();
                double previous = 0;
                for (CountAtBucket b : delays.takeSnapshot().histogramCounts()) {
                    if (b.count() > previous) {
                        occupied.add(b.bucket(TimeUnit.MILLISECONDS));
                    }
                    previous = b.count();
                }
                assertThat(occupied)
                        .as("delays spread over several buckets: jittered, not one fixed delay")
                        .hasSizeGreaterThanOrEqualTo(3);
                assertThat(delays.max(TimeUnit.MILLISECONDS))
                        .as("some delay exceeded the first retry's ceiling, so the ceilings grew")
                        .isGreaterThan(backoff.base().toMillis());
                assertThat(delays.max(TimeUnit.MILLISECONDS))
                        .as("and never the cap")
                        .isLessThanOrEqualTo(backoff.cap().toMillis());
                assertThat(Fixtures.counter(registry, "outbox.relay.errors", "kind", "retriable"))
                        .isGreaterThanOrEqualTo(5);

                broker.startBroker();
                try (Fixtures.Collector after = new Fixtures.Collector(broker.bootstrapServers(), topic)) {
                    await().atMost(Duration.ofSeconds(120))
                            .untilAsserted(() -> assertThat(after.ids()).containsAll(ids));
                    await().atMost(Duration.ofSeconds(30))
                            .untilAsserted(() ->
                                    assertThat(dsl.fetchCount(OUTBOX_MESSAGE)).isZero());
                    System.out.printf(
                            "[outage] %d messages, %d records in Kafka (%d duplicates), %d retry delays, max %.0f ms%n",
                            ids.size(),
                            after.records().size(),
                            after.records().size() - ids.size(),
                            delays.count(),
                            delays.max(TimeUnit.MILLISECONDS));
                }
                await().atMost(Duration.ofSeconds(30))
                        .untilAsserted(() -> assertThat(Fixtures.gauge(registry, "outbox.relay.breaker.state"))
                                .isZero());
                assertThat(Fixtures.counter(registry, "outbox.relay.parked"))
                        .as("nothing parked across the outage")
                        .isZero();
            }
        }
    }

    private static Timer backoffTimer(SimpleMeterRegistry registry) {
        return registry.get("outbox.relay.backoff").timer();
    }

    private static List<UUID> append(DSLContext dsl, String topic, int from, int to) {
        List<OutboxMessage> batch = new ArrayList<>();
        for (int i = from; i < to; i++) {
            batch.add(message(topic, "key-" + (i % 50), "m-" + i));
        }
        return Fixtures.commit(dsl, batch);
    }
}
