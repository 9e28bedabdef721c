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
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.jooq.DSLContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * One topic without metadata (never created, on a broker that does not create topics) holds only
 * its own rows: the relay's other topics keep their throughput, with the producer's default {@code
 * max.block.ms} (5 s with the default lease) and rows of all three topics in every shard. Once the topic is created its
 * rows are published (G1), and a key whose row for the missing topic came first waits for it (its
 * later row for a healthy topic is not sent before: G3).
 */
@ExtendWith(RealServices.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 15, unit = TimeUnit.MINUTES)
class MissingTopicIsolationIT {
    /** Healthy rows per measured round, spread over every shard. */
    private static final int HEALTHY = 20_000;
    /** Rows for the missing topic in a round with it, one before every fifth healthy row (over 60 per shard). */
    private static final int MISSING_EVERY = 5;

    private static final int MISSING_ROWS = HEALTHY / MISSING_EVERY;
    /** Rounds of each kind: medians of eight, since single rounds on a shared machine vary by a factor of three. */
    private static final int PAIRS = 8;
    /**
     * Relay batch size: each of the 64 shards takes 300 to 400 rows per round, so several batches, and
     * the missing topic's rows a batch held sit at the head of the shard when its next batch reads.
     */
    private static final int BATCH = 100;

    private final String healthyA = TestKafka.uniqueTopic("healthy-a");
    private final String healthyB = TestKafka.uniqueTopic("healthy-b");
    private final String missing = TestKafka.uniqueTopic("missing");
    private TestKafka broker;

    @BeforeAll
    void startBrokerWithoutAutoCreate() {
        broker = TestKafka.startInJvm(Map.of("auto.create.topics.enable", "false"));
        broker.createTopic(healthyA, 8);
        broker.createTopic(healthyB, 8);
    }

    @AfterAll
    void stopBroker() {
        if (broker != null) {
            broker.close();
        }
    }

