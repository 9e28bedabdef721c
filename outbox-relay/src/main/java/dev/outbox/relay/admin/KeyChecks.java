package dev.outbox.relay.admin;

import static dev.outbox.core.internal.Durations.format;
import static dev.outbox.core.internal.Durations.roughly;
import static dev.outbox.relay.admin.Intervals.interval;
import static dev.outbox.relay.admin.Intervals.seconds;

import dev.outbox.relay.admin.Doctor.Check;
import dev.outbox.relay.admin.Doctor.Verdict;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The checks of the {@code idempotency_key} table: {@code key-expiry} (keys expire and the purge
 * keeps up), {@code stored-responses} (every completed key has its response) and {@code in-flight}
 * (no key is held beyond the lock timeout, by a session's transaction or by a prepared transaction).
 */
final class KeyChecks {
    static final String KEY_EXPIRY_TITLE = "Idempotency keys expire and the purge keeps up";
    static final String STORED_RESPONSES_TITLE = "Every completed key has its stored response";
    static final String IN_FLIGHT_TITLE = "No key is stuck in flight beyond the lock timeout";

    private final String schema;
    private final Duration keyTtl;
    private final Duration lockTimeout;
    private final Duration purgeGrace;

    KeyChecks(DoctorSettings settings) {
        this.schema = settings.schema();
        this.keyTtl = settings.keyTtl();
        this.lockTimeout = settings.lockTimeout();
        this.purgeGrace = settings.purgeGrace();
    }

    Check keyExpiry(Connection c) throws SQLException {
        String title = KEY_EXPIRY_TITLE;
        String sql = "select count(*) as keys,"
                + " count(*) filter (where expires_at < clock_timestamp() - ?::interval) as overdue,"
                + " extract(epoch from clock_timestamp() - min(expires_at)) as oldest_expired_seconds,"
                + " case when isfinite(max(expires_at)) then extract(epoch from max(expires_at) - clock_timestamp()) end"
                + " as farthest_expiry_seconds,"
                + " count(*) filter (where expires_at > clock_timestamp() + ?::interval) as beyond_ttl"
                + " from " + schema + ".idempotency_key";
        try (PreparedStatement st = c.prepareStatement(sql)) {
            st.setString(1, interval(purgeGrace));
            st.setString(2, interval(keyTtl.plus(purgeGrace)));
            try (ResultSet rs = st.executeQuery()) {
                rs.next();
                long keys = rs.getLong("keys");
                long overdue = rs.getLong("overdue");
                long beyond = rs.getLong("beyond_ttl");
                double oldestExpired = rs.getDouble("oldest_expired_seconds");
                boolean anyExpired = !rs.wasNull() && oldestExpired > 0;
                double farthest = rs.getDouble("farthest_expiry_seconds");
                boolean never = rs.wasNull();
                List<String> evidence = new ArrayList<>();
                evidence.add(
                        keys + " key(s); configured ttl " + format(keyTtl) + ", purge grace " + format(purgeGrace));
                if (anyExpired) {
                    evidence.add("oldest expired key expired " + format(roughly(seconds(oldestExpired))) + " ago; "
                            + overdue + " key(s) expired more than the grace ago");
                }
                if (keys > 0) {
                    evidence.add(
                            never
                                    ? "some key never expires (expires_at infinity)"
                                    : "farthest expiry " + format(roughly(seconds(farthest))) + " ahead");
                }
                if (overdue > 0 || beyond > 0) {
                    List<String> what = new ArrayList<>();
                    if (overdue > 0) {
                        what.add(overdue + " expired key(s) not purged within " + format(purgeGrace)
                                + " (the purge is not running or not keeping up)");
                    }
                    if (beyond > 0) {
                        what.add(
                                beyond
                                        + " key(s) expire later than the ttl allows (written with another ttl, or never meant to expire)");
                    }
                    return new Check(
                            "key-expiry",
                            title,
                            Verdict.FAIL,
                            String.join("; ", what),
                            evidence,
                            "Call IdempotencyStore.purgeExpired() periodically (e.g. hourly) from at least one instance; check that"
                                    + " every writer sets expires_at = now + ttl. --key-ttl must match the store's ttl.");
                }
                return new Check(
                        "key-expiry",
                        title,
                        Verdict.PASS,
                        keys == 0 ? "no keys stored" : "no key outlives its ttl by more than the grace",
                        evidence,
                        null);
            }
        }
    }

    Check storedResponses(Connection c) throws SQLException {
        String title = STORED_RESPONSES_TITLE;
        String sql = "select scope, idem_key, response_status from " + schema + ".idempotency_key"
                + " where response_status is not null and (response_body is null or response_headers is null)"
                + " order by created_at limit 6";
        List<String> evidence = new ArrayList<>();
        try (PreparedStatement st = c.prepareStatement(sql);
                ResultSet rs = st.executeQuery()) {
            while (rs.next()) {
                evidence.add(
                        evidence.size() == 5
                                ? "..."
                                : "scope " + rs.getString(1) + ", key " + rs.getString(2) + ": status " + rs.getInt(3)
                                        + " without body or headers");
            }
        }
        if (!evidence.isEmpty()) {
            return new Check(
                    "stored-responses",
                    title,
                    Verdict.FAIL,
                    "completed keys without a stored response: a retry cannot get the original answer",
                    evidence,
                    "Store status, headers and body in the key row in the same transaction as the business write"
                            + " (IdempotencyStore does); fix the writer of these rows.");
        }
        return new Check(
                "stored-responses",
                title,
                Verdict.PASS,
                "every completed key has status, headers and body",
                evidence,
                null);
    }

    Check inFlight(Connection c) throws SQLException {
        String title = IN_FLIGHT_TITLE;
        List<String> evidence = new ArrayList<>();
        evidence.add("lock timeout " + format(lockTimeout));
        String committed = "select scope, idem_key, extract(epoch from clock_timestamp() - created_at) as age from "
                + schema + ".idempotency_key"
                + " where response_status is null and created_at < clock_timestamp() - ?::interval order by created_at limit 6";
        int stuck = 0;
        try (PreparedStatement st = c.prepareStatement(committed)) {
            st.setString(1, interval(lockTimeout));
            try (ResultSet rs = st.executeQuery()) {
                while (rs.next()) {
                    stuck++;
                    evidence.add(
                            stuck == 6
                                    ? "..."
                                    : "committed without a response: scope " + rs.getString(1) + ", key "
                                            + rs.getString(2) + ", " + format(roughly(seconds(rs.getDouble(3))))
                                            + " old");
                }
            }
        }
        String holders =
                "select distinct a.pid, a.usename, a.application_name, a.state, extract(epoch from clock_timestamp() - a.xact_start) as age,"
                        + " left(regexp_replace(a.query, '\\s+', ' ', 'g'), 120) as query"
                        + " from pg_locks l join pg_stat_activity a on a.pid = l.pid"
                        + " where l.relation = to_regclass(?) and l.mode = 'RowExclusiveLock' and l.granted and a.pid <> pg_backend_pid()"
                        + " and a.xact_start < clock_timestamp() - ?::interval order by age desc limit 5";
        int sessions = 0;
        try (PreparedStatement st = c.prepareStatement(holders)) {
            st.setString(1, schema + ".idempotency_key");
            st.setString(2, interval(lockTimeout));
            try (ResultSet rs = st.executeQuery()) {
                while (rs.next()) {
                    sessions++;
                    evidence.add(
                            "transaction writing keys for " + format(roughly(seconds(rs.getDouble("age")))) + ": pid "
                                    + rs.getInt("pid") + " "
                                    + rs.getString("usename") + " (" + rs.getString("application_name") + "), "
                                    + rs.getString("state") + ": "
                                    + rs.getString("query"));
                }
            }
        }
        // a session of another role shows no transaction start to a role without pg_read_all_stats: its age
        // cannot be judged, and the query above leaves it out
        String hidden = "select count(distinct a.pid) from pg_locks l join pg_stat_activity a on a.pid = l.pid"
                + " where l.relation = to_regclass(?) and l.mode = 'RowExclusiveLock' and l.granted"
                + " and a.pid <> pg_backend_pid() and a.xact_start is null";
        int unseen;
        try (PreparedStatement st = c.prepareStatement(hidden)) {
            st.setString(1, schema + ".idempotency_key");
            try (ResultSet rs = st.executeQuery()) {
                rs.next();
                unseen = rs.getInt(1);
            }
        }
        if (unseen > 0) {
            evidence.add(unseen + " session(s) of other roles writing keys, whose transactions' age this role cannot"
                    + " see");
        }
        int prepared = preparedHolders(c, evidence);
        if (stuck > 0 || sessions > 0 || prepared > 0) {
            List<String> found = new ArrayList<>();
            if (stuck > 0) {
                found.add("committed key(s) without a response (every retry gets 409 until they expire)");
            }
            if (sessions > 0) {
                found.add(sessions + " transaction(s) holding keys longer than the lock timeout (duplicates get 409)");
            }
            if (prepared > 0) {
                found.add(prepared + " prepared transaction(s) holding keys longer than the lock timeout (every retry"
                        + " of their keys waits, then gets 409, until each is committed or rolled back)");
            }
            return new Check(
                    "in-flight",
                    title,
                    Verdict.FAIL,
                    String.join("; ", found),
                    evidence,
                    "A key must be inserted and answered in one transaction (IdempotencyStore does): delete committed rows without a"
                            + " response once their requests are known dead; find why the listed transactions stay open (a slow"
                            + " downstream call inside the handler, idle in transaction)."
                            + (prepared > 0
                                    ? " A prepared transaction (two-phase commit) has no session: its transaction manager"
                                            + " must finish it; once that is known dead, end it with COMMIT PREPARED 'gid' or"
                                            + " ROLLBACK PREPARED 'gid', in this database, as its owner or a superuser."
                                    : ""));
        }
        if (unseen > 0) {
            return new Check(
                    "in-flight",
                    title,
                    Verdict.WARN,
                    "no committed key without a response; " + unseen + " transaction(s) of other roles were writing"
                            + " keys, and how long each has been open is not visible to the doctor's role (a short"
                            + " request's, or one stuck in flight)",
                    evidence,
                    "Grant pg_read_all_stats to the doctor's role (or run it as the application's role), so that it"
                            + " sees how long every transaction writing keys has been open.");
        }
        return new Check(
                "in-flight",
                title,
                Verdict.PASS,
                "no committed key without a response, no long key-holding transaction",
                evidence,
                null);
    }

    /**
     * Adds to {@code evidence} the prepared transactions (two-phase commit, {@code PREPARE TRANSACTION})
     * prepared longer than the lock timeout ago that hold a lock on the key table other than a read's.
     * They have no session: in {@code pg_locks} their locks have no pid (and a virtual transaction of
     * {@code -1/xid} once recovered after a restart), so they are found through the lock on their
     * transaction id, which {@code pg_prepared_xacts} gives.
     *
     * @return how many were found
     */
    private int preparedHolders(Connection c, List<String> evidence) throws SQLException {
        String sql = "select p.gid, p.owner, extract(epoch from clock_timestamp() - p.prepared) as age,"
                + " string_agg(distinct l.mode, ', ' order by l.mode) as modes, count(*) over () as total"
                + " from pg_prepared_xacts p"
                + " join pg_locks x on x.locktype = 'transactionid' and x.transactionid = p.transaction and x.pid is null"
                + " join pg_locks l on l.virtualtransaction = x.virtualtransaction and l.pid is null"
                + " where l.locktype = 'relation' and l.relation = to_regclass(?)"
                + " and l.database = (select oid from pg_database where datname = current_database())"
                + " and l.mode <> 'AccessShareLock' and l.granted and p.database = current_database()"
                + " and p.prepared < clock_timestamp() - ?::interval"
                + " group by p.gid, p.owner, p.prepared order by p.prepared limit 6";
        int listed = 0;
        int prepared = 0;
        try (PreparedStatement st = c.prepareStatement(sql)) {
            st.setString(1, schema + ".idempotency_key");
            st.setString(2, interval(lockTimeout));
            try (ResultSet rs = st.executeQuery()) {
                while (rs.next()) {
                    listed++;
                    prepared = rs.getInt("total");
                    String gid = rs.getString("gid").replace("'", "''");
                    evidence.add(
                            listed == 6
                                    ? "..."
                                    : "prepared transaction '" + gid + "' of " + rs.getString("owner") + ", prepared "
                                            + format(roughly(seconds(rs.getDouble("age")))) + " ago, holding keys ("
                                            + rs.getString("modes") + ", no session): COMMIT PREPARED '" + gid
                                            + "' or ROLLBACK PREPARED '" + gid
                                            + "' once its transaction manager is known dead");
                }
            }
        }
        return prepared;
    }
}
