package dev.outbox.relay.internal;

import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import javax.sql.DataSource;
import org.postgresql.PGConnection;

/**
 * Every statement the relay runs; the lease and membership statements are {@link LeaseStatements}'
 * and handed on. Each method borrows a connection in autocommit mode and returns it; the fenced writes
 * bound their own lock waits ({@link #WRITE_LOCK_TIMEOUT}).
 * The SQL strings are constants per relay, so the driver's per-connection statement cache turns them
 * into server-side prepared statements after a few executions.
 */
final class Db implements ShardRows {
    /** What a fenced write found: whether the lease still held, and how many rows it changed. */
    record Fenced(boolean leaseHeld, int rows) {}

    /** What a fenced failure update found: whether the lease held, and per updated row its attempts and park state. */
    record Failed(boolean leaseHeld, List<FailedRow> rows) {}

    /** One row after a failure was recorded. */
    record FailedRow(long id, int attempts, boolean parked) {}

    /** SQLState of a value past one of PostgreSQL's size limits (a jsonb object over 256 MB, say). */
    static final String PROGRAM_LIMIT_EXCEEDED = "54000";

    /**
     * How long a fenced write (a delete of published rows, a record of failed ones) waits for a lock
     * before it gives up: a row another transaction holds locked (an UPDATE left open in a console), or
     * a lease row. Without a bound the relay's one write thread would wait as
     * long as that transaction runs, and every shard's deletes with it. The write's statement sets it for
     * itself ({@link #lockTimeoutCte}), whatever the session's {@code lock_timeout}. Past it the write
     * changes nothing; the shards whose rows are locked fail ({@link RowsLockedException}) and the
     * others' writes run again without them ({@link WriteQueue}).
     */
    static final Duration WRITE_LOCK_TIMEOUT = Duration.ofSeconds(1);

    /** Rows per shard the backlog sample counts; beyond it estimates. */
    static final int BACKLOG_COUNTED = 1_000;

    private final DataSource dataSource;
    private final String owner;
    private final String readSql;
    private final String readAheadSql;
    private final String readFilteredSql;
    private final String readPastHeldSql;
    private final String readPastHeldByKeySql;
    private final String deleteAllSql;
    private final String failAllSql;
    private final String lockedRowsSql;
    private final String table;
    private final long writeLockTimeoutMillis;
    private final String shardCountSql;
    private final String backlogSql;
    private final String parkedSql;
    private final String payloadsSql;
    private final ProbeStatements probes;
    private final LeaseStatements leases;
    private final PayloadCap cap;
    /** Whether the reads take one more parameter, the shard, for the hold-back check. */
    private final boolean holdKey;

    /** @param batchBytes the payload bytes after which a read takes no more rows ({@link PayloadCap}) */
    Db(DataSource dataSource, String schema, String owner, boolean holdKey, long batchBytes) {
        this(dataSource, schema, owner, holdKey, batchBytes, WRITE_LOCK_TIMEOUT);
    }

