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
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.postgresql.PGConnection;

/**
 * Checks the parts of {@code docs/CURSOR-LAYOUT.md} that {@link SnapshotPairs} leaves out, against a real
 * PostgreSQL under concurrent writers, before any of it is built into the relay: the cursor stored on the
 * shard's lease row and moved by fenced updates, a pair in progress taken over by another owner, several
 * generation tables chosen by the writers' clocks, and the truncation of a generation table under its
 * lock ("Truncating"). Does every committed row still reach the readers, in per-key order, with
 * duplicates only where an owner changed?
 *
 * <p>{@code --tables N} generation tables (3 by default; {@code tx} before {@code id}, one sequence with
 * cache 1), {@value SnapshotPairs#SHARDS} shards, and a lease row per shard holding its owner, epoch and
 * cursor ({@code prev}, {@code prev_seq}, {@code prev_x}; the pair in progress {@code cur}, {@code
 * cur_seq}, {@code cur_x}, {@code after_id}). A writer puts a row into generation {@code floor(t / P) mod
 * N} for its own clock {@code t} and the period {@code P} ({@code --period-ms}, 1,000 by default). The
 * writers are {@link SnapshotPairs}'s (per-key writers serialised on a counter row, fresh, early and one
 * long writer whose transaction spans several periods), and one more whose clock runs {@code 0.6 P} ahead,
 * so that it writes into the table due to be emptied next.
 *
 * <p>Two owners ("relays"), each with a connection of its own, start with half the shards each. Each
 * round of an owner's shards: a pair is opened as the design says (the sequence by {@code
 * pg_sequence_last_value}, then one fenced update that stores {@code cur = pg_current_snapshot()} and
 * {@code cur_x = pg_current_xact_id()}, before any row of it is read); a batch is read, phase 1 or phase 2,
 * from each generation table in a statement of its own and merged by id; the batch's rows are delivered
 * (published and acknowledged, in this model) at once; {@code after_id} is stored by a fenced update after
 * one to three batches, with a pause of up to {@code --pause-ms} before it one time in ten (a relay
 * stalled between publishing and advancing); a short phase 2 batch closes the pair with a fenced update.
 * Every {@code --handover-ms} each owner takes a random shard of the other (a new epoch), which finds out
 * at its next fenced update, and until then reads and delivers on: a zombie. The new owner loads the
 * stored cursor and goes on with the stored pair.
 *
 * <p>A maintenance thread tries every 50 ms to empty the table after the current one ({@code (g + 1) mod
 * N}, written last a period or more ago), as "Truncating" says: {@code lock table ... in access exclusive
 * mode nowait} (refused while any statement or transaction holds a lock on it, a writer's long transaction
 * included), then, under the lock, a check that every row of the table was passed by its shard's stored
 * cursor (visible in {@code prev}, or of the pair in progress with {@code id <= after_id}); refused when one
 * was not, truncated and committed otherwise. Before the truncate it checks that every row it removes was
 * delivered.
 *
 * <p>With {@code --held-rows}, as "Held and parked rows" says: every 250 ms one of {@value #TOPICS} topics
 * (a key's hash) goes down, up to three at once, or one comes back. A row read for a topic that is down,
 * or of a key with a row held already (in {@code gens.held}, or read and not yet moved), is not delivered:
 * it moves to {@code gens.held} in the transaction of the next stored advance, after the fenced update. Before
 * each read, an owner delivers its shard's held rows whose topic is up, in id order, a key's rows not past
 * one still held, and deletes them in a transaction that holds the lease row. {@code --keys-not-held}
 * holds only the rows of topics that are down, not the later rows of their keys: the check must then fail.
 *
 * <p>After the writers stop, the handovers stop and each owner reads its shards until a newly opened pair
 * is empty. The check: every row the writers committed was delivered (none truncated unread), no row of a
 * rolled-back transaction was, each key's rows were first delivered in the order of its counter without a
 * gap, rows were delivered twice only after a handover of their shard, and no row is left in {@code
 * gens.held}. Any violation is printed and
 * the program exits with status 1.
 *
 * <p>Options: {@code --seconds N} (60), {@code --writers N} per-key writers (8), {@code --batch N} (20),
 * {@code --tables N} (3), {@code --period-ms N} (1,000), {@code --handover-ms N} (500), {@code --pause-ms
 * N} (200), {@code --unfenced-truncate} (the truncate without its check under the lock) and {@code
 * --unfenced-cursor} (the cursor's updates without the owner and epoch condition: a stalled owner's
 * advance or close lands after another took the shard over), with either of which the check must fail,
 * {@code --held-rows}, {@code --keys-not-held} (both above), {@code --out FILE}.
 */
