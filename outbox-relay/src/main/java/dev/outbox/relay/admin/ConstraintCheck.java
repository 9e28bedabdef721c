package dev.outbox.relay.admin;

import dev.outbox.relay.admin.Doctor.Check;
import dev.outbox.relay.admin.Doctor.Verdict;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The {@code unique-constraints} check: the unique indexes that decide races on the key, processed-id
 * and outbox tables are there, complete and valid.
 */
final class ConstraintCheck {
    static final String TITLE = "Unique constraints on the key, processed-id and outbox tables are present and valid";

    private final String schema;

    ConstraintCheck(DoctorSettings settings) {
        this.schema = settings.schema();
    }

    Check uniqueConstraints(Connection c) throws SQLException {
        String title = TITLE;
        List<String> evidence = new ArrayList<>();
        List<String> missing = new ArrayList<>();
        Map<String, Set<String>> expected = new LinkedHashMap<>();
        expected.put("idempotency_key", Set.of("scope", "idem_key"));
        expected.put("processed_message", Set.of("consumer", "message_id"));
        expected.put("outbox_message", Set.of("message_id"));
        // the key columns are the first indnkeyatts of indkey, the rest are INCLUDE columns; a 0 in indkey is
        // an expression, which pg_get_indexdef names as written
        String sql =
                "select i.indexrelid::regclass::text as name, i.indisvalid and i.indisready as valid, i.indpred is not null as partial,"
                        + " i.indexprs is not null or 0 = any(i.indkey::int2[]) as expressions, i.indimmediate as immediate,"
                        + " array(select pg_get_indexdef(i.indexrelid, k, true) from generate_series(1, i.indnkeyatts) k"
                        + "   order by k) as columns,"
                        + " array(select pg_get_indexdef(i.indexrelid, k, true) from generate_series(i.indnkeyatts + 1, i.indnatts) k"
                        + "   order by k) as included,"
                        + " exists(select 1 from pg_constraint x where x.conindid = i.indexrelid) as constraint_backed"
                        + " from pg_index i where i.indrelid = to_regclass(?) and i.indisunique order by 1";
        for (var e : expected.entrySet()) {
            String table = schema + "." + e.getKey();
            boolean ok = false;
            int found = 0;
            try (PreparedStatement st = c.prepareStatement(sql)) {
                st.setString(1, table);
                try (ResultSet rs = st.executeQuery()) {
                    while (rs.next()) {
                        found++;
                        List<String> cols =
                                List.of((String[]) rs.getArray("columns").getArray());
                        List<String> included =
                                List.of((String[]) rs.getArray("included").getArray());
                        boolean valid = rs.getBoolean("valid");
                        boolean partial = rs.getBoolean("partial");
                        boolean expressions = rs.getBoolean("expressions");
                        boolean immediate = rs.getBoolean("immediate");
                        evidence.add(table + ": unique index " + rs.getString("name") + " (" + String.join(", ", cols)
                                + ")" + (included.isEmpty() ? "" : " include (" + String.join(", ", included) + ")")
                                + (valid ? " valid" : " INVALID") + (partial ? ", partial" : "")
                                + (expressions
                                        ? ", ON AN EXPRESSION (unique per value of the expression, not per key)"
                                        : "")
                                + (immediate ? "" : ", DEFERRABLE (INSERT ... ON CONFLICT cannot use it)")
                                + (rs.getBoolean("constraint_backed") ? "" : ", not a constraint"));
                        if (valid
                                && !partial
                                && !expressions
                                && immediate
                                && new LinkedHashSet<>(cols).equals(e.getValue())) {
                            ok = true;
                        }
                    }
                }
            }
            if (found == 0) {
                evidence.add(
                        table + ": no unique index" + (tableExists(c, table) ? "" : " (the table does not exist)"));
            }
            if (!ok) {
                missing.add(table + " (" + String.join(", ", new TreeSet<>(e.getValue())) + ")");
            }
        }
        if (missing.isEmpty()) {
            return new Check(
                    "unique-constraints", title, Verdict.PASS, "all three are in place and valid", evidence, null);
        }
        return new Check(
                "unique-constraints",
                title,
                Verdict.FAIL,
                "no valid, complete unique index on exactly the key columns of " + String.join(", ", missing)
                        + ": concurrent duplicates are no longer decided by the database",
                evidence,
                "Recreate it: the migrations' primary keys are idempotency_key_pkey (scope, idem_key), processed_message_pkey"
                        + " (consumer, message_id), outbox_message_message_id_key unique (message_id). Remove duplicate rows first; an"
                        + " INVALID index is left by a failed CREATE INDEX CONCURRENTLY: drop and build it again. A unique index"
                        + " must be on the plain columns alone (INCLUDE columns are fine), with no expression, no WHERE and"
                        + " not DEFERRABLE (INSERT ... ON CONFLICT cannot use a deferrable one).");
    }

    static boolean tableExists(Connection c, String table) throws SQLException {
        try (PreparedStatement st = c.prepareStatement("select to_regclass(?) is not null")) {
            st.setString(1, table);
            try (ResultSet rs = st.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }
}
