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
    private final String schema;

    ConstraintCheck(DoctorSettings settings) {
        this.schema = settings.schema();
    }

    Check uniqueConstraints(Connection c) throws SQLException {
        String title = "Unique constraints on the key, processed-id and outbox tables are present and valid";
        List<String> evidence = new ArrayList<>();
        List<String> missing = new ArrayList<>();
        Map<String, Set<String>> expected = new LinkedHashMap<>();
        expected.put("idempotency_key", Set.of("scope", "idem_key"));
        expected.put("processed_message", Set.of("consumer", "message_id"));
        expected.put("outbox_message", Set.of("message_id"));
        String sql =
                "select i.indexrelid::regclass::text as name, i.indisvalid and i.indisready as valid, i.indpred is not null as partial,"
                        + " array(select a.attname::text from unnest(i.indkey) with ordinality k(attnum, ord)"
                        + "   join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum order by k.ord) as columns,"
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
                        Set<String> cols = new LinkedHashSet<>(
                                List.of((String[]) rs.getArray("columns").getArray()));
                        boolean valid = rs.getBoolean("valid");
                        boolean partial = rs.getBoolean("partial");
                        evidence.add(
                                table + ": unique index " + rs.getString("name") + " (" + String.join(", ", cols) + ")"
                                        + (valid ? " valid" : " INVALID") + (partial ? ", partial" : "")
                                        + (rs.getBoolean("constraint_backed") ? "" : ", not a constraint"));
                        if (valid && !partial && cols.equals(e.getValue())) {
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
                "no valid, complete unique index on " + String.join(", ", missing)
                        + ": concurrent duplicates are no longer decided by the database",
                evidence,
                "Recreate it: the migrations' primary keys are idempotency_key_pkey (scope, idem_key), processed_message_pkey"
                        + " (consumer, message_id), outbox_message_message_id_key unique (message_id). Remove duplicate rows first; an"
                        + " INVALID index is left by a failed CREATE INDEX CONCURRENTLY: drop and build it again.");
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