public final class GenerationCursors {
    private static final int SHARDS = SnapshotPairs.SHARDS;
    private static final int KEYS = PairWriters.KEYS;
    private static final String LOCK_NOT_AVAILABLE = "55P03";
    private static final int TOPICS = 16;

    private final PostgresServer server;
    private final int batch;
    private final int tables;
    private final long periodMs;
    private final long handoverMs;
    private final int pauseMs;
    private final boolean unfencedTruncate;
    /** Whether rows of topics that are down move to {@code gens.held} ("Held and parked rows"). */
    private final boolean heldRows;
    /** {@code --keys-not-held}: only rows of a topic that is down are held, not the later rows of their keys. */
    private final boolean keysNotHeld;
    /** The topics that are down now, a topic being a key's hash modulo {@value #TOPICS}. */
    private final Set<Integer> downTopics = ConcurrentHashMap.newKeySet();

    private final AtomicLong moved = new AtomicLong();
    private final AtomicLong heldDelivered = new AtomicLong();
    /** The owner's condition on its cursor's updates: its name and epoch, or (--unfenced-cursor) neither. */
    private final String fence;

    private final PairWriters writers;
    private final AtomicBoolean handingOver = new AtomicBoolean(true);
    /** Set once every writer's last transaction has ended. */
    private final AtomicBoolean written = new AtomicBoolean(false);

    private final ConcurrentLinkedQueue<String> violations = new ConcurrentLinkedQueue<>();
    private final Set<Long> committedIds = ConcurrentHashMap.newKeySet();
    private final AtomicLong pairs = new AtomicLong();
    private final AtomicLong handovers = new AtomicLong();
    private final AtomicLong fenced = new AtomicLong();
    private final AtomicLong unstoredLost = new AtomicLong();
    private final AtomicLong truncations = new AtomicLong();
    private final AtomicLong rowsTruncated = new AtomicLong();
    private final AtomicLong lockRefused = new AtomicLong();
    private final AtomicLong unpassedRefused = new AtomicLong();

    /** What was delivered, guarded by itself. */
    private final Deliveries deliveries = new Deliveries();

    private GenerationCursors(
            PostgresServer server,
            int batch,
            int tables,
            long periodMs,
            long handoverMs,
            int pauseMs,
            boolean unfencedTruncate,
            boolean unfencedCursor,
            boolean heldRows,
            boolean keysNotHeld) {
        this.server = server;
        this.batch = batch;
        this.tables = tables;
        this.periodMs = periodMs;
        this.handoverMs = handoverMs;
        this.pauseMs = pauseMs;
        this.unfencedTruncate = unfencedTruncate;
        this.heldRows = heldRows;
        this.keysNotHeld = keysNotHeld;
        this.writers = new PairWriters(server, "gens", committedIds::addAll, this::violation);
        this.fence =
                unfencedCursor ? " and ?::text is not null and ?::bigint is not null" : " and owner = ? and epoch = ?";
    }

    public static void main(String[] args) throws Exception {
        int seconds = 60;
        int writers = 8;
        int batch = 20;
        int tables = 3;
        int periodMs = 1_000;
        int handoverMs = 500;
        int pauseMs = 200;
        boolean unfencedTruncate = false;
        boolean unfencedCursor = false;
        boolean heldRows = false;
        boolean keysNotHeld = false;
        Path out = null;
        for (int i = 0; i < args.length; i++) {
            String value = i + 1 < args.length ? args[i + 1] : null;
            switch (args[i]) {
                case "--seconds" -> seconds = RelayOptions.positiveValue("--seconds", value);
                case "--writers" -> writers = RelayOptions.positiveValue("--writers", value);
                case "--batch" -> batch = RelayOptions.positiveValue("--batch", value);
                case "--tables" -> tables = RelayOptions.positiveValue("--tables", value);
                case "--period-ms" -> periodMs = RelayOptions.positiveValue("--period-ms", value);
                case "--handover-ms" -> handoverMs = RelayOptions.positiveValue("--handover-ms", value);
                case "--pause-ms" -> pauseMs = RelayOptions.positiveValue("--pause-ms", value);
                case "--out" -> out = Path.of(RelayOptions.required("--out", value));
                case "--unfenced-truncate" -> {
                    unfencedTruncate = true;
                    continue;
                }
                case "--unfenced-cursor" -> {
                    unfencedCursor = true;
                    continue;
                }
                case "--held-rows" -> {
                    heldRows = true;
                    continue;
                }
                case "--keys-not-held" -> {
                    heldRows = true;
                    keysNotHeld = true;
                    continue;
                }
                default ->
                    throw new IllegalArgumentException(
                            "unknown option '" + args[i]
                                    + "'; the options are --seconds N, --writers N, --batch N, --tables N, --period-ms N,"
                                    + " --handover-ms N, --pause-ms N, --unfenced-truncate, --unfenced-cursor, --held-rows, --keys-not-held, --out FILE");
            }
            i++;
        }
        if (tables < 2) {
            throw new IllegalArgumentException("--tables must be at least 2 (one written, one emptied), got " + tables);
        }
        Report.quietLogs();
        Report report = new Report();
        boolean passed;
        try (PrivatePostgres pg = PrivatePostgres.start()) {
            GenerationCursors check = new GenerationCursors(
                    pg.server(),
                    batch,
                    tables,
                    periodMs,
                    handoverMs,
                    pauseMs,
                    unfencedTruncate,
                    unfencedCursor,
                    heldRows,
                    keysNotHeld);
            passed = check.run(report, Duration.ofSeconds(seconds), writers);
        }
        report.write(out);
        if (!passed) {
            System.exit(1);
        }
    }

