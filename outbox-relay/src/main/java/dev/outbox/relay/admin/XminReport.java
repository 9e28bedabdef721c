package dev.outbox.relay.admin;

import static dev.outbox.relay.admin.AdminRows.instant;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;

/**
 * What holds back PostgreSQL's xmin horizon: the oldest sessions, replication slots, standbys with
 * {@code hot_standby_feedback} and prepared transactions, oldest first.
 */
final class XminReport {

    /** How many sessions holding the xmin horizon the report lists. */
    static final int XMIN_SESSIONS = 5;

    private XminReport() {}

    static List<XminHolder> read(Connection c) throws SQLException {
        List<XminHolder> holders = new ArrayList<>();
        String sessions = "select pid, usename, datname, application_name, state,"
                + " coalesce(backend_xmin, backend_xid)::text::bigint as xmin,"
                + " greatest(age(backend_xmin), age(backend_xid)) as xmin_age, xact_start,"
                + " left(regexp_replace(query, '\\s+', ' ', 'g'), 120) as query"
                + " from pg_stat_activity"
                + " where (backend_xmin is not null or backend_xid is not null) and pid <> pg_backend_pid()"
                + " order by greatest(age(backend_xmin), age(backend_xid)) desc, xact_start limit " + XMIN_SESSIONS;
        try (PreparedStatement st = c.prepareStatement(sessions);
                ResultSet rs = st.executeQuery()) {
            while (rs.next()) {
                String app = rs.getString("application_name");
                String name = "pid " + rs.getInt("pid") + " " + rs.getString("usename") + "@" + rs.getString("datname")
                        + (app == null || app.isEmpty() ? "" : " (" + app + ")");
                holders.add(new XminHolder(
                        "session",
                        name,
                        rs.getLong("xmin"),
                        rs.getLong("xmin_age"),
                        instant(rs, "xact_start"),
                        rs.getString("state"),
                        rs.getString("query")));
            }
        }
        String slots = "select slot_name, slot_type, database, active,"
                + " coalesce(xmin, catalog_xmin)::text::bigint as xmin,"
                + " greatest(age(xmin), age(catalog_xmin)) as xmin_age"
                + " from pg_replication_slots where xmin is not null or catalog_xmin is not null";
        try (PreparedStatement st = c.prepareStatement(slots);
                ResultSet rs = st.executeQuery()) {
            while (rs.next()) {
                holders.add(new XminHolder(
                        "replication slot",
                        rs.getString("slot_name"),
                        rs.getLong("xmin"),
                        rs.getLong("xmin_age"),
                        null,
                        rs.getBoolean("active") ? "active" : "inactive",
                        rs.getString("slot_type")
                                + (rs.getString("database") == null ? "" : " on " + rs.getString("database"))));
            }
        }
        String standbys =
                "select application_name, client_addr::text as addr, state, backend_xmin::text::bigint as xmin,"
                        + " age(backend_xmin) as xmin_age from pg_stat_replication where backend_xmin is not null";
        try (PreparedStatement st = c.prepareStatement(standbys);
                ResultSet rs = st.executeQuery()) {
            while (rs.next()) {
                holders.add(new XminHolder(
                        "standby",
                        rs.getString("application_name"),
                        rs.getLong("xmin"),
                        rs.getLong("xmin_age"),
                        null,
                        rs.getString("state"),
                        "hot_standby_feedback from " + rs.getString("addr")));
            }
        }
        String prepared =
                "select gid, owner, database, transaction::text::bigint as xmin, age(transaction) as xmin_age, prepared"
                        + " from pg_prepared_xacts";
        try (PreparedStatement st = c.prepareStatement(prepared);
                ResultSet rs = st.executeQuery()) {
            while (rs.next()) {
                holders.add(new XminHolder(
                        "prepared transaction",
                        rs.getString("gid"),
                        rs.getLong("xmin"),
                        rs.getLong("xmin_age"),
                        instant(rs, "prepared"),
                        "prepared",
                        "owner " + rs.getString("owner") + " on " + rs.getString("database")));
            }
        }
        holders.sort((a, b) -> Long.compare(b.xminAge(), a.xminAge()));
        return List.copyOf(holders);
    }
}
