package dev.outbox.migrations;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Map;
import javax.sql.DataSource;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.FlywayException;
import org.flywaydb.core.api.MigrationInfo;
import org.flywaydb.core.api.callback.Callback;
import org.flywaydb.core.api.callback.Context;
import org.flywaydb.core.api.callback.Event;
import org.flywaydb.core.api.configuration.FluentConfiguration;
import org.flywaydb.core.api.output.MigrateResult;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Everything of {@link OutboxMigrations} that touches Flyway, apart so that the class loads, and its jOOQ helpers
 * work, without Flyway on the class path.
 */
final class FlywayRunner {

    private static final Logger LOG = LoggerFactory.getLogger(OutboxMigrations.class);

    /**
     * PostgreSQL reports {@code create ... if not exists} on an existing object as a NOTICE, which Flyway logs as a
     * warning ("DB: schema ... already exists, skipping"). The scripts are written to be rerun that way (V1 creates the
     * schema Flyway has just created, for applications that run them with their own Flyway), so their notices say
     * nothing a user must act on; real WARNINGs still come through.
     */
    static final String QUIET_NOTICES = "set client_min_messages = warning";

    private FlywayRunner() {}

    /** Undoes {@link #QUIET_NOTICES} before a connection goes back to the caller's pool. */
    static final String LOUD_AGAIN = "reset client_min_messages";

    static FluentConfiguration configure(DataSource dataSource, Map<String, String> placeholders, String schema) {
        return Flyway.configure(OutboxMigrations.class.getClassLoader())
                .dataSource(resetting(dataSource))
                .locations(OutboxMigrations.LOCATION)
                .failOnMissingLocations(true)
                .schemas(schema)
                .defaultSchema(schema)
                .createSchemas(true)
                .table(OutboxMigrations.HISTORY_TABLE)
                .baselineOnMigrate(true)
                .baselineVersion("0")
                .callbacks(new QuietNotices())
                .placeholders(placeholders);
    }

    /**
     * The caller's data source, whose connections undo {@link #QUIET_NOTICES} when Flyway closes them:
     * a pool would otherwise hand them to the application with its notices (a {@code RAISE NOTICE},
     * pgjdbc's {@code SQLWarning}s) turned off, on some connections and not others.
     */
    static DataSource resetting(DataSource dataSource) {
        return (DataSource) Proxy.newProxyInstance(
                FlywayRunner.class.getClassLoader(), new Class<?>[] {DataSource.class}, (proxy, method, args) -> {
                    Object result = invoke(dataSource, method, args);
                    return method.getName().equals("getConnection") ? resetOnClose((Connection) result) : result;
                });
    }

    private static Connection resetOnClose(Connection connection) {
        return (Connection) Proxy.newProxyInstance(
                FlywayRunner.class.getClassLoader(), new Class<?>[] {Connection.class}, (proxy, method, args) -> {
                    if (method.getName().equals("close") && !connection.isClosed()) {
                        try {
                            reset(connection);
                        } catch (SQLException e) {
                            // a broken connection: the pool discards it
                        }
                    }
                    return invoke(connection, method, args);
                });
    }

    /**
     * Runs {@link #LOUD_AGAIN}. On a connection in manual-commit mode (Flyway restores the pool's mode
     * before it closes the connection) the reset is committed, or the pool's rollback on close would
     * undo it; what the transaction held before is rolled back first, as that rollback would have.
     */
    private static void reset(Connection connection) throws SQLException {
        boolean manual = !connection.getAutoCommit();
        if (manual) {
            connection.rollback();
        }
        try (Statement statement = connection.createStatement()) {
            statement.execute(LOUD_AGAIN);
        }
        if (manual) {
            connection.commit();
        }
    }

    private static Object invoke(Object target, Method method, Object[] args) throws Throwable {
        try {
            return method.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    /** Runs {@link #QUIET_NOTICES} on every connection Flyway opens. */
    private static final class QuietNotices implements Callback {
        @Override
        public boolean supports(Event event, Context context) {
            return event == Event.AFTER_CONNECT;
        }

        @Override
        public boolean canHandleInTransaction(Event event, Context context) {
            return true;
        }

        @Override
        public void handle(Event event, Context context) {
            try (Statement statement = context.getConnection().createStatement()) {
                statement.execute(QUIET_NOTICES);
            } catch (SQLException e) {
                throw new FlywayException(
                        "cannot run \"" + QUIET_NOTICES + "\" on the migration connection: " + e.getMessage(), e);
            }
        }

        @Override
        public String getCallbackName() {
            return "outbox-quiet-notices";
        }
    }

    static MigrationResult migrate(DataSource dataSource, String schema, int shards, String url) {
        Flyway flyway = OutboxMigrations.configure(dataSource, schema, shards).load();
        try {
            MigrateResult result = flyway.migrate();
            MigrationInfo current = flyway.info().current();
            String version = current == null || current.getVersion() == null
                    ? null
                    : current.getVersion().getVersion();
            if (result.migrationsExecuted > 0) {
                LOG.info(
                        "Outbox tables in schema {} at {}: applied {} migration(s), now at version {}",
                        schema,
                        url,
                        result.migrationsExecuted,
                        version);
            } else {
                LOG.debug("Outbox tables in schema {} at {} are current at version {}", schema, url, version);
            }
            return new MigrationResult(schema, result.migrationsExecuted, version);
        } catch (FlywayException e) {
            throw new OutboxMigrationException(
                    "Migrating the outbox tables in schema \"" + schema + "\" at " + url + " failed: " + e.getMessage(),
                    e);
        }
    }
}
