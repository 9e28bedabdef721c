package dev.outbox.relay;

import static dev.outbox.relay.Fixtures.message;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.Shards;
import dev.outbox.core.retry.Backoff;
import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import javax.sql.DataSource;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.jooq.DSLContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * How the relay finds new rows now that producers do not notify: the probe. Every relay here polls
 * its idle shards only once a minute on its own, so a row published quickly was found by the probe
 * (or, in the LISTEN test, by a notification).
 */
@ExtendWith(RealServices.class)
class WakeUpIT {
    private static final Duration SLOW_POLL = Duration.ofMinutes(1);
    /** Far above the probe's few milliseconds, far below the one-minute poll: holds on a loaded machine. */
    private static final long BOUND_MS = 2_000;

    private static final String PROBE_WAITS = "outbox.relay.probe.waits";
    private static final String PROBE_READS = "outbox.relay.probe.reads";
    private static final String DELETE_SHARDS = "outbox.relay.delete.shards";
    private static final String BATCH = "outbox.relay.batch";

    private static Relay.Builder quietRelay(DataSource pool, String bootstrap, String id) {
        return Relay.builder()
                .dataSource(pool)
                .instanceId(id)
                .producerProperties(Map.of("bootstrap.servers", bootstrap))
                .leaseDuration(SLOW_POLL)
                .idlePollInterval(SLOW_POLL)
                .shutdownTimeout(Duration.ofSeconds(15))
                .meterRegistry(new SimpleMeterRegistry());
    }

    /**
     * G1 without NOTIFY: a row appended by the default {@link Outbox} (no {@code pg_notify} at all) to
     * an idle relay is published within the latency bound, every time; the median is reported.
     */
    @Test
    void aRowAppendedWithoutNotifyIsPublishedWithinTheBound(TestDatabase db, TestKafka kafka) throws Exception {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        appendToAnIdleRelay(db, kafka, "probe", "outbox", registry, true);
    }

