package dev.outbox.relay.internal;

import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import javax.sql.DataSource;

/**
 * The statements of {@link ShardProbe}: the read of the idle shards' rows, the question which
 * shards hold rows above what they hold back, and the wait for the next ended transaction. They run
 * on a {@link Session}, a connection in autocommit mode that the probe holds from one probe to the
 * next.
 */
final class ProbeStatements {
    /** SQLStates of a wait that cannot run here: no such function (a schema before migration V7), or no privilege to run it. */
    private static final Set<String> WAIT_UNAVAILABLE = Set.of("42883", "42501");

    private final DataSource dataSource;
    private final String probeSql;
    private final String probeReadSql;
    private final String waitSql;
    private final String payloadsSql;
    private final PayloadCap cap;

    /** @param cap the payload cap of each shard's rows */
    ProbeStatements(DataSource dataSource, String schema, boolean holdKey, PayloadCap cap) {
        this.dataSource = dataSource;
        this.cap = cap;
        String msg = schema + ".outbox_message";
        // one descent of the partial index of publishable rows per shard, stopping at the first visible
        // entry (LIMIT 1 in a LATERAL keeps it a per-shard index probe: written as EXISTS, PostgreSQL
        // may plan a hash semi-join that reads every publishable row, the whole backlog)
        // (rows up to s.after of a shard are known to be held: their topic has no metadata)
        this.probeSql =
                "select s.s from unnest(?::int[], ?::bigint[]) as s(s, after) cross join lateral (select 1 from " + msg
                        + " m where m.shard = s.s and m.parked_at is null and m.id > s.after limit 1) as x";
        // the probe's read for idle shards that hold nothing back: per shard exactly the rows readSql
        // would return (a LATERAL per shard, so each stays one descent of the partial index)
        // It runs only if a transaction ended since the snapshot of the last one (a one-time filter: no
        // row of the outbox is looked at otherwise), and returns its own snapshot with the rows. Rows
        // become visible only when a transaction commits, and every commit changes the snapshot (its
        // xid leaves the list of running ones, or xmax moves past it), so an unchanged snapshot means
        // that nothing can have become visible since.
        // Rows whose delete a shard did not wait for (PendingDeletes) are left out: they were published.
        // The ids are checked through a hashed subplan, built once per statement.
        this.probeReadSql = "select g.snap, r.* from (select pg_current_snapshot()::text as snap) as g"
                + " left join lateral (select s.s, x.* from unnest(?::int[]) as s(s) cross join lateral ("
                + Db.columns(msg).replace("m.shard = ?", "m.shard = s.s") + (holdKey ? Db.holdBack(msg, "s.s") : "")
                + " and m.id not in (select unnest(?::bigint[]))"
                + " order by m.id limit ?) as x) as r on true where g.snap is distinct from ?";
        // migration V7: returns once the snapshot differs from the one given, or after the longest wait
        this.waitSql = "select " + schema + ".outbox_wait_for_change(?, ?, ?)";
        this.payloadsSql = Db.payloadsSql(msg);
    }

    /** @return whether {@code e} says that the wait for a change cannot run on this database, for good */
    static boolean waitUnavailable(SQLException e) {
        return WAIT_UNAVAILABLE.contains(e.getSQLState());
    }

    /**
     * @return a session on a connection borrowed from the pool (in autocommit mode), returned by
     *     {@link Session#close()}
     */
    Session open() throws SQLException {
        return new Session(Db.connect(dataSource));
    }

    /** What the probe's read found: the snapshot it read in, and per shard its rows. */
    record ProbeRead(String snapshot, Map<Integer, List<OutboxRow>> rows) {
        /** The read did not run: no transaction ended since the snapshot it was given. */
        static final ProbeRead UNCHANGED = new ProbeRead(null, Map.of());
    }

    /**
     * One connection of the pool with the probe's read prepared on it. An idle relay probes 200 times
     * a second and nearly every probe reads nothing, so the session keeps what would otherwise be done
     * again each time: borrowing the connection, preparing the statement, and building the array of
     * shards, which is bound again only when the shards change (a statement keeps its parameters from
     * one execution to the next). Used by one thread at a time; after a failed statement the caller
     * closes it, since the connection may be broken.
     */
    final class Session implements AutoCloseable {
        private final Connection connection;
        private PreparedStatement read;
        private PreparedStatement wait;
        // the shards bound to the read, and their array
        private int[] readShards;
        private Array readArray;

        private Session(Connection connection) {
            this.connection = connection;
        }