    /** @param writeLockTimeout how long a fenced write waits for a lock ({@link #WRITE_LOCK_TIMEOUT}) */
    Db(
            DataSource dataSource,
            String schema,
            String owner,
            boolean holdKey,
            long batchBytes,
            Duration writeLockTimeout) {
        this.writeLockTimeoutMillis = Math.max(1, writeLockTimeout.toMillis());
        this.dataSource = dataSource;
        this.owner = owner;
        this.cap = new PayloadCap(batchBytes);
        this.leases = new LeaseStatements(dataSource, schema, owner);
        String msg = schema + ".outbox_message";
        String lease = schema + ".outbox_shard_lease";
        String columns = columns(msg);
        this.holdKey = holdKey;
        String hold = holdKey ? holdBack(msg, "?") : "";
        this.readSql = shardRead(msg, holdKey);
        // while topics lack metadata or keys wait for a partition leader: the rows of the held topics
        // without their payload (they are not sent; the shard needs their ids and keys to hold the later
        // rows of those keys), none of the rows the shard already holds (it remembers their keys), and
        // none of the waiting keys' rows. The held ids are checked through a hashed subplan (one probe
        // per row, whatever their number; `<> all(array)` would compare each row with every id).
        this.readFilteredSql = columns.replace(
                        INLINE_PAYLOAD,
                        "case when m.topic = any(?) or " + PAYLOAD_LENGTH + " > ? then null else m.payload end")
                + " and m.id not in (select unnest(?::bigint[]))"
                + " and (m.message_key is null or m.message_key <> all(?))" + hold + " order by m.id limit ?";
        // past more held rows than the shard remembers: no row of a held topic, and no row of a key at or
        // after that key's first row of a held topic in the shard, so that the rows of other keys, and a
        // held key's rows before its first held one, are reached however many rows are held. The first
        // held id of each key is read by the same statement, in the same snapshot as the rows it returns:
        // a key's row of a held topic that commits meanwhile cannot let a later row of that key through.
        // The ids are collected once (an InitPlan) into a jsonb object keyed by message key, which each row
        // looks its key up in (a binary search over the keys), whatever the number of held rows.
        String pastHeld = columns
                + " and m.id not in (select unnest(?::bigint[]))"
                + " and (m.message_key is null or m.message_key <> all(?)) and m.topic <> all(?)"
                + " and (m.message_key is null or ";
        String pastHeldEnd = ")" + hold + " order by m.id limit ?";
        String heldKeysRows = " from " + msg + " h where h.shard = ? and h.parked_at is null and h.topic = any(?)"
                + " and h.message_key is not null";
        this.readPastHeldSql = pastHeld
                + "coalesce(m.id < ((select jsonb_object_agg(f.message_key, f.id) from (select h.message_key,"
                + " min(h.id) as id" + heldKeysRows + " group by h.message_key) f) ->> m.message_key)::bigint, true)"
                + pastHeldEnd;
        // the same read when that jsonb object would pass PostgreSQL's limit of 256 MB (millions of held keys
        // in the shard): every row of a key with a held row is left out, its rows before that one too. The
        // keys are collected once (an InitPlan) and checked through a hashed subplan, as the held ids above.
        this.readPastHeldByKeySql = pastHeld
                + "m.message_key not in (select unnest(array(select distinct h.message_key" + heldKeysRows + ")))"
                + pastHeldEnd;
        // The rows in flight are the lowest ids the previous read found, so every row above the highest
        // of them is new without looking at the array; the array is checked only for lower ids (rows
        // that committed after the previous read), which keeps the read-ahead cheap for large batches.
        this.readAheadSql = columns + " and (m.id > ? or m.id <> all(?))" + hold + " order by m.id limit ?";
        // Several shards' finished batches in one statement, each fenced by its own lease. A lease row is
        // locked FOR KEY SHARE for the write's transaction: a takeover, whose claim locks the row FOR UPDATE
        // (SKIP LOCKED), either committed before and makes the lease check fail, or skips the shard until
        // this write committed. Renew and release (FOR NO KEY UPDATE, LeaseStatements) do not conflict with
        // it, so a write that waits (for a row lock of another transaction, a slow disk) never holds up the
        // renewal of any lease; the relay's own release cannot let another relay in while the write runs,
        // as a claim still finds the row locked. The lease rows are locked in shard order (the lock is taken
        // above the sort), as renew and release lock theirs, so that no two of the relay's statements wait
        // for each other in a cycle. A shard whose lease check fails is not locked and keeps its rows; the
        // others' are deleted.
        // r: each shard's request (shard, epoch); l: the shards whose lease is held, locked (parameters 1 to 3)
        // t: the statement's own lock timeout (WRITE_LOCK_TIMEOUT), set before it locks any row: its filter in
        // l runs below the lease rows' lock, and d reads l before it finds an outbox row
        String fenced =
                "with " + lockTimeoutCte() + ", r as (select * from unnest(?::int[], ?::bigint[]) as r(shard, epoch)),"
                        + " l as (select x.shard from " + lease + " x join r on x.shard = r.shard"
                        + " where (select t.applied from t) is not null"
                        + " and x.owner = ? and x.epoch = r.epoch and x.lease_until > now() order by x.shard"
                        + " for key share of x),";
        this.deleteAllSql = fenced
                // The rows are found by `m.id = any(all ids)`, an index condition whatever the statistics say,
                // and kept only if their own shard's lease is held (`m.shard = any(array(...))`, evaluated once,
                // after the leases are locked). Joined with the ids or the leases instead, the generic plan may
                // probe every id once per shard, or, on a table that vacuum left with few live rows, run a whole
                // primary-key scan per id (seconds per statement, measured). The relay submits only ids it read
                // from the shard it names, so a row's own shard is its request's.
                + " d as (delete from " + msg + " m where m.id = any(?::bigint[])"
                + " and m.shard = any(array(select l.shard from l)) returning m.shard)"
                + " select r.shard, l.shard is not null, coalesce(c.n, 0) from r left join l on l.shard = r.shard"
                + " left join (select d.shard, count(*) as n from d group by d.shard) c on c.shard = r.shard";
        // Several shards' failed rows in one statement, fenced and locked as the delete above: every failed
        // row gets attempts + 1 and its error; a row is parked when its error can never succeed (f.park) or
        // when it has used up its attempts. The rows are found by `m.id = any(all ids)` for the same reason,
        // and each only through its own shard's request (`m.shard = f.shard`), whose result it is.
        this.failAllSql = fenced
                + " u as (update " + msg + " m set attempts = m.attempts + 1, last_error = f.error,"
                + " parked_at = case when f.park or m.attempts + 1 >= ? then clock_timestamp() end"
                + " from unnest(?::bigint[], ?::text[], ?::boolean[], ?::int[]) as f(id, error, park, shard)"
                + " where m.id = any(?::bigint[]) and m.id = f.id and m.shard = f.shard"
                + " and m.shard = any(array(select l.shard from l))"
                + " and m.parked_at is null"
                + " returning m.shard, m.id, m.attempts, m.parked_at is not null as parked)"
                + " select r.shard, l.shard is not null, u.id, u.attempts, u.parked from r"
                + " left join l on l.shard = r.shard left join u on u.shard = r.shard";
        // Which of the ids are rows locked by another transaction: those visible now that a FOR UPDATE SKIP
        // LOCKED (the lock a delete takes) passes over. Run only after a fenced write's lock wait timed out;
        // the locks it takes end with its own statement.
        this.lockedRowsSql = "with " + lockTimeoutCte() + ", free as (select m.id from " + msg + " m"
                + " where (select t.applied from t) is not null and m.id = any(?::bigint[])"
                + " for update of m skip locked) select m.shard, m.id from " + msg + " m"
                + " where m.id = any(?::bigint[]) and m.id not in (select free.id from free) order by m.shard, m.id";
        this.table = msg;
        this.shardCountSql = "select count(*), coalesce(min(shard), 0), coalesce(max(shard), -1) from " + lease;
        // Per shard: the count of at most BACKLOG_COUNTED rows, the id of the last of them, the first
        // row's id and age, and the highest id: a handful of index descents and up to BACKLOG_COUNTED
        // index entries per shard, whatever the backlog (a full count scanned the whole backlog every
        // sample while the relay was draining it).
        String publishable = " from " + msg + " m where m.shard = s.s and m.parked_at is null";
        this.backlogSql = "select s.s, c.n, c.last_id, f.id, extract(epoch from clock_timestamp() - f.created_at),"
                + " (select max(m.id)" + publishable + ")"
                + " from unnest(?::int[]) as s(s)"
                + " cross join lateral (select count(*) as n, max(x.id) as last_id from (select m.id" + publishable
                + " order by m.id limit " + BACKLOG_COUNTED + ") x) c"
                + " cross join lateral (select m.id, m.created_at" + publishable + " order by m.id limit 1) f";
        this.parkedSql = "select count(*) from " + msg + " where parked_at is not null";
        this.payloadsSql = payloadsSql(msg);
        this.probes = new ProbeStatements(dataSource, schema, holdKey, cap);
    }

