package dev.outbox.bench.relay;

import dev.outbox.testkit.PostgresServer;
import dev.outbox.testkit.PrivatePostgres;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import org.postgresql.PGConnection;

/**
 * Checks the read path of {@code docs/CURSOR-LAYOUT.md} ("Reading: pairs of snapshots") against a real
 * PostgreSQL under concurrent writers, before any of it is built into the relay: does a reader that
 * only ever reads the rows of a pair of snapshots ({@code prev}, {@code cur}), in {@code id} order and
 * in batches, and never deletes anything, find every committed row exactly once, late commits with
 * lower ids included, and in per-key order when the writers of a key serialise on a row lock?
 *
 * <p>One generation table (today's columns reduced to what the check needs, plus {@code tx xid8
 * default pg_current_xact_id()} before {@code id}), {@value #SHARDS} shards, and four kinds of
 * writers running together on a private server:
 *
 * <ul>
 *   <li>per-key writers: lock the key's counter row ({@code update ... returning n}, which also gives
 *       the transaction its id early), insert one to three rows numbered after it, wait 0 to 20 ms
 *       (a late commit: rows with higher ids commit meanwhile), and commit, or roll back one time in
 *       ten;
 *   <li>fresh writers: insert a row of a key of its own as the transaction's first statement, so that
 *       the row's transaction id is assigned by the {@code tx} default (the order of evaluation the
 *       design rests on), then wait 0 to 20 ms and commit;
 *   <li>early writers: take a transaction id first (an insert into another table), wait 0 to 50 ms,
 *       then insert a row of a key of its own and commit;
 *   <li>one long writer: takes a transaction id the same way, waits 3 s, inserts a row of a key of its own, waits 2
 *       s, commits; again and again, so that its transaction stays in progress across many pairs.
 * </ul>
 *
 * <p>The reader follows the design: per shard a cursor ({@code prev}, {@code prev_seq}, {@code
 * prev_x}) kept in memory; a pair opened by reading the sequence, then, in one statement, {@code
 * pg_current_snapshot()} and a new transaction id; batches of {@code --batch} rows of the pair after
 * {@code after_id}, first those of phase 1 ({@link #STRAGGLERS}), then of phase 2 ({@link #LATER});
 * the pair closed when a phase 2 batch comes back short. After the writers stop, every shard
 * opens pairs until one is empty. Then: every row in the table was read exactly once, no row of a
 * rolled-back transaction was read, and each serialised key's rows were read in the order of its
 * counter with no gap. Any violation is printed and the program exits with status 1.
 *
 * <p>Options: {@code --seconds N} (default 60), {@code --writers N} per-key writers (8), {@code --batch N}
 * (20), {@code --pause-ms N} (0: the reader's pause after each round of the shards, so that pairs grow
 * beyond a batch), {@code --without-running-part} (the read without its phase 1, the rows of
 * transactions in progress at {@code prev}: the check must then fail), {@code --out FILE}. See {@code
 * docs/CURSOR-LAYOUT.md}.
 */
public final class SnapshotPairs {
    static final int SHARDS = 8;
    private static final int KEYS = PairWriters.KEYS;

    /**
     * Phase 1 of a pair: the rows of transactions that were in progress at {@code prev}, or that got
     * their transaction id while {@code prev}'s pair was being opened, and drew their row ids before
     * {@code prev_seq} was read. Found by transaction id through {@code (shard, tx)}, one arm per index
     * condition ({@code id + 0} keeps the planner off the {@code (shard, id)} walk over every older row).
     * Parameters: shard, xip of prev, cur, shard, xmax of prev, prev_x, cur, prev_seq, after_id, batch.
     */
    static final String STRAGGLERS = "select id, key, n from ("
            + " (select id, key, n from pairs.gen where shard = ? and tx = any(?::xid8[])"
            + " and pg_visible_in_snapshot(tx, ?::pg_snapshot))"
            + " union all"
            + " (select id, key, n from pairs.gen where shard = ? and tx >= ?::xid8 and tx < ?::xid8"
            + " and pg_visible_in_snapshot(tx, ?::pg_snapshot))"
            + ") s where id + 0 <= ? and id + 0 > ? order by id limit ?";
    /**
     * Phase 2: the rows drawn after {@code prev_seq} was read, visible in {@code cur} and not in {@code
     * prev}, walked in id order through {@code (shard, id)}. Parameters: shard, after_id, prev_seq, cur,
     * prev, batch.
     */
    static final String LATER = "select id, key, n from pairs.gen where shard = ? and id > greatest(?, ?)"
            + " and pg_visible_in_snapshot(tx, ?::pg_snapshot) and not pg_visible_in_snapshot(tx, ?::pg_snapshot)"
            + " order by id limit ?";

