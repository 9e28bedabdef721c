package dev.outbox.relay.admin;

import dev.outbox.relay.admin.Doctor.Check;
import dev.outbox.relay.admin.Doctor.Verdict;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The {@code outbox-schema} check: the objects the later outbox migrations add are there, whichever tool
 * ran them (this library's Flyway, the application's own, Liquibase or psql with the plain scripts). A
 * relay and a producer work on a schema without them, at the cost each one names.
 */
final class SchemaCheck {
    static final String TITLE = "The outbox schema has what every migration adds";

    private final String schema;

    SchemaCheck(DoctorSettings settings) {
        this.schema = settings.schema();
    }

    Check current(Connection c) throws SQLException {
        String title = TITLE;
        String table = schema + ".outbox_message";
        String sql = "select"
                + " exists(select 1 from pg_constraint where conrelid = to_regclass(?) and conname = 'outbox_message_shard_range'),"
                // stored as written: false, off, no, 0 or a prefix PostgreSQL accepts, in any case
                + " (select o.option_value from pg_class r cross join lateral pg_options_to_table(r.reloptions) o"
                + "   where r.oid = to_regclass(?) and o.option_name = 'vacuum_truncate'),"
                + " to_regprocedure(? || '.outbox_wait_for_change(text, integer, integer)') is not null,"
                + " (select i.indisvalid from pg_index i where i.indexrelid = to_regclass(? || '.outbox_message_parked_key_idx'))";
        List<String> evidence = new ArrayList<>();
        List<String> missing = new ArrayList<>();
        try (PreparedStatement st = c.prepareStatement(sql)) {
            st.setString(1, table);
            st.setString(2, table);
            st.setString(3, schema);
            st.setString(4, schema);
            try (ResultSet rs = st.executeQuery()) {
                rs.next();
                present(
                        rs.getBoolean(1),
                        "V5",
                        "constraint outbox_message_shard_range",
                        "a writer with another shard count can store rows on shards no relay leases",
                        evidence,
                        missing);
                String truncate = rs.getString(2);
                present(
                        truncate != null && isFalse(truncate),
                        "V6",
                        "vacuum_truncate = false on outbox_message",
                        "a vacuum of the empty table can make the planner read every shard by a whole-table scan",
                        evidence,
                        missing);
                present(
                        rs.getBoolean(3),
                        "V7",
                        "function outbox_wait_for_change",
                        "an idle relay asks every probe interval instead of waiting in PostgreSQL",
                        evidence,
                        missing);
                boolean index = rs.getBoolean(4);
                boolean indexExists = !rs.wasNull();
                if (indexExists && !index) {
                    evidence.add("V8 index outbox_message_parked_key_idx: INVALID (a concurrent build that failed);"
                            + " the migration keeps it as it is");
                    missing.add("V8 (index invalid: drop it and build it again)");
                } else {
                    present(
                            indexExists,
                            "V8",
                            "index outbox_message_parked_key_idx",
                            "a HOLD_KEY read walks every parked row of its shard for each row it reads",
                            evidence,
                            missing);
                }
            }
        }
        if (missing.isEmpty()) {
            return new Check("outbox-schema", title, Verdict.PASS, "V5 to V8 are in place", evidence, null);
        }
        return new Check(
                "outbox-schema",
                title,
                Verdict.WARN,
                "missing: " + String.join(", ", missing),
                evidence,
                "Run the outbox migrations (OutboxMigrations.migrate, the relay's --migrate, or the plain SQL scripts"
                        + " in order); an invalid index: drop index concurrently " + schema
                        + ".outbox_message_parked_key_idx, then run V8 or its create index concurrently again.");
    }

    /**
     * @return whether a stored boolean storage parameter is false, in any spelling PostgreSQL accepts for
     *     one and keeps as written: {@code false}, {@code off}, {@code no}, {@code 0}, or a prefix of {@code
     *     false} or {@code no}, or of {@code off} of at least two letters, in any case
     */
    static boolean isFalse(String value) {
        String v = value.toLowerCase(Locale.ROOT);
        return !v.isEmpty()
                && ("false".startsWith(v)
                        || "no".startsWith(v)
                        || (v.length() >= 2 && "off".startsWith(v))
                        || v.equals("0"));
    }

    private static void present(
            boolean found, String version, String what, String without, List<String> evidence, List<String> missing) {
        if (found) {
            evidence.add(version + " " + what + ": present");
        } else {
            evidence.add(version + " " + what + ": MISSING; without it " + without);
            missing.add(version);
        }
    }
}
