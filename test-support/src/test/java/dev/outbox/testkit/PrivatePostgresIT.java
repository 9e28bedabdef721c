package dev.outbox.testkit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** A private server starts on its own port, survives a restart with its data, refuses connections while stopped, and is deleted on close. */
class PrivatePostgresIT {

    @Test
    void restartsKeepingCommittedDataAndCleansUp() throws SQLException {
        PrivatePostgres pg = PrivatePostgres.start();
        try {
            assertThat(pg.port()).isNotEqualTo(5432);
            pg.createDatabase("app");
            try (Connection c = pg.server().connect("app");
                    Statement st = c.createStatement()) {
                st.execute("create table t (v int)");
                st.execute("insert into t values (42)");
                try (ResultSet rs = st.executeQuery("select current_setting('server_version_num')::int / 10000")) {
                    rs.next();
                    // an installed server (15 first), else the embedded binaries (14): at least the oldest supported
                    assertThat(rs.getInt(1)).isGreaterThanOrEqualTo(13);
                }
            }
            pg.stop();
            assertThat(pg.isRunning()).isFalse();
            assertThatThrownBy(() -> pg.server().connect("app").close()).isInstanceOf(SQLException.class);
            pg.startAgain();
            try (Connection c = pg.server().connect("app");
                    Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery("select v from t")) {
                assertThat(rs.next()).isTrue();
                assertThat(rs.getInt(1)).isEqualTo(42);
            }
            pg.restart();
            try (Connection c = pg.server().connect("app")) {
                assertThat(c.isValid(5)).isTrue();
            }
        } finally {
            pg.close();
        }
        assertThat(Files.exists(pg.directory())).isFalse();
    }

    @Test
    void serverSettingsOverrideTheDefaultsAndSurviveARestart() throws SQLException {
        try (PrivatePostgres pg = PrivatePostgres.start(Map.of("wal_level", "logical", "fsync", "on"))) {
            assertThat(setting(pg, "wal_level")).isEqualTo("logical");
            assertThat(setting(pg, "fsync")).isEqualTo("on");
            pg.restart();
            assertThat(setting(pg, "wal_level")).isEqualTo("logical");
        }
    }

    @Test
    void refusesASettingValueThatWouldNotSurviveTheCommandLine() {
        assertThatThrownBy(() -> PrivatePostgres.start(Map.of("application_name", "two words")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("application_name");
    }

    private static String setting(PrivatePostgres pg, String name) throws SQLException {
        try (Connection c = pg.server().connectAdmin();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("show " + name)) {
            rs.next();
            return rs.getString(1);
        }
    }
}