    private static String table(int generation) {
        return "gens.gen_" + generation;
    }

    private boolean run(Report report, Duration duration, int writerCount) throws Exception {
        try (Connection c = server.connectAdmin();
                Statement st = c.createStatement()) {
            st.execute("drop schema if exists gens cascade");
            st.execute("create schema gens");
            st.execute("create sequence gens.seq cache 1");
            for (int g = 0; g < tables; g++) {
                // tx before id: defaults are evaluated in column order, so the transaction has its id before
                // the row draws its own
                st.execute("create table " + table(g) + " (tx xid8 not null default pg_current_xact_id(),"
                        + " id bigint not null default nextval('gens.seq'), shard int not null, key text not null,"
                        + " n bigint not null)");
                st.execute("create index on " + table(g) + " (shard, id)");
                st.execute("create index on " + table(g) + " (shard, tx)");
            }
            writers.createTables(st);
            st.execute("create table gens.held (id bigint primary key, shard int not null, key text not null,"
                    + " n bigint not null)");
            st.execute("create index on gens.held (shard, key)");
            st.execute("create table gens.lease (shard int primary key, owner text, epoch bigint not null,"
                    + " prev pg_snapshot not null, prev_seq bigint not null, prev_x xid8 not null,"
                    + " cur pg_snapshot, cur_seq bigint, cur_x xid8, after_id bigint not null)");
            // the first cursor: nothing written yet, so every row is after it
            c.setAutoCommit(false);
            long seq;
            try (ResultSet rs = st.executeQuery("select coalesce(pg_sequence_last_value('gens.seq'), 0)")) {
                rs.next();
                seq = rs.getLong(1);
            }
            st.execute("insert into gens.lease select s, null, 0, pg_current_snapshot(), " + seq
                    + ", pg_current_xact_id(), null, null, null, 0 from generate_series(0, " + (SHARDS - 1) + ") s");
            c.commit();
        }
        report.line("# generation cursors, " + Instant.now() + ": " + writerCount + " per-key writers over " + KEYS
                + " keys, 2 fresh, 2 early, 1 long and 1 skewed writer (+" + (periodMs * 6 / 10) + " ms), " + tables
                + " generation tables of " + periodMs + " ms, " + SHARDS + " shards, 2 owners, batch " + batch
                + ", a handover every " + handoverMs + " ms per owner, pauses up to " + pauseMs + " ms before an"
                + " advance, " + duration.toSeconds() + " s of writing"
                + (unfencedTruncate ? ", the truncate WITHOUT its check under the lock" : "")
                + (fence.contains("owner") ? "" : ", the cursor's updates WITHOUT the owner's fence")
                + (heldRows ? ", up to 3 of " + TOPICS + " topics down at a time, their rows held" : "")
                + (keysNotHeld ? ", the later rows of a held key NOT held" : ""));
        Owner a = new Owner("relay-a");
        Owner b = new Owner("relay-b");
        for (int s = 0; s < SHARDS; s++) {
            (s % 2 == 0 ? a : b).wanted.add(s);
        }
        List<Thread> threads = writers.startAll(writerCount, (c, key, n) -> insert(c, 0, key, n));
        long skewMs = periodMs * 6 / 10;
        threads.add(writers.start(
                "skewed", (c, key, n) -> insert(c, skewMs, key, n), (c, in) -> PairWriters.fresh(c, in, "skewed-")));
        Thread maintenance = Thread.ofPlatform().name("maintenance").start(this::maintain);
        Thread topics = Thread.ofPlatform().name("topics").start(this::toggleTopics);
        Thread first = Thread.ofPlatform().name(a.name).start(a::run);
        Thread second = Thread.ofPlatform().name(b.name).start(b::run);
        Thread.sleep(duration.toMillis());
        writers.stop();
        for (Thread t : threads) {
            t.join();
        }
        topics.join();
        written.set(true);
        first.join();
        second.join();
        maintenance.join();
        return check(report);
    }

