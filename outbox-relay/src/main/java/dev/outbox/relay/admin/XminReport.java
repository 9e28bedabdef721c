package dev.outbox.relay.admin;

import static dev.outbox.relay.admin.AdminRows.instant;

import dev.outbox.relay.internal.XminHorizon;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;

/**
 * What holds back PostgreSQL's xmin horizon for the outbox table: the oldest sessions, replication
 * slots, standbys with {@code hot_standby_feedback} and prepared transactions, oldest first; and apart
 * from them the replication slots whose {@code catalog_xmin} holds back vacuum of the system catalogs
 * only. Since PostgreSQL 14 sessions and prepared transactions of other databases of the cluster are
 * left out: they do not hold back vacuum of this database's tables ({@link XminHorizon}, the same
 * conditions as the relay's own look at the horizon before it vacuums).
 */
final class XminReport {

    /** How many sessions holding the xmin horizon the report lists. */
    static final int XMIN_SESSIONS = 5;

    /**
     * @param holders what holds the horizon of the outbox table, oldest first
     * @param catalogHolders replication slots whose {@code catalog_xmin} holds back the system catalogs
     *     only, oldest first
     */
    record Holders(List<XminHolder> holders, List<XminHolder> catalogHolders) {}

    private XminReport() {}

    static Holders read(Connection c) throws SQLException {
        List<XminHolder> holders = new ArrayList<>();
        String sessions = "select pid, usename, datname, application_name, state,"
                + " coalesce(backend_xmin, backend_xid)::text::bigint as xmin,"
                + " greatest(age(backend_xmin), age(backend_xid)) as xmin_age, xact_start,"
                + " left(regexp_replace(query, '\\s+', ' ', 'g'), 120) as query"
                + " from pg_stat_activity"
                + " where (backend_xmin is not null or backend_xid is not null) and pid <> pg_backend_pid()"
                + " and " + XminHorizon.SESSION_IN_THIS_DATABASE
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
        // a slot's xmin holds back every table; its catalog_xmin only the system catalogs, listed apart
        holders.addAll(slots(c, "xmin", ""));
        List<XminHolder> catalogHolders = new ArrayList<>(slots(
                c,
                "catalog_xmin",
                ": catalog_xmin, holds back vacuum of the system catalogs only, not of the outbox table"));
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
                        + " from pg_prepared_xacts where " + XminHorizon.PREPARED_IN_THIS_DATABASE;
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
        catalogHolders.sort((a, b) -> Long.compare(b.xminAge(), a.xminAge()));
        return new Holders(List.copyOf(holders), List.copyOf(catalogHolders));
    }

    /** @return the replication slots with {@code column} ({@code xmin} or {@code catalog_xmin}) set, by that column */
    private static List<XminHolder> slots(Connection c, String column, String held) throws SQLException {
        String sql = "select slot_name, slot_type, database, active, " + column + "::text::bigint as xmin, age("
                + column + ") as xmin_age from pg_replication_slots where " + column + " is not null";
        List<XminHolder> slots = new ArrayList<>();
        try (PreparedStatement st = c.prepareStatement(sql);
                ResultSet rs = st.executeQuery()) {
            while (rs.next()) {
                slots.add(new XminHolder(
                        "replication slot",
                        rs.getString("slot_name"),
                        rs.getLong("xmin"),
                        rs.getLong("xmin_age"),
                        null,
                        rs.getBoolean("active") ? "active" : "inactive",
                        rs.getString("slot_type")
                                + (rs.getString("database") == null ? "" : " on " + rs.getString("database"))
                                + held));
            }
        }
        return slots;
    }
}
