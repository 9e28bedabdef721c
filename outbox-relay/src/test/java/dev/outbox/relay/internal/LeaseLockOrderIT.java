package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.zaxxer.hikari.HikariDataSource;
import dev.outbox.relay.Relay;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The relay's statements that lock several lease rows never wait for each other in a cycle: the
 * multi-shard delete locks its lease rows FOR SHARE in shard order, renew and release lock theirs in
 * shard order before they change them, and the claim skips locked rows.
 */
@ExtendWith(RealServices.class)
class LeaseLockOrderIT {
    private static final int SHARDS = 16;
    private static final int DELETERS = 4;
    private static final Duration RUN = Duration.ofSeconds(6);

    /**
     * No deadlock (SQLState 40P01), so no delete fails and no batch waits for a retry because of
     * one: four threads run multi-shard deletes over overlapping sets of the same 16 shards, each set in
     * a random order, while another thread renews the leases and releases and claims some of them
     * again, each set in a random order, for several seconds. Checked on every statement and by {@code
     * pg_stat_database.deadlocks} before and after. The fence holds throughout (G3): a delete with an
     * epoch a release and claim made stale deletes nothing of that shard, and every row the deletes
     * report is gone while every row they did not is still there (G1).
     */
    @Test
    @Timeout(value = 2, unit = TimeUnit.MINUTES)
    void deletesRenewalsReleasesAndClaimsOfOverlappingShardsNeverDeadlock(TestDatabase db) throws Exception {
        String schema = db.schema();
        try (Connection monitor = DriverManager.getConnection(db.jdbcUrl(), credentials(db))) {
            long deadlocksBefore = deadlocks(monitor);
            HikariDataSource pool = db.newDataSource(DELETERS + 2);
            CoalescedDeleteIT.reset(pool, schema);
            Db relay = new Db(pool, schema, "relay-a", false, Relay.Builder.DEFAULT_BATCH_BYTES);
            Map<Integer, Long> epochs = new ConcurrentHashMap<>(relay.claim(SHARDS, Duration.ofMinutes(5)));
            assertThat(epochs).hasSize(SHARDS);
            List<Queue<Long>> rows = new ArrayList<>();
            for (int shard = 0; shard < SHARDS; shard++) {
                Queue<Long> q = new ConcurrentLinkedQueue<>();
                for (long id : CoalescedDeleteIT.insert(pool, schema, shard, 2_000)) {
                    q.add(id);
                }
                rows.add(q);
            }
            List<Throwable> errors = new CopyOnWriteArrayList<>();
            AtomicInteger deadlocks = new AtomicInteger();
            AtomicInteger statements = new AtomicInteger();
            AtomicInteger fenced = new AtomicInteger();
            List<Long> deleted = new CopyOnWriteArrayList<>();
            List<Long> kept = new CopyOnWriteArrayList<>();
            long until = System.nanoTime() + RUN.toNanos();
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < DELETERS; t++) {
                threads.add(Thread.ofPlatform().name("deleter-" + t).start(() -> {
                    ThreadLocalRandom random = ThreadLocalRandom.current();
                    while (System.nanoTime() < until) {
                        List<Integer> shards = shuffled(random.nextInt(2, 9));
                        List<ShardRows.Deletion> deletions = new ArrayList<>();
                        for (int shard : shards) {
                            long[] ids = new long[10];
                            int n = 0;
                            for (Long id;
                                    n < ids.length && (id = rows.get(shard).poll()) != null; ) {
                                ids[n++] = id;
                            }
                            deletions.add(new ShardRows.Deletion(shard, epochs.get(shard), copy(ids, n)));
                        }
                        try {
                            List<Db.Fenced> results = relay.deleteAll(deletions);
                            statements.incrementAndGet();
                            for (int i = 0; i < results.size(); i++) {
                                long[] ids = deletions.get(i).ids();
                                if (results.get(i).leaseHeld()) {
                                    assertThat(results.get(i).rows()).isEqualTo(ids.length);
                                    for (long id : ids) {
                                        deleted.add(id);
                                    }
                                } else {
                                    fenced.incrementAndGet();
                                    for (long id : ids) {
                                        kept.add(id);
                                    }
                                }
                            }
                        } catch (SQLException e) {
                            if ("40P01".equals(e.getSQLState())) {
                                deadlocks.incrementAndGet();
                            }
                            errors.add(e);
                        } catch (Throwable e) {
                            errors.add(e);
                        }
                    }
                }));
            }
            AtomicInteger rounds = new AtomicInteger();
            threads.add(Thread.ofPlatform().name("leases").start(() -> {
                ThreadLocalRandom random = ThreadLocalRandom.current();
                while (System.nanoTime() < until) {
                    try {
                        relay.renew(inOrder(shuffled(SHARDS), epochs), Duration.ofMinutes(5));
                        Map<Integer, Long> handBack = inOrder(shuffled(random.nextInt(1, 6)), epochs);
                        relay.release(handBack);
                        epochs.putAll(relay.claim(handBack.size(), Duration.ofMinutes(5)));
                        rounds.incrementAndGet();
                    } catch (SQLException e) {
                        if ("40P01".equals(e.getSQLState())) {
                            deadlocks.incrementAndGet();
                        }
                        errors.add(e);
                    }
                }
            }));
            for (Thread t : threads) {
                t.join();
            }
            pool.close(); // the backends exit and report their statistics
            await().atMost(Duration.ofSeconds(20)).until(() -> otherBackends(monitor) == 0);

            assertThat(deadlocks).as("statements that failed with a deadlock").hasValue(0);
            assertThat(errors).isEmpty();
            assertThat(deadlocks(monitor) - deadlocksBefore)
                    .as("pg_stat_database.deadlocks")
                    .isZero();
            assertThat(statements.get()).as("multi-shard deletes run").isGreaterThan(20);
            assertThat(rounds.get()).as("lease rounds run").isGreaterThan(5);
            assertThat(fenced.get())
                    .as("deletes with an epoch made stale meanwhile (the test reaches the fence)")
                    .isPositive();
            try (Statement st = monitor.createStatement()) {
                for (long id : deleted) {
                    assertThat(exists(st, schema, id))
                            .as("row %d reported deleted", id)
                            .isFalse();
                }
                for (long id : kept) {
                    assertThat(exists(st, schema, id))
                            .as("row %d of a fenced delete (G3)", id)
                            .isTrue();
                }
            }
        }
    }

    private static List<Integer> shuffled(int n) {
        List<Integer> all = new ArrayList<>();
        for (int s = 0; s < SHARDS; s++) {
            all.add(s);
        }
        Collections.shuffle(all);
        return all.subList(0, n);
    }

    /** @return the shards with their epochs, iterated in the given (random) order */
    private static Map<Integer, Long> inOrder(List<Integer> shards, Map<Integer, Long> epochs) {
        Map<Integer, Long> out = new LinkedHashMap<>();
        shards.forEach(s -> out.put(s, epochs.get(s)));
        return out;
    }

    private static long[] copy(long[] ids, int n) {
        long[] out = new long[n];
        System.arraycopy(ids, 0, out, 0, n);
        return out;
    }

    private static boolean exists(Statement st, String schema, long id) throws SQLException {
        try (ResultSet rs = st.executeQuery("select 1 from " + schema + ".outbox_message where id = " + id)) {
            return rs.next();
        }
    }

    private static long deadlocks(Connection c) throws SQLException {
        try (Statement st = c.createStatement()) {
            st.execute("select pg_stat_clear_snapshot()");
            try (ResultSet rs =
                    st.executeQuery("select deadlocks from pg_stat_database where datname = current_database()")) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }

    private static int otherBackends(Connection c) throws SQLException {
        try (Statement st = c.createStatement();
                ResultSet rs =
                        st.executeQuery("select count(*) from pg_stat_activity where datname = current_database()"
                                + " and backend_type = 'client backend' and pid <> pg_backend_pid()")) {
            rs.next();
            return rs.getInt(1);
        }
    }

    private static Properties credentials(TestDatabase db) {
        Properties p = new Properties();
        p.put("user", db.user());
        if (!db.password().isEmpty()) {
            p.put("password", db.password());
        }
        return p;
    }
}
