package dev.outbox.relay.internal;

/**
 * Which holders of an xmin keep vacuum of the outbox table from removing its deleted rows, as SQL
 * conditions shared by the relay's look at the horizon before it vacuums and by the {@code status}
 * command's xmin report, so that the two blame the same holders.
 *
 * <p>Since PostgreSQL 14 a session or a prepared transaction of another database of the cluster holds
 * back vacuum of that database's tables only (and of the shared catalogs), not of this one's. A physical
 * WAL sender (no database) still holds every database's horizon with its standby's {@code
 * hot_standby_feedback}, and so do replication slots with an {@code xmin}. A slot's {@code catalog_xmin}
 * holds back vacuum of the system catalogs only, never of the outbox table. Before PostgreSQL 14 every
 * session and prepared transaction of the cluster is counted.
 */
public final class XminHorizon {
    /**
     * A condition on a row of {@code pg_stat_activity}: the session can hold back vacuum of this
     * database's tables (it is in this database, or is a physical WAL sender, or the server is older
     * than PostgreSQL 14).
     */
    public static final String SESSION_IN_THIS_DATABASE =
            "(current_setting('server_version_num')::int < 140000 or datname = current_database()"
                    + " or (backend_type = 'walsender' and datid is null))";

    /**
     * A condition on a row of {@code pg_prepared_xacts}: the prepared transaction can hold back vacuum
     * of this database's tables (it was prepared in this database, or the server is older than
     * PostgreSQL 14).
     */
    public static final String PREPARED_IN_THIS_DATABASE =
            "(current_setting('server_version_num')::int < 140000 or database = current_database())";

    private XminHorizon() {}
}
