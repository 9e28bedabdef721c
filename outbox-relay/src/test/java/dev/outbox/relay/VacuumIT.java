package dev.outbox.relay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.OutboxMessage;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import dev.outbox.testkit.TestRole;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.jooq.DSLContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The relay vacuums the outbox table after every {@code vacuumAfterRows} rows it deleted, so that the
 * reads, which start at each shard's first row, do not walk the index entries of every row deleted
 * since autovacuum last came by; with 0 it leaves the table to autovacuum, and a role that may not
 * vacuum the table keeps publishing and stops asking.
 */
@ExtendWith(RealServices.class)
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class VacuumIT {
    private static final String VACUUM = "outbox.relay.vacuum";

    @Test
    void vacuumsTheTableAfterTheRowsItDeletedAndNotWhenTurnedOff(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("vacuum");
        DSLContext dsl = db.dsl();
        withoutAutovacuum(db);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (Relay relay = relay(db, kafka, "vacuum-off", registry, 0).build()) {
            relay.start();
            long before = manualVacuums(db);
            publish(dsl, registry, topic, 3_000);
            // two more ticks of the vacuum's one-second check
            Thread.sleep(2_500);
            assertThat(manualVacuums(db))
                    .as("vacuumAfterRows(0): the table is left to autovacuum")
                    .isEqualTo(before);
            assertThat(timer(registry).count()).isZero();
        }
        SimpleMeterRegistry second = new SimpleMeterRegistry();
        try (Relay relay = relay(db, kafka, "vacuum-on", second, 1_000).build()) {
            relay.start();
            long before = manualVacuums(db);
            publish(dsl, second, topic, 3_000);
            await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
                assertThat(manualVacuums(db)).isGreaterThan(before);
                assertThat(timer(second).count()).isPositive();
            });
        }
    }

    @Test
    void aRoleThatMayNotVacuumKeepsPublishingAndStopsAsking(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("vacuum-refused");
        withoutAutovacuum(db);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        // the relay's grants on the schema, without owning the outbox table, so it may not vacuum it
        try (TestRole notOwner = TestRole.create(
                        db,
                        "outbox_vacuum",
                        "grant usage on schema " + db.schema() + " to %s",
                        "grant select, insert, update, delete on all tables in schema " + db.schema() + " to %s",
                        "grant usage on all sequences in schema " + db.schema() + " to %s");
                Relay relay = relay(db, kafka, "vacuum-refused", registry, 500)
                        .dataSource(notOwner.dataSource(10))
                        .build()) {
            relay.start();
            long before = manualVacuums(db);
            publish(db.dsl(), registry, topic, 1_000);
            await().atMost(Duration.ofSeconds(10))
                    .untilAsserted(() -> assertThat(skipped(registry)).isEqualTo(1));
            // twice the threshold more: PostgreSQL refused, so the relay does not ask again
            publish(db.dsl(), registry, topic, 1_000);
            Thread.sleep(2_500);
            assertThat(skipped(registry)).as("vacuums asked for and refused").isEqualTo(1);
            assertThat(timer(registry).count()).as("vacuums run").isZero();
            assertThat(manualVacuums(db)).as("vacuums PostgreSQL ran").isEqualTo(before);
        }
    }

    /**
     * While an old snapshot keeps the rows deleted since the last vacuum visible, another vacuum could
     * remove nothing: the relay skips it and looks again after twice as many rows (after 500, 1,000,
     * 2,000 more: one vacuum in 4,000 rows instead of 8), and vacuums every 500 rows again once the
     * snapshot is gone.
     */
    @Test
    void whileTheXminHorizonDoesNotMoveVacuumsAreSkippedAndSpreadOut(TestDatabase db, TestKafka kafka)
            throws Exception {
        String topic = TestKafka.uniqueTopic("vacuum-held");
        DSLContext dsl = db.dsl();
        withoutAutovacuum(db);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (Relay relay = relay(db, kafka, "vacuum-held", registry, 500).build()) {
            relay.start();
            try (Connection old = db.connect()) {
                old.setAutoCommit(false);
                old.setTransactionIsolation(Connection.TRANSACTION_REPEATABLE_READ);
                try (Statement st = old.createStatement()) {
                    // the snapshot that keeps every row deleted from now on from being removed
                    st.executeQuery("select count(*) from " + db.schema() + ".outbox_message")
                            .close();
                }
                for (int wave = 0; wave < 8; wave++) {
                    publish(dsl, registry, topic, 500);
                    // a tick of the vacuum's one-second check between two waves
                    Thread.sleep(1_300);
                }
                assertThat(timer(registry).count())
                        .as("vacuums run in 8 waves of 500 rows: the first only")
                        .isEqualTo(1);
                assertThat(skipped(registry))
                        .as("looks skipped: after 1,000, 2,000 and 4,000 rows; the next is due after 4,000 more")
                        .isEqualTo(3);
                old.rollback();
            }
            // the bounds are the machine's, not the relay's: the vacuum's check runs every second
            publish(dsl, registry, topic, 4_000);
            await().atMost(Duration.ofSeconds(20))
                    .untilAsserted(() -> assertThat(timer(registry).count()).isEqualTo(2));
            publish(dsl, registry, topic, 500);
            await().atMost(Duration.ofSeconds(20))
                    .untilAsserted(() -> assertThat(timer(registry).count())
                            .as("back to a vacuum every 500 rows")
                            .isEqualTo(3));
            assertThat(skipped(registry)).isEqualTo(3);
        }
    }

    /**
     * While a relay drains a backlog larger than {@code vacuumAfterRows}, it does not vacuum every
     * {@code vacuumAfterRows} rows (each vacuum would read the backlog's index entries whole) but once
     * the backlog is drained; and at the latest after 64 times {@code vacuumAfterRows} rows.
     */
    @Test
    void whileABacklogIsDrainedTheVacuumWaitsForItsEndOrItsBound(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("vacuum-drain");
        DSLContext dsl = db.dsl();
        withoutAutovacuum(db);
        int backlog = 40_000;
        commit(dsl, topic, backlog);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        long drainMs;
        try (Relay relay = slowDrain(db, kafka, "vacuum-drain", registry, 1_000).build()) {
            long started = System.nanoTime();
            relay.start();
            await().atMost(Duration.ofSeconds(120))
                    .until(() -> Fixtures.counter(registry, "outbox.relay.published") >= backlog);
            drainMs = (System.nanoTime() - started) / 1_000_000L;
            assertThat(drainMs)
                    .as("the drain spans a vacuum check (once a second, the first after one)")
                    .isGreaterThan(1_500);
            assertThat(timer(registry).count())
                    .as("vacuums while %d rows were drained in %d ms, one due every 1,000 rows", backlog, drainMs)
                    .isZero();
            await().atMost(Duration.ofSeconds(10))
                    .untilAsserted(() -> assertThat(timer(registry).count())
                            .as("the vacuum once the backlog is drained")
                            .isEqualTo(1));
        }
        // with vacuumAfterRows 100 the bound is 6,400 rows: the drain vacuums on its way, at most every 6,400 rows
        commit(dsl, topic, backlog);
        SimpleMeterRegistry bounded = new SimpleMeterRegistry();
        try (Relay relay =
                slowDrain(db, kafka, "vacuum-drain-bound", bounded, 100).build()) {
            relay.start();
            await().atMost(Duration.ofSeconds(120))
                    .until(() -> Fixtures.counter(bounded, "outbox.relay.published") >= backlog);
            assertThat(timer(bounded).count())
                    .as("vacuums while %d rows were drained, the bound 6,400 rows", backlog)
                    .isBetween(1L, (long) backlog / 6_400);
        }
        System.out.printf("vacuum while draining %d rows: none in %d ms, one after%n", backlog, drainMs);
    }

    /** One worker thread and batches of 2: a backlog of tens of thousands of rows takes seconds. */
    private static Relay.Builder slowDrain(
            TestDatabase db, TestKafka kafka, String id, SimpleMeterRegistry registry, int afterRows) {
        return relay(db, kafka, id, registry, afterRows).workerThreads(1).batchSize(2);
    }

    /** Commits {@code n} rows, 5,000 per transaction. */
    private static void commit(DSLContext dsl, String topic, int n) {
        for (int start = 0; start < n; start += 5_000) {
            List<OutboxMessage> batch = new ArrayList<>();
            for (int i = start; i < Math.min(n, start + 5_000); i++) {
                batch.add(Fixtures.message(topic, "k-" + i, "v-" + i));
            }
            Fixtures.commit(dsl, batch);
        }
    }

    /** A relay that vacuums the outbox table after every {@code afterRows} rows it deleted (0: never). */
    private static Relay.Builder relay(
            TestDatabase db, TestKafka kafka, String id, SimpleMeterRegistry registry, int afterRows) {
        return Fixtures.relay(db, kafka.bootstrapServers(), id, registry).vacuumAfterRows(afterRows);
    }

    /** Commits {@code n} rows (one transaction up to 5,000) and waits until the relay published and deleted them. */
    private static void publish(DSLContext dsl, SimpleMeterRegistry registry, String topic, int n) {
        double before = Fixtures.counter(registry, "outbox.relay.published");
        commit(dsl, topic, n);
        await().atMost(Duration.ofSeconds(60))
                .until(() -> Fixtures.counter(registry, "outbox.relay.published") - before >= n);
    }

    private static Timer timer(SimpleMeterRegistry registry) {
        return registry.get(VACUUM).timer();
    }

    private static long manualVacuums(TestDatabase db) throws SQLException {
        return stat(db, "vacuum_count");
    }

    /** Autovacuum's own runs would make the relay's skip theirs ({@code SKIP_LOCKED}) and the counts vary. */
    private static void withoutAutovacuum(TestDatabase db) throws SQLException {
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("alter table " + db.schema() + ".outbox_message set (autovacuum_enabled = false)");
        }
    }

    private static double skipped(SimpleMeterRegistry registry) {
        return registry.get(VACUUM + ".skipped").counter().count();
    }

    private static long stat(TestDatabase db, String column) throws SQLException {
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select " + column + " from pg_stat_user_tables where relid = '"
                        + db.schema() + ".outbox_message'::regclass")) {
            rs.next();
            return rs.getLong(1);
        }
    }
}