    private boolean check(Report report) throws SQLException {
        Map<String, Long> committedOfKey = new HashMap<>();
        try (Connection c = server.connectAdmin();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select key, n from gens.keys")) {
            while (rs.next()) {
                committedOfKey.put(rs.getString(1), rs.getLong(2));
            }
        }
        try (Connection c = server.connectAdmin();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select count(*) from gens.held")) {
            rs.next();
            if (rs.getLong(1) > 0) {
                violation(rs.getLong(1) + " rows left in gens.held after every topic came back");
            }
        }
        long duplicates;
        synchronized (deliveries) {
            for (long id : committedIds) {
                if (!deliveries.times.containsKey(id)) {
                    violation("row " + id + " was committed and never delivered");
                }
            }
            for (long id : deliveries.times.keySet()) {
                if (!committedIds.contains(id)) {
                    violation("row " + id + " was delivered and never committed");
                }
            }
            committedOfKey.forEach((key, n) -> {
                if (!n.equals(deliveries.highestOfKey.getOrDefault(key, 0L))) {
                    violation("key " + key + ": rows up to " + n + " committed, delivered up to "
                            + deliveries.highestOfKey.get(key));
                }
            });
            duplicates = deliveries.duplicates;
        }
        report.line(String.format(
                Locale.ROOT,
                "rows committed %d (transactions rolled back %d, writes failed %d); pairs %d; handovers %d,"
                        + " fenced updates refused %d, rows delivered and not yet stored when a lease was found lost %d, rows delivered twice %d;"
                        + " truncations %d (%d rows), refused: lock not available %d, rows not passed %d;"
                        + " rows moved to gens.held %d, delivered from it %d; violations %d",
                committedIds.size(),
                writers.rolledBack.get(),
                writers.writeFailures.get(),
                pairs.get(),
                handovers.get(),
                fenced.get(),
                unstoredLost.get(),
                duplicates,
                truncations.get(),
                rowsTruncated.get(),
                lockRefused.get(),
                unpassedRefused.get(),
                moved.get(),
                heldDelivered.get(),
                violations.size()));
        violations.stream().limit(20).forEach(v -> report.line("violation: " + v));
        return violations.isEmpty() && !committedIds.isEmpty() && truncations.get() > 0;
    }

    /** What the owners delivered, as a consumer would see it. */
    private static final class Deliveries {
        /** Per row id, the owner and epoch of its first delivery. */
        final Map<Long, String> times = new HashMap<>();

        final Map<String, Long> highestOfKey = new HashMap<>();
        long duplicates;
    }

    private void deliver(int shard, String owner, long epoch, long id, String key, long n) {
        String by = owner + "@" + epoch;
        synchronized (deliveries) {
            String first = deliveries.times.putIfAbsent(id, by);
            if (first != null) {
                deliveries.duplicates++;
                if (first.equals(by)) {
                    violation("shard " + shard + ": row " + id + " delivered twice by " + by + " with no handover");
                }
                return;
            }
            long highest = deliveries.highestOfKey.getOrDefault(key, 0L);
            if (n > highest + 1) {
                violation("key " + key + ": row " + n + " delivered first while " + (highest + 1) + " was next"
                        + " (shard " + shard + ", row " + id + ", by " + by + ")");
            }
            if (n > highest) {
                deliveries.highestOfKey.put(key, n);
            }
        }
    }

    private void violation(String what) {
        violations.add(what);
    }

    /** A shard's cursor and pair, as an owner holds it; {@code afterId} runs ahead of the stored one. */
    private static final class Cursor {
        final int shard;
        final long epoch;
        String prev;
        long prevSeq;
        String prevX;
        String cur;
        long afterId;
        long storedAfterId;
        boolean stragglersDone;
        int batchesSinceAdvance;
        /** Rows delivered since the last stored advance: delivered again by the next owner if this one loses. */
        long unstored;
        /** Rows read and not delivered, to move to {@code gens.held} with the next stored advance: id, key, n. */
        final List<Object[]> moves = new ArrayList<>();
        /** Keys with rows in {@code gens.held} or among {@link #moves}: their later rows move there too. */
        final Set<String> heldKeys = new HashSet<>();
        /** Set when a fenced update found another owner: the owner delivers nothing more of this shard. */
        boolean lost;

        Cursor(int shard, long epoch) {
            this.shard = shard;
            this.epoch = epoch;
        }
    }

