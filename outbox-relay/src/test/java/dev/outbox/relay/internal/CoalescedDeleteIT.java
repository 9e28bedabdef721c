package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.outbox.relay.Relay;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import javax.sql.DataSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * The multi-shard fenced writes on real PostgreSQL: the delete ({@link Db#deleteAll}) and the record of
 * failed rows ({@link Db#failAll}), one statement for several shards, each shard fenced by its own lease.
 */
@ExtendWith(RealServices.class)
class CoalescedDeleteIT {
    private static final String OWNER = "relay-a";

    /**
     * G3 fencing per shard: in one statement, a shard taken over by another owner (epoch bumped) and a
     * shard whose lease expired delete nothing and report the lease lost, while the other shards' rows
     * are deleted and counted per shard; an id of a shard that is not its request's is not deleted, and
     * a row of a shard that was not asked for stays (G1: nothing lost).
     */
    @Test
    @Timeout(value = 1, unit = TimeUnit.MINUTES)
    void aShardWhoseLeaseIsLostKeepsItsRowsAndDoesNotStopTheOthers(TestDatabase db) throws Exception {
        DataSource ds = db.dataSource();
        Claimed claimed = claim(ds, db.schema(), 4, 3);
        Db relay = claimed.relay();
        Map<Integer, Long> epochs = claimed.epochs();
        Map<Integer, long[]> ids = claimed.ids();
        takeOver(ds, db.schema(), 2);
        expire(ds, db.schema(), 3);
        long[] shard1AndOneOfShard2 = Arrays.copyOf(ids.get(1), 4);
        shard1AndOneOfShard2[3] = ids.get(2)[0];

        List<Db.Fenced> results = relay.deleteAll(List.of(
                new ShardRows.Deletion(3, epochs.get(3), ids.get(3)),
                new ShardRows.Deletion(0, epochs.get(0), Arrays.copyOf(ids.get(0), 2)),
                new ShardRows.Deletion(2, epochs.get(2), ids.get(2)),
                new ShardRows.Deletion(1, epochs.get(1), shard1AndOneOfShard2)));

        assertThat(results)
                .as("per request, in its order: lease held and rows deleted")
                .containsExactly(
                        new Db.Fenced(false, 0),
                        new Db.Fenced(true, 2),
                        new Db.Fenced(false, 0),
                        new Db.Fenced(true, 3));
        assertThat(remaining(ds, db.schema(), 0)).containsExactly(ids.get(0)[2]);
        assertThat(remaining(ds, db.schema(), 1)).isEmpty();
        assertThat(remaining(ds, db.schema(), 2))
                .as("taken over: the new owner publishes these rows (G3)")
                .containsExactly(ids.get(2));
        assertThat(remaining(ds, db.schema(), 3))
                .as("expired: another relay may own the shard by now (G3)")
                .containsExactly(ids.get(3));
        assertThatThrownBy(() -> relay.deleteAll(List.of(
                        new ShardRows.Deletion(0, epochs.get(0), new long[] {1}),
                        new ShardRows.Deletion(0, epochs.get(0), new long[] {2}))))
                .isInstanceOf(IllegalArgumentException.class);
    }

    /**
     * G3 fencing against a takeover in progress: while another owner's claim of one shard is open (its
     * lease row locked FOR UPDATE, as the claim's statement locks it, and updated, not committed), the
     * multi-shard delete waits for it; once it commits the delete finds that shard's lease lost and
     * deletes none of its rows, and still deletes the other shards' rows (G1).
     */
    @Test
    @Timeout(value = 1, unit = TimeUnit.MINUTES)
    void aTakeoverInFlightMakesTheDeleteWaitAndThenFindThatLeaseLost(TestDatabase db) throws Exception {
        DataSource ds = db.dataSource();
        Claimed c = claim(ds, db.schema(), 3, 2);
        Map<Integer, Long> epochs = c.epochs();
        Map<Integer, long[]> ids = c.ids();
        try (Connection intruder = ds.getConnection()) {
            intruder.setAutoCommit(false);
            try (Statement st = intruder.createStatement()) {
                st.executeUpdate("update " + db.schema() + ".outbox_shard_lease set owner = 'intruder',"
                        + " epoch = epoch + 1, lease_until = now() + interval '1 hour' where shard in (select shard"
                        + " from " + db.schema() + ".outbox_shard_lease where shard = 1 for update)");
            }
            CompletableFuture<List<Db.Fenced>> delete = CompletableFuture.supplyAsync(() -> {
                try {
                    return c.relay()
                            .deleteAll(List.of(
                                    new ShardRows.Deletion(2, epochs.get(2), ids.get(2)),
                                    new ShardRows.Deletion(1, epochs.get(1), ids.get(1)),
                                    new ShardRows.Deletion(0, epochs.get(0), ids.get(0))));
                } catch (SQLException e) {
                    throw new IllegalStateException(e);
                }
            });
            Thread.sleep(500);
            assertThat(delete)
                    .as("waits for the takeover to commit or roll back")
                    .isNotDone();
            intruder.commit();

            assertThat(delete.get(30, TimeUnit.SECONDS))
                    .containsExactly(new Db.Fenced(true, 2), new Db.Fenced(false, 0), new Db.Fenced(true, 2));
        }
        assertThat(remaining(ds, db.schema(), 1)).containsExactly(ids.get(1));
        assertThat(remaining(ds, db.schema(), 0)).isEmpty();
        assertThat(remaining(ds, db.schema(), 2)).isEmpty();
    }

    /**
     * A row lock of another transaction on a published row (an UPDATE left open in a console) stops
     * only its own shard's writes, and for at most {@link Db#WRITE_LOCK_TIMEOUT} a statement:
     *
     * <ul>
     *   <li>a coalesced delete of three shards, one of whose rows is locked, deletes the other two
     *       shards' rows and fails the locked shard's request with {@link RowsLockedException}, which
     *       names the row; none of that shard's rows is deleted, the unlocked one neither (G3: a shard's
     *       later rows never go while an earlier one stays);
     *   <li>the record of failed rows fails alike;
     *   <li>while a delete waits for the lock, the shard's lease is renewed without waiting for it: the
     *       delete's lock on the lease row (FOR KEY SHARE) does not hold up the renewal;
     *   <li>a wait for a lease row is not a row's of the outbox: every request of the statement fails
     *       with the lock timeout, and none is blamed on a row;
     *   <li>once the transaction ends, the shard's rows are deleted (G1: nothing left behind).
     * </ul>
     *
     * Before, the delete waited for as long as the foreign transaction ran (this test timed out), holding
     * its lease rows FOR SHARE, so that no lease of the relay was renewed and no shard's rows were
     * deleted. With the lock timeout alone and the lease rows still FOR SHARE, the renewal waited.
     */
    @Test
    @Timeout(value = 1, unit = TimeUnit.MINUTES, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void aRowLockedByAnotherTransactionStopsOnlyTheWritesOfItsShard(TestDatabase db) throws Exception {
        DataSource ds = db.dataSource();
        String schema = db.schema();
        Claimed c = claim(ds, schema, 3, 2);
        Map<Integer, Long> epochs = c.epochs();
        Map<Integer, long[]> ids = c.ids();
        long lockedRow = ids.get(1)[1];
        List<Runnable> tasks = new ArrayList<>();
        WriteQueue<ShardRows.Deletion, Db.Fenced> queue = WriteQueue.deletes(
                c.relay(),
                tasks::add,
                new RelayMetrics(new SimpleMeterRegistry(), "test", () -> 0, CircuitBreaker.ofDefaults("test")),
                WriteQueue.MAX_SHARDS,
                WriteQueue.MAX_IDS);
        try (ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor();
                Connection holder = ds.getConnection()) {
            holder.setAutoCommit(false);
            try (Statement st = holder.createStatement()) {
                st.execute("select id from " + schema + ".outbox_message where id = " + lockedRow + " for update");
            }
            CompletableFuture<Db.Fenced> shard0 = queue.submit(new ShardRows.Deletion(0, epochs.get(0), ids.get(0)));
            CompletableFuture<Db.Fenced> shard1 = queue.submit(new ShardRows.Deletion(1, epochs.get(1), ids.get(1)));
            CompletableFuture<Db.Fenced> shard2 = queue.submit(new ShardRows.Deletion(2, epochs.get(2), ids.get(2)));
            assertThat(tasks).as("one drain takes the three requests").hasSize(1);
            tasks.remove(0).run();

            assertThat(shard0).isCompletedWithValue(new Db.Fenced(true, 2));
            assertThat(shard2).isCompletedWithValue(new Db.Fenced(true, 2));
            assertThatThrownBy(shard1::join).cause().isInstanceOfSatisfying(RowsLockedException.class, e -> {
                assertThat(e.shards()).containsExactly(1);
                assertThat(e.getSQLState()).isEqualTo("55P03");
                assertThat(e.getMessage()).contains(lockedRow + " (shard 1)").contains(schema + ".outbox_message");
            });
            assertThat(remaining(ds, schema, 1))
                    .as("G3: the shard's unlocked row is not deleted without the locked one")
                    .containsExactly(ids.get(1));
            assertThat(remaining(ds, schema, 0)).isEmpty();
            assertThat(remaining(ds, schema, 2)).isEmpty();

            assertThatThrownBy(() -> c.relay()
                            .failAll(
                                    List.of(new ShardRows.Failure(
                                            1, epochs.get(1), new long[] {lockedRow}, errors("e", 1), new boolean[1])),
                                    3))
                    .isInstanceOf(RowsLockedException.class);

            // the same relay's statements, with a lock timeout far longer than the test waits for the renewal
            Db patient = new Db(ds, schema, OWNER, false, Relay.Builder.DEFAULT_BATCH_BYTES, Duration.ofSeconds(40));
            CompletableFuture<List<Db.Fenced>> waiting = CompletableFuture.supplyAsync(
                    () -> {
                        try {
                            return patient.deleteAll(List.of(new ShardRows.Deletion(1, epochs.get(1), ids.get(1))));
                        } catch (SQLException e) {
                            throw new CompletionException(e);
                        }
                    },
                    threads);
            Thread.sleep(300);
            assertThat(waiting).as("the delete waits for the row lock").isNotDone();
            CompletableFuture<Set<Integer>> renewal = CompletableFuture.supplyAsync(
                    () -> {
                        try {
                            return patient.renew(Map.of(1, epochs.get(1)), Duration.ofMinutes(5));
                        } catch (SQLException e) {
                            throw new CompletionException(e);
                        }
                    },
                    threads);
            assertThat(renewal.get(15, TimeUnit.SECONDS))
                    .as("renewed while the delete waits")
                    .containsExactly(1);
            assertThat(waiting).as("the renewal did not wait for the delete").isNotDone();
            holder.rollback();
            assertThat(waiting.get(15, TimeUnit.SECONDS))
                    .as("the lock gone, the delete goes on")
                    .containsExactly(new Db.Fenced(true, 2));
            insert(ds, schema, 1, 2);
        }

        insert(ds, schema, 0, 1);
        try (Connection holder = ds.getConnection()) {
            holder.setAutoCommit(false);
            try (Statement st = holder.createStatement()) {
                // a lease row held locked past the timeout, as a claim that stalled would
                st.execute("select shard from " + schema + ".outbox_shard_lease where shard = 0 for update");
            }
            CompletableFuture<Db.Fenced> shard0 =
                    queue.submit(new ShardRows.Deletion(0, epochs.get(0), remaining(ds, schema, 0)));
            CompletableFuture<Db.Fenced> shard1 = queue.submit(new ShardRows.Deletion(1, epochs.get(1), ids.get(1)));
            tasks.remove(0).run();
            for (CompletableFuture<Db.Fenced> f : List.of(shard0, shard1)) {
                assertThatThrownBy(f::join).cause().isInstanceOfSatisfying(SQLException.class, e -> {
                    assertThat((Throwable) e).isNotInstanceOf(RowsLockedException.class);
                    assertThat(e.getSQLState()).isEqualTo("55P03");
                });
            }
            holder.rollback();
        }

        CompletableFuture<Db.Fenced> again =
                queue.submit(new ShardRows.Deletion(1, epochs.get(1), remaining(ds, schema, 1)));
        tasks.remove(0).run();
        assertThat(again).isCompletedWithValue(new Db.Fenced(true, 2));
        assertThat(remaining(ds, schema, 1)).isEmpty();
    }

    /**
     * The fenced writes set their lock timeout inside their own statement, in autocommit mode: the
     * connection goes back to the pool in autocommit mode with the session's {@code lock_timeout}
     * untouched. A pool that does not reset connections (an application's, the relay embedded) would
     * otherwise hand the application a connection inside a transaction nobody commits, or with the
     * relay's timeout. Here the pool is one connection whose close does nothing.
     */
    @Test
    @Timeout(value = 1, unit = TimeUnit.MINUTES)
    void aFencedWriteHandsItsConnectionBackInAutocommitMode(TestDatabase db) throws Exception {
        Claimed c = claim(db.dataSource(), db.schema(), 1, 2);
        try (Connection shared = db.dataSource().getConnection()) {
            Connection kept = (Connection) Proxy.newProxyInstance(
                    Connection.class.getClassLoader(), new Class<?>[] {Connection.class}, (proxy, method, args) -> {
                        if (method.getName().equals("close")) {
                            return null;
                        }
                        try {
                            return method.invoke(shared, args);
                        } catch (InvocationTargetException e) {
                            throw e.getCause();
                        }
                    });
            PGSimpleDataSource base = new PGSimpleDataSource();
            DataSource onePool = (DataSource) Proxy.newProxyInstance(
                    DataSource.class.getClassLoader(),
                    new Class<?>[] {DataSource.class},
                    (proxy, method, args) ->
                            method.getName().equals("getConnection") ? kept : method.invoke(base, args));
            Db relay = new Db(onePool, db.schema(), OWNER, false, Relay.Builder.DEFAULT_BATCH_BYTES);
            long[] ids = c.ids().get(0);

            relay.failAll(
                    List.of(new ShardRows.Failure(
                            0, c.epochs().get(0), new long[] {ids[0]}, errors("e", 1), new boolean[1])),
                    3);
            assertThat(shared.getAutoCommit())
                    .as("after the record of failed rows")
                    .isTrue();
            assertThat(relay.deleteAll(
                            List.of(new ShardRows.Deletion(0, c.epochs().get(0), ids))))
                    .containsExactly(new Db.Fenced(true, 2));
            assertThat(shared.getAutoCommit()).as("after the delete").isTrue();
            try (Statement st = shared.createStatement();
                    ResultSet rs = st.executeQuery("show lock_timeout")) {
                rs.next();
                assertThat(rs.getString(1)).as("the session's lock_timeout").isEqualTo("0");
            }
        }
    }

    /**
     * G7 and G3 fencing per shard for failed rows: in one statement, each shard's rows get an attempt and
     * their own error, a poison row is parked at once and a row at {@code maxAttempts} is parked; a shard
     * taken over by another owner records nothing (its rows are the new owner's) and does not stop the
     * others; a row named in another shard's request is left alone, even when its own shard's lease is
     * held in the same statement.
     */
    @Test
    @Timeout(value = 1, unit = TimeUnit.MINUTES)
    void failedRowsOfSeveralShardsAreRecordedEachUnderItsOwnLease(TestDatabase db) throws Exception {
        DataSource ds = db.dataSource();
        Claimed c = claim(ds, db.schema(), 3, 2);
        Map<Integer, Long> epochs = c.epochs();
        Map<Integer, long[]> ids = c.ids();
        takeOver(ds, db.schema(), 1);
        long[] shard2AndOneOfShard0 = {ids.get(2)[0], ids.get(2)[1], ids.get(0)[1]};

        List<Db.Failed> first = c.relay()
                .failAll(
                        List.of(
                                new ShardRows.Failure(1, epochs.get(1), ids.get(1), errors("lost", 2), new boolean[2]),
                                new ShardRows.Failure(
                                        0, epochs.get(0), new long[] {ids.get(0)[0]}, errors("e0", 1), new boolean[] {
                                            true
                                        }),
                                new ShardRows.Failure(
                                        2, epochs.get(2), shard2AndOneOfShard0, errors("e2", 3), new boolean[3])),
                        2);

        assertThat(first.get(0)).as("taken over: nothing recorded").isEqualTo(new Db.Failed(false, List.of()));
        assertThat(first.get(1).leaseHeld()).isTrue();
        assertThat(first.get(1).rows()).containsExactly(new Db.FailedRow(ids.get(0)[0], 1, true));
        assertThat(first.get(2).leaseHeld()).isTrue();
        assertThat(first.get(2).rows())
                .as("only the shard's own rows")
                .containsExactlyInAnyOrder(
                        new Db.FailedRow(ids.get(2)[0], 1, false), new Db.FailedRow(ids.get(2)[1], 1, false));

        List<Db.Failed> second = c.relay()
                .failAll(
                        List.of(new ShardRows.Failure(2, epochs.get(2), ids.get(2), errors("e2b", 2), new boolean[2])),
                        2);
        assertThat(second.get(0).rows())
                .as("maxAttempts reached: parked")
                .containsExactlyInAnyOrder(
                        new Db.FailedRow(ids.get(2)[0], 2, true), new Db.FailedRow(ids.get(2)[1], 2, true));

        try (Connection conn = ds.getConnection();
                Statement st = conn.createStatement();
                ResultSet rs = st.executeQuery("select shard, attempts, last_error, parked_at is not null from "
                        + db.schema() + ".outbox_message order by id")) {
            List<String> rows = new ArrayList<>();
            while (rs.next()) {
                rows.add(rs.getInt(1) + ":" + rs.getInt(2) + ":" + rs.getString(3) + ":" + rs.getBoolean(4));
            }
            assertThat(rows)
                    .containsExactly(
                            "0:1:e0-0:true",
                            "0:0:null:false",
                            "1:0:null:false",
                            "1:0:null:false",
                            "2:2:e2b-0:true",
                            "2:2:e2b-1:true");
        }
    }

    private static String[] errors(String prefix, int n) {
        String[] out = new String[n];
        for (int i = 0; i < n; i++) {
            out[i] = prefix + "-" + i;
        }
        return out;
    }

    private record Claimed(Db relay, Map<Integer, Long> epochs, Map<Integer, long[]> ids) {}

    /** Resets the tables, claims shards 0 to {@code shards - 1} for this relay and gives each {@code rows} rows. */
    private static Claimed claim(DataSource ds, String schema, int shards, int rows) throws SQLException {
        reset(ds, schema);
        Db relay = new Db(ds, schema, OWNER, false, Relay.Builder.DEFAULT_BATCH_BYTES);
        Map<Integer, Long> epochs = relay.claim(shards, Duration.ofMinutes(5));
        Map<Integer, long[]> ids = new HashMap<>();
        for (int shard = 0; shard < shards; shard++) {
            assertThat(epochs).containsKey(shard);
            ids.put(shard, insert(ds, schema, shard, rows));
        }
        return new Claimed(relay, epochs, ids);
    }

    /** Every lease free, the outbox empty: each test starts alike whatever ran before it. */
    static void reset(DataSource ds, String schema) throws SQLException {
        try (Connection c = ds.getConnection();
                Statement st = c.createStatement()) {
            st.executeUpdate("update " + schema + ".outbox_shard_lease set owner = null,"
                    + " lease_until = timestamptz '1970-01-01 00:00:00+00'");
            st.executeUpdate("delete from " + schema + ".outbox_message");
        }
    }

    /** @return the ids of {@code n} new publishable rows of the shard */
    static long[] insert(DataSource ds, String schema, int shard, int n) throws SQLException {
        try (Connection c = ds.getConnection();
                PreparedStatement ps = c.prepareStatement("insert into " + schema
                        + ".outbox_message (message_id, shard, topic, message_type, content_type)"
                        + " select gen_random_uuid(), ?, 't', 'T', 'text/plain' from generate_series(1, ?)"
                        + " returning id")) {
            ps.setInt(1, shard);
            ps.setInt(2, n);
            List<Long> out = new ArrayList<>();
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.add(rs.getLong(1));
                }
            }
            return out.stream().mapToLong(Long::longValue).sorted().toArray();
        }
    }

    private static long[] remaining(DataSource ds, String schema, int shard) throws SQLException {
        try (Connection c = ds.getConnection();
                PreparedStatement ps = c.prepareStatement(
                        "select id from " + schema + ".outbox_message where shard = ? order by id")) {
            ps.setInt(1, shard);
            List<Long> out = new ArrayList<>();
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.add(rs.getLong(1));
                }
            }
            return out.stream().mapToLong(Long::longValue).toArray();
        }
    }

    /** What another relay's claim does to the lease row: new owner, epoch + 1, lease in the future. */
    private static void takeOver(DataSource ds, String schema, int shard) throws SQLException {
        lease(ds, schema, shard, "owner = 'intruder', epoch = epoch + 1, lease_until = now() + interval '1 hour'");
    }

    /** A lease this relay did not renew in time: same owner and epoch, expired. */
    private static void expire(DataSource ds, String schema, int shard) throws SQLException {
        lease(ds, schema, shard, "lease_until = now() - interval '1 second'");
    }

    private static void lease(DataSource ds, String schema, int shard, String set) throws SQLException {
        try (Connection c = ds.getConnection();
                PreparedStatement ps = c.prepareStatement(
                        "update " + schema + ".outbox_shard_lease set " + set + " where shard = ?")) {
            ps.setInt(1, shard);
            assertThat(ps.executeUpdate()).isOne();
        }
    }
}
