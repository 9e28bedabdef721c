package dev.outbox.relay.admin;

import dev.outbox.core.OutboxException;
import dev.outbox.migrations.OutboxMigrations;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Collection;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;
import javax.sql.DataSource;

/**
 * The operator's view of a relay deployment, straight from the database: backlog and leases per
 * shard, live relays, parked messages, and what holds back PostgreSQL's xmin horizon; and the two
 * repairs for parked messages, requeue and purge.
 *
 * <p>The relay process's {@code status} and {@code parked} commands are a thin text layer over this
 * class; embed it to show the same in an admin page or a health check of your own. It needs no
 * lease and no running relay: every method is a few short statements on the given data source.
 * Thread-safe.
 *
 * <pre>{@code
 * RelayAdmin admin = RelayAdmin.create(dataSource, "outbox");
 * RelayStatus s = admin.status();
 * for (ParkedMessage p : admin.parked(20)) { ... }
 * admin.requeue(List.of(p.id()));          // after fixing the cause
 * }</pre>
 */
public final class RelayAdmin {
    /** A review of at least one parked row, as {@link #parkedReview()} returns it. */
    public static final Pattern REVIEW = Pattern.compile("[1-9][0-9]{0,18}:[0-9a-f]{16}");

    /** The most rows {@link #parked(int)} returns at once. */
    public static final int MAX_LIMIT = 10_000;

    private final DataSource dataSource;
    private final String schema;
    private final StatusQuery statusQuery;
    private final ParkedRows parkedRows;

    private RelayAdmin(DataSource dataSource, String schema) {
        this.dataSource = dataSource;
        this.schema = schema;
        this.statusQuery = new StatusQuery(schema);
        this.parkedRows = new ParkedRows(schema);
    }

    /**
     * @param dataSource connections to the outbox database; the user needs to read and write the
     *     outbox tables, and to see {@code pg_stat_activity} rows of other users for a complete xmin
     *     report (role {@code pg_read_all_stats}); without it other users' query texts show as
     *     {@code <insufficient privilege>}
     * @param schema the schema holding the outbox tables
     * @return the admin view
     * @throws NullPointerException when an argument is null
     * @throws IllegalArgumentException when {@code schema} is not a plain lower-case SQL identifier
     */
    public static RelayAdmin create(DataSource dataSource, String schema) {
        Objects.requireNonNull(dataSource, "dataSource may not be null");
        OutboxMigrations.requireValidSchema(schema);
        return new RelayAdmin(dataSource, schema);
    }

    /** @return the schema this view reads */
    public String schema() {
        return schema;
    }

    /**
     * Reads backlog, leases, members, parked count and xmin holders. Counts the backlog per shard
     * through the relay's own partial index; on a backlog of millions this takes a while, but holds
     * no lock the relay needs.
     *
     * @return the status
     * @throws OutboxException when the database fails; the cause keeps the SQLState
     */
    public RelayStatus status() {
        try (Connection c = dataSource.getConnection()) {
            c.setReadOnly(true);
            return statusQuery.read(c);
        } catch (SQLException e) {
            throw failure("reading the relay status", e);
        }
    }

    /**
     * Lists parked rows, oldest (lowest id) first.
     *
     * @param limit the most rows to return, 1 to {@value #MAX_LIMIT}
     * @return the parked rows
     * @throws IllegalArgumentException when {@code limit} is out of range
     * @throws OutboxException when the database fails; the cause keeps the SQLState
     */
    public List<ParkedMessage> parked(int limit) {
        if (limit < 1 || limit > MAX_LIMIT) {
            throw new IllegalArgumentException("limit must be between 1 and " + MAX_LIMIT + ", got " + limit);
        }
        try (Connection c = dataSource.getConnection()) {
            return parkedRows.list(c, limit);
        } catch (SQLException e) {
            throw failure("listing parked messages", e);
        }
    }

    /**
     * Lists the parked rows among the given ids, oldest (lowest id) first: what {@link #purge} or {@link
     * #requeue} would change, without changing it.
     *
     * @param ids outbox ids
     * @param limit the most rows to return, 1 to {@value #MAX_LIMIT}
     * @return the parked rows among {@code ids}
     * @throws NullPointerException when {@code ids} or an element is null
     * @throws IllegalArgumentException when {@code ids} is empty or {@code limit} is out of range
     * @throws OutboxException when the database fails; the cause keeps the SQLState
     */
    public List<ParkedMessage> parked(Collection<Long> ids, int limit) {
        Set<Long> wanted = checkIds(ids);
        if (limit < 1 || limit > MAX_LIMIT) {
            throw new IllegalArgumentException("limit must be between 1 and " + MAX_LIMIT + ", got " + limit);
        }
        try (Connection c = dataSource.getConnection()) {
            return parkedRows.list(c, wanted, limit);
        } catch (SQLException e) {
            throw failure("listing parked messages", e);
        }
    }

    /**
     * @return how many rows are parked, all of them counted (no limit)
     * @throws OutboxException when the database fails; the cause keeps the SQLState
     */
    public long parkedCount() {
        return count(null);
    }

    /**
     * @param ids outbox ids
     * @return how many of them are parked: what {@link #purge} or {@link #requeue} of them would change
     * @throws NullPointerException when {@code ids} or an element is null
     * @throws IllegalArgumentException when {@code ids} is empty
     * @throws OutboxException when the database fails; the cause keeps the SQLState
     */
    public long parkedCount(Collection<Long> ids) {
        return count(checkIds(ids));
    }