    /** A relay: a connection and the shards it believes it owns. */
    private final class Owner {
        final String name;
        final Set<Integer> wanted = ConcurrentHashMap.newKeySet();
        final Map<Integer, Cursor> owned = new HashMap<>();
        Connection c;
        long nextHandover;
        /** Whether this owner has drained its shards once (or failed): see {@link #waitForOther}. */
        boolean arrived;

        Owner(String name) {
            this.name = name;
        }

        void run() {
            try (Connection connection = server.connectAdmin()) {
                c = connection;
                c.unwrap(PGConnection.class).setPrepareThreshold(1);
                nextHandover = System.nanoTime() + handoverMs * 1_000_000;
                while (!written.get()) {
                    claimWanted();
                    for (Cursor cursor : List.copyOf(owned.values())) {
                        step(cursor);
                    }
                    if (writers.writing()) {
                        maybeTakeOne();
                    }
                }
                handingOver.set(false);
                // the writers have stopped: read every shard until a pair opened now is empty; both owners take
                // what the other was asked to hand over, so every shard ends with one of them
                claimWanted();
                drainOwned();
                waitForOther();
                claimWanted();
                drainOwned();
            } catch (SQLException | InterruptedException e) {
                violation(name + " failed: " + e);
                if (!arrived) {
                    arrive(); // the other owner does not wait for this one
                }
            }
        }

        private void arrive() {
            arrived = true;
            synchronized (GenerationCursors.this) {
                finished++;
                GenerationCursors.this.notifyAll();
            }
        }

        /** Reads every shard this owner holds until a pair opened now is empty, for at most a minute. */
        private void drainOwned() throws SQLException {
            long deadline = System.nanoTime() + Duration.ofMinutes(1).toNanos();
            for (Cursor cursor : List.copyOf(owned.values())) {
                while (!cursor.lost && !drained(cursor)) {
                    if (System.nanoTime() > deadline) {
                        violation(name + ": shard " + cursor.shard + " still had rows to read after a minute of"
                                + " reading with nothing written");
                        return;
                    }
                }
            }
        }

        private void waitForOther() throws InterruptedException {
            arrive();
            synchronized (GenerationCursors.this) {
                while (finished < 2) {
                    GenerationCursors.this.wait();
                }
            }
        }

        /** Takes the lease of every shard asked for: a new epoch, and the stored cursor and pair. */
        private void claimWanted() throws SQLException {
            for (Integer shard : List.copyOf(wanted)) {
                wanted.remove(shard);
                try (PreparedStatement ps = c.prepareStatement("update gens.lease set owner = ?, epoch = epoch + 1"
                        + " where shard = ? returning epoch, prev::text, prev_seq, prev_x::text, cur::text,"
                        + " after_id")) {
                    ps.setString(1, name);
                    ps.setInt(2, shard);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        Cursor cursor = new Cursor(shard, rs.getLong(1));
                        cursor.prev = rs.getString(2);
                        cursor.prevSeq = rs.getLong(3);
                        cursor.prevX = rs.getString(4);
                        cursor.cur = rs.getString(5);
                        cursor.afterId = rs.getLong(6);
                        cursor.storedAfterId = cursor.afterId;
                        owned.put(shard, cursor);
                        loadHeldKeys(cursor);
                    }
                }
            }
        }

        /** Every {@code --handover-ms}, asks for one of the other owner's shards. */
        private void maybeTakeOne() {
            if (!handingOver.get() || System.nanoTime() < nextHandover) {
                return;
            }
            nextHandover = System.nanoTime() + handoverMs * 1_000_000;
            int shard = ThreadLocalRandom.current().nextInt(SHARDS);
            if (!owned.containsKey(shard)) {
                wanted.add(shard);
                handovers.incrementAndGet();
            }
        }

        /** @return whether the shard's pair opened now was empty */
        private boolean drained(Cursor cursor) throws SQLException {
            boolean fresh = cursor.cur == null;
            int n = step(cursor);
            return cursor.lost || (fresh && cursor.cur == null && n == 0 && cursor.heldKeys.isEmpty());
        }