    private final PostgresServer server;
    private final Connection reader;
    private final int batch;
    private final boolean withoutStragglers;
    private final PairWriters writers;
    private final ConcurrentLinkedQueue<String> violations = new ConcurrentLinkedQueue<>();
    private final AtomicLong committed = new AtomicLong();

    /** The cursor of one shard, and its pair in progress. */
    private static final class Cursor {
        String prev;
        long prevSeq;
        String prevX;
        String cur;
        long curSeq;
        String curX;
        long afterId;
        /** The highest id this shard has read, to count rows read with a lower id (late commits). */
        long highestRead;
        /** Full batches read of the pair in progress. */
        int fullBatches;
        /** Whether the pair's phase 1 (rows of transactions in progress at prev) is done. */
        boolean stragglersDone;
    }

    private final Cursor[] cursors = new Cursor[SHARDS];
    private final Set<Long> readIds = new HashSet<>();
    private final Map<String, Long> lastOfKey = new HashMap<>();
    private long pairs;
    private long reads;
    private long lateRows;
    private long longPairs;
    private long stragglerReads;
    private long stragglerRows;

    private SnapshotPairs(PostgresServer server, Connection reader, int batch, boolean withoutRunningPart) {
        this.server = server;
        this.reader = reader;
        this.batch = batch;
        this.withoutStragglers = withoutRunningPart;
        this.writers = new PairWriters(server, "pairs", ids -> committed.addAndGet(ids.size()), this::violation);
    }

    public static void main(String[] args) throws Exception {
        int seconds = 60;
        int writers = 8;
        int batch = 20;
        int pauseMs = 0;
        boolean withoutRunningPart = false;
        Path out = null;
        for (int i = 0; i < args.length; i++) {
            String value = i + 1 < args.length ? args[i + 1] : null;
            switch (args[i]) {
                case "--seconds" -> seconds = RelayOptions.positiveValue("--seconds", value);
                case "--writers" -> writers = RelayOptions.positiveValue("--writers", value);
                case "--batch" -> batch = RelayOptions.positiveValue("--batch", value);
                case "--pause-ms" -> pauseMs = RelayOptions.positiveValue("--pause-ms", value);
                case "--out" -> out = Path.of(RelayOptions.required("--out", value));
                case "--without-running-part" -> {
                    withoutRunningPart = true;
                    continue;
                }
                default ->
                    throw new IllegalArgumentException("unknown option '" + args[i]
                            + "'; the options are --seconds N, --writers N, --batch N, --pause-ms N,"
                            + " --without-running-part, --out FILE");
            }
            i++;
        }
        Report.quietLogs();
        Report report = new Report();
        boolean passed;
        try (PrivatePostgres pg = PrivatePostgres.start();
                Connection reader = pg.server().connectAdmin()) {
            reader.unwrap(PGConnection.class).setPrepareThreshold(1);
            SnapshotPairs check = new SnapshotPairs(pg.server(), reader, batch, withoutRunningPart);
            passed = check.run(report, Duration.ofSeconds(seconds), writers, pauseMs);
        }
        report.write(out);
        if (!passed) {
            System.exit(1);
        }
    }

