package dev.outbox.bench.relay;

import dev.outbox.testkit.PostgresServer;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * The writers of {@link SnapshotPairs} and {@link GenerationCursors}, on the tables {@code keys} (a
 * counter per key) and {@code side} (to take a transaction id) of a schema, each on a connection of its
 * own, writing until {@link #stop()}:
 *
 * <ul>
 *   <li>{@link #perKey}: locks a key's counter row ({@code update ... returning n}, which also gives the
 *       transaction its id early), inserts one to three rows numbered after it, waits 0 to 20 ms (a late
 *       commit: rows with higher ids commit meanwhile), and commits, or rolls back one time in ten;
 *   <li>{@link #fresh}: inserts a row of a key of its own as the transaction's first statement, so that
 *       the row's transaction id is assigned by the {@code tx} default, waits 0 to 20 ms and commits;
 *   <li>{@link #early}: takes a transaction id first, waits 0 to 50 ms, then inserts a row of a key of
 *       its own and commits;
 *   <li>{@link #longRunning}: takes a transaction id, waits 3 s, inserts a row of a key of its own, waits
 *       2 s, commits, so that its transaction stays in progress across many pairs.
 * </ul>
 */
final class PairWriters {
    static final int KEYS = 64;

    /** Inserts one row. @return its id */
    @FunctionalInterface
    interface Insert {
        long insert(Connection c, String key, long n) throws SQLException;
    }

    /** One transaction of a writer. @return the ids it wrote, for the caller to commit; none when it rolled back */
    @FunctionalInterface
    interface Transaction {
        List<Long> run(Connection c, Insert insert) throws SQLException, InterruptedException;
    }

    private final PostgresServer server;
    private final String schema;
    private final Consumer<List<Long>> committed;
    private final Consumer<String> violation;
    private final AtomicBoolean writing = new AtomicBoolean(true);
    final AtomicLong rolledBack = new AtomicLong();
    final AtomicLong writeFailures = new AtomicLong();

    /**
     * @param committed told the ids of each transaction once it committed
     * @param violation told when a writer's connection fails
     */
    PairWriters(PostgresServer server, String schema, Consumer<List<Long>> committed, Consumer<String> violation) {
        this.server = server;
        this.schema = schema;
        this.committed = committed;
        this.violation = violation;
    }

    /** Creates the counter and side tables in the schema, which must exist. */
    void createTables(Statement st) throws SQLException {
        st.execute("create table " + schema + ".keys (key text primary key, n bigint not null)");
        st.execute(
                "insert into " + schema + ".keys select 'key-' || i, 0 from generate_series(0, " + (KEYS - 1) + ") i");
        st.execute("create table " + schema + ".side (tx xid8 default pg_current_xact_id())");
    }

    boolean writing() {
        return writing.get();
    }

    void stop() {
        writing.set(false);
    }

    /** Starts a writer that runs {@code transaction} again and again, inserting with {@code insert}. */
    Thread start(String name, Insert insert, Transaction transaction) {
        return Thread.ofPlatform().name(name).start(() -> write(insert, transaction));
    }

    private void write(Insert insert, Transaction transaction) {
        try (Connection c = server.connectAdmin()) {
            c.setAutoCommit(false);
            while (writing.get()) {
                try {
                    List<Long> ids = transaction.run(c, insert);
                    c.commit();
                    committed.accept(ids);
                } catch (SQLException e) {
                    writeFailures.incrementAndGet();
                    c.rollback();
                }
            }
        } catch (SQLException e) {
            violation.accept("a writer's connection failed: " + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    List<Long> perKey(Connection c, Insert insert) throws SQLException, InterruptedException {
        ThreadLocalRandom random = ThreadLocalRandom.current();
        String key = "key-" + random.nextInt(KEYS);
        int rows = 1 + random.nextInt(3);
        long last;
        try (PreparedStatement ps =
                c.prepareStatement("update " + schema + ".keys set n = n + ? where key = ? returning n")) {
            ps.setInt(1, rows);
            ps.setString(2, key);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                last = rs.getLong(1);
            }
        }
        List<Long> ids = new ArrayList<>();
        for (long n = last - rows + 1; n <= last; n++) {
            ids.add(insert.insert(c, key, n));
        }
        Thread.sleep(random.nextInt(21));
        if (random.nextInt(10) == 0) {
            c.rollback();
            rolledBack.incrementAndGet();
            return List.of();
        }
        return ids;
    }

    static List<Long> fresh(Connection c, Insert insert, String prefix) throws SQLException, InterruptedException {
        long id = insert.insert(c, prefix + System.nanoTime(), 1);
        Thread.sleep(ThreadLocalRandom.current().nextInt(21));
        return List.of(id);
    }

    List<Long> early(Connection c, Insert insert, String prefix) throws SQLException, InterruptedException {
        takeTransactionId(c);
        Thread.sleep(ThreadLocalRandom.current().nextInt(51));
        return List.of(insert.insert(c, prefix + System.nanoTime(), 1));
    }

    List<Long> longRunning(Connection c, Insert insert) throws SQLException, InterruptedException {
        takeTransactionId(c);
        Thread.sleep(3_000);
        long id = insert.insert(c, "long-" + System.nanoTime(), 1);
        Thread.sleep(2_000);
        return List.of(id);
    }

    private void takeTransactionId(Connection c) throws SQLException {
        try (Statement st = c.createStatement()) {
            st.execute("insert into " + schema + ".side default values");
        }
    }

    /**
     * Starts the writers both checks run: {@code perKeyWriters} per-key writers, two fresh, two early and
     * one long writer, all inserting with {@code insert}.
     */
    List<Thread> startAll(int perKeyWriters, Insert insert) {
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < perKeyWriters; i++) {
            threads.add(start("per-key-" + i, insert, this::perKey));
        }
        for (int i = 0; i < 2; i++) {
            String fresh = "fresh-" + i + "-";
            threads.add(start(fresh, insert, (c, in) -> fresh(c, in, fresh)));
            String early = "early-" + i + "-";
            threads.add(start(early, insert, (c, in) -> early(c, in, early)));
        }
        threads.add(start("long", insert, this::longRunning));
        return threads;
    }
}
