package dev.outbox.relay.internal;

import dev.outbox.core.internal.PrefixedLog;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.SQLWarning;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.DoubleSupplier;
import java.util.function.LongSupplier;
import javax.sql.DataSource;

/**
 * Vacuums the outbox table after every {@code afterRows} rows this relay deleted (or rewrote, see
 * below), so that the reads,
 * which start at each shard's first row, do not step over the index entries of every row deleted
 * since autovacuum last came by. Autovacuum visits a database at most once per {@code
 * autovacuum_naptime} (one minute by default): at 8,000 rows a second that is up to 480,000 dead
 * entries, and every read of every shard walks its share of them (see ENGINE.md, "Keeping the table
 * small").
 *
 * <p>{@code VACUUM (SKIP_LOCKED)}: a vacuum already running (autovacuum's, or another relay's) is
 * not waited for, this one is skipped. A role that may not vacuum the table (not its owner) gets a
 * warning from PostgreSQL, not an error: it is logged once and the relay stops trying.
 *
 * <p>A vacuum removes only rows deleted before PostgreSQL's xmin horizon (the oldest snapshot of a
 * session or prepared transaction of this database, a replication slot's {@code xmin} or a standby's
 * feedback; see {@link XminHorizon}). While the horizon is older
 * than the previous vacuum, another one would find nothing to remove and still read every page the
 * deletes left behind: it is skipped, and the rows after which the next one is considered double, up
 * to {@value #MAX_STRIDE} times {@code afterRows}, until the horizon moves.
 *
 * <p>The rows counted are those the relay deleted and those whose failure it recorded (an attempt
 * counted, a row parked): an update leaves a dead row version as a delete does. While a topic is
 * missing, each failed check of it counts an attempt of every held row a shard remembers, up to ten
 * batches of them per shard, so the held rows can leave more dead versions than the deletes.
 *
 * <p>While the relay drains a backlog (the sampled backlog of its shards is larger than {@code
 * afterRows}, and it shrinks), the vacuum waits until the backlog is drained, or until {@value
 * #MAX_STRIDE} times {@code afterRows} rows were counted. Each vacuum reads the four indexes whole, and
 * during a drain they hold the backlog's entries, so a vacuum every {@code afterRows} rows costs in
 * proportion to backlog / {@code afterRows} per message (benchmarks/RELAY.md, "Vacuum frequency"); a
 * drain's reads step over the dead entries at the head of their shards, which they mark dead on the
 * way. A backlog that has not shrunk for {@link #DRAIN_PROGRESS} is not being drained (rows held for a
 * missing topic, writers as fast as the relay): the vacuum no longer waits for it, since every read
 * would step over the dead entries for as long as it stays.
 *
 * <p>Runs on the relay's sampler thread, one statement at a time, on a connection borrowed for it.
 * The vacuum is bounded by {@link #TIMEOUT} ({@code statement_timeout} and the socket's read timeout,
 * restored afterwards) rather than by the connection's own: the relay process bounds every statement
 * by a third of the lease, which a vacuum of a table whose indexes grew during a backlog outlasts, and
 * a vacuum cut off is tried again after the next {@code afterRows} rows, reading the same indexes.
 */
final class OutboxVacuum {
    /** Largest factor by which the rows between two vacuums grow while the horizon does not move. */
    static final int MAX_STRIDE = 64;

    /**
     * How long a backlog may go without shrinking before the vacuum stops waiting for it to be drained:
     * a few of the relay's backlog samples (one every five seconds at most).
     */
    static final Duration DRAIN_PROGRESS = Duration.ofSeconds(15);

    /**
     * The longest a vacuum (and the look at the xmin horizon before it) may run: the statements' timeout,
     * and with 10 s more the socket's read timeout.
     */
    static final Duration TIMEOUT = Duration.ofMinutes(10);

