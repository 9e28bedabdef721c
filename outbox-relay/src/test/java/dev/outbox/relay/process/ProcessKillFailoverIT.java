package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxMessage;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.jooq.DSLContext;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Two relay processes drain the outbox while one of them is killed with SIGKILL mid-run; the
 * survivor takes the dead relay's shards over once their leases expire.
 */
@ExtendWith(RealServices.class)
@Tag("integration")
class ProcessKillFailoverIT {
    private static final int MESSAGES = 20_000;
    private static final int KEYS = 500;
    private static final int PER_TRANSACTION = 20;
    private static final int PARTITIONS = 6;

    private final Outbox outbox = Outbox.builder().build();

    /**
     * G1 (no loss) and G3 (per-key order) across {@code kill -9} of a relay process: every committed
     * message id reaches Kafka at least once, and for every key the first appearances of its message
     * ids in Kafka follow commit (outbox id) order. One thread keeps committing while relay-a is
     * killed, so messages land in the dead relay's shards while they are still leased to it. Batches end
     * at 50 rows or at {@code batch-bytes}, whichever comes first.
     */
    @Test
    @Timeout(value = 10, unit = TimeUnit.MINUTES)
    void noLossAndPerKeyOrderWhenARelayProcessIsKilled(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("process-failover");
        kafka.createTopic(topic, PARTITIONS);
        DSLContext dsl = db.dsl();
        Map<String, List<UUID>> commitOrder = new LinkedHashMap<>();

        try (Records records = new Records(kafka.consumerProperties("unused"), topic, PARTITIONS);
                ChildRelay a = ChildRelay.start("failover-a", env(db, kafka, "relay-a"));
                ChildRelay b = ChildRelay.start("failover-b", env(db, kafka, "relay-b"))) {

            ChildRelay.awaitLeasing(db, Duration.ofSeconds(120), a, b);

            // One appender thread, so that id order is commit order; it keeps committing across the kill.
            AtomicInteger appended = new AtomicInteger();
            AtomicReference<Throwable> appendFailure = new AtomicReference<>();
            Thread appender = new Thread(
                    () -> {
                        try {
                            append(dsl, topic, MESSAGES, commitOrder, appended);
                        } catch (Throwable t) {
                            appendFailure.set(t);
                        }
                    },
                    "test-appender");
            appender.start();
            await("some messages published before the kill")
                    .atMost(Duration.ofSeconds(120))
                    .pollInterval(Duration.ofMillis(20))
                    .until(() -> records.size() >= 3_000 || appendFailure.get() != null);

            int leasesOfA = ChildRelay.liveLeases(db, "relay-a");
            a.process.destroyForcibly(); // SIGKILL: no hand-back, no membership removal
            int publishedAtKill = records.size();
            int appendedAtKill = appended.get();
            a.process.waitFor();
            assertThat(leasesOfA).as("relay-a held shards when it was killed").isPositive();
            assertThat(publishedAtKill).as("killed mid-run").isLessThan(MESSAGES);
            appender.join(Duration.ofMinutes(3).toMillis());
            assertThat(appendFailure.get()).isNull();
            assertThat(appended.get()).isEqualTo(MESSAGES);

            await("every committed message in Kafka")
                    .atMost(Duration.ofMinutes(5))
                    .pollInterval(Duration.ofMillis(500))
                    .untilAsserted(() -> {
                        assertThat(b.process.isAlive())
                                .as("relay-b alive, see %s", b.err)
                                .isTrue();
                        assertThat(records.distinctIds())
                                .as("distinct messages in Kafka")
                                .isGreaterThanOrEqualTo(MESSAGES);
                    });
            await("the outbox drained")
                    .atMost(Duration.ofSeconds(60))
                    .untilAsserted(() -> assertThat(count(db, "select count(*) from outbox.outbox_message"))
                            .isZero());
            // an empty outbox only shows that the shards that still had rows were taken over; relay-b claims
            // the others on its own lease rounds, and a 3 s lease renewed late by a loaded child JVM reads as
            // expired for a moment
            await("the survivor took every shard over")
                    .atMost(Duration.ofSeconds(60))
                    .untilAsserted(() ->
                            assertThat(ChildRelay.liveLeases(db, "relay-b")).isEqualTo(64));

            List<Records.Received> all = records.all();
            Set<UUID> committed = new HashSet<>();
            commitOrder.values().forEach(committed::addAll);
            Set<UUID> seen = new HashSet<>();
            all.forEach(r -> seen.add(r.messageId()));
            assertThat(seen).as("G1: every committed id reached Kafka").containsAll(committed);

            // Records of one key share a partition; Records keeps each partition's offset order.
            Map<String, LinkedHashSet<UUID>> firstAppearances = new HashMap<>();
            for (Records.Received r : all) {
                firstAppearances
                        .computeIfAbsent(r.key(), k -> new LinkedHashSet<>())
                        .add(r.messageId());
            }
            for (var e : commitOrder.entrySet()) {
                assertThat(new ArrayList<>(firstAppearances.get(e.getKey())))
                        .as("G3: first appearances of key %s follow commit order", e.getKey())
                        .containsExactlyElementsOf(e.getValue());
            }
            int duplicates = all.size() - seen.size();
            System.out.printf(
                    "[ProcessKillFailoverIT] %d messages, %d keys: %d records in Kafka, %d duplicates; relay-a (holding %d shards)"
                            + " was killed after %d messages were committed and %d records published%n",
                    MESSAGES, KEYS, all.size(), duplicates, leasesOfA, appendedAtKill, publishedAtKill);

            b.process.destroy(); // SIGTERM
            assertThat(b.waitFor(90))
                    .as("relay-b exit code after SIGTERM, see %s", b.out)
                    .isZero();
        }
    }

    /** Commits the messages in small transactions, round-robin over the keys. */
    private void append(
            DSLContext dsl, String topic, int to, Map<String, List<UUID>> commitOrder, AtomicInteger appended) {
        for (int start = 0; start < to; start += PER_TRANSACTION) {
            List<OutboxMessage> batch = new ArrayList<>();
            List<String> keys = new ArrayList<>();
            for (int i = start; i < Math.min(to, start + PER_TRANSACTION); i++) {
                String key = "key-" + (i % KEYS);
                keys.add(key);
                // every fifth payload is long: batches end at batch-bytes too, and their long payloads are
                // fetched by the reads' second statement
                String body = "message " + i + (i % 5 == 0 ? " " + "x".repeat(400) : "");
                batch.add(OutboxMessage.of(topic, key, "Test", "text/plain", body.getBytes()));
            }
            List<UUID> ids = dsl.transactionResult(tx -> outbox.appendAll(tx.dsl(), batch));
            for (int i = 0; i < ids.size(); i++) {
                commitOrder.computeIfAbsent(keys.get(i), k -> new ArrayList<>()).add(ids.get(i));
            }
            appended.addAndGet(ids.size());
        }
    }

    /**
     * Small batches: more batches in flight when the kill lands, so some are acknowledged but not deleted.
     * At most 50 rows, and at most about 2 KiB of payloads (five of the long ones).
     */
    private static Map<String, String> env(TestDatabase db, TestKafka kafka, String id) {
        Map<String, String> env = ChildRelay.env(db, kafka.bootstrapServers(), id);
        env.put("OUTBOX_RELAY_BATCH_SIZE", "50");
        env.put("OUTBOX_RELAY_BATCH_BYTES", "2KiB");
        return env;
    }

    static int count(TestDatabase db, String sql) throws Exception {
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery(sql)) {
            rs.next();
            return rs.getInt(1);
        }
    }
}
