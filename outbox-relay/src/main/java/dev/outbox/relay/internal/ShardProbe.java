package dev.outbox.relay.internal;

import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * How a relay finds new rows without any help from the producers: every {@code probeInterval} one
 * statement reads the publishable rows of the relay's idle shards (one index descent per shard, in
 * one snapshot) and hands each shard that has some exactly what its own read would have returned,
 * so that under a steady trickle one statement reads for many shards instead of one per shard. After
 * a read that found rows the next may come later, up to {@code probeIntervalUnderLoad}: as late as
 * it should take for about one row per shard read to arrive at the rate the read saw ({@link
 * #pauseAfter}), so that under a steady load each read, each shard's batch and each delete take more
 * rows, while at a high rate, where reads find that many anyway, they keep the probe interval. A read
 * that found nothing is followed after {@code probeInterval}, so the first row after a pause waits no
 * longer than before. A
 * shard that holds rows back (topics without metadata) is only asked whether it has new rows and
 * woken to read itself. A shard that is reading or publishing is not asked about: it reads again
 * when its batch is done.
 *
 * <p>Rows that commit late with a lower id than rows already published are found like any other:
 * the probe looks for any publishable row, not for ids above a mark.
 *
 * <p>A shard whose rows cannot be published (held behind a parked row of their key under {@code
 * HOLD_KEY}) would be woken by every probe and read nothing each time. After a wake whose reads
 * found nothing, the probe therefore leaves the shard to its own idle poll until that poll finds
 * rows, or for one idle poll interval.
 *
 * <p>While the probe statement fails, {@link #active()} is false and the shards fall back to
 * polling themselves from 10 ms up to the idle poll interval.
 *
 * <p>While nothing happens it waits in PostgreSQL instead: once a probe found that no transaction
 * ended since its last read, and every owned shard is idle and was covered by that read, the next
 * statement is a wait ({@link ProbeStatements.Session#waitForChange}, migration V7) that returns
 * within {@link #waitStepMillis} of the next ended transaction, or after {@value #WAIT_MILLIS} ms, and
 * the probe reads at once. An idle relay then sends a few statements a second instead of one per
 * probe interval. After a wait that ended without a change the next looks only every {@link
 * #quietStepMillis} (the probe interval), until one sees a change: on a quiet database the waiting
 * backend looks a fifth as often, and a row committed after the quiet spell is still found within a
 * probe interval. It is exact for the same reason the skipped read is: every shard idle and covered
 * when the wait starts stays so until it runs again, and what it reads then is read after the
 * snapshot the wait compares with; any row committed later ends the wait. A shard that was not idle
 * (running, backing off) keeps the probe asking every interval. On a schema without the function the
 * probe keeps asking every interval, and says so once.
 *
 * <p>The probe holds one connection of the pool from one probe to the next ({@link
 * ProbeStatements.Session}: the pool size already counts one for the probe), and hands it back
 * after a failed statement, every {@value #HOLD_SECONDS} s (so that the pool may retire it) and
 * when it stops.
 */
final class ShardProbe {
    private static final long RETRY_NANOS = TimeUnit.SECONDS.toNanos(1);
    private static final int HOLD_SECONDS = 1;
    private static final long HOLD_NANOS = TimeUnit.SECONDS.toNanos(HOLD_SECONDS);
    /** The longest wait in PostgreSQL: how late a shard left alone rejoins the probe, and how long a stop may wait for it. */
    static final int WAIT_MILLIS = 200;

    private final RelayEngine engine;
    private final ScheduledThreadPoolExecutor thread;
    /** The pause after a read that found nothing (the probe interval). */
    private final long intervalNanos;
    /** The longest pause after a read that found rows (the probe interval under load). */
    private final long underLoadNanos;
    /** How often the wait in PostgreSQL looks for an ended transaction: a fifth of the probe interval, at least 1 ms. */
    private final int waitStepMillis;
    /**
     * How often it looks once a whole wait passed without an ended transaction anywhere in the
     * database: once per probe interval (at most every second), as a probe without the wait would.
     */
    private final int quietStepMillis;
    /** Per shard: the worker's read counts when the probe last woke it, and until when it is left alone. */
    private final Map<ShardWorker, long[]> woken = new HashMap<>();

    private volatile boolean active = true;
    private long retryAt;
    // the pause before the next probe: the probe interval, unless the last read found rows (pauseAfter)
    private long pauseNanos;
    // when the last statement that read or asked ran (readBefore: there was one)
    private long lastReadAt;
    private boolean readBefore;
    // false once the database said it cannot run the wait (a schema before V7): the probe asks every interval
    private boolean waits = true;
    // the last wait ran its full WAIT_MILLIS without an ended transaction: the next looks every quietStepMillis
    private boolean quiet;
    // the snapshot of the last probe read that covered every idle shard: until a transaction ends,
    // nothing new can be visible, and the next read skips the outbox (null: the next read runs)
    private String lastSnapshot;
    // the shards that read covered, with the tickets of their idle waits then
    private Map<ShardWorker, Long> lastCovered = Map.of();
    // the connection held between probes (null: borrowed at the next read), and since when
    private ProbeStatements.Session session;
    private long sessionSince;
    // reused by every probe: the idle shards and the tickets of their idle waits, the first ones those
    // the probe reads for
    private ShardWorker[] idle = new ShardWorker[0];
    private long[] tickets = new long[0];
    // the shards of the last read, the same array while they stay the same
    private int[] readShards = new int[0];

    private ShardProbe(RelayEngine engine, ScheduledThreadPoolExecutor thread, Duration interval, Duration underLoad) {
        this.engine = engine;
        this.thread = thread;
        this.intervalNanos = interval.toNanos();
        this.underLoadNanos = Math.max(intervalNanos, underLoad.toNanos());
        this.waitStepMillis = (int) Math.max(1, interval.toMillis() / 5);
        this.quietStepMillis = (int) Math.min(1000, Math.max(waitStepMillis, interval.toMillis()));
    }

    static ShardProbe start(RelayEngine engine, Duration interval, Duration underLoad) {
        ScheduledThreadPoolExecutor thread = new ScheduledThreadPoolExecutor(
                1, Threads.single(engine.config().instanceId(), "probe"));
        // the next probe, always pending, is dropped by stop(); the release it queues first still runs
        thread.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
        thread.setRemoveOnCancelPolicy(true);
        ShardProbe probe = new ShardProbe(engine, thread, interval, underLoad);
        probe.scheduleNext(probe.intervalNanos);
        return probe;
    }

    /** @return whether the last probe succeeded, so that idle shards may wait for it instead of polling */
    boolean active() {
        return active;
    }

    boolean isAlive() {
        return !thread.isShutdown();
    }

    /** Stops probing and hands back the connection, waiting up to a second for a probe running. */
    void stop() {
        try {
            thread.execute(this::release);
        } catch (RejectedExecutionException e) {
            return;
        }
        // the pending probe is dropped, the release above still runs
        thread.shutdown();
        try {
            thread.awaitTermination(1, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void tick() {
        try {
            probeOnce();
        } finally {
            scheduleNext(pauseNanos);
        }
    }

    /** Queues the next probe, unless the relay stops. */
    private void scheduleNext(long delayNanos) {
        if (engine.closing()) {
            return;
        }
        try {
            thread.schedule(this::tick, delayNanos, TimeUnit.NANOSECONDS);
        } catch (RejectedExecutionException e) {
            // stopped meanwhile
        }
    }

    private void probeOnce() {
        if (engine.closing()) {
            return;
        }
        long now = engine.time().nanoTime();
        pauseNanos = intervalNanos;
        if (!active && now - retryAt < 0) {
            return;
        }
        try {
            if (probe(now) && waits && waitForChange(now) && !engine.closing()) {
                probe(engine.time().nanoTime());
            }
        } catch (SQLException e) {
            pauseNanos = intervalNanos;
            release();
            lastSnapshot = null;
            active = false;
            retryAt = now + RETRY_NANOS;
            engine.metrics().database.increment();
            engine.log()
                    .retry(
                            "probing the shards for new rows failed (SQLState {}): {}; the shards poll"
                                    + " themselves meanwhile",
                            e.getSQLState(),
                            e.getMessage());
        } catch (RuntimeException e) {
            pauseNanos = intervalNanos;
            release();
            lastSnapshot = null;
            active = false;
            retryAt = now + RETRY_NANOS;
            engine.log().error("probing the shards for new rows failed: {}", e.toString(), e);
        }
    }

    /**
     * Reads for, or asks about, the idle shards.
     *
     * @return whether the next statement may wait for a change: nothing ended since the last read, which
     *     covered every shard idle now, and no owned shard runs
     */
    private boolean probe(long now) throws SQLException {
        if (session != null && now - sessionSince - HOLD_NANOS >= 0) {
            release();
        }
        // the idle shards, in the order they are owned, with the tickets of their idle waits
        int owned = 0;
        int idleOwned = 0;
        int n = 0;
        for (ShardWorker w : engine.ownedWorkers()) {
            owned++;
            long ticket = w.loop.idleTicket();
            if (ticket >= 0) {
                idleOwned++;
            }
            if (ticket >= 0 && !leftAlone(w, now)) {
                if (n == idle.length) {
                    idle = Arrays.copyOf(idle, Math.max(16, 2 * n));
                    tickets = Arrays.copyOf(tickets, idle.length);
                }
                idle[n] = w;
                tickets[n] = ticket;
                n++;
            }
        }
        if (woken.size() > owned) {
            woken.keySet().retainAll(new HashSet<>(engine.ownedWorkers()));
        }
        if (n == 0) {
            active = true;
            return false;
        }
        try {
            return probe(now, n, idleOwned == owned);
        } finally {
            Arrays.fill(idle, 0, n, null);
        }
    }

    /**
     * Reads for, or asks about, the first {@code n} shards of {@link #idle}.
     *
     * @param allIdle whether every owned shard is idle-waiting (those left alone included)
     * @return whether the next statement may wait for a change ({@link #probe(long)})
     */
    private boolean probe(long now, int n, boolean allIdle) throws SQLException {
        // The probe reads the idle shards' rows itself, one statement for all of them, and hands each
        // shard what its own read would have returned. A shard that holds rows is only woken: it reads
        // past its held rows itself. While a topic is held, a shard that holds none of its rows is
        // still read for: the rows of a held topic come with their payload and are held by the batch,
        // which the shard then remembers (and from then on reads for itself).
        // The shards to read for are moved to the front of idle, the first r.
        List<ShardWorker> askFor = List.of();
        int r = 0;
        for (int i = 0; i < n; i++) {
            ShardWorker w = idle[i];
            if (w.heldUpTo() == Long.MIN_VALUE) {
                idle[r] = w;
                tickets[r] = tickets[i];
                r++;
            } else {
                if (askFor.isEmpty()) {
                    askFor = new ArrayList<>();
                }
                askFor.add(w);
            }
        }
        // The read may be skipped when no transaction ended since the last one, but only if that read
        // covered every shard idle now, in the same idle wait: a shard that ran since (or was not
        // idle then) may have read before that snapshot and missed rows committed in between.
        // Rows a stopped shard did not delete are publishable again without any transaction ending.
        PendingDeletes pending = engine.pendingDeletes();
        if (pending.takeReleased()) {
            lastSnapshot = null;
        }
        boolean covered = askFor.isEmpty() && lastSnapshot != null && covered(r);
        ProbeStatements.ProbeRead read = r == 0
                ? ProbeStatements.ProbeRead.UNCHANGED
                : session(now)
                        .probeRead(
                                readShards(r),
                                pending.ids(),
                                engine.config().batchSize(),
                                covered ? lastSnapshot : null);
        List<Integer> found = askFor.isEmpty() ? List.of() : ask(now, askFor);
        if (!askFor.isEmpty()) {
            lastSnapshot = null;
        } else if (read != ProbeStatements.ProbeRead.UNCHANGED) {
            lastSnapshot = read.snapshot();
            Map<ShardWorker, Long> readFor = new HashMap<>();
            for (int i = 0; i < r; i++) {
                readFor.put(idle[i], tickets[i]);
            }
            lastCovered = readFor;
        }
        // nothing ended since the last read, which covered every shard idle now, and none runs: until a
        // transaction ends, the next probe would find the same
        boolean mayWait = allIdle && r > 0 && askFor.isEmpty() && read == ProbeStatements.ProbeRead.UNCHANGED;
        Map<Integer, List<OutboxRow>> rows = read.rows();
        if (read != ProbeStatements.ProbeRead.UNCHANGED || !askFor.isEmpty()) {
            int rowsFound = found.size();
            for (List<OutboxRow> its : rows.values()) {
                rowsFound += its.size();
            }
            long since = readBefore ? now - lastReadAt : underLoadNanos;
            lastReadAt = now;
            readBefore = true;
            if (rowsFound > 0) {
                pauseNanos = pauseAfter(since, r + askFor.size(), rowsFound, intervalNanos, underLoadNanos);
            }
            (rowsFound == 0 ? engine.metrics().probeReadsEmpty : engine.metrics().probeReadsFound).increment();
        }
        active = true;
        engine.databaseAnswered();
        for (int i = 0; i < r && !rows.isEmpty(); i++) {
            ShardWorker w = idle[i];
            List<OutboxRow> its = rows.get(w.shard);
            if (its == null) {
                continue;
            }
            long[] before = {w.rowReads(), w.emptyReads(), 0};
            // dropped if the shard ran meanwhile: it may have published some of these rows
            if (w.loop.wakeWith(tickets[i], its)) {
                woken.put(w, before);
            }
        }
        for (ShardWorker w : askFor) {
            if (found.contains(w.shard)) {
                woken.put(w, new long[] {w.rowReads(), w.emptyReads(), 0});
                w.loop.wake();
            }
        }
        return mayWait;
    }

    /**
     * The pause after a read that found rows: as long as it should take for about one row per shard
     * read to arrive, at the rate this read saw, within the probe interval and the interval under load.
     * A read's cost is mostly its descents, one per shard, so a read that finds fewer rows than it
     * reads shards pays more than a descent per row; the longer pause lets the next find more. At a
     * high rate the reads already find that many at the probe interval, and the pause stays short.
     *
     * @param sinceNanos time since the read before (rows found are about those committed meanwhile)
     * @param shards the shards the read looked at
     * @param rows the rows it found, at least one
     * @return the pause, from {@code intervalNanos} to {@code underLoadNanos}
     */
    static long pauseAfter(long sinceNanos, int shards, int rows, long intervalNanos, long underLoadNanos) {
        double oneRowPerShard = (double) sinceNanos * shards / rows;
        return (long) Math.max(intervalNanos, Math.min(underLoadNanos, oneRowPerShard));
    }

    /**
     * Waits in PostgreSQL until a transaction ends after the last read, or {@value #WAIT_MILLIS} ms.
     * It looks every {@link #waitStepMillis}, or every {@link #quietStepMillis} after a wait that ended
     * without a change: on a quiet database the backend then looks a fifth as often, and the first row
     * after a quiet spell is found within a probe interval, the bound without the wait.
     *
     * @return whether to probe again at once (a transaction ended)
     */
    private boolean waitForChange(long now) throws SQLException {
        try {
            boolean changed =
                    session(now).waitForChange(lastSnapshot, quiet ? quietStepMillis : waitStepMillis, WAIT_MILLIS);
            quiet = !changed;
            (changed ? engine.metrics().probeWaitsChanged : engine.metrics().probeWaitsTimedOut).increment();
            return changed;
        } catch (SQLException e) {
            if (!ProbeStatements.waitUnavailable(e)) {
                throw e;
            }
            waits = false;
            engine.log()
                    .info(
                            "the probe cannot wait in PostgreSQL for new rows ({}); it asks every probe interval"
                                    + " instead. Run the outbox migrations (V7) to let an idle relay wait there"
                                    + " at a fraction of the cost",
                            e.getMessage());
            return false;
        }
    }

    /** @return whether the first {@code r} idle shards, the ones to read now, were read by the last read, in the same idle wait */
    private boolean covered(int r) {
        for (int i = 0; i < r; i++) {
            Long ticket = lastCovered.get(idle[i]);
            if (ticket == null || ticket != tickets[i]) {
                return false;
            }
        }
        return true;
    }

    /** @return the shards of the first {@code r} idle shards: the array of the last read if they are the same */
    private int[] readShards(int r) {
        boolean same = readShards.length == r;
        for (int i = 0; same && i < r; i++) {
            same = readShards[i] == idle[i].shard;
        }
        if (!same) {
            readShards = new int[r];
            for (int i = 0; i < r; i++) {
                readShards[i] = idle[i].shard;
            }
        }
        return readShards;
    }

    /** @return the held connection, borrowed if there is none */
    private ProbeStatements.Session session(long now) throws SQLException {
        if (session == null) {
            session = engine.db().probes().open();
            sessionSince = now;
        }
        return session;
    }

    private void release() {
        if (session != null) {
            session.close();
            session = null;
        }
    }

    /** @return those of the shards that hold publishable rows above what they hold back */
    private List<Integer> ask(long now, List<ShardWorker> workers) throws SQLException {
        long[] after = new long[workers.size()];
        for (int i = 0; i < after.length; i++) {
            after[i] = workers.get(i).heldUpTo();
        }
        return session(now).probe(shards(workers), after);
    }

    private static int[] shards(Collection<ShardWorker> workers) {
        return workers.stream().mapToInt(w -> w.shard).toArray();
    }

    /** @return whether the probe's last wake of this shard found nothing to publish, so the shard polls itself */
    private boolean leftAlone(ShardWorker w, long now) {
        long[] last = woken.get(w);
        if (last == null) {
            return false;
        }
        if (last[2] != 0) {
            if (now - last[2] < 0 && w.rowReads() == last[0]) {
                return true;
            }
            woken.remove(w);
            return false;
        }
        if (w.rowReads() == last[0] && w.emptyReads() != last[1]) {
            last[2] = now + engine.config().idlePollInterval().toNanos();
            engine.log()
                    .debug(
                            "shard {}: woken for rows it could not read (held back); it polls itself for {}",
                            w.shard,
                            engine.config().idlePollInterval());
            return true;
        }
        return false;
    }
}
