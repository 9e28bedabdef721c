package dev.outbox.relay.internal;

import dev.outbox.core.internal.PrefixedLog;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.SQLWarning;
import java.sql.Statement;
import java.util.concurrent.TimeUnit;
import java.util.function.DoubleSupplier;
import javax.sql.DataSource;

/**
 * Vacuums the outbox table after every {@code afterRows} rows this relay deleted, so that the reads,
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
 * <p>Runs on the relay's sampler thread, one statement at a time, on a connection borrowed for it.
 */
final class OutboxVacuum {
    private final DataSource dataSource;
    private final String sql;
    private final String table;
    private final int afterRows;
    private final DoubleSupplier deleted;
    private final RelayMetrics metrics;
    private final PrefixedLog log;
    private double deletedAtLast;
    private boolean refused;

    /**
     * @param afterRows rows deleted between two vacuums; 0 turns the vacuum off
     * @param deleted how many rows this relay deleted so far
     */
    OutboxVacuum(
            DataSource dataSource,
            String schema,
            int afterRows,
            DoubleSupplier deleted,
            RelayMetrics metrics,
            PrefixedLog log) {
        this.dataSource = dataSource;
        this.table = schema + ".outbox_message";
        this.sql = "vacuum (skip_locked) " + table;
        this.afterRows = afterRows;
        this.deleted = deleted;
        this.metrics = metrics;
        this.log = log;
        this.deletedAtLast = deleted.getAsDouble();
    }

    /** Vacuums the table if {@code afterRows} rows were deleted since the last vacuum. */
    void tick() {
        if (afterRows == 0 || refused) {
            return;
        }
        double now = deleted.getAsDouble();
        if (now - deletedAtLast < afterRows) {
            return;
        }
        deletedAtLast = now;
        long started = System.nanoTime();
        try (Connection c = Db.connect(dataSource);
                Statement st = c.createStatement()) {
            st.execute(sql);
            outcome(st.getWarnings());
        } catch (SQLException e) {
            metrics.database.increment();
            log.retry("vacuuming {} failed (SQLState {}): {}", table, e.getSQLState(), e.getMessage());
        } catch (RuntimeException e) {
            // a task of a scheduled executor that throws is never run again
            log.warn("vacuuming {} failed: {}", table, e.toString());
        }
        metrics.vacuum.record(System.nanoTime() - started, TimeUnit.NANOSECONDS);
    }

    /** @return whether the relay stopped vacuuming because PostgreSQL refused it */
    boolean refused() {
        return refused;
    }

    private void outcome(SQLWarning warnings) {
        for (SQLWarning w = warnings; w != null; w = w.getNextWarning()) {
            String message = String.valueOf(w.getMessage());
            if (message.contains("lock not available")) {
                // another vacuum holds the table: the rows this one would have removed are its
                metrics.vacuumSkipped.increment();
            } else if (message.contains("skipping")) {
                refused = true;
                log.warn(
                        "PostgreSQL refused to vacuum {} ({}): the relay stops vacuuming it. Reads then walk the"
                                + " index entries of every row deleted since autovacuum last ran; run the relay as"
                                + " the table's owner, or set vacuum-after-rows to 0 and lower autovacuum_naptime",
                        table,
                        message);
            }
        }
    }
}
