package dev.outbox.spring.internal;

import dev.outbox.migrations.OutboxMigrationException;
import dev.outbox.migrations.OutboxMigrations;
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
     *     when it is not installed yet or the database cannot be reached now (the first append checks
     *     again), and a WARN line when the count cannot be read: a service that only consumes or
     *     only guards HTTP endpoints may lack the grant, while its first append would fail naming it
     */
    public static void requireMatch(DataSource dataSource, String schema, int configured) {
        int installed;
        try {
            installed = OutboxMigrations.installedShards(dataSource, schema);
        } catch (OutboxMigrationException e) {
            LOG.warn(
                    "outbox.shards={} not checked against the installed shard count: {} (an append needs that grant;"
                            + " a service that does not append can ignore this)",
                    configured,
                    e.getMessage());
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
