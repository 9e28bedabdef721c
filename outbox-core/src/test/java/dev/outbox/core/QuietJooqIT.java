package dev.outbox.core;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import java.net.URLClassLoader;
import java.util.List;
import java.util.function.Function;
import org.jooq.impl.DSL;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A fresh start logs no warning a user must learn to ignore: jOOQ's open-source {@code POSTGRES}
 * dialect is PostgreSQL 17's, and on its first connection in a JVM jOOQ warns that any older server
 * "is older than what dialect POSTGRES supports". An application that appends through {@link Outbox}
 * does not see it; every other jOOQ warning stays. Each scenario runs in a class loader of its own,
 * where jOOQ's once-per-JVM check has not run yet, and captures the log with a Logback list appender.
 */
@ExtendWith(RealServices.class)
class QuietJooqIT {
    private static final String PROPERTY = "org.jooq.log.org.jooq.impl.DefaultExecuteContext.logVersionSupport";
    private static final String WARNING = "Database version is older than what dialect SQLDialect.POSTGRES supports";

    private String saved;

    @BeforeEach
    void clearTheSwitch() {
        saved = System.clearProperty(PROPERTY);
    }

    @AfterEach
    void restoreTheSwitch() {
        if (saved == null) {
            System.clearProperty(PROPERTY);
        } else {
            System.setProperty(PROPERTY, saved);
        }
    }

    @Test
    void appendingThroughTheOutboxLogsNoVersionWarning(TestDatabase db) throws Exception {
        if (serverMajor(db) < 17) {
            // the warning is real on this server: the same first statement without an Outbox logs it
            assertThat(firstStatementWarnings(db, "plain")).anyMatch(l -> l.contains(WARNING));
            System.clearProperty(PROPERTY);
        }
        assertThat(firstStatementWarnings(db, "outbox")).isEmpty();
    }

    @Test
    void anApplicationThatAsksForTheWarningGetsIt(TestDatabase db) throws Exception {
        System.setProperty(PROPERTY, "WARN");
        List<String> warnings = firstStatementWarnings(db, "outbox");
        assertThat(System.getProperty(PROPERTY)).isEqualTo("WARN");
        if (serverMajor(db) < 17) {
            assertThat(warnings).anyMatch(l -> l.contains(WARNING));
        }
    }

    private static int serverMajor(TestDatabase db) {
        return db.dsl().fetchValue(DSL.field("current_setting('server_version_num')::int / 10000", Integer.class));
    }

    @SuppressWarnings("unchecked")
    private static List<String> firstStatementWarnings(TestDatabase db, String mode) throws Exception {
        try (URLClassLoader fresh = IsolatedClassLoader.of(entry -> true)) {
            Function<String[], List<String>> probe =
                    (Function<String[], List<String>>) fresh.loadClass("dev.outbox.core.JooqWarningProbe")
                            .getDeclaredConstructor()
                            .newInstance();
            return probe.apply(new String[] {db.jdbcUrl(), db.user(), mode});
        }
    }
}