    /**
     * Alternating rounds in one run (clean, with, with, clean, ...), each draining {@value #HEALTHY}
     * healthy rows committed in one transaction; in the rounds "with", {@value #MISSING_ROWS} rows for
     * the missing topic are committed in the same transaction, interleaved with them in every shard.
     * The healthy topics' drain rate with them (median round) must be at least 0.5 of the rate without
     * them (the aim is 0.8; see the assertion). Every round starts once the relay holds no topic, so a
     * clean round reads as a relay that never met the missing one, and each kind of round starts as
     * often right after another round as after a rest. Batches of {@value #BATCH} make every shard take several batches per round, so
     * a shard's later batches meet the rows its earlier ones held. Before the fix every shard holding
     * such a row blocked a worker for {@code max.block.ms} per round and backed off, so a round took
     * minutes.
     */
    @Test
    void otherTopicsKeepTheirThroughputAndTheMissingTopicIsPublishedOnceCreated(TestDatabase db) throws Exception {
        DSLContext dsl = db.dsl();
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (Relay relay = Fixtures.relay(db, broker.bootstrapServers(), "missing-isolation", registry)
                // the defaults: a short lease or backoff turns the machine's hiccups into failed batches
                .leaseDuration(Duration.ofSeconds(30))
                .backoff(Backoff.of(Duration.ofMillis(100), Duration.ofSeconds(30)))
                .maxAttempts(Relay.Builder.MAX_MAX_ATTEMPTS)
                .batchSize(BATCH)
                .build()) {
            relay.start();
            // warm-up, not measured: the producer's first metadata, the missing topic's first lookup
            round(dsl, registry, "warm-with", true);
            assertThat(Fixtures.gauge(registry, "outbox.relay.held.topics"))
                    .as("the missing topic's rows are held")
                    .isEqualTo(1.0);
            dsl.deleteFrom(OUTBOX_MESSAGE)
                    .where(OUTBOX_MESSAGE.TOPIC.eq(missing))
                    .execute();
            notHeld(registry);
            round(dsl, registry, "warm-clean", false);

            List<List<Long>> nanos = List.of(new ArrayList<>(), new ArrayList<>());
            List<String> log = new ArrayList<>();
            for (int r = 0; r < PAIRS * 2; r++) {
                // clean, with, with, clean, repeated: each variant sits as often early as late
                boolean with = r % 4 == 1 || r % 4 == 2;
                // the held rows of the previous round go, so that a clean round has none, and every round
                // starts once the relay no longer holds the topic: a clean round reads as if the relay never
                // met it, and each kind starts as often right after a round (positions 0 and 1) as after the
                // rest that letting go of held rows takes (positions 2 and 3), so neither kind gets more
                // quiet time before it (before, only clean rounds waited, and they came out faster for it)
                dsl.deleteFrom(OUTBOX_MESSAGE)
                        .where(OUTBOX_MESSAGE.TOPIC.eq(missing))
                        .execute();
                long waited = notHeld(registry);
                long took = round(dsl, registry, "r" + r, with);
                nanos.get(with ? 1 : 0).add(took);
                log.add((with ? "with " : "clean ") + TimeUnit.NANOSECONDS.toMillis(took) + " ms"
                        + (waited > 0 ? " (not held after " + waited + " ms)" : ""));
            }
            // medians: a round now and then stalls for seconds on this shared machine, in either variant
            double clean = HEALTHY / (double) median(nanos.get(0)) * 1e9;
            double withMissing = HEALTHY / (double) median(nanos.get(1)) * 1e9;
            double ratio = withMissing / clean;
            System.out.printf(
                    "MissingTopicIsolationIT: healthy rows/s clean %.0f, with a missing topic %.0f, ratio %.2f; rounds %s%n",
                    clean, withMissing, ratio, log);
            // A shard reads each held row once: its later reads leave the rows it holds out and read ahead
            // as usual, a shard holding none is read for by the probe, and the attempt each failed check
            // costs the held rows is one statement for all shards (the failure queue). The aim is 0.8, met
            // in nineteen of twenty-three runs measured (0.61 to 1.46); the held rows' own work (a fifth more rows to
            // read) comes out of the same two cores, and single rounds vary by a factor of two to three.
            // The bound is 0.5; before TopicHealth a round took minutes (a ratio near 0).
            // Measured medians are in ENGINE.md ("Topics without metadata").
            assertThat(ratio)
                    .as("healthy throughput with a missing topic / without (rounds %s)", log)
                    .isGreaterThanOrEqualTo(0.5);

            // rows for the missing topic, spread over every shard, and a key whose first row is for the
            // missing topic: its later row for a healthy topic waits
            List<OutboxMessage> missingRows = new ArrayList<>();
            for (int i = 0; i < MISSING_ROWS; i++) {
                missingRows.add(message(missing, "last-" + i, "held"));
            }
            List<UUID> held = Fixtures.commit(dsl, missingRows);
            List<UUID> ordered = Fixtures.commit(
                    dsl, List.of(message(missing, "ordered-key", "first"), message(healthyA, "ordered-key", "second")));
            try (Fixtures.Collector healthySide = new Fixtures.Collector(broker.bootstrapServers(), healthyA)) {
                await().during(Duration.ofSeconds(3))
                        .atMost(Duration.ofSeconds(10))
                        .until(() -> !healthySide.ids().contains(ordered.get(1)));
                // held: not sent, not parked
                assertThat(dsl.fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.TOPIC.eq(missing)))
                        .isEqualTo(MISSING_ROWS + 1);
                assertThat(dsl.fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.PARKED_AT.isNotNull()))
                        .isZero();

                broker.createTopic(missing, 8);
                List<UUID> expected = new ArrayList<>(held);
                expected.add(ordered.get(0));
                try (Fixtures.Collector missingSide = new Fixtures.Collector(broker.bootstrapServers(), missing)) {
                    // G1: every held row is published once the topic exists, and the outbox drains
                    await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
                        assertThat(missingSide.ids()).containsAll(expected);
                        assertThat(healthySide.ids()).contains(ordered.get(1));
                        assertThat(dsl.fetchCount(OUTBOX_MESSAGE)).isZero();
                    });
                }
            }
        }
    }

    /**
     * Waits until the relay holds no topic: every shard that remembered rows of the missing topic read
     * them again on its next own poll (a renewal interval), found them gone and let go, and no batch met
     * one for two seconds. Until then the shards read past held rows and the probe only asks.
     */
    private static long notHeld(SimpleMeterRegistry registry) {
        long started = System.nanoTime();
        await().atMost(Duration.ofSeconds(60))
                .pollInterval(Duration.ofMillis(50))
                .untilAsserted(() -> assertThat(Fixtures.gauge(registry, "outbox.relay.held.topics"))
                        .as("topics held once their rows were deleted")
                        .isZero());
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
    }

    private static long median(List<Long> values) {
        List<Long> sorted = values.stream().sorted().toList();
        int n = sorted.size();
        return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
    }

    /**
     * Commits {@value #HEALTHY} healthy rows (and, {@code with}, the missing topic's rows) in one
     * transaction and waits until the healthy ones are published and deleted.
     *
     * @return nanoseconds from the commit to the last healthy row deleted
     */
    private long round(DSLContext dsl, SimpleMeterRegistry registry, String name, boolean with) {
        List<OutboxMessage> batch = new ArrayList<>(HEALTHY + MISSING_ROWS);
        for (int i = 0; i < HEALTHY; i++) {
            if (with && i % MISSING_EVERY == 0) {
                batch.add(message(missing, "m-" + name + "-" + i, "held"));
            }
            batch.add(message(i % 2 == 0 ? healthyA : healthyB, "h-" + name + "-" + i, "payload-" + i));
        }
        double before = Fixtures.counter(registry, "outbox.relay.published");
        Fixtures.commit(dsl, batch);
        long started = System.nanoTime();
        await().atMost(Duration.ofSeconds(60))
                .pollInterval(Duration.ofMillis(5))
                .until(() -> Fixtures.counter(registry, "outbox.relay.published") - before >= HEALTHY);
        return System.nanoTime() - started;
    }
}
