package dev.outbox.migrations;

import static dev.outbox.migrations.jooq.Tables.OUTBOX_MESSAGE;
import static dev.outbox.migrations.jooq.Tables.OUTBOX_SHARD_LEASE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatIllegalArgumentException;
import static org.assertj.core.api.Assertions.assertThatNullPointerException;

import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.SQLFeatureNotSupportedException;
import java.util.logging.Logger;
import javax.sql.DataSource;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.postgresql.ds.PGSimpleDataSource;

class OutboxMigrationsTest {

    /** A data source that fails the test if anything tries to connect: validation must come first. */
    private static final DataSource UNUSABLE = new DataSource() {
        @Override
        public Connection getConnection() {
            throw new AssertionError("must not connect");
        }

        @Override
        public Connection getConnection(String user, String password) {
            throw new AssertionError("must not connect");
        }

        @Override
        public PrintWriter getLogWriter() {
            return null;
        }

        @Override
        public void setLogWriter(PrintWriter out) {}

        @Override
        public void setLoginTimeout(int seconds) {}

        @Override
        public int getLoginTimeout() {
            return 0;
        }

        @Override
        public Logger getParentLogger() throws SQLFeatureNotSupportedException {
            throw new SQLFeatureNotSupportedException();
        }

        @Override
        public <T> T unwrap(Class<T> iface) throws SQLException {
            throw new SQLException("not a wrapper");
        }

        @Override
        public boolean isWrapperFor(Class<?> iface) {
            return false;
        }
    };

    @Test
    void nullDataSourceIsNamed() {
        assertThatNullPointerException()
                .isThrownBy(() -> OutboxMigrations.migrate(null))
                .withMessageContaining("dataSource");
        assertThatNullPointerException()
                .isThrownBy(() -> OutboxMigrations.migrate(null, "outbox", 8))
                .withMessageContaining("dataSource");
        assertThatNullPointerException()
                .isThrownBy(() -> OutboxMigrations.dsl(null, "outbox"))
                .withMessageContaining("dataSource");
    }

    @Test
    void nullSchemaIsNamed() {
        assertThatNullPointerException()
                .isThrownBy(() -> OutboxMigrations.migrate(UNUSABLE, null))
                .withMessageContaining("schema");
        assertThatNullPointerException()
                .isThrownBy(() -> OutboxMigrations.jooqSettings(null))
                .withMessageContaining("schema");
        assertThatNullPointerException()
                .isThrownBy(() -> OutboxMigrations.dsl(UNUSABLE, null))
                .withMessageContaining("schema");
    }

    @ParameterizedTest
    @ValueSource(
            strings = {
                "",
                "Outbox",
                "1tenant",
                "tenant-a",
                "tenant a",
                "a.b",
                "\"quoted\"",
                "outbox; drop table x",
                "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd"
            })
    void schemaMustBeAPlainIdentifier(String schema) {
        assertThatIllegalArgumentException()
                .isThrownBy(() -> OutboxMigrations.migrate(UNUSABLE, schema))
                .withMessageContaining("\"" + schema + "\"")
                .withMessageContaining("[a-z_][a-z0-9_]{0,62}");
        assertThatIllegalArgumentException()
                .isThrownBy(() -> OutboxMigrations.jooqSettings(schema))
                .withMessageContaining("[a-z_][a-z0-9_]{0,62}");
    }

    @Test
    void longestAllowedSchemaNameIsAccepted() {
        String sixtyThree = "a".repeat(63);
        assertThat(OutboxMigrations.requireValidSchema(sixtyThree)).isEqualTo(sixtyThree);
        assertThat(OutboxMigrations.requireValidSchema("_tenant_9")).isEqualTo("_tenant_9");
    }

    @ParameterizedTest
    @ValueSource(strings = {"user", "select", "table", "order"})
    void reservedWordsAreRejected(String schema) {
        assertThatIllegalArgumentException()
                .isThrownBy(() -> OutboxMigrations.migrate(UNUSABLE, schema))
                .withMessageContaining("\"" + schema + "\"")
                .withMessageContaining("reserved word");
    }

    @Test
    void systemSchemaPrefixIsRejected() {
        assertThatIllegalArgumentException()
                .isThrownBy(() -> OutboxMigrations.migrate(UNUSABLE, "pg_outbox"))
                .withMessageContaining("\"pg_outbox\"")
                .withMessageContaining("pg_");
    }

    @ParameterizedTest
    @ValueSource(ints = {Integer.MIN_VALUE, -1, 0, 4097, Integer.MAX_VALUE})
    void shardsOutOfRangeAreRejected(int shards) {
        assertThatIllegalArgumentException()
                .isThrownBy(() -> OutboxMigrations.migrate(UNUSABLE, "outbox", shards))
                .withMessage("shards must be between 1 and 4096, got " + shards);
        assertThatIllegalArgumentException()
                .isThrownBy(() -> OutboxMigrations.placeholders("outbox", shards))
                .withMessageContaining("got " + shards);
    }

    @Test
    void placeholdersCarryBothValues() {
        assertThat(OutboxMigrations.placeholders("tenant_a", 8))
                .containsEntry(OutboxMigrations.SCHEMA_PLACEHOLDER, "tenant_a")
                .containsEntry(OutboxMigrations.SHARDS_PLACEHOLDER, "8")
                .hasSize(2);
        assertThat(OutboxMigrations.placeholders("outbox", 1)).containsEntry("outbox_shards", "1");
        assertThat(OutboxMigrations.placeholders("outbox", 4096)).containsEntry("outbox_shards", "4096");
    }

    @Test
    void generatedClassesUseTheDefaultSchema() {
        assertThat(OUTBOX_MESSAGE.getSchema().getName()).isEqualTo(OutboxMigrations.DEFAULT_SCHEMA);
        assertThat(OUTBOX_MESSAGE.getName()).isEqualTo("outbox_message");
        assertThat(OUTBOX_MESSAGE.getPrimaryKey().getFields()).containsExactly(OUTBOX_MESSAGE.ID);
        assertThat(OUTBOX_SHARD_LEASE.getPrimaryKey().getFields()).containsExactly(OUTBOX_SHARD_LEASE.SHARD);
    }

    @Test
    void jooqSettingsMapTheGeneratedSchema() {
        String sql = DSL.using(SQLDialect.POSTGRES, OutboxMigrations.jooqSettings("tenant_a"))
                .render(DSL.selectFrom(OUTBOX_MESSAGE).where(OUTBOX_MESSAGE.SHARD.eq(3)));
        assertThat(sql).contains("\"tenant_a\".\"outbox_message\"").doesNotContain("\"outbox\".");

        String unmapped = DSL.using(SQLDialect.POSTGRES, OutboxMigrations.jooqSettings("outbox"))
                .render(DSL.selectFrom(OUTBOX_MESSAGE));
        assertThat(unmapped).contains("\"outbox\".\"outbox_message\"");
    }

    @Test
    void urlIsDescribedWithoutPassword() {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setUrl("jdbc:postgresql://db.example:5433/app?user=app&password=s3cret");
        assertThat(OutboxMigrations.describeUrl(ds))
                .contains("jdbc:postgresql://db.example:5433/app")
                .doesNotContain("s3cret");
    }

    @Test
    void unknownUrlIsSaidSo() {
        assertThat(OutboxMigrations.describeUrl(UNUSABLE)).contains("JDBC URL unknown");
    }
}
