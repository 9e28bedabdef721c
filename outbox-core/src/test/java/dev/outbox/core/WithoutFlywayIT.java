package dev.outbox.core;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import java.net.URLClassLoader;
import java.sql.Connection;
import java.sql.ResultSet;
import java.util.UUID;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * outbox-core appends without Flyway on the class path: Flyway is an optional dependency of the
 * migrations module, which core uses only for its generated jOOQ classes. The append runs in a
 * class loader built from this test's class path minus every Flyway jar.
 */
@ExtendWith(RealServices.class)
class WithoutFlywayIT {

    @Test
    void appendsWithNoFlywayOnTheClassPath(TestDatabase db) throws Exception {
        try (URLClassLoader withoutFlyway = IsolatedClassLoader.of(entry -> !entry.contains("flyway"))) {
            assertThatThrownBy(() -> Class.forName("org.flywaydb.core.Flyway", false, withoutFlyway))
                    .isInstanceOf(ClassNotFoundException.class);
            @SuppressWarnings("unchecked")
            Function<String[], String> probe = (Function<String[], String>) withoutFlyway
                    .loadClass("dev.outbox.core.noflyway.AppendProbe")
                    .getDeclaredConstructor()
                    .newInstance();

            UUID id = UUID.fromString(probe.apply(new String[] {db.jdbcUrl(), db.user()}));

            try (Connection c = db.connect();
                    ResultSet rs = c.createStatement()
                            .executeQuery(
                                    "select content_type, convert_from(payload, 'UTF8') from outbox.outbox_message where message_id = '"
                                            + id + "'")) {
                assertThat(rs.next()).isTrue();
                assertThat(rs.getString(1)).isEqualTo("application/json");
                assertThat(rs.getString(2)).isEqualTo("{\"text\":\"hello\"}");
            }
            @SuppressWarnings("unchecked")
            Function<String, String> migrate = (Function<String, String>) withoutFlyway
                    .loadClass("dev.outbox.core.noflyway.MigrateProbe")
                    .getDeclaredConstructor()
                    .newInstance();
            assertThat(migrate.apply(db.jdbcUrl()))
                    .contains("Flyway, which is not on the class path")
                    .contains("db/outbox-plain-sql");
        }
    }
}