    /**
     * G1 on a schema without the wait's function (before migration V7): the probe asks every interval
     * instead, and an idle relay still publishes every row within the bound.
     */
    @Test
    void withoutTheWaitFunctionTheProbeAsksEveryInterval(TestDatabase db, TestKafka kafka) throws Exception {
        // a schema of its own: the class's other tests share the database
        String schema = "without_wait";
        OutboxMigrations.migrate(db.dataSource(), schema);
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("drop function " + schema + ".outbox_wait_for_change(text, integer, integer)");
        }
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        appendToAnIdleRelay(db, kafka, "no-wait", schema, registry, false);
        assertThat(probeWaits(registry)).isZero();
        assertThat(Fixtures.counter(registry, "outbox.relay.errors", "kind", "database"))
                .as("a missing function is not a database failure")
                .isZero();
    }

    private static double probeWaits(SimpleMeterRegistry registry) {
        return Fixtures.counter(registry, PROBE_WAITS, "outcome", "change")
                + Fixtures.counter(registry, PROBE_WAITS, "outcome", "timeout");
    }

    /**
     * Appends 20 rows to an idle relay, one at a time, each within the bound, and reports the median;
     * with {@code waits}, then lets the relay go idle until its probe waits in PostgreSQL (migration
     * V7), at its quiet step, and appends one more row, published within the bound as well.
     */
    private static void appendToAnIdleRelay(
            TestDatabase db, TestKafka kafka, String name, String schema, SimpleMeterRegistry registry, boolean waits)
            throws Exception {
        String topic = TestKafka.uniqueTopic(name);
        kafka.createTopic(topic, 4);
        Outbox outbox = Outbox.builder().schema(schema).build();
        DSLContext dsl = OutboxMigrations.dsl(db.dataSource(), schema);
        try (Relay relay = quietRelay(db.newDataSource(10), kafka.bootstrapServers(), name + "-relay")
                        .schema(schema)
                        .meterRegistry(registry)
                        .build();
                Probe kafkaSide = new Probe(kafka.bootstrapServers(), topic)) {
            startOwningAll(relay, 64);
            long[] latencies = new long[20];
            for (int i = 0; i < latencies.length; i++) {
                // let every shard go idle first
                Thread.sleep(50);
                long committed = System.nanoTime();
                UUID id = dsl.transactionResult(tx -> outbox.append(
                        tx.dsl(),
                        message(topic, "k-" + ThreadLocalRandom.current().nextInt(1000), "x")));
                latencies[i] = kafkaSide.awaitMillis(id, committed, BOUND_MS);
            }
            Arrays.sort(latencies);
            System.out.printf(
                    "%s: commit->consumed without NOTIFY: p50 %d ms, max %d ms%n",
                    name, latencies[latencies.length / 2], latencies[latencies.length - 1]);
            assertThat(latencies[latencies.length - 1])
                    .as("every row within %d ms", BOUND_MS)
                    .isLessThan(BOUND_MS);
            if (waits) {
                // idle, every shard idle: the probe waits in PostgreSQL (a wait ends after 200 ms at most); after
                // two waits that ended without a change, the wait in progress looks only once per probe interval
                await().atMost(Duration.ofSeconds(20))
                        .until(() -> Fixtures.counter(registry, PROBE_WAITS, "outcome", "timeout") >= 2);
                long committed = System.nanoTime();
                UUID id = dsl.transactionResult(tx -> outbox.append(tx.dsl(), message(topic, "after-waits", "x")));
                System.out.printf(
                        "%s: after %.0f waits, commit->consumed %d ms%n",
                        name, probeWaits(registry), kafkaSide.awaitMillis(id, committed, BOUND_MS));
            }
        }
    }

    /**
     * G1 under a steady load, with the probe's longer pause after a read that found rows ({@code
     * probeIntervalUnderLoad}, here 250 ms): rows committed every 10 ms or so for 3 s all arrive. Each
     * read finds far fewer rows than the 64 shards it reads for, so each pause reaches the 250 ms cap,
     * and the reads that found rows number about one per pause. A probe that read again after its 5 ms
     * interval would count one such read per row or two, well above the bound.
     */
    @Test
    void underASteadyLoadTheProbePausesLongerAfterReadsThatFoundRows(TestDatabase db, TestKafka kafka)
            throws Exception {
        String topic = TestKafka.uniqueTopic("under-load");
        kafka.createTopic(topic, 4);
        Outbox outbox = Outbox.builder().build();
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        long pauseMs = 250;
        long loadMs = 3_000;
        try (Relay relay = quietRelay(db.newDataSource(10), kafka.bootstrapServers(), "under-load-relay")
                        .probeIntervalUnderLoad(Duration.ofMillis(pauseMs))
                        .meterRegistry(registry)
                        .build();
                Probe kafkaSide = new Probe(kafka.bootstrapServers(), topic)) {
            startOwningAll(relay, 64);
            Thread.sleep(300); // every shard idle
            double before = Fixtures.counter(registry, PROBE_READS, "outcome", "rows");
            Map<UUID, Long> committed = new LinkedHashMap<>();
            long start = System.nanoTime();
            for (int i = 0; System.nanoTime() - start < loadMs * 1_000_000L; i++) {
                String key = "k-" + (i % 100);
                UUID id = db.dsl().transactionResult(tx -> outbox.append(tx.dsl(), message(topic, key, "x")));
                committed.put(id, System.nanoTime());
                kafkaSide.pollFor(10);
            }
            long[] latencies = new long[committed.size()];
            int n = 0;
            for (Map.Entry<UUID, Long> e : committed.entrySet()) {
                latencies[n++] = kafkaSide.awaitMillis(e.getKey(), e.getValue(), BOUND_MS);
            }
            double found = Fixtures.counter(registry, PROBE_READS, "outcome", "rows") - before;
            Arrays.sort(latencies);
            System.out.printf(
                    "under a steady load, %d ms pause after a read that found rows: %d rows, %.0f such reads,"
                            + " commit->consumed p50 %d ms, max %d ms%n",
                    pauseMs, committed.size(), found, latencies[latencies.length / 2], latencies[latencies.length - 1]);
            assertThat(committed).as("rows appended").hasSizeGreaterThan(100);
            // the load, the rows left when it stopped, and a pause's slack, one read per pause
            assertThat(found)
                    .as("probe reads that found rows, %d rows in %d ms", committed.size(), loadMs)
                    .isBetween(2.0, (double) (loadMs + 2 * pauseMs) / pauseMs + 4);
        }
    }

    /**
     * Under a steady trickle the shards do not wait for the deletes of their short batches (G1, G3):
     * every row arrives and none twice (the probe's reads leave out the rows whose delete is on its
     * way, so no shard is handed a row it published already), the table empties, and the deletes of
     * many batches share a statement: at most one per 20 ms linger, besides one per ten batches for those a
     * shard waits for.
     */
    @Test
    void underASteadyTrickleDeletesShareStatementsAndNothingIsPublishedTwice(TestDatabase db, TestKafka kafka)
            throws Exception {
        String topic = TestKafka.uniqueTopic("trickle");
        kafka.createTopic(topic, 4);
        Outbox outbox = Outbox.builder().build();
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        long loadMs = 3_000;
        try (Relay relay = quietRelay(db.newDataSource(10), kafka.bootstrapServers(), "trickle-relay")
                        .meterRegistry(registry)
                        .build();
                Probe kafkaSide = new Probe(kafka.bootstrapServers(), topic)) {
            startOwningAll(relay, 64);
            Thread.sleep(300); // every shard idle
            long statementsBefore = registry.find(DELETE_SHARDS).summary().count();
            long batchesBefore = registry.find(BATCH).timer().count();
            List<UUID> committed = new ArrayList<>();
            long start = System.nanoTime();
            for (int i = 0; System.nanoTime() - start < loadMs * 1_000_000L; i++) {
                String key = "k-" + (i % 100);
                committed.add(db.dsl().transactionResult(tx -> outbox.append(tx.dsl(), message(topic, key, "x"))));
                kafkaSide.pollFor(2);
            }
            for (UUID id : committed) {
                kafkaSide.awaitMillis(id, System.nanoTime(), 30_000);
            }
            await().atMost(Duration.ofSeconds(10)).until(() -> rowsLeft(db) == 0);
            long statements = registry.find(DELETE_SHARDS).summary().count() - statementsBefore;
            long elapsedMs = (System.nanoTime() - start) / 1_000_000L;
            long batches = registry.find(BATCH).timer().count() - batchesBefore;
            kafkaSide.pollFor(500); // a row published twice would arrive by now
            System.out.printf(
                    "steady trickle: %d rows in %d ms, %d batches, %d delete statements in %d ms, %d records twice%n",
                    committed.size(), loadMs, batches, statements, elapsedMs, kafkaSide.duplicates());
            assertThat(committed).as("rows appended").hasSizeGreaterThan(200);
            assertThat(kafkaSide.duplicates()).as("records published twice").isZero();
            // one statement per 20 ms linger at most, and those a shard waited for (a full batch, its own read
            // hurrying the linger): one per 10 batches allowed. Without the deferral: 0.6 to 0.7 per batch
            assertThat(statements)
                    .as("delete statements for %d batches in %d ms", batches, elapsedMs)
                    .isLessThanOrEqualTo(elapsedMs / 20 + batches / 10);
        }
    }

    /**
     * G1 and G3 when the deletes fail while a trickle flows, most of them deletes the shards did not
     * wait for: for about a second PostgreSQL refuses every delete from the outbox (a statement
     * trigger, so reads, leases and appends go on). Each shard keeps the rows whose delete failed out
     * of the probe's reads and deletes them again, waiting, before it reads or sends anything more. So
     * every row arrives, none twice, each key's records in commit order, and the table empties once
     * deletes work again.
     */
    @Test
    void deletesThatFailAreDoneAgainBeforeTheShardGoesOnAndNothingIsPublishedTwice(TestDatabase db, TestKafka kafka)
            throws Exception {
        String topic = TestKafka.uniqueTopic("refused-deletes");
        kafka.createTopic(topic, 4);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (RefusedDeletes refusing = new RefusedDeletes(db, "refused_deletes");
                Relay relay = quietRelay(db.newDataSource(10), kafka.bootstrapServers(), "refused-deletes-relay")
                        .schema(refusing.schema)
                        .meterRegistry(registry)
                        .build();
                Probe kafkaSide = new Probe(kafka.bootstrapServers(), topic)) {
            Outbox outbox = Outbox.builder().schema(refusing.schema).build();
            startOwningAll(relay, 64);
            Thread.sleep(300); // every shard idle
            List<UUID> committed = new ArrayList<>();
            long start = System.nanoTime();
            for (int i = 0; System.nanoTime() - start < 3_000_000_000L; i++) {
                long ms = (System.nanoTime() - start) / 1_000_000L;
                refusing.refuse(ms >= 1_000 && ms < 2_000);
                String key = "k-" + (i % 50);
                committed.add(refusing.dsl.transactionResult(tx -> outbox.append(tx.dsl(), message(topic, key, "x"))));
                kafkaSide.pollFor(2);
            }
            for (UUID id : committed) {
                kafkaSide.awaitMillis(id, System.nanoTime(), 30_000);
            }
            refusing.awaitEmpty();
            kafkaSide.pollFor(500); // a row published twice would arrive by now
            double failed = Fixtures.counter(registry, "outbox.relay.errors", "kind", "database");
            System.out.printf(
                    "deletes refused for 1 s of a 3 s trickle: %d rows, %.0f database errors, %d records twice%n",
                    committed.size(), failed, kafkaSide.duplicates());
            assertThat(failed).as("deletes that failed").isPositive();
            assertThat(kafkaSide.duplicates()).as("records published twice").isZero();
            Map<String, List<Long>> byKey = kafkaSide.outboxIdsByKey();
            for (var e : byKey.entrySet()) {
                assertThat(e.getValue())
                        .as("G3: the records of %s in commit (outbox id) order", e.getKey())
                        .isSorted();
            }
            assertThat(byKey.values().stream().mapToInt(List::size).sum()).isEqualTo(committed.size());
        }
    }

    /**
     * G1 and G3 when the deletes stall rather than fail (a statement trigger that waits for a lock the test
     * holds, as a lock on the table or a stalled disk would): a trickle of one key's rows goes on, and the
     * relay publishes at most about a batch of them (batch size 10 here) ahead of their deletes, then waits.
     * Before, it published every row the probe handed it, 100 here, with nothing deleted, each queued delete
     * carrying the ids of all before it. Once the deletes answer, every row arrives, none twice, in order, and
     * the table empties.
     */
    @Test
    void whileDeletesStallAShardPublishesAtMostABatchAheadOfThem(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("stalled-deletes");
        kafka.createTopic(topic, 1);
        int batch = 10;
        try (RefusedDeletes stalling = new RefusedDeletes(db, "stalled_deletes");
                Relay relay = quietRelay(db.newDataSource(10), kafka.bootstrapServers(), "stalled-deletes-relay")
                        .schema(stalling.schema)
                        .batchSize(batch)
                        .build();
                Probe kafkaSide = new Probe(kafka.bootstrapServers(), topic)) {
            String schema = stalling.schema;
            DSLContext dsl = stalling.dsl;
            Outbox outbox = Outbox.builder().schema(schema).build();
            startOwningAll(relay, 64);
            // a first row, published and deleted, so that the relay knows the topic before the deletes stall
            UUID first = dsl.transactionResult(tx -> outbox.append(tx.dsl(), message(topic, "k", "v")));
            kafkaSide.awaitMillis(first, System.nanoTime(), 30_000);
            awaitOutboxEmpty(dsl, schema);
            stalling.stall(true);
            List<UUID> committed = new ArrayList<>();
            for (int i = 0; i < 100; i++) {
                committed.add(dsl.transactionResult(tx -> outbox.append(tx.dsl(), message(topic, "k", "v"))));
                kafkaSide.pollFor(5);
            }
            kafkaSide.pollFor(1_000);
            int whileStalled = kafkaSide.outboxIdsByKey().get("k").size() - 1;
            System.out.printf("deletes stalled: %d of 100 rows published%n", whileStalled);
            assertThat(whileStalled)
                    .as("rows published while no delete answered, batch size %d", batch)
                    .isPositive()
                    .isLessThan(2 * batch);

            stalling.stall(false);
            for (UUID id : committed) {
                kafkaSide.awaitMillis(id, System.nanoTime(), 30_000);
            }
            awaitOutboxEmpty(dsl, schema);
            kafkaSide.pollFor(500); // a row published twice would arrive by now
            assertThat(kafkaSide.duplicates()).as("records published twice").isZero();
            assertThat(kafkaSide.outboxIdsByKey().get("k"))
                    .as("G3: the key's records in commit (outbox id) order")
                    .hasSize(1 + committed.size())
                    .isSorted();
        }
    }

    /**
     * G3 with several writers per key while the deletes stall: eight writers serialise per key on the
     * key's aggregate row and append the version they wrote, for four seconds; for the middle two the
     * deletes wait for a lock the test holds. The shards publish a batch or so ahead of their deletes and
     * wait; once the deletes answer, each key's versions reach Kafka in the order the writers committed
     * them, every one of them, none twice, and the table empties.
     */
    @Test
    void perKeyOrderHoldsForWritersThatLockTheAggregateWhileDeletesStall(TestDatabase db, TestKafka kafka)
            throws Exception {
        Hindered run = writeWhileDeletesHindered(db, kafka, "stalled_deletes_locked", 2_000, RefusedDeletes::stall);
        System.out.printf(
                "deletes stalled for 2 s of 4 s, %d rows, %d in the table at the stall's end, %d records twice%n",
                run.total, run.leftAtTheEnd, run.twice);
        assertThat(run.leftAtTheEnd)
                .as("rows left in the table while the deletes stalled")
                .isPositive();
        assertThat(run.twice).as("records published twice").isZero();
        Fixtures.assertVersionsInCommitOrder(run.kafkaSide, run.total, r -> Integer.parseInt(r.payload()));
    }

    /**
     * G3 with several writers per key while the deletes fail: eight writers serialise per key on the
     * key's aggregate row (the documented pattern) and append the version they wrote, for three
     * seconds, and for the middle second PostgreSQL refuses every delete from the outbox. Each key's
     * versions reach Kafka in the order the writers committed them, every one of them, none twice, and
     * the table empties once deletes work again.
     */
    @Test
    void perKeyOrderHoldsForWritersThatLockTheAggregateWhileDeletesFail(TestDatabase db, TestKafka kafka)
            throws Exception {
        Hindered run = writeWhileDeletesHindered(db, kafka, "refused_deletes_locked", 1_000, RefusedDeletes::refuse);
        double failed = Fixtures.counter(run.registry, "outbox.relay.errors", "kind", "database");
        System.out.printf(
                "deletes refused for 1 s of 3 s, %d rows, %.0f database errors, %d records twice%n",
                run.total, failed, run.twice);
        assertThat(failed).as("deletes that failed").isPositive();
        assertThat(run.twice).as("records published twice").isZero();
        Fixtures.assertVersionsInCommitOrder(run.kafkaSide, run.total, r -> Integer.parseInt(r.payload()));
    }

    /**
     * Availability, G1 and G3 under a row lock of another transaction on a published row (an UPDATE
     * left open in a console): the row's shard stops, the relay does not. A relay owning every shard
     * with a 4 s lease publishes a row of key {@code a} that a side transaction holds locked FOR
     * UPDATE, so its delete cannot go through. For the next 10 s (two and a half leases) rows of 20
     * keys on other shards are appended: each is published and deleted, every lease of the relay is
     * renewed (it still owns all 64 shards), and the key's next row waits unpublished behind the
     * undeleted one (G3), the failed deletes counted under {@code errors{kind=database}}. Once the
     * side transaction ends, the locked row is deleted without being published again and the key's
     * next row follows it. Before, the delete waited on the lock for as long as the transaction ran,
     * on the relay's one write thread, holding the shard's lease row FOR SHARE: no other shard's rows
     * were deleted (rows of other shards were not even published within 10 s), and renewals and the
     * relay's own close waited on the lease row.
     */
    @Test
    void aRowLockedByAnotherTransactionStopsItsShardAndNotTheRelay(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("locked-row");
        kafka.createTopic(topic, 4);
        String schema = "locked_row";
        OutboxMigrations.migrate(db.dataSource(), schema);
        DSLContext dsl = OutboxMigrations.dsl(db.dataSource(), schema);
        Outbox outbox = Outbox.builder().schema(schema).build();
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        int lockedShard = Shards.of("a", null, 64);
        List<String> others = new ArrayList<>();
        for (int i = 0; others.size() < 20; i++) {
            if (Shards.of("k-" + i, null, 64) != lockedShard) {
                others.add("k-" + i);
            }
        }
        UUID first = dsl.transactionResult(tx -> outbox.append(tx.dsl(), message(topic, "a", "1")));
        // the lock's holder closes first, so that a failed assertion does not leave the relay's close waiting on it
        try (Relay relay = quietRelay(db.newDataSource(10), kafka.bootstrapServers(), "locked-row-relay")
                        .schema(schema)
                        .leaseDuration(Duration.ofSeconds(4))
                        .idlePollInterval(Duration.ofSeconds(4))
                        .meterRegistry(registry)
                        .build();
                Probe kafkaSide = new Probe(kafka.bootstrapServers(), topic);
                Connection holder = db.connect()) {
            holder.setAutoCommit(false);
            try (Statement st = holder.createStatement()) {
                st.execute("select id from " + schema + ".outbox_message for update");
            }
            startOwningAll(relay, 64);
            kafkaSide.awaitMillis(first, System.nanoTime(), 30_000);
            UUID second = dsl.transactionResult(tx -> outbox.append(tx.dsl(), message(topic, "a", "2")));
            List<UUID> elsewhere = new ArrayList<>();
            long lockedUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            for (int i = 0; System.nanoTime() - lockedUntil < 0; i++) {
                String key = others.get(i % others.size());
                elsewhere.add(dsl.transactionResult(tx -> outbox.append(tx.dsl(), message(topic, key, "x"))));
                kafkaSide.pollFor(100);
            }
            for (UUID id : elsewhere) {
                kafkaSide.awaitMillis(id, System.nanoTime(), 10_000);
            }
            await().atMost(Duration.ofSeconds(10))
                    .untilAsserted(() -> assertThat(
                                    dsl.fetch("select message_key from " + schema + ".outbox_message order by id")
                                            .getValues(0, String.class))
                            .as("rows of other shards deleted while the row of a stays locked")
                            .containsExactly("a", "a"));
            assertThat(relay.ownedShards())
                    .as("every lease renewed through two and a half leases of the lock")
                    .hasSize(64);
            assertThat(kafkaSide.outboxIdsByKey().get("a"))
                    .as("G3: the key's next row waits behind its undeleted row")
                    .hasSize(1);
            double failed = Fixtures.counter(registry, "outbox.relay.errors", "kind", "database");
            assertThat(failed).as("deletes that found the row locked").isPositive();

            holder.rollback();
            kafkaSide.awaitMillis(second, System.nanoTime(), 30_000);
            awaitOutboxEmpty(dsl, schema);
            kafkaSide.pollFor(500); // a row published twice would arrive by now
            System.out.printf(
                    "a row locked for 10 s: %d rows of other shards published meanwhile, %.0f failed deletes%n",
                    elsewhere.size(), failed);
            assertThat(kafkaSide.duplicates()).as("records published twice").isZero();
            assertThat(kafkaSide.outboxIdsByKey().get("a"))
                    .as("G3: the key's records in commit order")
                    .hasSize(2)
                    .isSorted();
        }
    }

    /** Switches a hindrance of the deletes on or off. */
    @FunctionalInterface
    private interface Hindrance {
        void set(RefusedDeletes deletes, boolean on) throws SQLException;
    }

    /**
     * What {@link #writeWhileDeletesHindered} saw: every committed version, the rows left in the table
     * when the hindrance ended, the records received more than once, and the relay's metrics.
     */
    private record Hindered(
            int total, long leftAtTheEnd, int twice, Fixtures.Collector kafkaSide, SimpleMeterRegistry registry) {}

    /**
     * Eight writers serialise per key on the key's aggregate row (the documented pattern) and append the
     * version they wrote, on ten keys, for a second, then {@code hinderedMillis} with the deletes
     * hindered, then a second more; a relay (batch size 10) publishes meanwhile. Returns once every
     * version arrived and the table emptied, and the half second a record published twice needs to
     * arrive too.
     */
    private static Hindered writeWhileDeletesHindered(
            TestDatabase db, TestKafka kafka, String schema, long hinderedMillis, Hindrance hindrance)
            throws Exception {
        String topic = TestKafka.uniqueTopic(schema.replace('_', '-'));
        kafka.createTopic(topic, 3);
        int keys = 10;
        int writers = 8;
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (RefusedDeletes deletes = new RefusedDeletes(db, schema);
                Relay relay = quietRelay(db.newDataSource(10), kafka.bootstrapServers(), schema + "-relay")
                        .schema(schema)
                        .batchSize(10)
                        .meterRegistry(registry)
                        .build();
                Fixtures.Collector kafkaSide = new Fixtures.Collector(kafka.bootstrapServers(), topic)) {
            String aggregate = Aggregates.create(db, schema + ".aggregate", keys);
            Outbox outbox = Outbox.builder().schema(schema).build();
            startOwningAll(relay, 64);
            DataSource writersPool = db.newDataSource(writers);
            ExecutorService pool = Executors.newFixedThreadPool(writers);
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(2_000 + hinderedMillis);
            List<Future<?>> done = writeUntil(deadline, pool, writers, writersPool, outbox, aggregate, topic, keys);
            Thread.sleep(1_000);
            hindrance.set(deletes, true);
            Thread.sleep(hinderedMillis);
            long left = deletes.dsl
                    .fetchOne("select count(*) from " + schema + ".outbox_message")
                    .get(0, Long.class);
            hindrance.set(deletes, false);
            for (Future<?> f : done) {
                f.get();
            }
            pool.shutdown();
            int total = deletes.dsl
                    .fetchOne("select sum(version) from " + aggregate)
                    .get(0, Integer.class);
            await().atMost(Duration.ofSeconds(60))
                    .untilAsserted(() -> assertThat(kafkaSide.ids()).hasSize(total));
            deletes.awaitEmpty();
            Thread.sleep(500); // a row published twice would arrive by now
            return new Hindered(
                    total, left, kafkaSide.records().size() - kafkaSide.ids().size(), kafkaSide, registry);
        }
    }

    /**
     * G3, the last record of each key is its latest committed message, across hand-backs while
     * deletes fail now and then: eight writers serialise per key on the key's aggregate row and append
     * the version they wrote, for six seconds, while PostgreSQL refuses about half of the delete
     * statements (a statement trigger that raises at random) and a second relay joins and leaves again
     * and again, so that shards are handed back (and stopped by the second relay's close) while some of
     * their deferred deletes have failed. A row published again by a shard's next owner must never land
     * after a later row of its key that was deleted: on the topic, each key's versions ordered by their
     * last appearance are in commit order, so a compacted topic or a last-value consumer ends on each
     * key's latest version. Duplicates are allowed (at-least-once); every version arrives.
     */
    @Test
    void theLastRecordOfEachKeyIsItsLatestVersionAcrossHandBacksWhileDeletesFailAtRandom(
            TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("refused-hand-back");
        kafka.createTopic(topic, 3);
        int keys = 16;
        int writers = 8;
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (RefusedDeletes refusing = new RefusedDeletes(db, "refused_deletes_hand_back");
                Relay relay = handingBackRelay(db, kafka, refusing.schema, "hand-back-first")
                        .meterRegistry(registry)
                        .build();
                Fixtures.Collector kafkaSide = new Fixtures.Collector(kafka.bootstrapServers(), topic)) {
            String aggregate = Aggregates.create(db, refusing.schema + ".aggregate", keys);
            Outbox outbox = Outbox.builder().schema(refusing.schema).build();
            startOwningAll(relay, 64);
            DataSource writersPool = db.newDataSource(writers);
            ExecutorService pool = Executors.newFixedThreadPool(writers);
            long deadline = System.nanoTime() + 6_000_000_000L;
            List<Future<?>> done = writeUntil(deadline, pool, writers, writersPool, outbox, aggregate, topic, keys);
            refusing.refuseAtRandom(0.5);
            int joins = 0;
            while (System.nanoTime() - deadline < 0) {
                // the first relay hands back half of its shards to the second, which stops them on its close
                try (Relay second = handingBackRelay(db, kafka, refusing.schema, "hand-back-second-" + joins)
                        .build()) {
                    second.start();
                    joins++;
                    await().atMost(Duration.ofSeconds(10))
                            .until(() -> !second.ownedShards().isEmpty());
                    Thread.sleep(500);
                }
                await().atMost(Duration.ofSeconds(10))
                        .until(() -> relay.ownedShards().size() == 64);
            }
            for (Future<?> f : done) {
                f.get();
            }
            pool.shutdown();
            refusing.refuse(false);
            int total = refusing.dsl
                    .fetchOne("select sum(version) from " + aggregate)
                    .get(0, Integer.class);
            await().atMost(Duration.ofSeconds(60))
                    .untilAsserted(() -> assertThat(kafkaSide.ids()).hasSize(total));
            refusing.awaitEmpty();
            Thread.sleep(500); // a row published again would arrive by now
            double failed = Fixtures.counter(registry, "outbox.relay.errors", "kind", "database");
            int twice = kafkaSide.records().size() - kafkaSide.ids().size();
            System.out.printf(
                    "half the deletes refused for 6 s, %d joins of a second relay, %d writers on %d keys: %d rows,"
                            + " %.0f database errors, %d records again%n",
                    joins, writers, keys, total, failed, twice);
            assertThat(failed).as("deletes that failed").isPositive();
            assertThat(joins).as("hand-backs").isGreaterThanOrEqualTo(2);
            List<Fixtures.Received> inLogOrder = new ArrayList<>(kafkaSide.records());
            inLogOrder.sort(
                    Comparator.comparingInt(Fixtures.Received::partition).thenComparingLong(Fixtures.Received::offset));
            Map<String, LinkedHashMap<Integer, Long>> lastOffsets = new HashMap<>();
            for (Fixtures.Received r : inLogOrder) {
                LinkedHashMap<Integer, Long> last = lastOffsets.computeIfAbsent(r.key(), k -> new LinkedHashMap<>());
                int version = Integer.parseInt(r.payload());
                last.remove(version); // moved to the end: the versions in the order of their last appearance
                last.put(version, r.offset());
            }
            int versions = 0;
            for (var e : lastOffsets.entrySet()) {
                assertThat(new ArrayList<>(e.getValue().keySet()))
                        .as("G3: the versions of %s by their last appearance on the topic", e.getKey())
                        .isSorted();
                versions += e.getValue().size();
            }
            assertThat(versions).isEqualTo(total);
            Fixtures.assertVersionsInCommitOrder(kafkaSide, total, r -> Integer.parseInt(r.payload()));
        }
    }

    /** A relay on {@code schema} whose lease rounds (every second) hand shards back within a second or two. */
    private static Relay.Builder handingBackRelay(TestDatabase db, TestKafka kafka, String schema, String id) {
        return quietRelay(db.newDataSource(10), kafka.bootstrapServers(), id)
                .schema(schema)
                .leaseDuration(Duration.ofSeconds(3))
                .idlePollInterval(Duration.ofSeconds(3))
                .backoff(Backoff.of(Duration.ofMillis(20), Duration.ofMillis(200)));
    }

    private static long rowsLeft(TestDatabase db) throws Exception {
        try (Connection c = db.connect();
                PreparedStatement ps = c.prepareStatement("select count(*) from outbox.outbox_message");
                ResultSet rs = ps.executeQuery()) {
            rs.next();
            return rs.getLong(1);
        }
    }

    /**
     * G1 for late commits: a row whose transaction commits after rows with higher ids of its shard
     * were already published (so a relay reading "above the last id" would never see it) is published
     * within the bound, found by the probe alone.
     */
    @Test
    void aRowCommittingLateWithALowerIdIsPublished(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("late");
        kafka.createTopic(topic, 1);
        Outbox outbox = Outbox.builder().build();
        try (Relay relay = quietRelay(db.newDataSource(10), kafka.bootstrapServers(), "late-relay")
                        .build();
                Probe kafkaSide = new Probe(kafka.bootstrapServers(), topic);
                Connection late = db.connect()) {
            startOwningAll(relay, 64);
            late.setAutoCommit(false);
            UUID lateId = outbox.append(late, message(topic, "same-key", "late"));
            long lateOutboxId = outboxId(late, lateId);
            // a higher id of the same shard commits and is published while the lower one is uncommitted
            UUID early = db.dsl().transactionResult(tx -> outbox.append(tx.dsl(), message(topic, "same-key", "early")));
            long earlyConsumed = kafkaSide.awaitMillis(early, System.nanoTime(), 30_000);
            assertThat(kafkaSide.outboxId(early)).isGreaterThan(lateOutboxId);
            Thread.sleep(100); // the shard is idle again
            late.commit();
            long committed = System.nanoTime();
            long ms = kafkaSide.awaitMillis(lateId, committed, BOUND_MS);
            System.out.printf(
                    "late commit with a lower id: consumed %d ms after commit (earlier row %d ms)%n",
                    ms, earlyConsumed);
            assertThat(ms).isLessThan(BOUND_MS);
        }
    }

    /**
     * G3 with concurrent writers: writers of one key serialise on a lock of the key's aggregate row
     * before appending (the documented pattern), while writers of other keys commit late with lower
     * ids around them. Every key's messages reach Kafka in the order the writers committed them (the
     * aggregate's version), and every message arrives.
     */
    @Test
    void perKeyOrderHoldsForWritersThatLockTheAggregate(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("locked");
        kafka.createTopic(topic, 3);
        Outbox outbox = Outbox.builder().build();
        int keys = 4;
        int perWriter = 25;
        int writers = 8;
        String aggregate = Aggregates.create(db, "public.aggregate", keys);
        DataSource writersPool = db.newDataSource(writers);
        try (Relay relay = quietRelay(db.newDataSource(10), kafka.bootstrapServers(), "locked-relay")
                        .build();
                Fixtures.Collector kafkaSide = new Fixtures.Collector(kafka.bootstrapServers(), topic)) {
            relay.start();
            ExecutorService pool = Executors.newFixedThreadPool(writers);
            List<Future<?>> done = new ArrayList<>();
            for (int w = 0; w < writers; w++) {
                done.add(pool.submit(() -> {
                    for (int i = 0; i < perWriter; i++) {
                        appendNextVersion(writersPool, outbox, aggregate, topic, keys);
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get();
            }
            pool.shutdown();
            int total = writers * perWriter;
            await().atMost(Duration.ofSeconds(60))
                    .untilAsserted(() -> assertThat(kafkaSide.ids()).hasSize(total));
            Fixtures.assertVersionsInCommitOrder(kafkaSide, total, r -> Integer.parseInt(r.payload()));
        }
    }

    /**
     * The opt-in LISTEN wake-up, end to end on a schema name of the longest legal length (63
     * characters): the relay's own session connection LISTENs on the shortened channel, producers
     * built with {@code notifyInTransaction(true)} notify on the same channel, and the rows are
     * published (G1) long before the slow probe and poll of this relay would have found them.
     */
    @Test
    void aSixtyThreeCharacterSchemaWorksEndToEndWithListen(TestDatabase db, TestKafka kafka) throws Exception {
        String schema = "w".repeat(60) + "_63";
        OutboxMigrations.migrate(db.dataSource(), schema, 8);
        // without its wait in PostgreSQL (V7), the probe asks only every second (probeInterval below)
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("drop function " + schema + ".outbox_wait_for_change(text, integer, integer)");
        }
        String topic = TestKafka.uniqueTopic("long-schema");
        kafka.createTopic(topic, 2);
        Outbox outbox = Outbox.builder()
                .schema(schema)
                .shards(8)
                .notifyInTransaction(true)
                .build();
        PGSimpleDataSource listen = new PGSimpleDataSource();
        listen.setUrl(db.jdbcUrl());
        listen.setUser(db.user());
        listen.setApplicationName("wakeup-it-listen");
        if (!db.password().isEmpty()) {
            listen.setPassword(db.password());
        }
        try (Relay relay = quietRelay(db.newDataSource(10), kafka.bootstrapServers(), "long-schema-relay")
                        .schema(schema)
                        .probeInterval(Duration.ofSeconds(1))
                        .listenDataSource(listen)
                        .build();
                Probe kafkaSide = new Probe(kafka.bootstrapServers(), topic)) {
            startOwningAll(relay, 8);
            // the LISTEN session is up once a notification is delivered to it
            try (Connection c = db.connect();
                    Statement st = c.createStatement()) {
                await().atMost(Duration.ofSeconds(30)).until(() -> {
                    try (ResultSet rs = st.executeQuery(
                            "select count(*) from pg_stat_activity where application_name = 'wakeup-it-listen'"
                                    + " and query ilike 'listen%'")) {
                        rs.next();
                        return rs.getInt(1) > 0;
                    }
                });
            }
            long[] latencies = new long[5];
            for (int i = 0; i < latencies.length; i++) {
                Thread.sleep(50);
                String key = "k-" + i;
                long committed = System.nanoTime();
                UUID id = OutboxMigrations.dsl(db.dataSource(), schema)
                        .transactionResult(tx -> outbox.append(tx.dsl(), message(topic, key, "x")));
                latencies[i] = kafkaSide.awaitMillis(id, committed, 30_000);
            }
            Arrays.sort(latencies);
            System.out.printf(
                    "63-character schema with LISTEN: commit->consumed p50 %d ms, max %d ms%n",
                    latencies[2], latencies[4]);
            // the probe alone (every second) would take 500 ms on average: five rows all faster is LISTEN
            assertThat(latencies[4]).isLessThan(400);
        }
    }

    /**
     * One writer's transaction on a random aggregate of {@code keys}: its version as the payload, the
     * transaction held open up to 5 ms so that other keys' later ids commit meanwhile.
     */
    /**
     * Starts {@code writers} writers that each append the next version of a random aggregate until
     * {@code deadline} ({@link System#nanoTime()}).
     */
    private static List<Future<?>> writeUntil(
            long deadline,
            ExecutorService pool,
            int writers,
            DataSource writersPool,
            Outbox outbox,
            String aggregate,
            String topic,
            int keys) {
        List<Future<?>> done = new ArrayList<>();
        for (int w = 0; w < writers; w++) {
            done.add(pool.submit(() -> {
                while (System.nanoTime() - deadline < 0) {
                    appendNextVersion(writersPool, outbox, aggregate, topic, keys);
                }
                return null;
            }));
        }
        return done;
    }

    private static void appendNextVersion(DataSource pool, Outbox outbox, String aggregate, String topic, int keys)
            throws SQLException, InterruptedException {
        Aggregates.appendNextVersion(
                pool,
                outbox,
                aggregate,
                topic,
                "agg-" + ThreadLocalRandom.current().nextInt(keys),
                String::valueOf,
                5);
    }

    /**
     * A schema of a test's own (the class's tests share the database, and the trigger must not reach
     * the others) whose outbox refuses every delete while switched on, or a share of the delete
     * statements drawn at random, or makes them wait while stalled: a statement trigger, so reads, leases
     * and appends go on.
     */
    private static final class RefusedDeletes implements AutoCloseable {
        /** The advisory lock every delete statement waits for while {@link #stall} holds it. */
        private static final int STALL_LOCK = 4242;

        final String schema;
        final DSLContext dsl;
        private final TestDatabase db;
        private boolean refusing;
        private Connection stallHolder;

        RefusedDeletes(TestDatabase db, String schema) throws SQLException {
            this.db = db;
            this.schema = schema;
            OutboxMigrations.migrate(db.dataSource(), schema);
            this.dsl = OutboxMigrations.dsl(db.dataSource(), schema);
            try (Connection c = db.connect();
                    Statement st = c.createStatement()) {
                st.execute("create table " + schema + ".refuse (refuse boolean not null, share float8 not null)");
                st.execute("insert into " + schema + ".refuse values (false, 1)");
                st.execute(
                        "create function " + schema + ".refuse_deletes() returns trigger language plpgsql as $$"
                                + " begin perform pg_advisory_xact_lock_shared(" + STALL_LOCK + ");"
                                + " if (select refuse and random() < share from " + schema + ".refuse) then"
                                + " raise exception 'deletes from the outbox refused by the test'; end if; return null; end $$");
                st.execute("create trigger refuse_deletes before delete on " + schema + ".outbox_message"
                        + " for each statement execute function " + schema + ".refuse_deletes()");
            }
        }

        /** Switches the refusal on or off (nothing is written when it is already so). */
        void refuse(boolean on) {
            if (on != refusing) {
                refusing = on;
                dsl.execute("update " + schema + ".refuse set refuse = ?", on);
            }
        }

        /**
         * Makes every delete statement from now on wait (a lock the test holds, as a lock on the table or a
         * stalled disk would) until switched off again.
         */
        void stall(boolean on) throws SQLException {
            if (on && stallHolder == null) {
                stallHolder = db.connect();
                try (Statement st = stallHolder.createStatement()) {
                    st.execute("select pg_advisory_lock(" + STALL_LOCK + ")");
                }
            } else if (!on && stallHolder != null) {
                stallHolder.close(); // the session's advisory lock goes with it
                stallHolder = null;
            }
        }

        /** Refuses about {@code share} of the delete statements from now on, each drawn at random. */
        void refuseAtRandom(double share) {
            refusing = true;
            dsl.execute("update " + schema + ".refuse set refuse = true, share = ?", share);
        }

        void awaitEmpty() {
            awaitOutboxEmpty(dsl, schema);
        }

        @Override
        public void close() throws SQLException {
            stall(false);
            dsl.execute("drop trigger refuse_deletes on " + schema + ".outbox_message");
        }
    }

    /** Waits until the relay has deleted every row of the outbox in {@code schema}. */
    private static void awaitOutboxEmpty(DSLContext dsl, String schema) {
        await().atMost(Duration.ofSeconds(30))
                .until(() -> dsl.fetchOne("select count(*) from " + schema + ".outbox_message")
                                .get(0, Long.class)
                        == 0L);
    }

    private static void startOwningAll(Relay relay, int shards) {
        relay.start();
        await().atMost(Duration.ofSeconds(30)).until(() -> relay.ownedShards().size() == shards);
    }

    private static long outboxId(Connection c, UUID messageId) throws Exception {
        try (PreparedStatement ps = c.prepareStatement("select id from outbox.outbox_message where message_id = ?")) {
            ps.setObject(1, messageId);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }

    /** A consumer polled by the test thread, so that commit-to-consumed is measured where it happens. */
    private static final class Probe implements AutoCloseable {
        private final KafkaConsumer<byte[], byte[]> consumer;
        private final Map<UUID, Long> arrived = new HashMap<>();
        private final Map<UUID, Long> outboxIds = new HashMap<>();
        private final Map<String, List<Long>> outboxIdsByKey = new HashMap<>();
        private int duplicates;

        Probe(String bootstrap, String topic) {
            consumer = Fixtures.fromTheBeginning(bootstrap, topic, Map.of("fetch.max.wait.ms", "5"));
            consumer.poll(Duration.ofMillis(100));
        }

        /** @return milliseconds from {@code since} until the message was consumed; fails after {@code limitMs} */
        long awaitMillis(UUID id, long since, long limitMs) {
            long deadline = since + limitMs * 1_000_000L;
            while (!arrived.containsKey(id)) {
                assertThat(System.nanoTime() - deadline)
                        .as("message %s not consumed within %d ms", id, limitMs)
                        .isNegative();
                pollOnce();
            }
            return Math.max(0, (arrived.get(id) - since) / 1_000_000L);
        }

        /** Polls for {@code millis}, noting when each message arrives. */
        void pollFor(long millis) {
            long until = System.nanoTime() + millis * 1_000_000L;
            while (System.nanoTime() - until < 0) {
                pollOnce();
            }
        }

        private void pollOnce() {
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(2))) {
                UUID got = UUID.fromString(new String(
                        r.headers().lastHeader(OutboxHeaders.MESSAGE_ID).value(), StandardCharsets.UTF_8));
                if (arrived.putIfAbsent(got, System.nanoTime()) != null) {
                    duplicates++;
                }
                long outboxId = Long.parseLong(new String(
                        r.headers().lastHeader(OutboxHeaders.OUTBOX_ID).value(), StandardCharsets.UTF_8));
                outboxIds.put(got, outboxId);
                outboxIdsByKey
                        .computeIfAbsent(new String(r.key(), StandardCharsets.UTF_8), k -> new ArrayList<>())
                        .add(outboxId);
            }
        }

        /** @return per record key, the outbox ids of its records in the order they were consumed */
        Map<String, List<Long>> outboxIdsByKey() {
            return outboxIdsByKey;
        }

        /** @return the records consumed beyond the first of their message id */
        int duplicates() {
            return duplicates;
        }

        long outboxId(UUID id) {
            return outboxIds.get(id);
        }

        @Override
        public void close() {
            consumer.close();
        }
    }
}
