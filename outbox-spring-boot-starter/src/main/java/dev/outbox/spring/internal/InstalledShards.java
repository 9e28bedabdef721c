package dev.outbox.spring.internal;

import dev.outbox.migrations.OutboxMigrations;
import javax.sql.DataSource;

/**
 * Checks {@code outbox.shards} against the shard count the outbox was installed with, when the
 * context starts: a mismatch would otherwise start cleanly and then fail every append, inside the
 * business transactions.
 */
public final class InstalledShards {
    private InstalledShards() {}

    /**
     * @param dataSource the application's data source
     * @param schema the outbox schema, already validated
     * @param configured {@code outbox.shards}
     * @throws IllegalStateException when the outbox is installed with another shard count; nothing
     *     when it is not installed yet or the database cannot be reached now (the first append checks
     *     again)
     * @throws dev.outbox.migrations.OutboxMigrationException when the shard table exists and the
     *     application's role cannot read it: every append would fail the same way
     */
    public static void requireMatch(DataSource dataSource, String schema, int configured) {
        int installed = OutboxMigrations.installedShards(dataSource, schema);
        if (installed > 0 && installed != configured) {
            throw new IllegalStateException("outbox.shards=" + configured + ": the outbox in schema " + schema
                    + " was installed with " + installed + " shards (the rows of " + schema
                    + ".outbox_shard_lease), and every producer must spread keys over that count; set outbox.shards="
                    + installed);
        }
    }
}
