package dev.outbox.relay.admin;

import static dev.outbox.relay.admin.AdminRows.instant;
import static dev.outbox.relay.admin.AdminRows.seconds;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * The statements behind {@link RelayAdmin#status()}: shards (those that hold rows without a lease row
 * too), members, vacuum statistics and the xmin report.
 */
final class StatusQuery {
    private final String schema;
    private final String shardSql;
    private final String withoutLeaseSql;
    private final String memberSql;

    StatusQuery(String schema) {
        this.schema = schema;
        String message = schema + ".outbox_message";
        String lease = schema + ".outbox_shard_lease";
        // per shard, through the relay's partial indexes: the rows of one shard, never the whole table
        String counts = " cross join lateral (select count(*) as backlog from " + message + " m"
                + "   where m.shard = l.shard and m.parked_at is null) b"
                + " left join lateral (select m.created_at from " + message + " m"
                + "   where m.shard = l.shard and m.parked_at is null order by m.id limit 1) o on true"
                + " cross join lateral (select count(*) as parked from " + message + " m"
                + "   where m.shard = l.shard and m.parked_at is not null) p";
        this.shardSql = "select l.shard, l.owner, l.epoch, l.lease_until, l.lease_until > clock_timestamp() as live,"
                + " b.backlog, extract(epoch from clock_timestamp() - o.created_at) as oldest_seconds, p.parked"
                + " from " + lease + " l" + counts + " order by l.shard";
        // the shards that hold rows, one index descent each on the same partial indexes (a skip scan),
        // rather than a scan of every row; those without a lease row are counted as above
        this.withoutLeaseSql = "with recursive publishable(shard) as ("
                + distinctShards(message, "is null") + "), parked_shards(shard) as ("
                + distinctShards(message, "is not null") + "),"
                + " unleased(shard) as (select shard from publishable where shard is not null"
                + "   union select shard from parked_shards where shard is not null"
                + "   except select shard from " + lease + ")"
                + " select l.shard, b.backlog, extract(epoch from clock_timestamp() - o.created_at) as oldest_seconds,"
                + " p.parked from unleased l" + counts + " order by l.shard";
        this.memberSql =
                "select m.owner, m.started_at, m.heartbeat_until, m.heartbeat_until > clock_timestamp() as live,"
                        + " (select count(*) from " + lease
                        + " l where l.owner = m.owner and l.lease_until > clock_timestamp()) as shards"
                        + " from " + schema + ".outbox_relay_member m order by m.started_at, m.owner";
    }

    /** @return the body of a recursive query of the distinct shards of the rows whose parked_at {@code parked} */
    private static String distinctShards(String message, String parked) {
        return "(select m.shard from " + message + " m where m.parked_at " + parked + " order by m.shard limit 1)"
                + " union all select (select m.shard from " + message + " m where m.parked_at " + parked
                + " and m.shard > s.shard order by m.shard limit 1) from "
                + (parked.equals("is null") ? "publishable" : "parked_shards") + " s where s.shard is not null";
    }

    RelayStatus read(Connection c) throws SQLException {
        Instant at;
        try (PreparedStatement st = c.prepareStatement("select clock_timestamp()");
                ResultSet rs = st.executeQuery()) {
            rs.next();
            at = instant(rs, 1);
        }
        List<ShardStatus> shards = readShards(c, shardSql, true);
        List<ShardStatus> unleased = readShards(c, withoutLeaseSql, false);
        Totals leased = Totals.of(shards);
        Totals withoutLease = Totals.of(unleased);
        ShardsWithoutLeaseRow withoutLeaseRow = new ShardsWithoutLeaseRow(
                unleased,
                withoutLease.backlog(),
                withoutLease.oldest(),
                withoutLease.parked(),
                unleased.isEmpty() ? null : withoutLeaseFix(shards.size()));
        List<RelayMember> members = new ArrayList<>();
        try (PreparedStatement st = c.prepareStatement(memberSql);
                ResultSet rs = st.executeQuery()) {
            while (rs.next()) {
                members.add(new RelayMember(
                        rs.getString("owner"),
                        instant(rs, "started_at"),
                        instant(rs, "heartbeat_until"),
                        rs.getBoolean("live"),
                        rs.getInt("shards")));
            }
        }
        XminReport.Holders xmin = XminReport.read(c);
        return new RelayStatus(
                at,
                List.copyOf(shards),
                leased.backlog() + withoutLease.backlog(),
                older(leased.oldest(), withoutLease.oldest()),
                leased.parked() + withoutLease.parked(),
                List.copyOf(members),
                xmin.holders(),
                tableStats(c),
                withoutLeaseRow,
                xmin.catalogHolders());
    }

    /**
     * @param leased whether {@code sql} reads the lease table's shards (with owner, epoch, lease) or the
     *     shards holding rows without a lease row
     */
    private static List<ShardStatus> readShards(Connection c, String sql, boolean leased) throws SQLException {
        List<ShardStatus> shards = new ArrayList<>();
        try (PreparedStatement st = c.prepareStatement(sql);
                ResultSet rs = st.executeQuery()) {
            while (rs.next()) {
                shards.add(new ShardStatus(
                        rs.getInt("shard"),
                        rs.getLong("backlog"),
                        age(rs),
                        rs.getLong("parked"),
                        leased ? rs.getString("owner") : null,
                        leased ? rs.getLong("epoch") : 0,
                        leased ? instant(rs, "lease_until") : null,
                        leased && rs.getBoolean("live")));
            }
        }
        return shards;
    }

    /** The backlog, oldest publishable row and parked rows of some shards, summed. */
    private record Totals(long backlog, Duration oldest, long parked) {
        static Totals of(List<ShardStatus> shards) {
            long backlog = 0;
            long parked = 0;
            Duration oldest = null;
            for (ShardStatus s : shards) {
                backlog += s.backlog();
                parked += s.parked();
                oldest = older(oldest, s.oldestAge());
            }
            return new Totals(backlog, oldest, parked);
        }
    }

    /** @return what to do about rows on shards without a lease row, for an install of {@code installed} shards */
    private String withoutLeaseFix(int installed) {
        return "A writer stored these rows with another shard count than this install's " + installed
                + " (the row count of " + schema + ".outbox_shard_lease). Give every writer the install's count"
                + " (Outbox.builder().shards(" + installed + ")), then move each of these rows to the shard that count"
                + " gives its key (dev.outbox.core.Shards.of(key, messageId, " + installed + "); shard % " + installed
                + " when the writer's count was a multiple of " + installed + "), and run the migrations up to V5,"
                + " whose constraint outbox_message_shard_range then refuses such rows.";
    }

    private static Duration age(ResultSet rs) throws SQLException {
        double seconds = rs.getDouble("oldest_seconds");
        return rs.wasNull() ? null : seconds(seconds);
    }

    private static Duration older(Duration a, Duration b) {
        if (a == null) {
            return b;
        }
        return b == null || a.compareTo(b) >= 0 ? a : b;
    }

    private TableStats tableStats(Connection c) throws SQLException {
        String sql = "select n_live_tup, n_dead_tup, greatest(last_vacuum, last_autovacuum) as last_vacuum"
                + " from pg_stat_all_tables where schemaname = ? and relname = 'outbox_message'";
        try (PreparedStatement st = c.prepareStatement(sql)) {
            st.setString(1, schema);
            try (ResultSet rs = st.executeQuery()) {
                if (!rs.next()) {
                    return new TableStats(0, 0, null);
                }
                return new TableStats(rs.getLong("n_live_tup"), rs.getLong("n_dead_tup"), instant(rs, "last_vacuum"));
            }
        }
    }
}
