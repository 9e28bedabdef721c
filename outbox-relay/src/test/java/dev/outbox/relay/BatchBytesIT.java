package dev.outbox.relay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.Outbox;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import javax.sql.DataSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Batches bounded by payload bytes ({@code batchBytes}, review m10), end to end on real PostgreSQL
 * and Kafka: a backlog of large payloads is published in many small batches rather than in batches
 * of {@code batchSize} rows, while writers that lock their key's aggregate keep appending payloads
 * from empty to several times the cap. G1: every message arrives, each payload whole. G3: every
 * key's messages arrive in the order the writers committed them.
 */
@ExtendWith(RealServices.class)
class BatchBytesIT {
    private static final int CAP = 64 * 1024;
    private static final int KEYS = 4;
    private static final int BACKLOG_PER_KEY = 40;
    private static final int BACKLOG_PAYLOAD = 30_000;

    @Test
    void largePayloadsGoOutInBatchesOfTheCapInCommitOrderPerKey(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("batch-bytes");
        kafka.createTopic(topic, 3);
        Outbox outbox = Outbox.builder().build();
        String aggregate = Aggregates.create(db, "batch_bytes_aggregate", KEYS);
        int writers = 6;
        int perWriter = 15;
        DataSource writersPool = db.newDataSource(writers);
        // the backlog, before the relay starts: 30 KB payloads, at most 3 of them per batch of the 64 KiB cap
        for (int i = 0; i < KEYS * BACKLOG_PER_KEY; i++) {
            Aggregates.appendNextVersion(
                    writersPool, outbox, aggregate, topic, "agg-" + (i % KEYS), v -> padded(v, BACKLOG_PAYLOAD), 0);
        }
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (Relay relay = Relay.builder()
                        .dataSource(db.newDataSource(10))
                        .instanceId("batch-bytes-relay")
                        .producerProperties(Map.of("bootstrap.servers", kafka.bootstrapServers()))
                        .batchBytes(CAP)
                        .meterRegistry(registry)
                        .build();
                Fixtures.Collector kafkaSide = new Fixtures.Collector(kafka.bootstrapServers(), topic)) {
            relay.start();
            ExecutorService pool = Executors.newFixedThreadPool(writers);
            List<Future<?>> done = new ArrayList<>();
            for (int w = 0; w < writers; w++) {
                done.add(pool.submit(() -> {
                    for (int i = 0; i < perWriter; i++) {
                        String key = "agg-" + ThreadLocalRandom.current().nextInt(KEYS);
                        // from empty to three times the cap: the largest are batches of their own
                        int size = ThreadLocalRandom.current().nextInt(4) == 0
                                ? ThreadLocalRandom.current().nextInt(3 * CAP)
                                : ThreadLocalRandom.current().nextInt(2_000);
                        Aggregates.appendNextVersion(
                                writersPool, outbox, aggregate, topic, key, v -> padded(v, size), 0);
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get();
            }
            pool.shutdown();
            int total = KEYS * BACKLOG_PER_KEY + writers * perWriter;
            await().atMost(Duration.ofSeconds(90))
                    .untilAsserted(() -> assertThat(kafkaSide.ids()).hasSize(total));
            // G3 and G1: first appearances in commit order per key, every payload whole
            Fixtures.assertVersionsInCommitOrder(kafkaSide, total, BatchBytesIT::wholeVersion);

            // the backlog alone is 160 rows of 30 KB on at most 4 shards: in batches of 500 rows that is a
            // handful of batches; in batches of at most 3 such rows it is at least 160 / 3
            long batches = registry.find("outbox.relay.batch").timer().count();
            assertThat(batches)
                    .as(
                            "batches for %d backlog rows of %d bytes under a cap of %d",
                            KEYS * BACKLOG_PER_KEY, BACKLOG_PAYLOAD, CAP)
                    .isGreaterThanOrEqualTo(KEYS * BACKLOG_PER_KEY / 3);
            assertThat(Fixtures.counter(registry, "outbox.relay.batch.bytes.reached"))
                    .as("batches that reached the cap before batch-size rows")
                    .isGreaterThanOrEqualTo(KEYS * BACKLOG_PER_KEY / 3.0 - KEYS);
        }
    }

    /** @return the version of a record whose payload is {@code version:size:} and {@code size} bytes of padding, checked whole */
    private static int wholeVersion(Fixtures.Received r) {
        String[] parts = r.payload().split(":", -1);
        assertThat(parts[2])
                .as("padding of %s", r.messageId())
                .hasSize(Integer.parseInt(parts[1]))
                .matches("x*");
        return Integer.parseInt(parts[0]);
    }

    /**
     * The transactional publish mode with a row Kafka can never take among the large ones: the row of
     * 1.5 MB (past the producer's {@code max.request.size}) ends its batch, whose transaction is aborted;
     * it is parked, the batch's other rows go out in the next transaction, and every other message
     * reaches a {@code read_committed} consumer in commit order per key (G3, G7), in batches of the cap.
     */
    @Test
    void inTheTransactionalModeARowTooLargeForKafkaIsParkedAloneAndTheRestGoesOut(TestDatabase db, TestKafka kafka)
            throws Exception {
        String topic = TestKafka.uniqueTopic("batch-bytes-tx");
        kafka.createTopic(topic, 3);
        Outbox outbox = Outbox.builder().build();
        String aggregate = Aggregates.create(db, "batch_bytes_tx_aggregate", KEYS);
        DataSource writersPool = db.newDataSource(2);
        int total = KEYS * BACKLOG_PER_KEY;
        for (int i = 0; i < total; i++) {
            if (i == total / 2) {
                Aggregates.appendNextVersion(
                        writersPool, outbox, aggregate, topic, "agg-0", v -> padded(v, 1_500_000), 0);
            }
            Aggregates.appendNextVersion(
                    writersPool, outbox, aggregate, topic, "agg-" + (i % KEYS), v -> padded(v, BACKLOG_PAYLOAD), 0);
        }
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        List<Fixtures.Received> received;
        try (Relay relay = Relay.builder()
                        .dataSource(db.newDataSource(10))
                        .instanceId("batch-bytes-tx-relay")
                        .producerProperties(Map.of("bootstrap.servers", kafka.bootstrapServers()))
                        .publishMode(PublishMode.TRANSACTIONAL)
                        .batchBytes(CAP)
                        .meterRegistry(registry)
                        .build();
                Fixtures.Collector committed = new Fixtures.Collector(
                        kafka.bootstrapServers(), topic, Map.of("isolation.level", "read_committed"))) {
            relay.start();
            await().atMost(Duration.ofSeconds(90))
                    .untilAsserted(() -> assertThat(committed.ids()).hasSize(total));
            await().atMost(Duration.ofSeconds(30)).until(() -> parked(db) == 1);
            received = committed.records();
        }
        // agg-0 lost the version of the parked row: its versions skip it, the other keys' do not
        Map<String, List<Integer>> versions = new HashMap<>();
        for (Fixtures.Received r : received) {
            versions.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(wholeVersion(r));
        }
        int parkedVersion = total / 2 / KEYS + 1;
        for (var e : versions.entrySet()) {
            List<Integer> expected = new ArrayList<>();
            for (int v = 1; expected.size() < BACKLOG_PER_KEY; v++) {
                if (!(e.getKey().equals("agg-0") && v == parkedVersion)) {
                    expected.add(v);
                }
            }
            assertThat(e.getValue()).as("versions of %s", e.getKey()).containsExactlyElementsOf(expected);
        }
        assertThat(versions).hasSize(KEYS);
        assertThat(registry.find("outbox.relay.batch").timer().count())
                .as("batches for %d rows of %d bytes under a cap of %d", total, BACKLOG_PAYLOAD, CAP)
                .isGreaterThanOrEqualTo(total / 3);
    }

    private static long parked(TestDatabase db) throws SQLException {
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select count(*) from outbox.outbox_message where parked_at is not null"
                        + " and last_error like '%RecordTooLarge%'")) {
            rs.next();
            return rs.getLong(1);
        }
    }

    /** @return {@code version:size:} and {@code size} bytes of padding */
    private static String padded(int version, int size) {
        return version + ":" + size + ":" + "x".repeat(size);
    }
}
