package dev.outbox.relay;

import static dev.outbox.migrations.jooq.Tables.OUTBOX_MESSAGE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.retry.Backoff;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.jooq.DSLContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * G3 under repeated leader loss: the producer holds many small batches per partition, and a batch that
 * expires before it was ever sent has no sequence number, so without the relay's own guard a later
 * batch of the same key could be written ahead of it once the leader is back.
 */
@ExtendWith(RealServices.class)
class ReorderUnderLeaderLossIT {

    /**
     * Writers of a key are serialised on the key's row lock; two brokers of three are stopped and
     * started in turn, each for 1 to 6 s against a delivery timeout of 3 s, while the relay sends
     * batches of 50 rows with a 512-byte {@code batch.size} (a few records per producer batch). For every key, first appearances follow commit order and the
     * last record is the latest (G3); every row arrives (G1).
     */
    @Test
    @Timeout(value = 6, unit = TimeUnit.MINUTES)
    void firstAppearancesFollowCommitOrderAcrossRepeatedLeaderLoss(TestDatabase db) throws Exception {
        String topic = "reorder";
        int cycles = Integer.getInteger("outbox.test.reorder.cycles", 12);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (TestKafka cluster = TestKafka.startCluster(3, Map.of())) {
            cluster.createTopic(topic, 6);
            List<String> keys = new ArrayList<>();
            for (int i = 0; i < 40; i++) {
                keys.add("r" + i);
            }
            DSLContext dsl = db.dsl();
            long started = System.nanoTime();
            try (Relay relay = Fixtures.outageRelay(
                                    db,
                                    cluster.bootstrapServers(),
                                    "reorder-relay",
                                    registry,
                                    Map.of(
                                            "linger.ms", 2,
                                            "batch.size", 512,
                                            "retry.backoff.max.ms", 200))
                            .batchSize(50)
                            .backoff(Backoff.of(Duration.ofMillis(20), Duration.ofMillis(300)))
                            .build();
                    Fixtures.Collector collector = new Fixtures.Collector(cluster.bootstrapServers(), topic);
                    KeyedWriters writers = new KeyedWriters(dsl, topic, keys)) {
                relay.start();
                writers.start(4, 2);
                Random random = new Random(42);
                for (int c = 0; c < cycles; c++) {
                    int victim = 1 + c % 2;
                    Thread.sleep(500 + random.nextInt(1_500));
                    cluster.stopBroker(victim);
                    Thread.sleep(1_000 + random.nextInt(5_000));
                    cluster.startBroker(victim);
                }
                Thread.sleep(1_000);
                writers.close();
                Set<UUID> all = writers.committed();
                await().atMost(Duration.ofSeconds(120))
                        .untilAsserted(() -> assertThat(KeyedWriters.missing(all, collector.ids()))
                                .as("messages not in Kafka")
                                .isZero());
                await().atMost(Duration.ofSeconds(30))
                        .untilAsserted(
                                () -> assertThat(dsl.fetchCount(OUTBOX_MESSAGE)).isZero());
                List<String> violations = KeyedWriters.orderViolations(collector.records(), writers.lastSeq());
                System.out.printf(
                        "[reorder] %d cycles, %d messages on %d keys, %d records in Kafka, %d keys out of order, %d s%n%s%n",
                        cycles,
                        all.size(),
                        keys.size(),
                        collector.records().size(),
                        violations.size(),
                        TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - started),
                        String.join("\n", violations));
                assertThat(violations).as("G3 per key").isEmpty();
            }
        }
    }
}