    private long count(Set<Long> ids) {
        try (Connection c = dataSource.getConnection()) {
            return parkedRows.count(c, ids);
        } catch (SQLException e) {
            throw failure("counting parked messages", e);
        }
    }

    /**
     * Makes the given parked rows publishable again ({@code parked_at}, {@code attempts} and {@code
     * last_error} cleared) and wakes the relays that own their shards. Fix the cause first (topic
     * created, ACL granted, size limit raised), or the row parks again. A requeued row is published
     * in its original id position: under {@code HOLD_KEY} before the key's held-back rows; under
     * {@code PARK_AND_CONTINUE} after the key's later messages, which already left.
     *
     * @param ids outbox ids (as listed by {@link #parked(int)}); ids of rows that are not parked are
     *     reported in {@link ParkedChange#notParked()} and left alone
     * @return what changed
     * @throws NullPointerException when {@code ids} or an element is null
     * @throws IllegalArgumentException when {@code ids} is empty
     * @throws OutboxException when the database fails; the cause keeps the SQLState
     */
    public ParkedChange requeue(Collection<Long> ids) {
        return requeueRows(checkIds(ids));
    }

    /**
     * Requeues every parked row; see {@link #requeue(Collection)}.
     *
     * @return what changed
     * @throws OutboxException when the database fails; the cause keeps the SQLState
     */
    public ParkedChange requeueAll() {
        return requeueRows(null);
    }

    /**
     * Deletes the given parked rows for good: they will never be published. Rows that are not parked
     * are never deleted by this method. Under {@code HOLD_KEY}, purging a key's parked row releases
     * its held-back rows.
     *
     * @param ids outbox ids of parked rows
     * @return what changed
     * @throws NullPointerException when {@code ids} or an element is null
     * @throws IllegalArgumentException when {@code ids} is empty
     * @throws OutboxException when the database fails; the cause keeps the SQLState
     */
    public ParkedChange purge(Collection<Long> ids) {
        return purgeRows(checkIds(ids));
    }

    /**
     * Deletes every parked row; see {@link #purge(Collection)}.
     *
     * @return what changed
     * @throws OutboxException when the database fails; the cause keeps the SQLState
     */
    public ParkedChange purgeAll() {
        return purgeRows(null);
    }

    /**
     * Reviews the parked rows for {@link #purgeAll(String)}: their count and a fingerprint of which rows
     * they are and when each was parked.
     *
     * @return {@code COUNT:FINGERPRINT} (16 hex digits), or {@code 0:} when nothing is parked
     * @throws OutboxException when the database fails; the cause keeps the SQLState
     */
    public String parkedReview() {
        try (Connection c = dataSource.getConnection()) {
            return parkedRows.review(c);
        } catch (SQLException e) {
            throw failure("reviewing parked messages", e);
        }
    }

    /**
     * Deletes every parked row if they are still the rows a review of them showed ({@link
     * #parkedReview()}): the same rows, parked at the same moments. Otherwise it deletes nothing, so that
     * no row is deleted unseen: not one parked since the review, nor one requeued and parked again, also
     * when as many others left the parked rows meanwhile. The review and the delete are one statement, on
     * one snapshot.
     *
     * @param reviewed what {@link #parkedReview()} returned when the caller reviewed the rows
     * @return what changed, or {@code null} when the parked rows are not those reviewed
     * @throws NullPointerException when {@code reviewed} is null
     * @throws IllegalArgumentException when it is not a review of at least one parked row
     * @throws OutboxException when the database fails; the cause keeps the SQLState
     */
    public ParkedChange purgeAll(String reviewed) {
        Objects.requireNonNull(reviewed, "reviewed may not be null");
        if (!REVIEW.matcher(reviewed).matches()) {
            throw new IllegalArgumentException("reviewed must be what parkedReview() returned for at least one parked"
                    + " row, COUNT:FINGERPRINT (16 hex digits), got '" + reviewed + "'");
        }
        try (Connection c = dataSource.getConnection()) {
            return parkedRows.purgeAll(c, reviewed);
        } catch (SQLException e) {
            throw failure("purging parked messages", e);
        }
    }

    private ParkedChange requeueRows(Set<Long> ids) {
        try (Connection c = dataSource.getConnection()) {
            return parkedRows.requeue(c, ids);
        } catch (SQLException e) {
            throw failure("requeueing parked messages", e);
        }
    }

    private ParkedChange purgeRows(Set<Long> ids) {
        try (Connection c = dataSource.getConnection()) {
            return parkedRows.purge(c, ids);
        } catch (SQLException e) {
            throw failure("purging parked messages", e);
        }
    }

    private static Set<Long> checkIds(Collection<Long> ids) {
        Objects.requireNonNull(ids, "ids may not be null");
        if (ids.isEmpty()) {
            throw new IllegalArgumentException(
                    "ids may not be empty; pass the outbox ids of parked rows, or use the *All method");
        }
        Set<Long> set = new TreeSet<>();
        for (Long id : ids) {
            set.add(Objects.requireNonNull(id, "ids may not contain null"));
        }
        return set;
    }

    private OutboxException failure(String what, SQLException e) {
        return new OutboxException(
                "RelayAdmin[" + schema + "]: " + what + " failed (SQLState " + e.getSQLState() + "): " + e.getMessage(),
                e);
    }
}
