package dev.outbox.spring.internal;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Checks {@code outbox.shards} against the shard count the outbox was installed with, when the
 * context starts: a mismatch would otherwise start cleanly and then fail every append, inside the
 * business transactions.
 */
public final class InstalledShards {
    private static final Logger LOG = LoggerFactory.getLogger(InstalledShards.class);

    private InstalledShards() {}

    /**
     * @param dataSource the application's data source
     * @param schema the outbox schema, already validated
     * @param configured {@code outbox.shards}
     * @throws IllegalStateException when the outbox is installed with another shard count; nothing
     *     when it is not installed yet or the database cannot be read now (the first append checks
     *     again)
     */
    public static void requireMatch(DataSource dataSource, String schema, int configured) {
        int installed;
        try (Connection c = dataSource.getConnection()) {
            try (PreparedStatement st = c.prepareStatement("select to_regclass(?) is not null")) {
                st.setString(1, schema + ".outbox_shard_lease");
                try (ResultSet rs = st.executeQuery()) {
                    if (!rs.next() || !rs.getBoolean(1)) {
                        return; // not installed (yet): the migrations install it with outbox.shards
                    }
                }
            }
            try (PreparedStatement st = c.prepareStatement("select count(*) from " + schema + ".outbox_shard_lease");
                    ResultSet rs = st.executeQuery()) {
                rs.next();
                installed = rs.getInt(1);
            }
        } catch (SQLException e) {
            LOG.debug("[outbox] the installed shard count could not be read at start; the first append checks it", e);
            return;
        }
        if (installed > 0 && installed != configured) {
            throw new IllegalStateException("outbox.shards=" + configured + ": the outbox in schema " + schema
                    + " was installed with " + installed + " shards (the rows of " + schema
                    + ".outbox_shard_lease), and every producer must spread keys over that count; set outbox.shards="
                    + installed);
        }
    }
}
