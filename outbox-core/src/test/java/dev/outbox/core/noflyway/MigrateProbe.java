package dev.outbox.core.noflyway;

import dev.outbox.migrations.OutboxMigrations;
import java.util.function.Function;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * Calls {@code OutboxMigrations.migrate} in {@code WithoutFlywayIT}'s class loader without Flyway.
 * Argument: a JDBC URL; result: the message of what it threw.
 */
public final class MigrateProbe implements Function<String, String> {
    @Override
    public String apply(String url) {
        PGSimpleDataSource dataSource = new PGSimpleDataSource();
        dataSource.setUrl(url);
        try {
            OutboxMigrations.migrate(dataSource);
            return "migrated";
        } catch (RuntimeException e) {
            return e.getMessage();
        }
    }
}