    /**
     * @return a shard's read: up to {@code limit} publishable rows in id order, the later rows of a key
     *     with a parked row held back when {@code holdKey}; parameters the inline payload limit ({@link
     *     #columns}), shard, then (when {@code holdKey}) shard again, then limit
     */
    static String shardRead(String msg, boolean holdKey) {
        return columns(msg) + (holdKey ? holdBack(msg, "?") : "") + " order by m.id limit ?";
    }

    /** The read's payload column: the payload when it is at most the inline limit (a parameter) long, else null. */
    private static final String INLINE_PAYLOAD = "case when octet_length(m.payload) <= ? then m.payload end";

    /** The payload's length, from its header: a payload stored out of line is not fetched for it. */
    private static final String PAYLOAD_LENGTH = "octet_length(m.payload)";

    /**
     * @return the read's select list and its shard condition ({@code m.shard = ?}), publishable rows
     *     only; the first parameter is the longest payload returned ({@link PayloadCap#inlineLimit}), and
     *     the payload's length follows the columns {@link #row} reads
     */
    static String columns(String msg) {
        return "select m.id, m.message_id, m.topic, m.message_key, m.message_type, m.content_type, m.headers::text, "
                + INLINE_PAYLOAD + ", m.created_at, " + PAYLOAD_LENGTH + " from " + msg
                + " m where m.shard = ? and m.parked_at is null";
    }