    private boolean run(Report report, Duration duration, int writerCount, int pauseMs) throws Exception {
        try (Statement st = reader.createStatement()) {
            st.execute("drop schema if exists pairs cascade");
            st.execute("create schema pairs");
            st.execute("create sequence pairs.seq cache 1");
            // tx before id: defaults are evaluated in column order, so the transaction has its id before
            // the row draws its own
            st.execute("create table pairs.gen (tx xid8 not null default pg_current_xact_id(),"
                    + " id bigint not null default nextval('pairs.seq'), shard int not null, key text not null,"
                    + " n bigint not null)");
            st.execute("create index on pairs.gen (shard, id)");
            st.execute("create index on pairs.gen (shard, tx)");
            writers.createTables(st);
        }
        for (int s = 0; s < SHARDS; s++) {
            Cursor c = new Cursor();
            open(c);
            c.prev = c.cur;
            c.prevSeq = c.curSeq;
            c.prevX = c.curX;
            c.cur = null;
            cursors[s] = c;
        }
        report.line("# snapshot pairs, " + Instant.now() + ": " + writerCount + " per-key writers over " + KEYS
                + " keys, 2 fresh writers, 2 early writers, 1 long writer, " + SHARDS + " shards, batch " + batch
                + ", a pause of " + pauseMs + " ms after each round of the shards, " + duration.toSeconds()
                + " s of writing"
                + (withoutStragglers ? ", the read WITHOUT its phase for transactions in progress" : ""));
        List<Thread> threads = writers.startAll(writerCount, SnapshotPairs::insert);
        long deadline = System.nanoTime() + duration.toNanos();
        while (System.nanoTime() < deadline && violations.isEmpty()) {
            for (int s = 0; s < SHARDS; s++) {
                readOnce(s);
            }
            if (pauseMs > 0) {
                Thread.sleep(pauseMs);
            }
        }
        writers.stop();
        for (Thread t : threads) {
            t.join();
        }
        // after the last commit: every shard opens pairs until one is empty
        for (int s = 0; s < SHARDS; s++) {
            while (!drainedOnce(s)) {
                // next pair
            }
        }
        long inTable;
        Map<String, Long> highestOfKey = new HashMap<>();
        try (Statement st = reader.createStatement()) {
            try (ResultSet rs = st.executeQuery("select count(*) from pairs.gen")) {
                rs.next();
                inTable = rs.getLong(1);
            }
            try (ResultSet rs = st.executeQuery("select key, max(n) from pairs.gen group by key")) {
                while (rs.next()) {
                    highestOfKey.put(rs.getString(1), rs.getLong(2));
                }
            }
            try (ResultSet rs = st.executeQuery("select id from pairs.gen")) {
                while (rs.next()) {
                    if (!readIds.contains(rs.getLong(1))) {
                        violation("row " + rs.getLong(1) + " is in the table and was never read");
                    }
                }
            }
        }
        if (readIds.size() != inTable) {
            violation(readIds.size() + " rows read, " + inTable + " committed rows in the table");
        }
        if (inTable != committed.get()) {
            violation(inTable + " rows in the table, the writers committed " + committed.get());
        }
        highestOfKey.forEach((key, n) -> {
            if (!n.equals(lastOfKey.get(key))) {
                violation("key " + key + ": rows up to " + n + " committed, read up to " + lastOfKey.get(key));
            }
        });
        report.line(String.format(
                Locale.ROOT,
                "rows committed %d (transactions rolled back %d, writes failed %d); rows read %d, of which %d"
                        + " with an id below one this shard had read before; pairs %d (%d read in more than one"
                        + " batch), reads %d (%d of them phase 1) returning %d rows from phase 1; violations %d",
                committed.get(),
                writers.rolledBack.get(),
                writers.writeFailures.get(),
                readIds.size(),
                lateRows,
                pairs,
                longPairs,
                reads,
                stragglerReads,
                stragglerRows,
                violations.size()));
        violations.stream().limit(20).forEach(v -> report.line("violation: " + v));
        return violations.isEmpty() && committed.get() > 0;
    }

    /**
     * Opens a pair: the sequence read first, then the snapshot and a transaction id assigned after it. The
     * sequence is read with {@code pg_sequence_last_value}, under the sequence's buffer lock: a plain {@code
     * select last_value} from the sequence can see, while a {@code nextval} writes its WAL record, the value
     * logged ahead (up to 32 past the last one handed out), and rows drawn after it with lower ids are then
     * in neither phase.
     */
    private void open(Cursor c) throws SQLException {
        try (Statement st = reader.createStatement()) {
            try (ResultSet rs = st.executeQuery("select coalesce(pg_sequence_last_value('pairs.seq'), 0)")) {
                rs.next();
                c.curSeq = rs.getLong(1);
            }
            try (ResultSet rs = st.executeQuery("select pg_current_snapshot()::text, pg_current_xact_id()::text")) {
                rs.next();
                c.cur = rs.getString(1);
                c.curX = rs.getString(2);
            }
        }
        c.afterId = 0;
        pairs++;
        c.fullBatches = 0;
        c.stragglersDone = withoutStragglers;
    }

