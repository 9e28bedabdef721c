package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.outbox.relay.Relay;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The probe's read on real PostgreSQL (G1, G3): for every shard asked about it returns exactly the
 * rows the shard's own read returns, in the same order, including the rows held behind a parked row
 * of their key under {@code HOLD_KEY}, and it finds a row that commits late with a lower id.
 */
@Tag("integration")
@ExtendWith(RealServices.class)
class ProbeReadIT {
    private static final int[] SHARDS = {1, 2, 3, 4};
    private static final long[] NONE = {};

    @Test
    void readsForEachShardWhatItsOwnReadReturns(TestDatabase db) throws Exception {
        String msg = db.schema() + ".outbox_message";
        try (Connection c = db.connect()) {
            for (int i = 0; i < 5; i++) {
                insert(c, msg, 1, "a-" + i);
                insert(c, msg, 2, "k");
                insert(c, msg, 2, "b-" + i);
                insert(c, msg, 3, null);
            }
            // the first row of key k in shard 2 is parked: HOLD_KEY holds every later row of k
            try (Statement st = c.createStatement()) {
                st.execute("update " + msg + " set parked_at = now() where id = (select min(id) from " + msg
                        + " where shard = 2 and message_key = 'k')");
            }
        }
        for (boolean holdKey : new boolean[] {false, true}) {
            Db rows = new Db(db.dataSource(), db.schema(), "probe-read-it", holdKey, Relay.Builder.DEFAULT_BATCH_BYTES);
            try (ProbeStatements.Session session = rows.probes().open()) {
                readsWhatTheShardsOwnReadsReturn(rows, session, holdKey);
            }
        }
    }