    /**
     * The transaction id the next one will get, and how many ids older than it the oldest xmin holder
     * is (0 when nothing holds one): the horizon is the difference.
     */
    private static final String HORIZON_SQL = "select pg_snapshot_xmax(pg_current_snapshot())::text::bigint,"
            + " greatest(0, (select max(greatest(age(backend_xmin), age(backend_xid))) from pg_stat_activity"
            + " where pid <> pg_backend_pid() and " + XminHorizon.SESSION_IN_THIS_DATABASE + "),"
            + " (select max(age(transaction)) from pg_prepared_xacts where " + XminHorizon.PREPARED_IN_THIS_DATABASE
            + "),"
            + " (select max(age(xmin)) from pg_replication_slots),"
            + " (select max(age(backend_xmin)) from pg_stat_replication))";

    private final DataSource dataSource;
    private final String sql;
    private final String table;
    private final int afterRows;
    private final DoubleSupplier deleted;
    private final DoubleSupplier backlog;
    private final RelayMetrics metrics;
    private final PrefixedLog log;
    private double deletedAtLast;
    private boolean refused;
    private int stride = 1;
    /** The vacuum waits for a backlog to be drained. */
    private boolean draining;
    /** While draining: the smallest backlog sampled, and when it was first seen. */
    private double lowestBacklog;
    /** A backlog stopped shrinking (logged), and has not come down to {@code afterRows} since. */
    private boolean stalled;

    private long lowestAtNanos;
    private final LongSupplier nanoTime;
    /** The next transaction id when the last vacuum started, or -1 before the first. */
    private long lastVacuumXmax = -1;

    /**
     * @param afterRows rows deleted or rewritten between two vacuums; 0 turns the vacuum off
     * @param deleted how many rows this relay deleted or rewrote so far
     * @param backlog the publishable rows of this relay's shards, as last sampled
     * @param nanoTime the clock of {@link #DRAIN_PROGRESS}
     */
    OutboxVacuum(
            DataSource dataSource,
            String schema,
            int afterRows,
            DoubleSupplier deleted,
            DoubleSupplier backlog,
            RelayMetrics metrics,
            PrefixedLog log,
            LongSupplier nanoTime) {
        this.nanoTime = nanoTime;
        this.dataSource = dataSource;
        this.table = schema + ".outbox_message";
        this.sql = "vacuum (skip_locked) " + table;
        this.afterRows = afterRows;
        this.deleted = deleted;
        this.backlog = backlog;
        this.metrics = metrics;
        this.log = log;
        this.deletedAtLast = deleted.getAsDouble();
    }

    /** Vacuums the table if {@code afterRows} rows (times the stride) were deleted or rewritten since the last look. */
    void tick() {
        if (afterRows == 0 || refused) {
            return;
        }
        double now = deleted.getAsDouble();
        double since = now - deletedAtLast;
        if (since < (double) afterRows * stride) {
            return;
        }
        double waiting = backlog.getAsDouble();
        if (waiting > afterRows && since < (double) afterRows * MAX_STRIDE && shrinking(waiting)) {
            if (!draining) {
                draining = true;
                if (!stalled) {
                    log.info(
                            "draining a backlog of about {} rows: vacuuming {} once it is drained, or after {} deleted"
                                    + " rows",
                            Math.round(waiting),
                            table,
                            (long) afterRows * MAX_STRIDE);
                }
            }
            return; // looked at again at the next tick, with the rows deleted meanwhile
        }
        if (waiting <= afterRows) {
            stalled = false;
        } else if (draining && since < (double) afterRows * MAX_STRIDE && !stalled) {
            // once, until the backlog is small again: a topic missing for hours would log it every few seconds
            stalled = true;
            log.info(
                    "the backlog of about {} rows has not shrunk for {} s (rows held for a missing topic, or writers as"
                            + " fast as the relay): vacuuming {} without waiting for it to be drained",
                    Math.round(waiting),
                    DRAIN_PROGRESS.toSeconds(),
                    table);
        }
        draining = false;
        deletedAtLast = now;
        try (Connection c = Db.connect(dataSource);
                Statement st = c.createStatement()) {
            int network = c.getNetworkTimeout();
            String bound = statementTimeout(st);
            c.setNetworkTimeout(Runnable::run, (int) TIMEOUT.plusSeconds(10).toMillis());
            st.execute("set statement_timeout = " + TIMEOUT.toMillis());
            try {
                vacuumIfTheHorizonMoved(st);
            } finally {
                // back to the value the connection had, however it was set (connection options, a pool's init SQL)
                restoreStatementTimeout(c, bound);
                c.setNetworkTimeout(Runnable::run, network);
            }
        } catch (SQLException e) {
            metrics.database.increment();
            log.retry("vacuuming {} failed (SQLState {}): {}", table, e.getSQLState(), e.getMessage());
        } catch (RuntimeException e) {
            // a task of a scheduled executor that throws is never run again
            log.warn("vacuuming {} failed: {}", table, e.toString());
        }
    }

