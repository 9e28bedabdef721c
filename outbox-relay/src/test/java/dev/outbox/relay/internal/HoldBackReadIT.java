package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.relay.Relay;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The {@code HOLD_KEY} read after an incident that parked many rows, on real PostgreSQL (G3, G7): the later rows
 * of a key with a parked row stay held back, the other keys' rows are read, and the hold-back check looks up each
 * row's key in the index of parked rows by key (migration V8) instead of walking the shard's parked rows. With
 * V1's index of parked rows by {@code (shard, id)} the same read visited about 5,000 buffers per row read (one
 * per parked row of the shard); the bound below is 10.
 */
@Tag("integration")
@ExtendWith(RealServices.class)
class HoldBackReadIT {
    private static final int SHARD = 3;
    private static final int PARKED = 5_000;
    private static final int LIMIT = 500;
    private static final Pattern BUFFERS = Pattern.compile("Buffers: shared hit=(\\d+)(?: read=(\\d+))?");

    @Test
    void aShardWithManyParkedRowsIsReadWithOneLookUpPerRow(TestDatabase db) throws Exception {
        String msg = db.schema() + ".outbox_message";
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            // the incident: a row of key "held" parked first, then 5,000 rows of other keys
            st.execute(insert(msg, "'held'", "now()", 1));
            st.execute(insert(msg, "'parked-' || i", "now()", PARKED));
            // then 600 publishable rows, every tenth of key "held"
            st.execute(insert(msg, "case when i % 10 = 0 then 'held' else 'k-' || i end", "null", 600));
            st.execute("analyze " + msg);
        }

        List<OutboxRow> read = new Db(
                        db.dataSource(), db.schema(), "hold-back-read-it", true, Relay.Builder.DEFAULT_BATCH_BYTES)
                .read(SHARD, LIMIT);

        assertThat(read).hasSize(LIMIT);
        assertThat(read).extracting(OutboxRow::key).doesNotContain("held").allMatch(k -> k.startsWith("k-"));

        long buffers = buffers(db, Db.shardRead(msg, true));
        assertThat(buffers)
                .as("buffers visited by a read of %d rows in a shard with %d parked rows", LIMIT, PARKED)
                .isLessThan(10L * LIMIT);
    }

    /** @return the shared buffers the shard's read of {@link #LIMIT} rows visits, from its plan as executed */
    private static long buffers(TestDatabase db, String read) throws SQLException {
        try (Connection c = db.connect();
                PreparedStatement ps = c.prepareStatement("explain (analyze, buffers, costs off) " + read)) {
            ps.setInt(1, Relay.Builder.DEFAULT_BATCH_BYTES / LIMIT);
            ps.setInt(2, SHARD);
            ps.setInt(3, SHARD);
            ps.setInt(4, LIMIT);
            StringBuilder plan = new StringBuilder();
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    plan.append(rs.getString(1)).append('\n');
                }
            }
            // the first Buffers line is the top node's: everything the execution visited
            Matcher m = BUFFERS.matcher(plan);
            assertThat(m.find()).as(plan.toString()).isTrue();
            return Long.parseLong(m.group(1)) + (m.group(2) == null ? 0 : Long.parseLong(m.group(2)));
        }
    }

    private static String insert(String msg, String key, String parkedAt, int rows) {
        return "insert into " + msg + " (message_id, shard, topic, message_key, message_type, content_type, payload,"
                + " parked_at) select gen_random_uuid(), " + SHARD + ", 'hold-back', " + key + ", 'T', 'text/plain',"
                + " '\\x01', " + parkedAt + " from generate_series(1, " + rows + ") i";
    }
}
