package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Every read of a shard on real PostgreSQL keeps its payload bytes to the cap (review m10): the
 * shard's read, the read-ahead, the filtered read and the probe's read return the same prefix of the
 * shard's rows in id order, each row with its whole payload, those above the inline limit fetched by
 * the second statement. G1: the rows a read leaves out are the next read's; nothing is skipped.
 */
@Tag("integration")
@ExtendWith(RealServices.class)
class CappedReadIT {
    private static final int SHARD = 7;
    private static final int CAP = 100_000;
    private static final int LIMIT = 500;

    @Test
    void eachReadReturnsThePrefixThatFitsTheCapWithWholePayloads(TestDatabase db) throws Exception {
        String msg = db.schema() + ".outbox_message";
        // 3 small rows (inline: at most CAP / LIMIT = 200 bytes), then 30 KB rows (fetched afterwards), a
        // tombstone and an empty payload among them, then small rows again: 5 + 5 * 30,000 = 150 KB in all
        List<byte[]> payloads = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            payloads.add(bytes(100, i));
        }
        payloads.add(bytes(30_000, 3));
        payloads.add(null);
        payloads.add(bytes(30_000, 5));
        payloads.add(new byte[0]);
        payloads.add(bytes(30_000, 7));
        payloads.add(bytes(30_000, 8));
        payloads.add(bytes(30_000, 9));
        payloads.add(bytes(150, 10));
        long[] ids = new long[payloads.size()];
        try (Connection c = db.connect()) {
            for (int i = 0; i < ids.length; i++) {
                ids[i] = insert(c, msg, payloads.get(i));
            }
        }
        // payload bytes before each row: 0, 100, 200, 300, 30,300 (tombstone), 30,300, 60,300 (empty),
        // 60,300, 90,300, then 120,300 before row 9: the cap (100,000) is reached, rows 0 to 8 are kept
        int kept = 9;
        Db rows = new Db(db.dataSource(), db.schema(), "capped-read-it", true, CAP);

        List<OutboxRow> read = rows.read(SHARD, LIMIT);
        // (before the payloads are taken, as a batch is built before its rows are sent)
        assertThat(rows.cap().full(read, LIMIT))
                .as("a read cut by the cap is full")
                .isTrue();
        assertWhole(read, ids, payloads, kept);

        // what the cut left out is the next read's (read ahead past the batch in flight)
        List<OutboxRow> next = rows.readAhead(SHARD, Arrays.copyOf(ids, kept), LIMIT);
        assertThat(ids(next)).containsExactly(ids[9], ids[10]);
        assertThat(rows.cap().full(next, LIMIT)).isFalse();
        assertThat(next.get(0).takePayload()).isEqualTo(payloads.get(9));

        assertWhole(rows.readFiltered(SHARD, Set.of(), new long[0], new String[0], LIMIT), ids, payloads, kept);

        // rows of a held topic come without their payload and count nothing towards the cap
        List<OutboxRow> held = rows.readFiltered(SHARD, Set.of("capped"), new long[0], new String[0], LIMIT);
        assertThat(ids(held)).hasSize(ids.length);
        assertThat(held).allMatch(r -> r.payloadSize() == 0);

        try (ProbeStatements.Session session = rows.probes().open()) {
            List<OutboxRow> probed = session.probeRead(new int[] {SHARD, SHARD + 1}, new long[0], LIMIT, null)
                    .rows()
                    .get(SHARD);
            assertWhole(probed, ids, payloads, kept);
        }

        // one row larger than the cap, first in the shard, is read alone (it reaches the cap by itself)
        try (Connection c = db.connect()) {
            c.createStatement().execute("delete from " + msg + " where id < " + ids[9]);
            c.createStatement()
                    .execute("update " + msg + " set payload = decode(repeat('ab', 250000), 'hex')" + " where id = "
                            + ids[9]);
        }
        List<OutboxRow> alone = rows.read(SHARD, LIMIT);
        assertThat(ids(alone)).containsExactly(ids[9]);
        assertThat(alone.get(0).payloadSize()).isEqualTo(250_000);
    }

    /** The first {@code kept} rows, in id order, each with its payload as inserted. */
    private static void assertWhole(List<OutboxRow> read, long[] ids, List<byte[]> payloads, int kept) {
        assertThat(ids(read)).containsExactlyElementsOf(ids(ids, kept));
        for (int i = 0; i < kept; i++) {
            assertThat(read.get(i).takePayload()).as("payload of row %d", i).isEqualTo(payloads.get(i));
        }
    }

    private static byte[] bytes(int n, int seed) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (i * 31 + seed);
        }
        return b;
    }

    private static long insert(Connection c, String msg, byte[] payload) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("insert into " + msg
                + " (message_id, shard, topic, message_key, message_type, content_type, payload)"
                + " values (gen_random_uuid(), ?, 'capped', 'k', 'T', 'application/octet-stream', ?) returning id")) {
            ps.setInt(1, SHARD);
            ps.setBytes(2, payload);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }

    private static List<Long> ids(long[] ids, int n) {
        return Arrays.stream(ids, 0, n).boxed().toList();
    }

    private static List<Long> ids(List<OutboxRow> rows) {
        return rows.stream().map(OutboxRow::id).toList();
    }
}