        /** One batch of the shard: a pair opened first when none is in progress. @return rows delivered */
        private int step(Cursor cursor) throws SQLException {
            if (cursor.cur == null && !open(cursor)) {
                return 0;
            }
            if (heldRows && !publishHeld(cursor)) {
                return 0;
            }
            List<long[]> rows = new ArrayList<>();
            List<String> keys = new ArrayList<>();
            boolean stragglers = !cursor.stragglersDone;
            read(cursor, stragglers, rows, keys);
            for (int i = 0; i < rows.size(); i++) {
                long[] row = rows.get(i);
                String key = keys.get(i);
                if (heldRows
                        && ((!keysNotHeld && cursor.heldKeys.contains(key)) || downTopics.contains(topicOf(key)))) {
                    // its topic is down, or an earlier row of its key is held: it moves with the next advance
                    cursor.moves.add(new Object[] {row[0], key, row[1]});
                    cursor.heldKeys.add(key);
                } else {
                    deliver(cursor.shard, name, cursor.epoch, row[0], key, row[1]);
                    cursor.unstored++;
                }
                cursor.afterId = row[0];
            }
            if (stragglers) {
                if (rows.size() < batch) {
                    cursor.stragglersDone = true;
                }
                return rows.isEmpty() ? step(cursor) : rows.size();
            }
            if (rows.size() < batch) {
                // the pair is exhausted, every row of it delivered: it becomes the cursor
                close(cursor);
            } else if (++cursor.batchesSinceAdvance
                    >= 1 + ThreadLocalRandom.current().nextInt(3)) {
                advance(cursor);
            }
            return rows.size();
        }

        private void pauseSometimes() {
            if (pauseMs > 0 && ThreadLocalRandom.current().nextInt(10) == 0) {
                try {
                    Thread.sleep(ThreadLocalRandom.current().nextInt(pauseMs + 1));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }

        /**
         * Opens a pair: the sequence read first, then one fenced update, the transaction's first write, that
         * stores the snapshot and a transaction id assigned after it. Stored before any of its rows is read.
         */
        private boolean open(Cursor cursor) throws SQLException {
            c.setAutoCommit(false);
            try {
                long seq;
                try (Statement st = c.createStatement();
                        ResultSet rs = st.executeQuery("select coalesce(pg_sequence_last_value('gens.seq'), 0)")) {
                    rs.next();
                    seq = rs.getLong(1);
                }
                try (PreparedStatement ps = c.prepareStatement("update gens.lease set cur = pg_current_snapshot(),"
                        + " cur_seq = ?, cur_x = pg_current_xact_id(), after_id = 0"
                        + " where shard = ?" + fence + " returning cur::text")) {
                    ps.setLong(1, seq);
                    ps.setInt(2, cursor.shard);
                    ps.setString(3, name);
                    ps.setLong(4, cursor.epoch);
                    try (ResultSet rs = ps.executeQuery()) {
                        if (!rs.next()) {
                            c.rollback();
                            lose(cursor);
                            return false;
                        }
                        cursor.cur = rs.getString(1);
                    }
                }
                c.commit();
            } finally {
                c.setAutoCommit(true);
            }
            cursor.afterId = 0;
            cursor.storedAfterId = 0;
            cursor.stragglersDone = false;
            cursor.batchesSinceAdvance = 0;
            pairs.incrementAndGet();
            return true;
        }

        /**
         * Stores how far the pair was delivered: a fenced update, after a pause one time in ten, in one
         * transaction with the moves of the rows read since the last one into {@code gens.held}.
         */
        private void advance(Cursor cursor) throws SQLException {
            if (store(cursor, "update gens.lease set after_id = ? where shard = ?" + fence, cursor.afterId) == null) {
                return;
            }
            cursor.storedAfterId = cursor.afterId;
            cursor.batchesSinceAdvance = 0;
        }

        /** The pair was delivered whole (or its rows moved): it becomes the cursor, in one fenced update. */
        private void close(Cursor cursor) throws SQLException {
            String[] prev = store(
                    cursor,
                    "update gens.lease set prev = cur, prev_seq = cur_seq, prev_x = cur_x, cur = null, cur_seq = null,"
                            + " cur_x = null, after_id = 0 where shard = ? and cur is not null" + fence
                            + " returning prev::text, prev_seq, prev_x::text",
                    -1);
            if (prev == null) {
                return;
            }
            cursor.prev = prev[0];
            cursor.prevSeq = Long.parseLong(prev[1]);
            cursor.prevX = prev[2];
            cursor.cur = null;
        }

        /**
         * Runs a fenced update of the cursor ({@code afterId}, when not negative, as its first parameter),
         * then the pending moves, in one transaction.
         *
         * @return the first row the update returned (an empty array for one that returns none), or null when
         *     the fence refused it: the shard is lost, and the moves with it
         */
        private String[] store(Cursor cursor, String update, long afterId) throws SQLException {
            pauseSometimes();
            c.setAutoCommit(false);
            try {
                String[] returned;
                try (PreparedStatement ps = c.prepareStatement(update)) {
                    int p = 1;
                    if (afterId >= 0) {
                        ps.setLong(p++, afterId);
                    }
                    ps.setInt(p++, cursor.shard);
                    ps.setString(p++, name);
                    ps.setLong(p, cursor.epoch);
                    returned = fencedUpdate(ps);
                }
                if (returned == null) {
                    c.rollback();
                    lose(cursor);
                    return null;
                }
                // after the fence, which holds the lease row: a zombie's moves would otherwise meet the rows the
                // new owner moved already
                if (!cursor.moves.isEmpty()) {
                    try (PreparedStatement ps =
                            c.prepareStatement("insert into gens.held (id, shard, key, n) values (?, ?, ?, ?)")) {
                        for (Object[] m : cursor.moves) {
                            ps.setLong(1, (Long) m[0]);
                            ps.setInt(2, cursor.shard);
                            ps.setString(3, (String) m[1]);
                            ps.setLong(4, (Long) m[2]);
                            ps.addBatch();
                        }
                        ps.executeBatch();
                    }
                }
                c.commit();
                moved.addAndGet(cursor.moves.size());
                cursor.moves.clear();
                cursor.unstored = 0;
                return returned;
            } catch (SQLException e) {
                c.rollback();
                throw e;
            } finally {
                c.setAutoCommit(true);
            }
        }

        /** @return the first row the statement returned, an empty array when it updated without returning, or null */
        private static String[] fencedUpdate(PreparedStatement ps) throws SQLException {
            if (!ps.execute()) {
                return ps.getUpdateCount() == 0 ? null : new String[0];
            }
            try (ResultSet rs = ps.getResultSet()) {
                if (!rs.next()) {
                    return null;
                }
                String[] row = new String[rs.getMetaData().getColumnCount()];
                for (int i = 0; i < row.length; i++) {
                    row[i] = rs.getString(i + 1);
                }
                return row;
            }
        }

        /**
         * Delivers the shard's held rows whose topic is up, in id order, a key's later held rows not before
         * its earlier ones, and deletes them in a transaction that holds the lease row. A key stays held while
         * it has rows left there or among the moves not yet stored.
         *
         * @return false when the lease is lost
         */
        private boolean publishHeld(Cursor cursor) throws SQLException {
            List<Long> delivered = new ArrayList<>();
            Set<String> blocked = new HashSet<>();
            try (PreparedStatement ps =
                    c.prepareStatement("select id, key, n from gens.held where shard = ? order by id")) {
                ps.setInt(1, cursor.shard);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        String key = rs.getString(2);
                        if (blocked.contains(key) || downTopics.contains(topicOf(key))) {
                            blocked.add(key);
                            continue;
                        }
                        deliver(cursor.shard, name, cursor.epoch, rs.getLong(1), key, rs.getLong(3));
                        delivered.add(rs.getLong(1));
                    }
                }
            }
            if (!delivered.isEmpty()) {
                c.setAutoCommit(false);
                try {
                    try (PreparedStatement ps =
                            c.prepareStatement("select 1 from gens.lease where shard = ?" + fence + " for update")) {
                        ps.setInt(1, cursor.shard);
                        ps.setString(2, name);
                        ps.setLong(3, cursor.epoch);
                        try (ResultSet rs = ps.executeQuery()) {
                            if (!rs.next()) {
                                c.rollback();
                                lose(cursor);
                                return false;
                            }
                        }
                    }
                    try (PreparedStatement ps = c.prepareStatement("delete from gens.held where id = any(?)")) {
                        ps.setArray(1, c.createArrayOf("bigint", delivered.toArray()));
                        ps.executeUpdate();
                    }
                    c.commit();
                } catch (SQLException e) {
                    c.rollback();
                    throw e;
                } finally {
                    c.setAutoCommit(true);
                }
                heldDelivered.addAndGet(delivered.size());
            }
            loadHeldKeys(cursor);
            return true;
        }

