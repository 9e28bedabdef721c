package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.zaxxer.hikari.HikariDataSource;
import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.testkit.PrivatePostgres;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BiConsumer;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.slf4j.LoggerFactory;

/**
 * The relay's vacuum on the connections the relay process gives it, whose every statement is bounded
 * by a third of the lease ({@code statement_timeout} in the connection's options): a vacuum of a
 * table with many dead rows outlasts that bound, and was cancelled each time it was tried. It runs
 * under its own bound, and the connection goes back to the pool with the pool's.
 */
@ExtendWith(RealServices.class)
@Tag("integration")
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class OutboxVacuumIT {
    private static final int DEAD_ROWS = 200_000;

    /**
     * @param initSql the bound set by the pool's init SQL ({@code set}), which a {@code reset} would lose, rather
     *     than by the connection's options, as the relay process does
     */
    @ParameterizedTest(name = "bound set by init SQL: {0}")
    @ValueSource(booleans = {false, true})
    void aVacuumLongerThanThePoolsStatementTimeoutRuns(boolean initSql, TestDatabase db) throws Exception {
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            // the relay's own vacuum only, so that autovacuum's cannot make it skip
            st.execute("alter table " + db.schema() + ".outbox_message set (autovacuum_enabled = false)");
            st.execute("insert into " + db.schema() + ".outbox_message (message_id, shard, topic, message_type,"
                    + " content_type, payload) select gen_random_uuid(), g % 64, 'vacuum', 'T', 'text/plain',"
                    + " repeat('x', 100)::bytea from generate_series(1, " + DEAD_ROWS + ") g");
            st.execute("delete from " + db.schema() + ".outbox_message");
        }
        long before = vacuums(db);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        RelayMetrics metrics =
                new RelayMetrics(registry, "vacuum-timeout", () -> 0, CircuitBreaker.ofDefaults("vacuum-timeout"));
        AtomicLong deleted = new AtomicLong();
        // a bound a vacuum of this table cannot meet
        try (HikariDataSource pool = db.newDataSource(1, config -> {
            if (initSql) {
                config.setConnectionInitSql("set statement_timeout = 20");
            } else {
                config.addDataSourceProperty("options", "-c statement_timeout=20");
            }
            config.addDataSourceProperty("socketTimeout", "2");
        })) {
            OutboxVacuum vacuum = new OutboxVacuum(
                    pool,
                    db.schema(),
                    1,
                    deleted::get,
                    () -> 0,
                    metrics,
                    new PrefixedLog(LoggerFactory.getLogger(OutboxVacuumIT.class), "vacuum-timeout"),
                    System::nanoTime);

            deleted.set(DEAD_ROWS); // the rows this relay deleted since it started
            vacuum.tick();

            assertThat(metrics.database.count()).as("no failed statement").isZero();
            assertThat(metrics.vacuum.count()).as("the vacuum ran to its end").isOne();
            // the statistics reach the view within a second or so
            await().atMost(Duration.ofSeconds(10)).until(() -> vacuums(db) == before + 1);
            assertThat(metrics.vacuum.totalTime(TimeUnit.MILLISECONDS))
                    .as("longer than the pool's statement timeout")
                    .isGreaterThan(20);
            try (Connection c = pool.getConnection();
                    Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery("show statement_timeout")) {
                rs.next();
                assertThat(rs.getString(1)).as("the pool's bound again").isEqualTo("20ms");
                assertThat(c.getNetworkTimeout()).isEqualTo(2_000);
            }
        }
    }

    /**
     * Since PostgreSQL 14 a snapshot held in another database of the cluster does not hold back vacuum of the
     * outbox table, so the relay's look at the horizon ignores it and vacuums again once the rows were
     * deleted, as status's xmin report does not blame it either ({@link XminHorizon}). Before, any session of
     * the cluster counted and the vacuum was skipped as if the horizon had not moved. A scratch database is
     * created and dropped.
     */
    @Test
    void aSnapshotHeldInAnotherDatabaseDoesNotSkipTheVacuum(TestDatabase db) throws Exception {
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select current_setting('server_version_num')::int")) {
            rs.next();
            assumeTrue(rs.getInt(1) >= 140000, "PostgreSQL 14 or later");
        }
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("alter table " + db.schema() + ".outbox_message set (autovacuum_enabled = false)");
        }
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        RelayMetrics metrics =
                new RelayMetrics(registry, "vacuum-elsewhere", () -> 0, CircuitBreaker.ofDefaults("vacuum-elsewhere"));
        AtomicLong deleted = new AtomicLong();
        withSnapshotHeldElsewhere(db, other -> {
            OutboxVacuum vacuum = new OutboxVacuum(
                    db.dataSource(),
                    db.schema(),
                    1,
                    deleted::get,
                    () -> 0,
                    metrics,
                    new PrefixedLog(LoggerFactory.getLogger(OutboxVacuumIT.class), "vacuum-elsewhere"),
                    System::nanoTime);
            deleted.set(1);
            vacuum.tick();
            assertThat(metrics.vacuum.count()).as("the first vacuum").isOne();
            try (Connection c = db.connect();
                    Statement st = c.createStatement()) {
                st.execute("select pg_current_xact_id()"); // a transaction since: the horizon can move
            }
            deleted.set(2);
            vacuum.tick();
            assertThat(metrics.vacuumSkipped.count()).as("not skipped").isZero();
            assertThat(metrics.vacuum.count()).as("the second vacuum ran").isEqualTo(2);
            other.rollback();
        });
    }

    /** What a test does while a session of another database holds a snapshot. */
    @FunctionalInterface
    private interface WithSession {
        void run(Connection other) throws Exception;
    }

    /**
     * Runs {@code body} while a session of a scratch database of the cluster holds a snapshot (a
     * repeatable-read transaction that has run a query), then drops the database.
     */
    private static void withSnapshotHeldElsewhere(TestDatabase db, WithSession body) throws Exception {
        String elsewhere = "vacuum_elsewhere_" + UUID.randomUUID().toString().substring(0, 8);
        try (Connection c = db.server().connectAdmin();
                Statement st = c.createStatement()) {
            st.execute("create database " + elsewhere);
        }
        try (Connection other = db.server().connect(elsewhere)) {
            other.setAutoCommit(false);
            other.setTransactionIsolation(Connection.TRANSACTION_REPEATABLE_READ);
            try (Statement st = other.createStatement()) {
                st.executeQuery("select count(*) from pg_class").close();
            }
            body.run(other);
        } finally {
            try (Connection c = db.server().connectAdmin();
                    Statement st = c.createStatement()) {
                st.execute("drop database if exists " + elsewhere + " with (force)");
            }
        }
    }

    /**
     * Before PostgreSQL 14 a snapshot held in any database of the cluster holds back vacuum of the outbox
     * table, so the relay's look at the horizon counts a session of another database ({@link XminHorizon}):
     * the vacuum after rows were deleted is skipped while the session holds its snapshot, and runs again once
     * it has ended. The counterpart of {@link #aSnapshotHeldInAnotherDatabaseDoesNotSkipTheVacuum} on older
     * servers; without the version in the condition the second vacuum would run and find nothing to remove.
     * A scratch database is created and dropped.
     */
    @Test
    void beforePostgres14ASnapshotHeldInAnotherDatabaseSkipsTheVacuum(TestDatabase db) throws Exception {
        assumeTrue(serverVersion(db) < 140000, "PostgreSQL older than 14");
        withSnapshotHeldElsewhere(db, other -> vacuumHeldUntil(db, "vacuum-elsewhere-13", other::rollback));
    }

    /**
     * Before PostgreSQL 14 a prepared transaction of any database of the cluster holds back vacuum of the
     * outbox table too: the relay's look at the horizon counts one prepared in another database, and the
     * vacuum after rows were deleted is skipped until it is rolled back ({@link XminHorizon}). On a private
     * server with {@code max_prepared_transactions} set.
     */
    @Test
    void beforePostgres14ATransactionPreparedInAnotherDatabaseSkipsTheVacuum(TestDatabase db) throws Exception {
        assumeTrue(serverVersion(db) < 140000, "PostgreSQL older than 14");
        try (PrivatePostgres pg = PrivatePostgres.start(Map.of("max_prepared_transactions", "2"));
                TestDatabase here = TestDatabase.create(pg.server())) {
            assumeTrue(serverVersion(here) < 140000, "a private server older than PostgreSQL 14");
            pg.createDatabase("vacuum_elsewhere");
            try (Connection other = pg.server().connect("vacuum_elsewhere");
                    Statement st = other.createStatement()) {
                st.execute("begin; select pg_current_xact_id(); prepare transaction 'vacuum-elsewhere-2pc'");
                vacuumHeldUntil(
                        here, "vacuum-prepared-13", () -> st.execute("rollback prepared 'vacuum-elsewhere-2pc'"));
            }
        }
    }

    /** Undoes what holds the xmin horizon. */
    private interface Release {
        void run() throws SQLException;
    }

    /**
     * Vacuums {@code db}'s outbox table once, then again after more rows were deleted while something
     * older than the first vacuum holds the xmin horizon, which is skipped; then after {@code release} a
     * third time, which runs.
     */
    private static void vacuumHeldUntil(TestDatabase db, String name, Release release) throws SQLException {
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("alter table " + db.schema() + ".outbox_message set (autovacuum_enabled = false)");
        }
        RelayMetrics metrics =
                new RelayMetrics(new SimpleMeterRegistry(), name, () -> 0, CircuitBreaker.ofDefaults(name));
        AtomicLong deleted = new AtomicLong();
        OutboxVacuum vacuum = new OutboxVacuum(
                db.dataSource(),
                db.schema(),
                1,
                deleted::get,
                () -> 0,
                metrics,
                new PrefixedLog(LoggerFactory.getLogger(OutboxVacuumIT.class), name),
                System::nanoTime);
        deleted.set(1);
        vacuum.tick();
        assertThat(metrics.vacuum.count()).as("the first vacuum").isOne();
        newTransaction(db); // the horizon could move, but for what holds it
        deleted.set(2);
        vacuum.tick();
        assertThat(metrics.vacuumSkipped.count())
                .as("skipped: the horizon is held")
                .isOne();
        assertThat(metrics.vacuum.count()).as("no second vacuum").isOne();

        release.run();
        newTransaction(db);
        deleted.set(4); // a skip doubles the rows until the next look
        vacuum.tick();
        assertThat(metrics.vacuum.count()).as("released: the second vacuum ran").isEqualTo(2);
        assertThat(metrics.vacuumSkipped.count()).as("not skipped again").isOne();
    }

    private static void newTransaction(TestDatabase db) throws SQLException {
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("select pg_current_xact_id()");
        }
    }

    private static int serverVersion(TestDatabase db) throws SQLException {
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select current_setting('server_version_num')::int")) {
            rs.next();
            return rs.getInt(1);
        }
    }

    /**
     * The vacuum waits while a backlog is drained, not while it stands still: rows held for a missing
     * topic (and their keys' later rows) stay in the backlog for as long as the topic is missing, and
     * each failed check of it rewrites them. Before, a backlog larger than {@code afterRows} put the
     * vacuum off until {@value OutboxVacuum#MAX_STRIDE} times {@code afterRows} rows were deleted, so the
     * dead row versions piled up under every read of the held shards.
     */
    @Test
    void aBacklogThatDoesNotShrinkDoesNotPutTheVacuumOff(TestDatabase db) throws Exception {
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("alter table " + db.schema() + ".outbox_message set (autovacuum_enabled = false)");
        }
        RelayMetrics metrics =
                new RelayMetrics(new SimpleMeterRegistry(), "vacuum-held", () -> 0, CircuitBreaker.ofDefaults("held"));
        AtomicLong counted = new AtomicLong();
        AtomicLong backlog = new AtomicLong(50_000);
        AtomicLong nanos = new AtomicLong();
        OutboxVacuum vacuum = new OutboxVacuum(
                db.dataSource(),
                db.schema(),
                1_000, // far below MAX_STRIDE times this in the whole test
                counted::get,
                backlog::get,
                metrics,
                new PrefixedLog(LoggerFactory.getLogger(OutboxVacuumIT.class), "vacuum-held"),
                nanos::get);
        // one look a second for n seconds, each after 100 more rows counted and the backlog moved by a step
        BiConsumer<Long, Long> seconds = (n, step) -> {
            for (long second = 0; second < n; second++) {
                counted.addAndGet(100);
                backlog.addAndGet(step);
                nanos.addAndGet(TimeUnit.SECONDS.toNanos(1));
                vacuum.tick();
            }
        };
        long stillFor = OutboxVacuum.DRAIN_PROGRESS.toSeconds();

        // a drain: the backlog shrinks between the looks, the vacuum waits
        seconds.accept(60L, -100L);
        assertThat(metrics.vacuum.count())
                .as("no vacuum while the backlog shrinks")
                .isZero();

        // the backlog stands still while rows are deleted or rewritten (a held topic): the vacuum runs
        seconds.accept(stillFor - 1, 0L);
        assertThat(metrics.vacuum.count())
                .as("within %s of the last shrink", OutboxVacuum.DRAIN_PROGRESS)
                .isZero();
        seconds.accept(1L, 0L);
        assertThat(metrics.vacuum.count())
                .as("the backlog has not shrunk for %s", OutboxVacuum.DRAIN_PROGRESS)
                .isOne();

        // and again after the next 1,000 rows, once the backlog has stood still as long again
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("select pg_current_xact_id()"); // the horizon can move between two vacuums
        }
        seconds.accept(10 + stillFor + 1, 10L); // held rows grow
        assertThat(metrics.vacuum.count())
                .as("a growing backlog is not drained either")
                .isEqualTo(2);
        assertThat(metrics.vacuumSkipped.count()).isZero();
    }

    private static long vacuums(TestDatabase db) throws SQLException {
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select vacuum_count from pg_stat_user_tables where relid = '"
                        + db.schema() + ".outbox_message'::regclass")) {
            rs.next();
            return rs.getLong(1);
        }
    }
}