    /** One batch of the shard's pair, a new pair opened first when none is in progress. */
    private int readOnce(int shard) throws SQLException {
        Cursor c = cursors[shard];
        if (c.cur == null) {
            open(c);
        }
        int n = 0;
        boolean stragglers = !c.stragglersDone;
        try (PreparedStatement ps = reader.prepareStatement(stragglers ? STRAGGLERS : LATER)) {
            bindRead(reader, ps, stragglers, shard, c.prev, c.prevX, c.prevSeq, c.cur, c.afterId, batch);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    n++;
                    accept(shard, c, rs.getLong(1), rs.getString(2), rs.getLong(3));
                }
            }
        }
        if (stragglers) {
            reads++;
            stragglerReads++;
            stragglerRows += n;
            if (n < batch) {
                c.stragglersDone = true;
            }
            return n == 0 ? readOnce(shard) : n; // an empty phase 1 costs the pair one statement, no turn
        }
        reads++;
        if (n < batch) { // the pair is exhausted: it becomes the cursor
            longPairs += c.fullBatches > 0 ? 1 : 0;
            c.prev = c.cur;
            c.prevSeq = c.curSeq;
            c.prevX = c.curX;
            c.cur = null;
        } else {
            c.fullBatches++;
        }
        return n;
    }

    /**
     * Binds the parameters of {@link #STRAGGLERS} (phase 1) or {@link #LATER} (phase 2) for a shard's pair
     * ({@code prev}, {@code cur}), after {@code afterId}, up to {@code batch} rows.
     */
    static void bindRead(
            Connection c,
            PreparedStatement ps,
            boolean stragglers,
            int shard,
            String prev,
            String prevX,
            long prevSeq,
            String cur,
            long afterId,
            int batch)
            throws SQLException {
        int p = 1;
        if (stragglers) {
            String[] parts = prev.split(":", -1); // xmin:xmax:xip,...
            ps.setInt(p++, shard);
            ps.setArray(p++, c.createArrayOf("text", parts[2].isEmpty() ? new String[0] : parts[2].split(",")));
            ps.setString(p++, cur);
            ps.setInt(p++, shard);
            ps.setString(p++, parts[1]);
            ps.setString(p++, prevX);
            ps.setString(p++, cur);
            ps.setLong(p++, prevSeq);
            ps.setLong(p++, afterId);
        } else {
            ps.setInt(p++, shard);
            ps.setLong(p++, afterId);
            ps.setLong(p++, prevSeq);
            ps.setString(p++, cur);
            ps.setString(p++, prev);
        }
        ps.setInt(p, batch);
    }

    /** @return whether a pair opened now was empty */
    private boolean drainedOnce(int shard) throws SQLException {
        Cursor c = cursors[shard];
        boolean fresh = c.cur == null;
        int n = readOnce(shard);
        return fresh && n == 0;
    }

    private void accept(int shard, Cursor c, long id, String key, long n) {
        if (id <= c.afterId) {
            violation("shard " + shard + ": row " + id + " read at or below after_id " + c.afterId);
        }
        c.afterId = id;
        if (!readIds.add(id)) {
            violation("row " + id + " read twice");
        }
        if (id < c.highestRead) {
            lateRows++;
        }
        c.highestRead = Math.max(c.highestRead, id);
        long expected = lastOfKey.getOrDefault(key, 0L) + 1;
        if (n != expected) {
            violation("key " + key + ": row " + n + " read where " + expected + " was next, in the pair prev "
                    + c.prev + " (prev_x " + c.prevX + ", prev_seq " + c.prevSeq + "), cur " + c.cur + ", "
                    + (c.stragglersDone ? "phase 2" : "phase 1") + "; the row expected: " + describe(key, expected));
        }
        lastOfKey.put(key, n);
    }

    private String describe(String key, long n) {
        try (PreparedStatement ps =
                reader.prepareStatement("select id, tx::text from pairs.gen where key = ? and n = ?")) {
            ps.setString(1, key);
            ps.setLong(2, n);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? "id " + rs.getLong(1) + ", tx " + rs.getString(2) : "not in the table";
            }
        } catch (SQLException e) {
            return "unknown (" + e.getMessage() + ")";
        }
    }

    private void violation(String what) {
        violations.add(what);
    }

    /** Inserts a row into the generation table. @return its id */
    private static long insert(Connection c, String key, long n) throws SQLException {
        try (PreparedStatement ps =
                c.prepareStatement("insert into pairs.gen (shard, key, n) values (?, ?, ?) returning id")) {
            ps.setInt(1, Math.floorMod(key.hashCode(), SHARDS));
            ps.setString(2, key);
            ps.setLong(3, n);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }
}
