package dev.outbox.relay.internal;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import javax.sql.DataSource;

/**
 * The statements of {@link ShardProbe}: the read of the idle shards' rows and the question which
 * shards hold rows above what they hold back. Like {@link Db}'s, each borrows a connection in
 * autocommit mode and returns it.
 */
final class ProbeStatements {
    private final DataSource dataSource;
    private final String probeSql;
    private final String probeReadSql;

    ProbeStatements(DataSource dataSource, String msg, boolean holdKey) {
        this.dataSource = dataSource;
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
        this.probeReadSql = "select g.snap, r.* from (select pg_current_snapshot()::text as snap) as g"
                + " left join lateral (select s.s, x.* from unnest(?::int[]) as s(s) cross join lateral ("
                + Db.columns(msg).replace("m.shard = ?", "m.shard = s.s") + (holdKey ? Db.holdBack(msg, "s.s") : "")
                + " order by m.id limit ?) as x) as r on true where g.snap is distinct from ?";
    }

    /**
     * @param shards the shards to look at
     * @return those of them that hold publishable (unparked) rows, seen in one snapshot
     */
    List<Integer> probe(int[] shards, long[] after) throws SQLException {
        List<Integer> found = new ArrayList<>();
        try (Connection c = Db.connect(dataSource);
                PreparedStatement ps = c.prepareStatement(probeSql)) {
            ps.setArray(1, Db.intArray(c, shards));
            ps.setArray(2, Db.longArray(c, after));
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    found.add(rs.getInt(1));
                }
            }
        }
        return found;
    }

    /** What the probe's read found: the snapshot it read in, and per shard its rows. */
    record ProbeRead(String snapshot, Map<Integer, List<OutboxRow>> rows) {
        /** The read did not run: no transaction ended since the snapshot it was given. */
        static final ProbeRead UNCHANGED = new ProbeRead(null, Map.of());
    }

    /**
     * The probe's read: for each shard, exactly what {@link Db#read} returns for it, in one statement and
     * one snapshot; nothing is read if the snapshot equals {@code unlessSnapshot}.
     *
     * @param unlessSnapshot the snapshot of the previous probe's read, or null
     * @return {@link ProbeRead#UNCHANGED} when no transaction ended since {@code unlessSnapshot}; else
     *     the snapshot and, per shard that holds publishable rows, up to {@code limit} of them in id
     *     order (shards without any are absent)
     */
    ProbeRead probeRead(int[] shards, int limit, String unlessSnapshot) throws SQLException {
        Map<Integer, List<OutboxRow>> found = new HashMap<>();
        String snapshot = null;
        try (Connection c = Db.connect(dataSource);
                PreparedStatement ps = c.prepareStatement(probeReadSql)) {
            ps.setArray(1, Db.intArray(c, shards));
            ps.setInt(2, limit);
            ps.setString(3, unlessSnapshot);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    snapshot = rs.getString(1);
                    int shard = rs.getInt(2);
                    if (!rs.wasNull()) {
                        found.computeIfAbsent(shard, x -> new ArrayList<>()).add(Db.row(rs, 3));
                    }
                }
            }
        }
        return snapshot == null ? ProbeRead.UNCHANGED : new ProbeRead(snapshot, found);
    }
}
