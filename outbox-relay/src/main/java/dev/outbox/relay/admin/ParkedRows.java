package dev.outbox.relay.admin;

import static dev.outbox.relay.admin.AdminRows.instant;

import dev.outbox.core.Outbox;
import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;

/** The statements behind {@link RelayAdmin}'s parked-row methods: list, requeue and purge. */
final class ParkedRows {
    private final String schema;
    private final String message;

    ParkedRows(String schema) {
        this.schema = schema;
        this.message = schema + ".outbox_message";
    }

    List<ParkedMessage> list(Connection c, int limit) throws SQLException {
        return list(c, null, limit);
    }

    /**
     * @param ids the outbox ids to look among, or null for every parked row
     * @return the parked rows among {@code ids}, lowest id first, at most {@code limit}
     */
    List<ParkedMessage> list(Connection c, Set<Long> ids, int limit) throws SQLException {
        String sql =
                "select id, message_id, shard, topic, message_key, coalesce(octet_length(payload), 0) as size, attempts,"
                        + " created_at, parked_at, last_error from " + message
                        + " where parked_at is not null " + filter(ids) + " order by id limit ?";
        try (PreparedStatement st = c.prepareStatement(sql)) {
            int i = 1;
            if (ids != null) {
                st.setArray(i++, c.createArrayOf("bigint", ids.toArray()));
            }
            st.setInt(i, limit);
            List<ParkedMessage> rows = new ArrayList<>();
            try (ResultSet rs = st.executeQuery()) {
                while (rs.next()) {
                    rows.add(new ParkedMessage(
                            rs.getLong("id"),
                            rs.getObject("message_id", UUID.class),
                            rs.getInt("shard"),
                            rs.getString("topic"),
                            rs.getString("message_key"),
                            rs.getInt("size"),
                            rs.getInt("attempts"),
                            instant(rs, "created_at"),
                            instant(rs, "parked_at"),
                            rs.getString("last_error")));
                }
            }
            return List.copyOf(rows);
        }
    }

    /**
     * @param ids the outbox ids to count among, or null for every parked row
     * @return how many of them are parked
     */
    long count(Connection c, Set<Long> ids) throws SQLException {
        String sql = "select count(*) from " + message + " where parked_at is not null " + filter(ids);
        try (PreparedStatement st = c.prepareStatement(sql)) {
            if (ids != null) {
                st.setArray(1, c.createArrayOf("bigint", ids.toArray()));
            }
            try (ResultSet rs = st.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }

    /**
     * @param ids the outbox ids to requeue, or null for every parked row
     */
    ParkedChange requeue(Connection c, Set<Long> ids) throws SQLException {
        return change(
                c,
                "update " + message + " set parked_at = null, attempts = 0, last_error = null"
                        + " where parked_at is not null " + filter(ids) + " returning id, shard",
                ids);
    }

    /**
     * @param ids the outbox ids to purge, or null for every parked row
     */
    ParkedChange purge(Connection c, Set<Long> ids) throws SQLException {
        return change(
                c,
                "delete from " + message + " where parked_at is not null " + filter(ids) + " returning id, shard",
                ids);
    }

    /**
     * @return the review of every parked row: {@code COUNT:FINGERPRINT}, the fingerprint 16 hex digits
     *     of an MD5 over each row's id and the moment it was parked, in id order; {@code 0:} when none is
     *     parked
     */
    String review(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("select " + reviewOf(message));
                ResultSet rs = ps.executeQuery()) {
            rs.next();
            return rs.getString(1);
        }
    }

    /**
     * Deletes every parked row if they are the rows of {@code reviewed} ({@link #review}); the review is
     * the delete's own (a subquery of the one statement, on its snapshot).
     *
     * @return what changed, or {@code null} when the parked rows are others (nothing was deleted)
     */
    ParkedChange purgeAll(Connection c, String reviewed) throws SQLException {
        ParkedChange change = change(
                c,
                "delete from " + message + " where parked_at is not null and (select " + reviewOf(message)
                        + ") = ? returning id, shard",
                null,
                reviewed);
        return change.ids().isEmpty() ? null : change;
    }

    /**
     * @return the select list of the review of the parked rows of {@code table}: the count and a
     *     fingerprint of their ids and parked moments (microseconds since the epoch, the same text
     *     whatever the session's time zone), so that a row parked, or requeued and parked again, since
     *     the review changes it
     */
    private static String reviewOf(String table) {
        return "count(*)::text || ':' || coalesce(left(md5(string_agg(id::text || '@'"
                + " || (extract(epoch from parked_at) * 1000000)::bigint::text, ',' order by id)), 16), '') from "
                + table + " where parked_at is not null";
    }

    private static String filter(Set<Long> ids) {
        return ids == null ? "" : "and id = any(?)";
    }

    /** Runs the change and a wake-up notification in one transaction, so the relay sees both at commit. */
    private ParkedChange change(Connection c, String sql, Set<Long> wanted) throws SQLException {
        return change(c, sql, wanted, null);
    }

    /** As above, with the statement's one text parameter, when {@code wanted} is null. */
    private ParkedChange change(Connection c, String sql, Set<Long> wanted, String text) throws SQLException {
        boolean auto = c.getAutoCommit();
        c.setAutoCommit(false);
        try {
            TreeSet<Long> changed = new TreeSet<>();
            Set<Integer> shards = new TreeSet<>();
            try (PreparedStatement st = c.prepareStatement(sql)) {
                if (wanted != null) {
                    Array array = c.createArrayOf("bigint", wanted.toArray());
                    st.setArray(1, array);
                } else if (text != null) {
                    st.setString(1, text);
                }
                try (ResultSet rs = st.executeQuery()) {
                    while (rs.next()) {
                        changed.add(rs.getLong(1));
                        shards.add(rs.getInt(2));
                    }
                }
            }
            if (!shards.isEmpty()) {
                String payload =
                        String.join(",", shards.stream().map(String::valueOf).toList());
                try (PreparedStatement st = c.prepareStatement("select pg_notify(?, ?)")) {
                    st.setString(1, Outbox.channel(schema));
                    st.setString(2, payload.length() > 4000 ? "*" : payload);
                    st.execute();
                }
            }
            c.commit();
            List<Long> missing = new ArrayList<>();
            if (wanted != null) {
                Set<Long> rest = new LinkedHashSet<>(wanted);
                rest.removeAll(changed);
                missing.addAll(rest);
            }
            return new ParkedChange(List.copyOf(changed), List.copyOf(missing));
        } catch (SQLException | RuntimeException e) {
            c.rollback();
            throw e;
        } finally {
            c.setAutoCommit(auto);
        }
    }
}
