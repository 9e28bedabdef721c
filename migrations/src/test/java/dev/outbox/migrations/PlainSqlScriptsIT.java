package dev.outbox.migrations;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.testkit.TestDatabase;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The plain SQL copies of the scripts ({@link OutboxMigrations#PLAIN_SQL_LOCATION}), run in file-name order by a
 * tool that is not Flyway, install the same tables, columns, constraints and indexes as {@link OutboxMigrations}.
 */
class PlainSqlScriptsIT {

    private static final List<String> SCRIPTS = List.of(
            "V1__outbox_message.sql",
            "V2__outbox_shard_lease.sql",
            "V3__processed_message.sql",
            "V4__idempotency_key.sql",
            "V5__outbox_message_shard_range.sql",
            "V6__outbox_message_keep_pages.sql",
            "V7__outbox_wait_for_change.sql",
            "V8__outbox_message_parked_key.sql");

    /** Every table, column, constraint, index, reloption and function of schema outbox, apart from Flyway's history. */
    private static final String CATALOG = """
            select 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
                   || ' ' || coalesce(column_default, '') || ' ' || is_identity
              from information_schema.columns where table_schema = 'outbox' and table_name <> 'outbox_schema_history'
            union all
            select 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
              from pg_constraint where connamespace = 'outbox'::regnamespace
               and conrelid::regclass::text <> 'outbox.outbox_schema_history'
            union all
            select 'index ' || indexdef from pg_indexes where schemaname = 'outbox' and tablename <> 'outbox_schema_history'
            union all
            select 'options ' || relname || ' ' || array_to_string(reloptions, ',')
              from pg_class where relnamespace = 'outbox'::regnamespace and reloptions is not null
            union all
            select 'function ' || p.oid::regprocedure || ' ' || md5(pg_get_functiondef(p.oid))
              from pg_proc p where p.pronamespace = 'outbox'::regnamespace
            union all
            select 'rows ' || count(*) from outbox.outbox_shard_lease
            order by 1
            """;

    @Test
    void installTheSameTablesAsOutboxMigrations() throws SQLException, IOException {
        try (TestDatabase plain = TestDatabase.createEmpty();
                TestDatabase flyway = TestDatabase.createEmpty()) {
            try (Connection c = plain.connect();
                    Statement s = c.createStatement()) {
                for (String script : SCRIPTS) {
                    s.execute(resource(OutboxMigrations.PLAIN_SQL_LOCATION + "/" + script));
                }
            }
            OutboxMigrations.migrate(flyway.dataSource());

            List<String> installedByPlainSql = catalog(plain);
            assertThat(installedByPlainSql)
                    .contains(
                            "rows 64",
                            "options outbox_message "
                                    + "autovacuum_vacuum_scale_factor=0,autovacuum_vacuum_threshold=5000,autovacuum_vacuum_cost_delay=0,"
                                    + "autovacuum_vacuum_insert_scale_factor=0,autovacuum_vacuum_insert_threshold=5000,"
                                    + "autovacuum_analyze_scale_factor=0,autovacuum_analyze_threshold=5000,fillfactor=90,"
                                    + "vacuum_truncate=false")
                    .hasSizeGreaterThan(40)
                    .anyMatch(line -> line.startsWith("function outbox.outbox_wait_for_change(text,integer,integer) "));
            assertThat(installedByPlainSql).isEqualTo(catalog(flyway));
        }
    }

    @Test
    void theScriptsAreTheFlywayScriptsWithTheDefaultsFilledIn() throws IOException {
        for (String script : SCRIPTS) {
            String flyway = resource("db/outbox/" + script);
            String plain = resource(OutboxMigrations.PLAIN_SQL_LOCATION + "/" + script);
            assertThat(plain)
                    .doesNotContain("${")
                    .isEqualTo(flyway.replace("${outbox_schema}", "outbox").replace("${outbox_shards}", "64"));
        }
    }

    private static String resource(String path) throws IOException {
        try (InputStream in = PlainSqlScriptsIT.class.getClassLoader().getResourceAsStream(path)) {
            assertThat(in).as(path).isNotNull();
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private static List<String> catalog(TestDatabase db) throws SQLException {
        List<String> rows = new ArrayList<>();
        try (Connection c = db.connect();
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery(CATALOG)) {
            while (rs.next()) {
                rows.add(rs.getString(1));
            }
        }
        return rows;
    }
}
