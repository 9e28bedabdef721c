package dev.outbox.spring.internal;

import dev.outbox.migrations.MigrationResult;
import dev.outbox.migrations.OutboxMigrations;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.InitializingBean;

/**
 * Applies the outbox migrations when the context starts, with Flyway instance of their own (history
 * table {@value OutboxMigrations#HISTORY_TABLE} in the outbox schema), apart from the application's
 * own Flyway migrations and their versions.
 */
public final class OutboxMigrationsInitializer implements InitializingBean {
    private static final Logger LOG = LoggerFactory.getLogger(OutboxMigrationsInitializer.class);

    private final DataSource dataSource;
    private final String schema;
    private final int shards;

    public OutboxMigrationsInitializer(DataSource dataSource, String schema, int shards) {
        this.dataSource = dataSource;
        this.schema = schema;
        this.shards = shards;
    }

    @Override
    public void afterPropertiesSet() {
        MigrationResult result = OutboxMigrations.migrate(dataSource, schema, shards);
        LOG.info("[outbox] migrations of schema {}: {}", schema, result);
    }
}
