package dev.outbox.migrations;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.outbox.testkit.TestDatabase;
import org.junit.jupiter.api.Test;
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
}
