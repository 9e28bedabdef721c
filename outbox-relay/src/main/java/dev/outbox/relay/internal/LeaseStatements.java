package dev.outbox.relay.internal;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import javax.sql.DataSource;

/**
 * The statements of the shard leases and the relay membership: claim, renew and release leases,
 * heartbeat, count the live relays and leave. {@link Db} hands them on; like its other statements
 * each borrows a connection in autocommit mode and returns it.
 */
final class LeaseStatements {
    private final DataSource dataSource;
    private final String owner;
    private final String claimSql;
    private final String renewSql;
    private final String releaseSql;
    private final String heartbeatSql;
    private final String liveSql;
    private final String purgeMembersSql;
    private final String leaveSql;

    LeaseStatements(DataSource dataSource, String schema, String owner) {
        this.dataSource = dataSource;
        this.owner = owner;
        String lease = schema + ".outbox_shard_lease";
        String member = schema + ".outbox_relay_member";
        this.claimSql = "update " + lease
                + " set owner = ?, epoch = epoch + 1, lease_until = now() + ? * interval '1 millisecond'"
                + " where shard in (select shard from " + lease + " where owner is null or lease_until < now()"
                + " order by shard limit ? for update skip locked) and (owner is null or lease_until < now())"
                + " returning shard, epoch";
        // Renew and release lock the rows they change in shard order first (the lock is taken above the
        // sort; FOR NO KEY UPDATE is the lock the UPDATE takes anyway), as the multi-shard writes lock
        // their lease rows in shard order (FOR KEY SHARE, which does not conflict with these: a write that
        // waits holds up no renewal): the relay's own statements never wait for each other in a cycle. A row changed
        // meanwhile is checked again once its lock is granted, so the shards
        // returned are those whose (shard, owner, epoch) held, as with a plain UPDATE.
        String mine = "k as (select x.shard from " + lease + " x join unnest(?::int[], ?::bigint[]) as o(shard, epoch)"
                + " on x.shard = o.shard where x.epoch = o.epoch and x.owner = ? order by x.shard for no key update of x)";
        this.renewSql =
                "with " + mine + " update " + lease + " l set lease_until = now() + ? * interval '1 millisecond'"
                        + " from k where l.shard = k.shard returning l.shard";
        this.releaseSql = "with " + mine + " update " + lease
                + " l set owner = null, lease_until = timestamptz '1970-01-01 00:00:00+00'"
                + " from k where l.shard = k.shard returning l.shard";
        this.heartbeatSql =
                "insert into " + member + " (owner, heartbeat_until) values (?, now() + ? * interval '1 millisecond')"
                        + " on conflict (owner) do update set heartbeat_until = excluded.heartbeat_until";
        this.liveSql = "select count(*) from " + member + " where heartbeat_until > now()";
        this.purgeMembersSql =
                "delete from " + member + " where heartbeat_until < now() - ? * interval '1 millisecond'";
        this.leaveSql = "delete from " + member + " where owner = ?";
    }

    private Connection connect() throws SQLException {
        return Db.connect(dataSource);
    }

    /** @return the shards claimed and their new epochs */
    Map<Integer, Long> claim(int max, Duration lease) throws SQLException {
        Map<Integer, Long> claimed = new LinkedHashMap<>();
        if (max <= 0) {
            return claimed;
        }
        try (Connection c = connect();
                PreparedStatement ps = c.prepareStatement(claimSql)) {
            ps.setString(1, owner);
            ps.setLong(2, lease.toMillis());
            ps.setInt(3, max);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    claimed.put(rs.getInt(1), rs.getLong(2));
                }
            }
        }
        return claimed;
    }

    /** @return the shards whose lease (shard, owner, epoch) still held and was extended */
    Set<Integer> renew(Map<Integer, Long> owned, Duration lease) throws SQLException {
        if (owned.isEmpty()) {
            return Set.of();
        }
        try (Connection c = connect();
                PreparedStatement ps = c.prepareStatement(renewSql)) {
            setShardsAndEpochs(c, ps, 1, owned);
            ps.setString(3, owner);
            ps.setLong(4, lease.toMillis());
            return shards(ps);
        }
    }

    /** @return the shards handed back (those whose lease this relay still held) */
    Set<Integer> release(Map<Integer, Long> owned) throws SQLException {
        if (owned.isEmpty()) {
            return Set.of();
        }
        try (Connection c = connect();
                PreparedStatement ps = c.prepareStatement(releaseSql)) {
            setShardsAndEpochs(c, ps, 1, owned);
            ps.setString(3, owner);
            return shards(ps);
        }
    }

    /** Joins or renews the membership; the row lives one lease. */
    void heartbeat(Duration lease) throws SQLException {
        try (Connection c = connect();
                PreparedStatement ps = c.prepareStatement(heartbeatSql)) {
            ps.setString(1, owner);
            ps.setLong(2, lease.toMillis());
            ps.executeUpdate();
        }
    }

    /** @return live relays (heartbeat not expired), this one included; deletes long-dead members */
    int liveMembers(Duration deadAfter) throws SQLException {
        try (Connection c = connect()) {
            try (PreparedStatement ps = c.prepareStatement(purgeMembersSql)) {
                ps.setLong(1, deadAfter.toMillis());
                ps.executeUpdate();
            }
            try (PreparedStatement ps = c.prepareStatement(liveSql);
                    ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
    }

    void leave() throws SQLException {
        try (Connection c = connect();
                PreparedStatement ps = c.prepareStatement(leaveSql)) {
            ps.setString(1, owner);
            ps.executeUpdate();
        }
    }

    private static Set<Integer> shards(PreparedStatement ps) throws SQLException {
        Set<Integer> out = new HashSet<>();
        try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
                out.add(rs.getInt(1));
            }
        }
        return out;
    }

    private static void setShardsAndEpochs(Connection c, PreparedStatement ps, int first, Map<Integer, Long> owned)
            throws SQLException {
        Integer[] shards = new Integer[owned.size()];
        Long[] epochs = new Long[owned.size()];
        int i = 0;
        for (var e : owned.entrySet()) {
            shards[i] = e.getKey();
            epochs[i++] = e.getValue();
        }
        ps.setArray(first, c.createArrayOf("integer", shards));
        ps.setArray(first + 1, c.createArrayOf("bigint", epochs));
    }
}