    /**
     * A keyed row waits behind a parked earlier row of its key. Whether the shard has any parked row is
     * asked once per statement (an uncorrelated subquery, evaluated once), so the per-row probe of the
     * parked rows runs only in shards that have some: in the usual shard without parked rows this saves
     * an index descent per row read (measured in benchmarks/RELAY.md).
     *
     * @param shard the shard as a parameter ({@code ?}) or a column of the enclosing statement
     */
    static String holdBack(String msg, String shard) {
        return " and (m.message_key is null or not exists (select 1 from " + msg + " p0 where p0.shard = " + shard
                + " and p0.parked_at is not null) or not exists (select 1 from " + msg
                + " p where p.shard = m.shard"
                + " and p.parked_at is not null and p.message_key = m.message_key and p.id < m.id))";
    }

    private Connection connect() throws SQLException {
        return connect(dataSource);
    }

    /** @return a connection of {@code dataSource} in autocommit mode */
    static Connection connect(DataSource dataSource) throws SQLException {
        Connection c = dataSource.getConnection();
        try {
            if (!c.getAutoCommit()) {
                c.setAutoCommit(true);
            }
            return c;
        } catch (SQLException e) {
            c.close();
            throw e;
        }
    }

    /** @return the number of lease rows, i.e. the installed shard count, checked to be 0..n-1 */
    int shardCount() throws SQLException {
        try (Connection c = connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery(shardCountSql)) {
            rs.next();
            int count = rs.getInt(1);
            if (count > 0 && (rs.getInt(2) != 0 || rs.getInt(3) != count - 1)) {
                throw new IllegalStateException("outbox_shard_lease holds " + count + " rows but not shards 0.."
                        + (count - 1) + ": the table was edited by hand; restore one row per shard");
            }
            return count;
        }
    }

    /** @return the name of the database the relay is connected to */
    String database() throws SQLException {
        try (Connection c = connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select current_database()")) {
            rs.next();
            return rs.getString(1);
        }
    }

    /** @return up to {@code limit} publishable rows of the shard, in id order */
    @Override
    public List<OutboxRow> read(int shard, int limit) throws SQLException {
        try (Connection c = connect();
                PreparedStatement ps = c.prepareStatement(readSql)) {
            ps.setInt(1, cap.inlineLimit(limit));
            ps.setInt(2, shard);
            ps.setInt(hold(ps, 3, shard), limit);
            return rows(c, ps, limit, Set.of());
        }
    }

    /**
     * @param heldTopics topics whose rows are read without their payload
     * @param heldIds rows not read (the shard holds them already)
     * @param waitingKeys keys none of whose rows is read
     * @return up to {@code limit} publishable rows of the shard in id order, without the rows {@code
     *     heldIds} and the rows of {@code waitingKeys}
     */
    @Override
    public List<OutboxRow> readFiltered(
            int shard, Collection<String> heldTopics, long[] heldIds, String[] waitingKeys, int limit)
            throws SQLException {
        try (Connection c = connect();
                PreparedStatement ps = c.prepareStatement(readFilteredSql)) {
            ps.setArray(1, c.createArrayOf("text", heldTopics.toArray()));
            ps.setInt(2, cap.inlineLimit(limit));
            ps.setInt(3, shard);
            ps.setArray(4, longArray(c, heldIds));
            ps.setArray(5, c.createArrayOf("text", waitingKeys));
            ps.setInt(hold(ps, 6, shard), limit);
            return rows(c, ps, limit, heldTopics);
        }
    }