    /**
     * Rows whose delete a shard did not wait for are left out of the probe's read (G3: a published row
     * handed to its shard again would land after later rows of its key), and only those: the shard's
     * other rows come as before, the limit counted without the ids left out.
     */
    @Test
    void leavesOutThePublishedRowsWhoseDeleteIsPending(TestDatabase db) throws Exception {
        String msg = db.schema() + ".outbox_message";
        long[] ids = new long[6];
        try (Connection c = db.connect()) {
            for (int i = 0; i < ids.length; i++) {
                ids[i] = insert(c, msg, 5, "p-" + i);
            }
        }
        Db rows = new Db(db.dataSource(), db.schema(), "probe-read-it", true, Relay.Builder.DEFAULT_BATCH_BYTES);
        try (ProbeStatements.Session session = rows.probes().open()) {
            List<OutboxRow> all =
                    session.probeRead(new int[] {5}, NONE, 500, null).rows().get(5);
            assertThat(ids(all)).containsExactly(ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]);

            List<OutboxRow> rest = session.probeRead(new int[] {5}, new long[] {ids[3], ids[0], ids[1]}, 2, null)
                    .rows()
                    .get(5);
            assertThat(ids(rest)).as("the pending ids left out, then the limit").containsExactly(ids[2], ids[4]);

            assertThat(session.probeRead(new int[] {5}, ids, 500, null).rows()).doesNotContainKey(5);
        }
    }

    /** The probe's read on {@code session} against each shard's own read, for two limits. */
    private static void readsWhatTheShardsOwnReadsReturn(Db rows, ProbeStatements.Session session, boolean holdKey)
            throws SQLException {
        for (int limit : new int[] {3, 500}) {
            Map<Integer, List<OutboxRow>> read =
                    session.probeRead(SHARDS, NONE, limit, null).rows();

            assertThat(read).doesNotContainKey(4);
            for (int shard : new int[] {1, 2, 3}) {
                assertThat(ids(read.get(shard)))
                        .as("shard %d, holdKey %s, limit %d", shard, holdKey, limit)
                        .containsExactlyElementsOf(ids(rows.read(shard, limit)))
                        .isNotEmpty();
            }
        }
        List<String> keys = session.probeRead(SHARDS, NONE, 500, null).rows().get(2).stream()
                .map(OutboxRow::key)
                .toList();
        if (holdKey) {
            assertThat(keys).doesNotContain("k");
        } else {
            assertThat(keys).contains("k");
        }
    }

    /**
     * The probe skips the outbox while no transaction ended since its last read (G1: nothing is
     * skipped that could have become visible): an unchanged snapshot reads nothing, and the commit of
     * a transaction that was running at that snapshot, with a lower id than the rows already read,
     * makes the next read run and find its row.
     */
    @Test
    void skipsTheOutboxOnlyWhileNoTransactionEnded(TestDatabase db) throws Exception {
        String msg = db.schema() + ".outbox_message";
        Db rows = new Db(db.dataSource(), db.schema(), "probe-read-it", false, Relay.Builder.DEFAULT_BATCH_BYTES);
        try (Connection late = db.connect();
                Connection early = db.connect();
                ProbeStatements.Session session = rows.probes().open()) {
            late.setAutoCommit(false);
            long lateId = insert(late, msg, 6, "late");
            long earlyId = insert(early, msg, 6, "early");
            assertThat(lateId).isLessThan(earlyId);

            ProbeStatements.ProbeRead first = session.probeRead(new int[] {6}, NONE, 500, null);
            assertThat(first.snapshot()).isNotNull();
            assertThat(ids(first.rows().get(6))).containsExactly(earlyId);
            // nothing ended since: nothing read
            assertThat(session.probeRead(new int[] {6}, NONE, 500, first.snapshot()))
                    .isSameAs(ProbeStatements.ProbeRead.UNCHANGED);

            late.commit();
            ProbeStatements.ProbeRead second = session.probeRead(new int[] {6}, NONE, 500, first.snapshot());
            assertThat(second.snapshot()).isNotEqualTo(first.snapshot());
            assertThat(ids(second.rows().get(6))).containsExactly(lateId, earlyId);
            // a read that runs and finds nothing still returns its snapshot
            ProbeStatements.ProbeRead empty = session.probeRead(new int[] {7}, NONE, 500, first.snapshot());
            assertThat(empty.snapshot()).isEqualTo(second.snapshot());
            assertThat(empty.rows()).isEmpty();
        }
    }

    /**
     * The probe keeps one session from one probe to the next, and the session binds the array of shards
     * again only when the shards change: each read on it reads the shards it is given now, not those of
     * an earlier read, even when the caller reuses and changes its array.
     */
    @Test
    void aSessionReadsTheShardsItIsGivenEachTime(TestDatabase db) throws Exception {
        String msg = db.schema() + ".outbox_message";
        Db rows = new Db(db.dataSource(), db.schema(), "probe-read-it", false, Relay.Builder.DEFAULT_BATCH_BYTES);
        long eight;
        long nine;
        try (Connection c = db.connect()) {
            eight = insert(c, msg, 8, null);
            nine = insert(c, msg, 9, null);
        }
        try (ProbeStatements.Session session = rows.probes().open()) {
            int[] shards = {8};
            assertThat(session.probeRead(shards, NONE, 500, null).rows()).containsOnlyKeys(8);
            ProbeStatements.ProbeRead again = session.probeRead(shards, NONE, 500, null);
            assertThat(ids(again.rows().get(8))).containsExactly(eight);
            assertThat(session.probeRead(shards, NONE, 500, again.snapshot()))
                    .isSameAs(ProbeStatements.ProbeRead.UNCHANGED);

            shards[0] = 9;
            ProbeStatements.ProbeRead other = session.probeRead(shards, NONE, 500, null);
            assertThat(other.rows()).containsOnlyKeys(9);
            assertThat(ids(other.rows().get(9))).containsExactly(nine);

            Map<Integer, List<OutboxRow>> both =
                    session.probeRead(new int[] {8, 9}, NONE, 500, null).rows();
            assertThat(both).containsOnlyKeys(8, 9);
            assertThat(session.probeRead(new int[] {7}, NONE, 500, null).rows()).isEmpty();
        }
    }

    /**
     * The probe's wait in PostgreSQL (migration V7), G1: it returns as soon as a transaction ends after
     * the snapshot it is given, here the commit of a row with a lower id than a row already read, and
     * the read after it finds that row; given a snapshot that is already stale, it returns at once.
     */
    @Test
    void theWaitEndsWhenATransactionEnds(TestDatabase db) throws Exception {
        String msg = db.schema() + ".outbox_message";
        Db rows = new Db(db.dataSource(), db.schema(), "probe-read-it", false, Relay.Builder.DEFAULT_BATCH_BYTES);
        ExecutorService waiter = Executors.newSingleThreadExecutor();
        try (Connection late = db.connect();
                Connection early = db.connect();
                ProbeStatements.Session session = rows.probes().open()) {
            late.setAutoCommit(false);
            long lateId = insert(late, msg, 10, "late");
            long earlyId = insert(early, msg, 10, "early");
            ProbeStatements.ProbeRead first = session.probeRead(new int[] {10}, NONE, 500, null);
            assertThat(ids(first.rows().get(10))).containsExactly(earlyId);

            // far longer than the test waits for it: a wait that did not see the commit would time out here
            Future<Boolean> waited = waiter.submit(() -> session.waitForChange(first.snapshot(), 1, 10_000));
            Thread.sleep(200);
            late.commit();
            assertThat(waited.get(5, TimeUnit.SECONDS)).isTrue();

            ProbeStatements.ProbeRead after = session.probeRead(new int[] {10}, NONE, 500, first.snapshot());
            assertThat(ids(after.rows().get(10))).containsExactly(lateId, earlyId);
            assertThat(session.waitForChange(first.snapshot(), 1, 10_000)).isTrue();
        } finally {
            waiter.shutdownNow();
        }
    }

    /** A schema without the wait's function (before migration V7) is told apart from a failing database. */
    @Test
    void aSchemaWithoutTheWaitIsRecognised(TestDatabase db) throws Exception {
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("drop function " + db.schema() + ".outbox_wait_for_change(text, integer, integer)");
        }
        Db rows = new Db(db.dataSource(), db.schema(), "probe-read-it", false, Relay.Builder.DEFAULT_BATCH_BYTES);
        try (ProbeStatements.Session session = rows.probes().open()) {
            String snapshot = session.probeRead(new int[] {11}, NONE, 500, null).snapshot();
            assertThatThrownBy(() -> session.waitForChange(snapshot, 1, 10))
                    .isInstanceOfSatisfying(
                            SQLException.class,
                            e -> assertThat(ProbeStatements.waitUnavailable(e))
                                    .as(e.getSQLState())
                                    .isTrue());
        }
    }

    private static long insert(Connection c, String msg, int shard, String key) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("insert into " + msg
                + " (message_id, shard, topic, message_key, message_type, content_type, payload)"
                + " values (gen_random_uuid(), ?, 'probe-read', ?, 'T', 'text/plain', '\\x01') returning id")) {
            ps.setInt(1, shard);
            ps.setString(2, key);
            try (var rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }

    private static List<Long> ids(List<OutboxRow> rows) {
        return rows.stream().map(OutboxRow::id).toList();
    }
}
