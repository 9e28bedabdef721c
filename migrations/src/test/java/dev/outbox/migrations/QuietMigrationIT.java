package dev.outbox.migrations;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import com.zaxxer.hikari.HikariDataSource;
import dev.outbox.testkit.TestDatabase;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import javax.sql.DataSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.slf4j.LoggerFactory;

/**
 * A first install and a rerun log no warning a user would have to learn to ignore; before, Flyway logged PostgreSQL's
 * NOTICE that V1's {@code create schema if not exists} found the schema Flyway had just created.
 */
class QuietMigrationIT {

    @Test
    void aFreshInstallAndARerunLogNoWarnings() {
        Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        ListAppender<ILoggingEvent> events = new ListAppender<>();
        events.start();
        root.addAppender(events);
        try (TestDatabase db = TestDatabase.createEmpty()) {
            assertThat(OutboxMigrations.migrate(db.dataSource()).migrationsExecuted())
                    .isEqualTo(8);
            assertThat(OutboxMigrations.migrate(db.dataSource(), "second", 4).migrationsExecuted())
                    .isEqualTo(8);
            assertThat(OutboxMigrations.migrate(db.dataSource()).migrationsExecuted())
                    .isZero();
        } finally {
            root.detachAppender(events);
        }
        assertThat(events.list)
                .filteredOn(e -> e.getLevel().isGreaterOrEqual(Level.WARN))
                .extracting(ILoggingEvent::getFormattedMessage)
                .isEmpty();
        assertThat(events.list)
                .extracting(ILoggingEvent::getFormattedMessage)
                .anyMatch(m -> m.contains("applied 8 migration(s)"));
    }

    /**
     * The notices are quieted on the migration's connections only: a pool's connection that Flyway used
     * goes back to the application with PostgreSQL's default, so that its own notices and pgjdbc's
     * warnings still arrive. Before, it kept {@code client_min_messages = warning} for its whole life.
     */
    @ParameterizedTest(name = "autoCommit {0}")
    @ValueSource(booleans = {true, false})
    void thePoolsConnectionsGetTheirNoticesBack(boolean autoCommit) throws Exception {
        // Flyway holds two connections at once: the pool has two, and both are looked at. A pool whose
        // connections start in manual-commit mode (common with JPA) rolls back on close what the reset did
        // in a transaction Flyway's restored mode opened: before, those kept warning.
        try (TestDatabase db = TestDatabase.createEmpty();
                HikariDataSource pool = pool(db, autoCommit)) {
            List<String> before = settings(pool);
            assertThat(before).containsOnly("notice");
            assertThat(OutboxMigrations.migrate(pool).migrationsExecuted()).isEqualTo(8);
            assertThat(settings(pool))
                    .as("client_min_messages after a migration")
                    .isEqualTo(before);
            assertThat(OutboxMigrations.migrate(pool).migrationsExecuted()).isZero();
            assertThat(settings(pool)).as("client_min_messages after a rerun").isEqualTo(before);
        }
    }

    private static HikariDataSource pool(TestDatabase db, boolean autoCommit) {
        return db.newDataSource(2, config -> config.setAutoCommit(autoCommit));
    }

    /** @return client_min_messages of each of the pool's two connections, held at once */
    private static List<String> settings(DataSource pool) throws SQLException {
        List<String> out = new ArrayList<>();
        try (Connection a = pool.getConnection();
                Connection b = pool.getConnection()) {
            for (Connection c : List.of(a, b)) {
                try (Statement st = c.createStatement();
                        ResultSet rs = st.executeQuery("show client_min_messages")) {
                    rs.next();
                    out.add(rs.getString(1));
                }
            }
        }
        return out;
    }
}
