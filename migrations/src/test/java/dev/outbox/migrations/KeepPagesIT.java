package dev.outbox.migrations;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.testkit.TestDatabase;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * V6: vacuum keeps the outbox table's pages, so that a table emptied by the relay and then vacuumed
 * and analyzed still gets index scans for a shard's read. Truncated to no pages, the planner takes it
 * for empty and plans every read of a shard as a sequential scan of the whole table, which it stays
 * once rows arrive, until the next analyze.
 */
class KeepPagesIT {

    @Test
    void aShardReadIsAnIndexScanAfterTheTableWasEmptiedVacuumedAndAnalyzed() throws SQLException {
        try (TestDatabase db = TestDatabase.createEmpty()) {
            OutboxMigrations.migrate(db.dataSource());
            try (Connection c = db.connect();
                    Statement st = c.createStatement()) {
                st.execute("insert into outbox.outbox_message (message_id, shard, topic, message_key, message_type,"
                        + " content_type, payload) select gen_random_uuid(), g % 64, 't', 'k' || g, 'x', 'y',"
                        + " decode(repeat('ab', 512), 'hex') from generate_series(1, 5000) g");
                st.execute("delete from outbox.outbox_message");
                st.execute("vacuum analyze outbox.outbox_message");

                assertThat(single(st, "select relpages from pg_class where oid = 'outbox.outbox_message'::regclass"))
                        .as("pages the planner sees after vacuum of the emptied table")
                        .isGreaterThan(0);
                // the plan a pooled, server-prepared read gets: generic, the shard a parameter
                st.execute("set plan_cache_mode = force_generic_plan");
                st.execute("prepare shard_read(int, int) as select m.id, m.payload from outbox.outbox_message m"
                        + " where m.shard = $1 and m.parked_at is null order by m.id limit $2");
                List<String> plan = lines(st, "explain execute shard_read(5, 500)");
                assertThat(String.join("\n", plan))
                        .contains("Index Scan using outbox_message_publishable_idx")
                        .doesNotContain("Seq Scan");
            }
        }
    }

    private static long single(Statement st, String sql) throws SQLException {
        try (ResultSet rs = st.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    private static List<String> lines(Statement st, String sql) throws SQLException {
        List<String> out = new ArrayList<>();
        try (ResultSet rs = st.executeQuery(sql)) {
            while (rs.next()) {
                out.add(rs.getString(1));
            }
        }
        return out;
    }
}