    @Override
    public List<OutboxRow> readPastHeld(
            int shard, Collection<String> heldTopics, long[] heldIds, String[] waitingKeys, int limit)
            throws SQLException {
        try {
            return readPastHeld(readPastHeldSql, shard, heldTopics, heldIds, waitingKeys, limit);
        } catch (SQLException e) {
            if (!PROGRAM_LIMIT_EXCEEDED.equals(e.getSQLState())) {
                throw e;
            }
            // the held keys' first ids make a jsonb object past its limit: their keys are left out whole
            return readPastHeld(readPastHeldByKeySql, shard, heldTopics, heldIds, waitingKeys, limit);
        }
    }

    private List<OutboxRow> readPastHeld(
            String sql, int shard, Collection<String> heldTopics, long[] heldIds, String[] waitingKeys, int limit)
            throws SQLException {
        try (Connection c = connect();
                PreparedStatement ps = c.prepareStatement(sql)) {
            Array topics = c.createArrayOf("text", heldTopics.toArray());
            ps.setInt(1, cap.inlineLimit(limit));
            ps.setInt(2, shard);
            ps.setArray(3, longArray(c, heldIds));
            ps.setArray(4, c.createArrayOf("text", waitingKeys));
            ps.setArray(5, topics);
            ps.setInt(6, shard);
            ps.setArray(7, topics);
            ps.setInt(hold(ps, 8, shard), limit);
            return rows(c, ps, limit, Set.of());
        }
    }

    /**
     * @param inFlight the ids of the batch in flight, ascending, the lowest publishable ids at the
     *     time they were read
     * @return up to {@code limit} publishable rows of the shard that are not in flight, in id order
     */
    @Override
    public List<OutboxRow> readAhead(int shard, long[] inFlight, int limit) throws SQLException {
        try (Connection c = connect();
                PreparedStatement ps = c.prepareStatement(readAheadSql)) {
            ps.setInt(1, cap.inlineLimit(limit));
            ps.setInt(2, shard);
            ps.setLong(3, inFlight[inFlight.length - 1]);
            ps.setArray(4, longArray(c, inFlight));
            ps.setInt(hold(ps, 5, shard), limit);
            return rows(c, ps, limit, Set.of());
        }
    }

    /**
     * Binds the shard of the hold-back check at {@code index} when the reads have it.
     *
     * @return the index of the next parameter
     */
    private int hold(PreparedStatement ps, int index, int shard) throws SQLException {
        if (!holdKey) {
            return index;
        }
        ps.setInt(index, shard);
        return index + 1;
    }

