package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import java.util.Set;
import javax.sql.DataSource;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The read of a shard that holds more rows than it remembers, on real PostgreSQL: it returns, in id
 * order, exactly the rows that may be sent before the held ones. G3: no row of a key at or after its
 * first row of a held topic in the shard, no row behind a parked row of its key (HOLD_KEY), no row of
 * a key waiting for a partition leader. G7: every other row, however many held rows come first, keyless
 * rows and a held key's rows before its first held one included.
 */
@Tag("integration")
@ExtendWith(RealServices.class)
class PastHeldReadIT {
    private static final int SHARD = 3;
    private static final String HELD = "held-topic";
    private static final String OK = "ok-topic";

    @Test
    void leavesOutTheHeldTopicsAndTheirKeysAndNothingElse(TestDatabase db) throws Exception {
        String msg = db.schema() + ".outbox_message";
        long early;
        long afterE;
        long other;
        long keyless;
        long afterParked;
        long last;
        try (Connection c = db.connect()) {
            // a row of key e for a healthy topic before e's held row: it may go out first
            early = insert(c, msg, SHARD, OK, "e", false);
            for (int i = 0; i < 300; i++) {
                insert(c, msg, SHARD, HELD, "h" + (i % 50), false);
            }
            insert(c, msg, SHARD, HELD, null, false);
            insert(c, msg, SHARD, HELD, "e", false);
            afterE = insert(c, msg, SHARD, OK, "e", false); // behind its key's held row
            insert(c, msg, SHARD, OK, "h7", false); // behind its key's held rows
            other = insert(c, msg, SHARD, OK, "other", false);
            insert(c, msg, SHARD, OK, "waiting", false); // a key waiting for a partition leader
            insert(c, msg, SHARD, OK, "p", true); // parked
            insert(c, msg, SHARD, OK, "p", false); // behind its key's parked row
            keyless = insert(c, msg, SHARD, OK, null, false);
            afterParked = insert(c, msg, SHARD, "another-ok", "q", false);
            insert(c, msg, SHARD + 1, OK, "elsewhere", false); // another shard
            last = insert(c, msg, SHARD, OK, "other", false);
            try (Statement st = c.createStatement()) {
                st.execute("analyze " + msg);
            }
        }
        Db rows = new Db(db.dataSource(), db.schema(), "past-held-read-it", true, 1 << 20);

        List<OutboxRow> read = rows.readPastHeld(SHARD, Set.of(HELD), new long[0], new String[] {"waiting"}, 500);
        assertThat(read).extracting(OutboxRow::id).containsExactly(early, other, keyless, afterParked, last);
        assertThat(read).allSatisfy(r -> assertThat(r.takePayload()).hasSize(8));

        // the limit cuts in id order
        assertThat(rows.readPastHeld(SHARD, Set.of(HELD), new long[0], new String[] {"waiting"}, 2))
                .extracting(OutboxRow::id)
                .containsExactly(early, other);

        // the ids given (a batch in flight) are not read again
        assertThat(rows.readPastHeld(SHARD, Set.of(HELD), new long[] {early, other}, new String[] {"waiting"}, 500))
                .extracting(OutboxRow::id)
                .containsExactly(keyless, afterParked, last);

        // once the held topic's row of key e is parked, e's later row is no longer held by it (HOLD_KEY
        // holds it now: behind a parked row of its key)
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("update " + msg + " set parked_at = now() where topic = '" + HELD + "' and message_key = 'e'");
        }
        assertThat(rows.readPastHeld(SHARD, Set.of(HELD), new long[0], new String[0], 500))
                .extracting(OutboxRow::id)
                .doesNotContain(afterE)
                .contains(early);
        // without the hold-back check, parked rows hold nothing: e's later row goes out
        Db skipping = new Db(db.dataSource(), db.schema(), "past-held-read-it", false, 1 << 20);
        assertThat(skipping.readPastHeld(SHARD, Set.of(HELD), new long[0], new String[0], 500))
                .extracting(OutboxRow::id)
                .contains(early, afterE);
    }

    /**
     * Where the held keys' first ids would make a jsonb object past PostgreSQL's 256 MB limit (millions
     * of held keys in one shard; SQLState 54000, injected here), the read falls back to leaving those
     * keys out whole: the rows of other keys still go out, no row of a held key does (G3 kept, G7 for
     * the other keys). Any other failure of the read is the caller's to handle.
     */
    @Test
    void pastTheSizeLimitOfTheFirstIdsTheHeldKeysAreLeftOutWhole(TestDatabase db) throws Exception {
        int shard = SHARD + 10;
        String msg = db.schema() + ".outbox_message";
        long other;
        long last;
        try (Connection c = db.connect()) {
            insert(c, msg, shard, OK, "e", false); // before e's held row: left out too in this form
            for (int i = 0; i < 20; i++) {
                insert(c, msg, shard, HELD, "h" + (i % 5), false);
            }
            insert(c, msg, shard, HELD, "e", false);
            insert(c, msg, shard, OK, "e", false);
            other = insert(c, msg, shard, OK, "other", false);
            last = insert(c, msg, shard, OK, null, false);
        }
        Db tooLarge = new Db(failing(db.dataSource(), "jsonb_object_agg", "54000"), db.schema(), "it", true, 1 << 20);
        assertThat(tooLarge.readPastHeld(shard, Set.of(HELD), new long[0], new String[0], 500))
                .extracting(OutboxRow::id)
                .containsExactly(other, last);

        Db cancelled = new Db(failing(db.dataSource(), "jsonb_object_agg", "57014"), db.schema(), "it", true, 1 << 20);
        assertThatThrownBy(() -> cancelled.readPastHeld(shard, Set.of(HELD), new long[0], new String[0], 500))
                .isInstanceOf(SQLException.class)
                .extracting(e -> ((SQLException) e).getSQLState())
                .isEqualTo("57014");
    }

    /**
     * @return {@code real}, except that the statements whose SQL contains {@code marker} fail with
     *     {@code sqlState} when executed
     */
    private static DataSource failing(DataSource real, String marker, String sqlState) {
        ClassLoader loader = PastHeldReadIT.class.getClassLoader();
        return (DataSource) Proxy.newProxyInstance(loader, new Class<?>[] {DataSource.class}, (p, m, args) -> {
            Object connection = call(real, m, args);
            if (!m.getName().equals("getConnection")) {
                return connection;
            }
            return Proxy.newProxyInstance(loader, new Class<?>[] {Connection.class}, (pc, mc, argsc) -> {
                Object statement = call(connection, mc, argsc);
                if (!mc.getName().equals("prepareStatement") || !((String) argsc[0]).contains(marker)) {
                    return statement;
                }
                return Proxy.newProxyInstance(loader, new Class<?>[] {PreparedStatement.class}, (ps, ms, argss) -> {
                    if (ms.getName().equals("executeQuery")) {
                        throw new SQLException("injected failure", sqlState);
                    }
                    return call(statement, ms, argss);
                });
            });
        });
    }

    private static Object call(Object target, Method method, Object[] args) throws Throwable {
        try {
            return method.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    private static long insert(Connection c, String msg, int shard, String topic, String key, boolean parked)
            throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("insert into " + msg
                + " (message_id, shard, topic, message_key, message_type, content_type, payload, parked_at)"
                + " values (gen_random_uuid(), ?, ?, ?, 'T', 'application/octet-stream', '\\x0102030405060708',"
                + " case when ? then now() end) returning id")) {
            ps.setInt(1, shard);
            ps.setString(2, topic);
            ps.setString(3, key);
            ps.setBoolean(4, parked);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }
}
