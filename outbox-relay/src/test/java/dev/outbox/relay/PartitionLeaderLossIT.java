package dev.outbox.relay;

import static dev.outbox.migrations.jooq.Tables.OUTBOX_MESSAGE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.retry.Backoff;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
import org.jooq.DSLContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * One broker of three down while the others answer: a partition without a leader is not the fault of
 * the rows that wait for it (G7 does not misfire) and does not hold up the other partitions (G1, G3).
 */
@ExtendWith(RealServices.class)
class PartitionLeaderLossIT {
    private static final int PARTITIONS = 6;

    /**
     * With replication factor 1 over three brokers, one broker is stopped while writers keep appending
     * to keys on every partition. While it is down, every row committed for a partition led by a
     * healthy broker is published; no row anywhere has an attempt counted or is parked. After it
     * restarts every row arrives (G1), and per key the first appearances follow commit order and the
     * last record is the latest (G3).
     */
    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void healthyPartitionsFlowWhileOneBrokerIsDownAndNothingIsCounted(TestDatabase db) throws Exception {
        String topic = "leader-loss";
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (TestKafka cluster = TestKafka.startCluster(3, Map.of())) {
            cluster.createTopic(topic, PARTITIONS);
            Map<Integer, Integer> leaders = leaders(cluster, topic);
            // a broker that is not the controller and leads some partitions
            int victim =
                    leaders.values().stream().filter(b -> b != 0).findFirst().orElseThrow();
            List<String> keys = new ArrayList<>();
            Set<String> healthyKeys = new HashSet<>();
            for (int i = 0; i < 60; i++) {
                String key = "k" + i;
                keys.add(key);
                int partition = BuiltInPartitioner.partitionForKey(key.getBytes(StandardCharsets.UTF_8), PARTITIONS);
                if (leaders.get(partition) != victim) {
                    healthyKeys.add(key);
                }
            }
            assertThat(healthyKeys).hasSizeBetween(1, keys.size() - 1);
            DSLContext dsl = db.dsl();
            try (Relay relay = Fixtures.outageRelay(
                                    db,
                                    cluster.bootstrapServers(),
                                    "leader-loss-relay",
                                    registry,
                                    Map.of("linger.ms", 5))
                            .backoff(Backoff.of(Duration.ofMillis(50), Duration.ofSeconds(1)))
                            .maxAttempts(2)
                            .build();
                    Fixtures.Collector collector = new Fixtures.Collector(cluster.bootstrapServers(), topic);
                    KeyedWriters writers = new KeyedWriters(dsl, topic, keys)) {
                relay.start();
                writers.start(4, 5);
                await().atMost(Duration.ofSeconds(60))
                        .until(() -> writers.committed().size() > 300);
                await().atMost(Duration.ofSeconds(60))
                        .untilAsserted(() -> assertThat(collector.ids())
                                .containsAll(Set.copyOf(
                                        writers.committed().stream().limit(300).toList())));

                cluster.stopBroker(victim);
                long stopped = System.nanoTime();
                AtomicInteger countedOrParked = new AtomicInteger();
                // the broker stays down for 12 s, then what was committed for healthy keys must reach Kafka within 10 s
                while (System.nanoTime() - stopped < TimeUnit.SECONDS.toNanos(12)) {
                    countedOrParked.set(Math.max(countedOrParked.get(), countedOrParked(dsl)));
                    Thread.sleep(200);
                }
                Set<UUID> healthyDuring = writers.committedFor(healthyKeys);
                await().atMost(Duration.ofSeconds(10))
                        .untilAsserted(() -> assertThat(collector.ids())
                                .as("rows of partitions with a leader are published while a broker is down")
                                .containsAll(healthyDuring));
                long healthyPublishedDown = healthyDuring.size();
                assertThat(countedOrParked.get())
                        .as("no attempt counted, nothing parked while a broker was down")
                        .isZero();
                assertThat(dsl.fetchCount(OUTBOX_MESSAGE))
                        .as("rows of the stopped broker's partitions wait")
                        .isPositive();

                cluster.startBroker(victim);
                long restarted = System.nanoTime();
                Thread.sleep(2_000);
                writers.close();
                Set<UUID> all = writers.committed();
                await().atMost(Duration.ofSeconds(90))
                        .untilAsserted(() -> assertThat(KeyedWriters.missing(all, collector.ids()))
                                .as("messages not in Kafka")
                                .isZero());
                long delivered = System.nanoTime() - restarted;
                await().atMost(Duration.ofSeconds(30))
                        .untilAsserted(
                                () -> assertThat(dsl.fetchCount(OUTBOX_MESSAGE)).isZero());
                List<String> violations = KeyedWriters.orderViolations(collector.records(), writers.lastSeq());
                System.out.printf(
                        "[leader-loss] %d messages, %d healthy ones committed while broker %d was down were published"
                                + " during it, %d records in Kafka, all delivered %d ms after the restart, %d order violations%n",
                        all.size(),
                        healthyPublishedDown,
                        victim,
                        collector.records().size(),
                        TimeUnit.NANOSECONDS.toMillis(delivered),
                        violations.size());
                assertThat(violations).as("G3 per key").isEmpty();
                assertThat(Fixtures.counter(registry, "outbox.relay.parked")).isZero();
            }
        }
    }

    private static int countedOrParked(DSLContext dsl) {
        return dsl.fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.ATTEMPTS.gt(0).or(OUTBOX_MESSAGE.PARKED_AT.isNotNull()));
    }

    /** @return partition to leading broker id */
    static Map<Integer, Integer> leaders(TestKafka cluster, String topic) throws Exception {
        try (Admin admin = cluster.admin()) {
            TopicDescription d = admin.describeTopics(List.of(topic))
                    .allTopicNames()
                    .get(30, TimeUnit.SECONDS)
                    .get(topic);
            Map<Integer, Integer> out = new HashMap<>();
            d.partitions().forEach(p -> out.put(p.partition(), p.leader().id()));
            return out;
        }
    }
}