    /**
     * @param heldTopics topics whose rows were read without their payload on purpose
     * @return the rows the read returned, cut to the payload cap, with the payloads it left out for their size
     */
    private List<OutboxRow> rows(Connection c, PreparedStatement ps, int limit, Collection<String> heldTopics)
            throws SQLException {
        List<OutboxRow> rows = new ArrayList<>(Math.min(limit, 1024));
        int[] lengths = new int[Math.min(limit, 1024)];
        try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
                OutboxRow row = row(rs, 1);
                if (rows.size() == lengths.length) {
                    lengths = Arrays.copyOf(lengths, lengths.length * 2);
                }
                lengths[rows.size()] = leftOut(rs, 1, row, heldTopics);
                rows.add(row);
            }
        }
        // on the read's own connection: a worker never holds two of the pool's connections
        return cap.apply(rows, lengths, ids -> payloads(c, payloadsSql, ids));
    }

    /**
     * @param first the column of the row's id, as for {@link #row}
     * @return the length of the payload the read left out for its size, or -1 (the payload is as read)
     */
    static int leftOut(ResultSet rs, int first, OutboxRow row, Collection<String> heldTopics) throws SQLException {
        int length = rs.getInt(first + 9);
        if (rs.wasNull() || row.payloadSize() > 0 || length == 0 || heldTopics.contains(row.topic())) {
            return -1;
        }
        return length;
    }

    /** @return the statement that fetches payloads by id ({@link #payloads}) */
    static String payloadsSql(String msg) {
        return "select m.id, m.payload from " + msg + " m where m.id = any(?::bigint[])";
    }

    /** @return the payloads of the rows {@code ids} still in the table, by id, read on {@code c} */
    static Map<Long, byte[]> payloads(Connection c, String payloadsSql, long[] ids) throws SQLException {
        Map<Long, byte[]> out = new HashMap<>();
        try (PreparedStatement ps = c.prepareStatement(payloadsSql)) {
            ps.setArray(1, longArray(c, ids));
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.put(rs.getLong(1), rs.getBytes(2));
                }
            }
        }
        return out;
    }

    /** @return the payload cap of the reads */
    PayloadCap cap() {
        return cap;
    }

    /** @return the row whose columns start at {@code first} */
    static OutboxRow row(ResultSet rs, int first) throws SQLException {
        return new OutboxRow(
                rs.getLong(first),
                rs.getObject(first + 1, UUID.class),
                rs.getString(first + 2),
                rs.getString(first + 3),
                rs.getString(first + 4),
                rs.getString(first + 5),
                rs.getString(first + 6),
                rs.getBytes(first + 7),
                rs.getObject(first + 8, OffsetDateTime.class));
    }

    /**
     * Deletes the published rows of several shards in one statement, each shard fenced by its own lease
     * {@code (shard, owner, epoch, lease_until > now())}, its lease row locked FOR SHARE in shard order.
     * A row is deleted if its id is in a deletion and the lease of its own shard is held; the ids of a
     * deletion are rows read from that deletion's shard.
     *
     * @param deletions at most one per shard
     * @return per deletion, in its order: whether its lease held, and the rows deleted
     */
    @Override
    public List<Fenced> deleteAll(List<Deletion> deletions) throws SQLException {
        int n = deletions.size();
        Fences fences = fences(deletions, "delete");
        long[] ids = fences.ids();
        Map<Integer, Integer> position = fences.position();
        Fenced[] out = new Fenced[n];
        fencedWrite(ids, c -> {
            try (PreparedStatement ps = c.prepareStatement(deleteAllSql)) {
                bindFences(ps, c, fences);
                ps.setArray(4, longArray(c, ids));
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        out[position.get(rs.getInt(1))] = new Fenced(rs.getBoolean(2), (int) rs.getLong(3));
                    }
                }
            }
        });
        return List.of(out);
    }

    /** One fenced write's statement, run in the write's transaction. */
    @FunctionalInterface
    private interface Write {
        void run(Connection c) throws SQLException;
    }

    /**
     * Runs a fenced write of the rows {@code ids}: one statement in autocommit mode that sets its own
     * lock timeout ({@link #lockTimeoutCte}). Not a transaction of {@code SET LOCAL}, statement and
     * {@code COMMIT}: a relay paused between its statement and its commit (SIGSTOP, a VM paused) would
     * keep the shards' lease rows and deleted rows locked for as long as its connection lives, and no
     * other relay could claim those shards ({@code ZombieRelayIT}); PostgreSQL commits a single
     * statement without waiting for the client.
     *
     * @throws RowsLockedException when a lock wait timed out and some of {@code ids} are rows another
     *     transaction holds locked; nothing was written
     */
    private void fencedWrite(long[] ids, Write write) throws SQLException {
        try (Connection c = connect()) {
            try {
                write.run(c);
            } catch (SQLException e) {
                if (RowsLockedException.LOCK_NOT_AVAILABLE.equals(e.getSQLState())) {
                    throw lockedRows(c, ids, e);
                }
                throw e;
            }
        }
    }

    /**
     * @return a CTE {@code t} whose evaluation sets {@code lock_timeout} to the write lock timeout for the
     *     statement's own transaction ({@code set_config(..., true)}), whatever the session's; the
     *     statement refers to it ({@code (select t.applied from t)}) before it locks a row. The table's own
     *     lock, taken before the statement runs, is bounded by the session's {@code lock_timeout} only
     */
    private String lockTimeoutCte() {
        return "t as materialized (select set_config('lock_timeout', '" + writeLockTimeoutMillis
                + "', true) as applied)";
    }

    /**
     * @return a {@link RowsLockedException} naming the rows of {@code ids} that another transaction
     *     holds locked, or {@code timeout} when none is (the wait was for a lease row) or they cannot
     *     be told
     */
    private SQLException lockedRows(Connection c, long[] ids, SQLException timeout) {
        Map<Integer, List<Long>> locked = new HashMap<>();
        try {
            try (PreparedStatement ps = c.prepareStatement(lockedRowsSql)) {
                Array all = longArray(c, ids);
                ps.setArray(1, all);
                ps.setArray(2, all);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        locked.computeIfAbsent(rs.getInt(1), s -> new ArrayList<>())
                                .add(rs.getLong(2));
                    }
                }
            }
        } catch (SQLException e) {
            timeout.addSuppressed(e);
            return timeout;
        }
        return locked.isEmpty() ? timeout : new RowsLockedException(table, locked, timeout);
    }

    /** Several shards' writes as one statement's arguments: their shards, epochs and ids in order. */
    private record Fences(int[] shards, long[] epochs, long[] ids, Map<Integer, Integer> position) {}

    private static Fences fences(List<? extends ShardWrite> writes, String what) {
        int n = writes.size();
        int[] shards = new int[n];
        long[] epochs = new long[n];
        int total = 0;
        for (ShardWrite w : writes) {
            total += w.ids().length;
        }
        long[] ids = new long[total];
        Map<Integer, Integer> position = new HashMap<>();
        int at = 0;
        for (int i = 0; i < n; i++) {
            ShardWrite w = writes.get(i);
            if (position.put(w.shard(), i) != null) {
                throw new IllegalArgumentException("shard " + w.shard() + " twice in one " + what);
            }
            shards[i] = w.shard();
            epochs[i] = w.epoch();
            System.arraycopy(w.ids(), 0, ids, at, w.ids().length);
            at += w.ids().length;
        }
        return new Fences(shards, epochs, ids, position);
    }

    /** Binds the fenced leases of {@code fences} to parameters 1 to 3 (shards, epochs, owner). */
    private void bindFences(PreparedStatement ps, Connection c, Fences fences) throws SQLException {
        ps.setArray(1, intArray(c, fences.shards()));
        ps.setArray(2, longArray(c, fences.epochs()));
        ps.setString(3, owner);
    }

    @Override
    public List<Failed> failAll(List<Failure> failures, int maxAttempts) throws SQLException {
        int n = failures.size();
        Fences fences = fences(failures, "failure statement");
        Map<Integer, Integer> position = fences.position();
        String[] errors = new String[fences.ids().length];
        Boolean[] park = new Boolean[errors.length];
        int[] shardOf = new int[errors.length];
        int at = 0;
        for (Failure f : failures) {
            for (int k = 0; k < f.ids().length; k++, at++) {
                errors[at] = f.errors()[k];
                park[at] = f.park()[k];
                shardOf[at] = f.shard();
            }
        }
        boolean[] held = new boolean[n];
        List<List<FailedRow>> rows = new ArrayList<>(n);
        for (Failure f : failures) {
            rows.add(new ArrayList<>(f.ids().length));
        }
        fencedWrite(fences.ids(), c -> {
            try (PreparedStatement ps = c.prepareStatement(failAllSql)) {
                bindFences(ps, c, fences);
                ps.setInt(4, maxAttempts);
                Array idArray = longArray(c, fences.ids());
                ps.setArray(5, idArray);
                ps.setArray(6, c.createArrayOf("text", errors));
                ps.setArray(7, c.createArrayOf("boolean", park));
                ps.setArray(8, intArray(c, shardOf));
                ps.setArray(9, idArray);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        int i = position.get(rs.getInt(1));
                        held[i] = rs.getBoolean(2);
                        long id = rs.getLong(3);
                        if (!rs.wasNull()) {
                            rows.get(i).add(new FailedRow(id, rs.getInt(4), rs.getBoolean(5)));
                        }
                    }
                }
            }
        });
        List<Failed> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(new Failed(held[i], List.copyOf(rows.get(i))));
        }
        return out;
    }

    /** @return the shards claimed and their new epochs */
    Map<Integer, Long> claim(int max, Duration lease) throws SQLException {
        return leases.claim(max, lease);
    }

    /** @return the shards whose lease (shard, owner, epoch) still held and was extended */
    Set<Integer> renew(Map<Integer, Long> owned, Duration lease) throws SQLException {
        return leases.renew(owned, lease);
    }

    /** @return the shards handed back (those whose lease this relay still held) */
    Set<Integer> release(Map<Integer, Long> owned) throws SQLException {
        return leases.release(owned);
    }

    /** Joins or renews the membership; the row lives one lease. */
    void heartbeat(Duration lease) throws SQLException {
        leases.heartbeat(lease);
    }

    /** @return live relays (heartbeat not expired), this one included; deletes long-dead members */
    int liveMembers(Duration deadAfter) throws SQLException {
        return leases.liveMembers(deadAfter);
    }

    void leave() throws SQLException {
        leases.leave();
    }

    /**
     * @return per shard: {backlog rows, age of the oldest in seconds}; shards without rows are absent.
     *     Up to {@value #BACKLOG_COUNTED} rows a shard's backlog is counted; beyond, it is estimated
     *     from the id span of the shard's rows and the density of the counted ones.
     */
    Map<Integer, double[]> backlog(Collection<Integer> shards) throws SQLException {
        Map<Integer, double[]> out = new HashMap<>();
        if (shards.isEmpty()) {
            return out;
        }
        try (Connection c = connect();
                PreparedStatement ps = c.prepareStatement(backlogSql)) {
            ps.setArray(1, c.createArrayOf("integer", shards.toArray(Integer[]::new)));
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    long counted = rs.getLong(2);
                    double rows = estimate(counted, rs.getLong(4), rs.getLong(3), rs.getLong(6));
                    out.put(rs.getInt(1), new double[] {rows, rs.getDouble(5)});
                }
            }
        }
        return out;
    }

    /** Rows of a shard, counted up to {@link #BACKLOG_COUNTED} and extrapolated by id density beyond. */
    static double estimate(long counted, long firstId, long lastCountedId, long maxId) {
        if (counted < BACKLOG_COUNTED || maxId <= lastCountedId) {
            return counted;
        }
        double perId = (double) counted / (lastCountedId - firstId + 1);
        return counted + perId * (maxId - lastCountedId);
    }

    /** @return the probe's statements */
    ProbeStatements probes() {
        return probes;
    }

    long parkedRows() throws SQLException {
        try (Connection c = connect();
                PreparedStatement ps = c.prepareStatement(parkedSql);
                ResultSet rs = ps.executeQuery()) {
            rs.next();
            return rs.getLong(1);
        }
    }

    static Array intArray(Connection c, int[] values) throws SQLException {
        PGConnection pg = pgConnection(c);
        if (pg != null) {
            return pg.createArrayOf("int4", values);
        }
        Integer[] boxed = new Integer[values.length];
        for (int i = 0; i < values.length; i++) {
            boxed[i] = values[i];
        }
        return c.createArrayOf("integer", boxed);
    }

    /**
     * @return a {@code bigint[]} of {@code values}: from the primitive array itself on PostgreSQL's driver
     *     (the ids of every read-ahead and delete would otherwise be boxed one by one), boxed elsewhere
     */
    static Array longArray(Connection c, long[] values) throws SQLException {
        PGConnection pg = pgConnection(c);
        if (pg != null) {
            return pg.createArrayOf("int8", values);
        }
        Long[] boxed = new Long[values.length];
        for (int i = 0; i < values.length; i++) {
            boxed[i] = values[i];
        }
        return c.createArrayOf("bigint", boxed);
    }

    /** @return PostgreSQL's driver connection behind {@code c} (a pool's proxy unwraps to it), or null */
    private static PGConnection pgConnection(Connection c) throws SQLException {
        return c.isWrapperFor(PGConnection.class) ? c.unwrap(PGConnection.class) : null;
    }
}
