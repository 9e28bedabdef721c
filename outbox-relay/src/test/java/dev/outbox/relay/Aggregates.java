package dev.outbox.relay;

import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxMessage;
import dev.outbox.testkit.TestDatabase;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.IntFunction;
import javax.sql.DataSource;

/**
 * Aggregates written the documented way: a transaction locks its aggregate's row by raising the
 * version, then appends a message of the aggregate's key. Writers of one key serialise on the lock,
 * so a key's versions are its commit order, which {@link Fixtures#assertVersionsInCommitOrder}
 * checks on the Kafka side (G3).
 */
final class Aggregates {
    private Aggregates() {}

    /** @return {@code table}, created with {@code keys} aggregates, {@code agg-0} and on, at version 0 */
    static String create(TestDatabase db, String table, int keys) throws SQLException {
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("create table " + table + " (id text primary key, version int not null)");
            for (int k = 0; k < keys; k++) {
                st.execute("insert into " + table + " values ('agg-" + k + "', 0)");
            }
        }
        return table;
    }

    /**
     * One writer's transaction: locks {@code key}'s aggregate by raising its version, appends a message
     * of the key whose payload is {@code payload} of that version, and holds the transaction open up to
     * {@code maxHoldMillis} before it commits, so that other keys' later ids commit meanwhile.
     */
    static void appendNextVersion(
            DataSource pool,
            Outbox outbox,
            String table,
            String topic,
            String key,
            IntFunction<String> payload,
            int maxHoldMillis)
            throws SQLException, InterruptedException {
        try (Connection c = pool.getConnection()) {
            c.setAutoCommit(false);
            int version;
            try (PreparedStatement ps = c.prepareStatement(
                    "update " + table + " set version = version + 1 where id = ? returning version")) {
                ps.setString(1, key);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    version = rs.getInt(1);
                }
            }
            outbox.append(
                    c,
                    OutboxMessage.of(
                            topic,
                            key,
                            "Test",
                            "text/plain",
                            payload.apply(version).getBytes(StandardCharsets.UTF_8)));
            if (maxHoldMillis > 0) {
                Thread.sleep(ThreadLocalRandom.current().nextInt(maxHoldMillis));
            }
            c.commit();
        }
    }
}
