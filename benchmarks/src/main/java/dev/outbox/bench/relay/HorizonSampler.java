package dev.outbox.bench.relay;

import dev.outbox.testkit.TestDatabase;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * What a steady level of {@code --statements} ran beside the relay: every 100 ms, how many
 * transactions old PostgreSQL's xmin horizon is among the sessions of the benchmark's database and
 * which kind of statement holds it; and how often the outbox table was vacuumed and analyzed during
 * the level. The reads step over the index entries of deleted rows until they can mark them dead,
 * which they cannot while an older snapshot may still see the rows.
 */
final class HorizonSampler implements AutoCloseable {
    private static final String OLDEST =
            "select age(backend_xmin), backend_type, left(regexp_replace(query, '\\s+', ' ',"
                    + " 'g'), 40) from pg_stat_activity where datname = current_database() and backend_xmin is not null"
                    + " and pid <> pg_backend_pid() order by age(backend_xmin) desc limit 1";
    private static final String COUNTS = "select coalesce(autovacuum_count, 0), coalesce(autoanalyze_count, 0),"
            + " coalesce(vacuum_count, 0) from pg_stat_user_tables where relid = ?::regclass";

    private final TestDatabase db;
    private final String table;
    private final AtomicBoolean running = new AtomicBoolean(true);
    private final List<Long> ages = new ArrayList<>();
    private final Map<String, Integer> oldestBy = new HashMap<>();
    private final long[] countsBefore;
    private final Thread thread;

    HorizonSampler(TestDatabase db) throws SQLException {
        this.db = db;
        this.table = db.schema() + ".outbox_message";
        this.countsBefore = counts();
        this.thread = Thread.ofPlatform().name("bench-horizon-sampler").daemon().start(this::sample);
    }

    private void sample() {
        try (Connection c = db.connect();
                PreparedStatement ps = c.prepareStatement(OLDEST)) {
            while (running.get()) {
                long age = 0;
                try (ResultSet rs = ps.executeQuery()) {
                    if (rs.next()) {
                        age = rs.getLong(1);
                        if (age > 1_000) {
                            oldestBy.merge(rs.getString(2) + ": " + rs.getString(3), 1, Integer::sum);
                        }
                    }
                }
                synchronized (ages) {
                    ages.add(age);
                }
                Thread.sleep(100);
            }
        } catch (SQLException | InterruptedException e) {
            synchronized (ages) {
                ages.add(-1L);
            }
        }
    }

    private long[] counts() throws SQLException {
        try (Connection c = db.connect();
                PreparedStatement ps = c.prepareStatement(COUNTS)) {
            ps.setString(1, table);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return new long[] {rs.getLong(1), rs.getLong(2), rs.getLong(3)};
            }
        }
    }

    /** @return the level's line: the horizon's age (median and largest), what held it, the vacuums and analyzes */
    String summary() throws SQLException {
        close();
        long[] after = counts();
        List<Long> sorted;
        synchronized (ages) {
            sorted = ages.stream().sorted().toList();
        }
        long median = sorted.isEmpty() ? 0 : sorted.get(sorted.size() / 2);
        long max = sorted.isEmpty() ? 0 : sorted.get(sorted.size() - 1);
        return String.format(
                Locale.ROOT,
                "  horizon: %d samples, xmin age p50 %d, max %d transactions; older than 1,000 held by %s;"
                        + " outbox table: %d autovacuums, %d autoanalyzes, %d vacuums",
                sorted.size(),
                median,
                max,
                oldestBy.isEmpty() ? "nothing" : oldestBy,
                after[0] - countsBefore[0],
                after[1] - countsBefore[1],
                after[2] - countsBefore[2]);
    }

    @Override
    public void close() {
        running.set(false);
        try {
            thread.join(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
