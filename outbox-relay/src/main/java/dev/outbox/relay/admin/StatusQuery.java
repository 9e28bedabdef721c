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

/** The statements behind {@link RelayAdmin#status()}: shards, members, vacuum statistics and the xmin report. */
final class StatusQuery {
    private final String schema;
    private final String shardSql;
    private final String memberSql;

    StatusQuery(String schema) {
        this.schema = schema;
        String message = schema + ".outbox_message";
        String lease = schema + ".outbox_shard_lease";
        this.shardSql = "select l.shard, l.owner, l.epoch, l.lease_until, l.lease_until > clock_timestamp() as live,"
                + " b.backlog, extract(epoch from clock_timestamp() - o.created_at) as oldest_seconds, p.parked"
                + " from " + lease + " l"
                + " cross join lateral (select count(*) as backlog from " + message + " m"
                + "   where m.shard = l.shard and m.parked_at is null) b"
                + " left join lateral (select m.created_at from " + message + " m"
                + "   where m.shard = l.shard and m.parked_at is null order by m.id limit 1) o on true"
                + " cross join lateral (select count(*) as parked from " + message + " m"
                + "   where m.shard = l.shard and m.parked_at is not null) p"
                + " order by l.shard";
        this.memberSql =
                "select m.owner, m.started_at, m.heartbeat_until, m.heartbeat_until > clock_timestamp() as live,"
                        + " (select count(*) from " + lease
                        + " l where l.owner = m.owner and l.lease_until > clock_timestamp()) as shards"
                        + " from " + schema + ".outbox_relay_member m order by m.started_at, m.owner";
    }

    RelayStatus read(Connection c) throws SQLException {
        Instant at;
        try (PreparedStatement st = c.prepareStatement("select clock_timestamp()");
                ResultSet rs = st.executeQuery()) {
            rs.next();
            at = instant(rs, 1);
        }
        List<ShardStatus> shards = new ArrayList<>();
        long backlog = 0;
        long parked = 0;
        Duration oldest = null;
        try (PreparedStatement st = c.prepareStatement(shardSql);
                ResultSet rs = st.executeQuery()) {
            while (rs.next()) {
                double seconds = rs.getDouble("oldest_seconds");
                Duration age = rs.wasNull() ? null : seconds(seconds);
                ShardStatus s = new ShardStatus(
                        rs.getInt("shard"),
                        rs.getLong("backlog"),
                        age,
                        rs.getLong("parked"),
                        rs.getString("owner"),
                        rs.getLong("epoch"),
                        instant(rs, "lease_until"),
                        rs.getBoolean("live"));
                shards.add(s);
                backlog += s.backlog();
                parked += s.parked();
                if (age != null && (oldest == null || age.compareTo(oldest) > 0)) {
                    oldest = age;
                }
            }
        }
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
        return new RelayStatus(
                at,
                List.copyOf(shards),
                backlog,
                oldest,
                parked,
                List.copyOf(members),
                XminReport.read(c),
                tableStats(c));
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