        private void loadHeldKeys(Cursor cursor) throws SQLException {
            cursor.heldKeys.clear();
            for (Object[] m : cursor.moves) {
                cursor.heldKeys.add((String) m[1]);
            }
            try (PreparedStatement ps = c.prepareStatement("select distinct key from gens.held where shard = ?")) {
                ps.setInt(1, cursor.shard);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        cursor.heldKeys.add(rs.getString(1));
                    }
                }
            }
        }

        /** A fenced update found another owner: this owner stops reading the shard. */
        private void lose(Cursor cursor) {
            cursor.lost = true;
            owned.remove(cursor.shard);
            fenced.incrementAndGet();
            unstoredLost.addAndGet(cursor.unstored);
        }

        /** Reads the next batch of the pair, a statement per generation table, merged by id. */
        private void read(Cursor cursor, boolean stragglers, List<long[]> rows, List<String> keys) throws SQLException {
            List<Object[]> merged = new ArrayList<>();
            for (int g = 0; g < tables; g++) {
                try (PreparedStatement ps = c.prepareStatement(stragglers ? stragglers(g) : later(g))) {
                    SnapshotPairs.bindRead(
                            c,
                            ps,
                            stragglers,
                            cursor.shard,
                            cursor.prev,
                            cursor.prevX,
                            cursor.prevSeq,
                            cursor.cur,
                            cursor.afterId,
                            batch);
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            merged.add(new Object[] {rs.getLong(1), rs.getString(2), rs.getLong(3)});
                        }
                    }
                }
            }
            merged.sort((x, y) -> Long.compare((Long) x[0], (Long) y[0]));
            for (Object[] row : merged.subList(0, Math.min(batch, merged.size()))) {
                rows.add(new long[] {(Long) row[0], (Long) row[2]});
                keys.add((String) row[1]);
            }
        }
    }

    /** How many owners have drained their shards once; guarded by this. */
    private int finished;

    private String stragglers(int generation) {
        return SnapshotPairs.STRAGGLERS.replace("pairs.gen", table(generation));
    }

    private String later(int generation) {
        return SnapshotPairs.LATER.replace("pairs.gen", table(generation));
    }

    /**
     * With {@code --held-rows}, every 250 ms a topic goes down (up to three at once) or one comes back; all
     * come back when the writers stop.
     */
    private void toggleTopics() {
        try {
            while (heldRows && writers.writing()) {
                ThreadLocalRandom random = ThreadLocalRandom.current();
                if (downTopics.size() < 3 && random.nextBoolean()) {
                    downTopics.add(random.nextInt(TOPICS));
                } else if (!downTopics.isEmpty()) {
                    downTopics.remove(List.copyOf(downTopics).get(random.nextInt(downTopics.size())));
                }
                Thread.sleep(250);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        downTopics.clear();
    }

    private static int topicOf(String key) {
        return Math.floorMod(key.hashCode() * 31, TOPICS);
    }

    /**
     * Empties the table after the current one whenever "Truncating" allows it, every 50 ms: the lock taken
     * without waiting, every row checked as passed by its shard's stored cursor under it, then the truncate.
     */
    private void maintain() {
        try (Connection c = server.connectAdmin()) {
            c.setAutoCommit(false);
            while (writers.writing()) {
                int generation = (int) ((System.currentTimeMillis() / periodMs + 1) % tables);
                truncate(c, generation);
                Thread.sleep(50);
            }
        } catch (SQLException e) {
            violation("maintenance failed: " + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void truncate(Connection c, int generation) throws SQLException {
        String table = table(generation);
        try (Statement st = c.createStatement()) {
            try {
                st.execute("lock table " + table + " in access exclusive mode nowait");
            } catch (SQLException e) {
                c.rollback();
                if (!LOCK_NOT_AVAILABLE.equals(e.getSQLState())) {
                    throw e;
                }
                lockRefused.incrementAndGet();
                return;
            }
            if (!unfencedTruncate) {
                // a row not passed: not visible in the cursor's prev, and not of the pair in progress at or
                // below after_id
                try (ResultSet rs = st.executeQuery("select count(*) from " + table + " r join gens.lease l"
                        + " on l.shard = r.shard where not pg_visible_in_snapshot(r.tx, l.prev)"
                        + " and not (l.cur is not null and pg_visible_in_snapshot(r.tx, l.cur)"
                        + " and r.id <= l.after_id)")) {
                    rs.next();
                    if (rs.getLong(1) > 0) {
                        c.rollback();
                        unpassedRefused.incrementAndGet();
                        return;
                    }
                }
            }
            // a row moved to gens.held was passed and is kept there: not delivered yet, and not lost
            List<Long> ids = new ArrayList<>();
            List<Long> kept = new ArrayList<>();
            try (ResultSet rs = st.executeQuery(
                    "select r.id, exists (select 1 from gens.held h where h.id = r.id)" + " from " + table + " r")) {
                while (rs.next()) {
                    (rs.getBoolean(2) ? kept : ids).add(rs.getLong(1));
                }
            }
            synchronized (deliveries) {
                for (long id : ids) {
                    if (!deliveries.times.containsKey(id)) {
                        violation(table + ": row " + id + " truncated before it was delivered");
                    }
                }
            }
            st.execute("truncate " + table);
            c.commit();
            truncations.incrementAndGet();
            rowsTruncated.addAndGet(ids.size() + kept.size());
        }
    }

    /** Inserts into the generation of the writer's clock. @return the row's id */
    private long insert(Connection c, long skewMs, String key, long n) throws SQLException {
        int generation = (int) (((System.currentTimeMillis() + skewMs) / periodMs) % tables);
        try (PreparedStatement ps = c.prepareStatement(
                "insert into " + table(generation) + " (shard, key, n) values (?, ?, ?) returning id")) {
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