    /**
     * @return whether the backlog is being drained: the vacuum began waiting just now, or the backlog
     *     fell below its smallest sample since then within the last {@link #DRAIN_PROGRESS}
     */
    private boolean shrinking(double waiting) {
        long now = nanoTime.getAsLong();
        if (!draining || waiting < lowestBacklog) {
            lowestBacklog = waiting;
            lowestAtNanos = now;
            return true;
        }
        return now - lowestAtNanos < DRAIN_PROGRESS.toNanos();
    }

    private static String statementTimeout(Statement st) throws SQLException {
        try (ResultSet rs = st.executeQuery("select current_setting('statement_timeout')")) {
            rs.next();
            return rs.getString(1);
        }
    }

    private static void restoreStatementTimeout(Connection c, String bound) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("select set_config('statement_timeout', ?, false)")) {
            ps.setString(1, bound);
            ps.execute();
        }
    }

    private void vacuumIfTheHorizonMoved(Statement st) throws SQLException {
        long[] horizon = horizon(st);
        long nextXid = horizon[0];
        long oldestAge = horizon[1];
        if (lastVacuumXmax >= 0 && nextXid - oldestAge <= lastVacuumXmax) {
            held(oldestAge);
            return;
        }
        long started = System.nanoTime();
        st.execute(sql);
        if (ran(st.getWarnings())) {
            metrics.vacuum.record(System.nanoTime() - started, TimeUnit.NANOSECONDS);
            lastVacuumXmax = nextXid;
            if (stride > 1) {
                log.info("the xmin horizon moved: vacuuming {} after every {} rows again", table, afterRows);
                stride = 1;
            }
        }
    }

    private static long[] horizon(Statement st) throws SQLException {
        try (ResultSet rs = st.executeQuery(HORIZON_SQL)) {
            rs.next();
            return new long[] {rs.getLong(1), rs.getLong(2)};
        }
    }

    /** The horizon is older than the last vacuum: nothing deleted since can be removed yet. */
    private void held(long oldestAge) {
        metrics.vacuumSkipped.increment();
        if (stride < MAX_STRIDE) {
            stride *= 2;
            if (stride == 4 || stride == MAX_STRIDE) {
                log.warn(
                        "not vacuuming {}: PostgreSQL's xmin horizon ({} transactions old) has not moved since the"
                                + " last vacuum, so the rows deleted since cannot be removed and reads slow down; see"
                                + " `status` (\"xmin horizon\") for what holds it. Next look after {} more rows",
                        table,
                        oldestAge,
                        (long) afterRows * stride);
            }
        }
    }

    /** @return whether the vacuum ran: PostgreSQL neither skipped it for a lock nor refused it */
    private boolean ran(SQLWarning warnings) {
        boolean ran = true;
        for (SQLWarning w = warnings; w != null; w = w.getNextWarning()) {
            String message = String.valueOf(w.getMessage());
            if (message.contains("lock not available")) {
                // another vacuum holds the table: the rows this one would have removed are its
                metrics.vacuumSkipped.increment();
                ran = false;
            } else if (message.contains("skipping")) {
                metrics.vacuumSkipped.increment();
                refused = true;
                ran = false;
                log.warn(
                        "PostgreSQL refused to vacuum {} ({}): the relay stops vacuuming it. Reads then walk the"
                                + " index entries of every row deleted since autovacuum last ran; run the relay as"
                                + " the table's owner, or set vacuum-after-rows to 0 and lower autovacuum_naptime",
                        table,
                        message);
            }
        }
        return ran;
    }
}