        /**
         * @param shards the shards to look at
         * @return those of them that hold publishable (unparked) rows above {@code after}, seen in one snapshot
         */
        List<Integer> probe(int[] shards, long[] after) throws SQLException {
            List<Integer> found = new ArrayList<>();
            try (PreparedStatement ps = connection.prepareStatement(probeSql)) {
                ps.setArray(1, Db.intArray(connection, shards));
                ps.setArray(2, Db.longArray(connection, after));
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        found.add(rs.getInt(1));
                    }
                }
            }
            return found;
        }

        /**
         * The probe's read: for each shard, exactly what {@link Db#read} returns for it, in one statement
         * and one snapshot; nothing is read if the snapshot equals {@code unlessSnapshot}.
         *
         * @param published ids of published rows whose delete has not committed yet: left out
         * @param unlessSnapshot the snapshot of the previous probe's read, or null
         * @return {@link ProbeRead#UNCHANGED} when no transaction ended since {@code unlessSnapshot};
         *     else the snapshot and, per shard that holds publishable rows, up to {@code limit} of them
         *     in id order (shards without any are absent)
         */
        ProbeRead probeRead(int[] shards, long[] published, int limit, String unlessSnapshot) throws SQLException {
            if (read == null) {
                read = connection.prepareStatement(probeReadSql);
            }
            if (!Arrays.equals(shards, readShards)) {
                Array array = Db.intArray(connection, shards);
                read.setArray(1, array);
                if (readArray != null) {
                    readArray.free();
                }
                readArray = array;
                readShards = shards.clone();
            }
            Array excluded = Db.longArray(connection, published);
            read.setInt(2, cap.inlineLimit(limit));
            read.setArray(3, excluded);
            read.setInt(4, limit);
            read.setString(5, unlessSnapshot);
            Map<Integer, List<OutboxRow>> found = null;
            // per shard, the lengths of the payloads left out for their size (PayloadCap)
            Map<Integer, int[]> leftOut = null;
            String snapshot = null;
            try (ResultSet rs = read.executeQuery()) {
                while (rs.next()) {
                    snapshot = rs.getString(1);
                    int shard = rs.getInt(2);
                    if (!rs.wasNull()) {
                        if (found == null) {
                            found = new HashMap<>();
                            leftOut = new HashMap<>();
                        }
                        List<OutboxRow> rows = found.computeIfAbsent(shard, x -> new ArrayList<>());
                        OutboxRow row = Db.row(rs, 3);
                        int length = Db.leftOut(rs, 3, row, Set.of());
                        if (length >= 0 || leftOut.containsKey(shard)) {
                            leftOut.computeIfAbsent(shard, x -> filled(limit))[rows.size()] = length;
                        }
                        rows.add(row);
                    }
                }
            } finally {
                excluded.free();
            }
            if (snapshot == null) {
                return ProbeRead.UNCHANGED;
            }
            if (found == null) {
                return new ProbeRead(snapshot, Map.of());
            }
            // the payloads left out for their size, of the rows each shard keeps, in one statement for all
            return new ProbeRead(
                    snapshot, cap.applyAll(found, leftOut, ids -> Db.payloads(connection, payloadsSql, ids)));
        }

        /** @return an array of {@code n} times -1: no payload left out */
        private static int[] filled(int n) {
            int[] lengths = new int[n];
            Arrays.fill(lengths, -1);
            return lengths;
        }

        /**
         * Waits in PostgreSQL until a transaction ends (the snapshot differs from {@code since}), looking
         * every {@code stepMillis}, for at most {@code maxMillis}. The connection is busy meanwhile.
         *
         * @param since the snapshot of the probe's last read
         * @return true when a transaction ended since {@code since}; false after {@code maxMillis} without one
         * @throws SQLException also when the database has no such function ({@link #waitUnavailable})
         */
        boolean waitForChange(String since, int stepMillis, int maxMillis) throws SQLException {
            if (wait == null) {
                wait = connection.prepareStatement(waitSql);
            }
            wait.setString(1, since);
            wait.setInt(2, stepMillis);
            wait.setInt(3, maxMillis);
            try (ResultSet rs = wait.executeQuery()) {
                return rs.next() && rs.getBoolean(1);
            }
        }

        /** Returns the connection to the pool; a failure to close is not reported (the connection is dropped either way). */
        @Override
        public void close() {
            try (connection) {
                if (read != null) {
                    read.close();
                }
                if (wait != null) {
                    wait.close();
                }
            } catch (SQLException e) {
                // the pool discards a connection that failed
            }
        }
    }
}
