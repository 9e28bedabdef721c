package dev.outbox.relay.internal;

import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.core.internal.TimeSource;
import dev.outbox.relay.ParkPolicy;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.apache.kafka.common.errors.InterruptException;

/**
 * The batch loop of one leased shard at one epoch. {@link ShardLoop} decides when it runs (its
 * states and transitions); {@link BatchOutcome} decides what a finished batch means; {@link
 * RecordMapper} makes the records. This class carries out the rounds.
 *
 * <p>One round: read up to batchSize publishable rows in id order; send them all; while the acks
 * come in, read the next rows (excluding the ones in flight); once every record is answered, delete
 * the acknowledged rows, then record the failed ones (park the poison ones, count attempts), each
 * through a relay-wide {@link WriteQueue} (fenced by the lease), and go on. After
 * a retriable failure nothing read ahead is kept: the next round re-reads what is left in the table,
 * so a key's rows always leave in id order.
 *
 * <p>A round that was not full and published every row it took does not wait for its delete ({@link
 * DeferredDeletes}): the shard goes on to its idle wait, and the probe's reads leave those rows out
 * until the delete committed. Before the shard reads for itself it waits for such deletes.
 */
final class ShardWorker {
    /** While topics are held, a read may take up to this many batches of held rows besides a batch to send. */
    static final int HELD_WINDOW_BATCHES = 10;
    /** How long a shard waits for its deferred deletes, publishing nothing, before it logs a WARN. */
    static final int DELETE_WAIT_WARN_SECONDS = 10;

    final int shard;
    final long epoch;
    final LeaseClock lease;
    private final RelayConfig config;
    private final ShardRows db;
    private final PayloadCap cap;
    private final WriteQueue<ShardRows.Deletion, Db.Fenced> deletes;
    private final DeferredDeletes deferred;
    private final WriteQueue<ShardRows.Failure, Db.Failed> failureQueue;
    private final CircuitBreaker breaker;
    private final RelayMetrics metrics;
    private final TopicHealth topics;
    private final ShardServices relay;
    private final PrefixedLog log;
    private final TimeSource time;
    private final ScheduledExecutorService workers;
    private final Publisher shared;
    private final boolean holdKey;
    private final ShardPublisher publisher;
    /** When the loop runs: started, woken and stopped through it. */
    final ShardLoop loop;

    private final BatchSender sender;
    private final BatchEnd end;

    // confined to the one running task
    private final ReadAhead ahead = new ReadAhead();
    private final ShardWaits waits;
    private final HeldRows held;
    // the topics of the remembered held rows left out of the batch in flight: its metadata checks are
    // counted only once a read takes those rows again
    private Set<String> leftOut = Set.of();
    // the batch in flight parked a row: what the shard holds may change
    private boolean parkedRow;
    // reads that found rows and reads that found none, for the probe
    private volatile long rowReads;
    private volatile long emptyReads;
    // every publishable row up to this id was read and held (its topic has no metadata): the probe
    // asks only about rows above it; a row that commits late below it waits for the shard's own poll
    private volatile long heldUpTo = Long.MIN_VALUE;
    private boolean permitHeld;
    // the shard holds more rows of topics without metadata than it remembers: its reads leave out the held
    // topics' rows and their keys' later rows instead (counted in RelayMetrics#heldOverflow)
    private volatile boolean overflowing;
    private final LeaderlessKeys leaderless = new LeaderlessKeys();

    /**
     * @param publisher how the shard's batches are published; closed once the loop stopped
     * @param claimStartedNanos when the claim that gave this epoch started ({@link ShardServices#time()})
     */
    ShardWorker(ShardServices services, ShardPublisher publisher, int shard, long epoch, long claimStartedNanos) {
        this.config = services.config();
        this.db = services.rows();
        this.cap = new PayloadCap(config.batchBytes());
        this.deletes = services.deletes();
        this.deferred = new DeferredDeletes(services.pendingDeletes());
        this.failureQueue = services.failures();
        this.breaker = services.breaker();
        this.metrics = services.metrics();
        this.topics = services.topics();
        this.held = new HeldRows(topics);
        this.relay = services;
        this.log = services.log();
        this.time = services.time();
        this.workers = services.workers();
        this.shared = services.shared();
        this.shard = shard;
        this.epoch = epoch;
        this.lease = new LeaseClock(config.leaseDuration(), claimStartedNanos, time);
        this.holdKey = config.parkPolicy() == ParkPolicy.HOLD_KEY;
        this.publisher = publisher;
        this.end = new BatchEnd(services, publisher, shard, epoch);
        this.waits = new ShardWaits(config, metrics, services.probeActive());
        this.loop = new ShardLoop(workers, this::step, time::nanoTime);
        this.sender = new BatchSender(config.batchSize(), holdKey, leaderless, lease, topics, time::currentTimeMillis);
        // a shard released, lost or dropped closes its own producer (transactional mode) once its loop stopped
        loop.stopped().whenComplete((v, t) -> {
            if (overflowing) {
                overflowing = false;
                metrics.heldOverflow.decrementAndGet();
            }
            held.release();
            deferred.stop();
            publisher.close();
        });
    }

    /**
     * Stops the loop ({@link ShardLoop#stop()}).
     *
     * @return completes once the loop stopped and no delete of the shard is in flight: the shard's
     *     rows that were published are deleted, or released for the next owner
     */
    CompletableFuture<Void> stop() {
        return loop.stop().thenCompose(v -> {
            deletes.hurry();
            return deferred.settled();
        });
    }

    long rowReads() {
        return rowReads;
    }

    long emptyReads() {
        return emptyReads;
    }

    long heldUpTo() {
        return heldUpTo;
    }

    private void step() {
        try {
            round();
        } catch (Throwable t) {
            unexpected("in the batch loop", t);
        }
    }

    /** A task of the shard failed unexpectedly: the round ends with a backoff. */
    private void unexpected(String where, Throwable t) {
        if (t instanceof InterruptedException || t instanceof InterruptException) {
            Thread.currentThread().interrupt();
        }
        log.error("shard {}: unexpected failure {}, retrying: {}", shard, where, t.toString(), t);
        ahead.rows = null;
        releasePermit();
        loop.next(waits.backoff(), false);
    }

    private void round() {
        if (loop.isStopping()) {
            loop.next(0, false);
            return;
        }
        if (!lease.mayPublish()) {
            // the lease may have expired in the database: nothing is sent until a renewal succeeds or the
            // shard is dropped; what was read ahead may already be another relay's to publish
            ahead.rows = null;
            loop.next(waits.leaseWaitNanos(), false);
            return;
        }
        try {
            publisher.init();
        } catch (RuntimeException e) {
            transactionFailed("initialise the shard's transactional producer", e);
            return;
        }
        if (RelayMetrics.breakerState(breaker) == 1) {
            // open: do not even read; the breaker decides when Kafka is tried again
            ahead.rows = null;
            loop.next(waits.backoff(), false);
            return;
        }
        if (!settleDeferred()) {
            return;
        }
        List<OutboxRow> handed = loop.takeHanded();
        List<OutboxRow> rows = ahead.rows;
        ahead.rows = null;
        int limit = config.batchSize();
        Set<String> withoutPayload = rows == null ? Set.of() : ahead.withoutPayload;
        leftOut = rows != null && ahead.filtered && !held.isEmpty() ? Set.copyOf(held.rowTopics) : Set.of();
        if (rows == null) {
            Set<String> heldTopics = topics.held();
            // a topic no longer held may have metadata now: its remembered rows are read again, with their
            // payload; a topic newly held changes nothing for the rows remembered (they stay held). That
            // includes a topic whose rows were held while its first lookup ran and that was not held at the
            // read: without this, its rows and their keys stayed held for as long as another topic was
            if (!heldTopics.containsAll(held.topicsRead)
                    || !heldTopics.containsAll(held.awaited)
                    || held.checkToCount(topics, shard)) {
                forgetHeld();
            }
            held.topicsRead = heldTopics;
            Publisher.Generation lookups;
            try {
                lookups = leaderless.isEmpty() ? null : shared.current();
            } catch (Publisher.Unavailable e) {
                transactionFailed("get the Kafka producer", e);
                return;
            }
            String[] waiting = null;
            if (lookups != null) {
                try {
                    waiting = leaderless.refresh(lookups.producer());
                } catch (RuntimeException e) {
                    // the producer is unusable, and said so to this lookup only (a failed sign-in is reported
                    // once): replaced here, or its sends would only time out; the keys stay held
                    shared.replace(lookups, e);
                    waiting = leaderless.keys();
                }
            }
            try {
                if (heldTopics.isEmpty() && waiting == null) {
                    forgetHeld(); // this read takes them
                    // the probe's read of this idle wait is this very read, done for several shards at once
                    rows = handed != null ? handed : db.read(shard, limit);
                } else if (handed != null && held.isEmpty() && held.seen == 0 && waiting == null) {
                    // read by the probe while a topic is held: the shard held none of its rows, so the probe's
                    // read is this one's (held topics' rows included, with their payload). A shard that has
                    // just forgotten the rows it held (to count a failed check of their topic, say) reads for
                    // itself instead, as far past them as before: every held row it reads counts the check,
                    // where the probe's read would take one batch of them
                    rows = handed;
                } else {
                    // held rows stay at the head of the shard: read past them, up to a bound; the rows of keys
                    // waiting for a partition leader are not read at all. Past the bound (the shard remembers
                    // as many held rows as it can, and more are held), the held topics' rows and their keys'
                    // rows from each key's first held one on are left out instead, so that the rows of other
                    // keys after them are reached.
                    boolean pastHeld = pastHeldTopics();
                    if (!pastHeld) {
                        limit += Math.min(held.seen, HELD_WINDOW_BATCHES * config.batchSize());
                    }
                    String[] keys = waiting == null ? new String[0] : waiting;
                    rows = pastHeld
                            ? db.readPastHeld(shard, heldTopics, held.idsAnd(), keys, limit)
                            : db.readFiltered(shard, heldTopics, held.idsAnd(), keys, limit);
                    withoutPayload = pastHeld ? Set.of() : heldTopics;
                    leftOut = held.isEmpty() ? Set.of() : Set.copyOf(held.rowTopics);
                }
                relay.databaseAnswered().run();
            } catch (SQLException e) {
                databaseFailure("read", e);
                return;
            }
        }
        if (rows.isEmpty()) {
            emptyReads++;
            if (!held.isEmpty()) {
                // only rows the shard holds are left: the probe looks above them. They are read again at
                // once, so that rows deleted or parked meanwhile are forgotten (and a missing topic with no
                // rows left stops being held); a row still there is held and remembered again
                heldUpTo = Math.max(heldUpTo, held.max);
                forgetHeld();
                loop.next(0, false);
                return;
            }
            if (leaderless.isEmpty()) {
                // nothing is held and nothing to read: the probe reads for the shard again
                heldUpTo = Long.MIN_VALUE;
            }
            held.seen = 0;
            overflow(false);
            // keys waiting for a partition leader: no new row wakes them (the probe looks above the rows this
            // shard has read), so they are checked again within the idle poll interval
            loop.next(waits.leaderWait(waits.emptyWaitNanos(), leaderless), true);
            return;
        }
        if (!breaker.tryAcquirePermission()) {
            loop.next(waits.backoff(), false);
            return;
        }
        permitHeld = true;
        Publisher.Generation producer;
        try {
            producer = publisher.begin();
        } catch (RuntimeException e) {
            transactionFailed(publisher.atomic() ? "begin a transaction" : "get the Kafka producer", e);
            return;
        }
        boolean full = cap.full(rows, limit);
        if (full && rows.size() < limit) {
            metrics.batchBytesReached.increment();
        }
        Batch batch = new Batch(
                rows,
                withoutPayload,
                producer,
                new KeyOrder(shared, producer),
                time.nanoTime(),
                full,
                relay.kafkaAnswered(),
                this::answered);
        send(batch);
    }

    /**
     * Deals with the shard's deferred deletes before a round reads or sends anything: a lost lease
     * drops the shard; rows a deferred delete did not delete are deleted again, waiting this time; and
     * a read of the shard's own waits until its deferred deletes ended (it would take their rows again).
     * Rows the probe handed over leave them out already, and are published without waiting unless a
     * batch's worth of published rows is still outstanding.
     *
     * @return whether the round goes on; if not, the shard's next task is scheduled
     */
    private boolean settleDeferred() {
        if (deferred.lost()) {
            fenced("delete published rows");
            return false;
        }
        // (a shard that held rows lately, held.seen, reads for itself while a topic is held, even with rows
        // handed: it waits too, rather than ask whether a topic is held now and again in the round)
        boolean ownRead =
                ahead.rows == null && (!loop.hasHanded() || !held.isEmpty() || held.seen != 0 || !leaderless.isEmpty());
        // in flight first: once none is, none starts before this round ends, so the ids taken below are all
        // that are outstanding
        boolean inFlight = deferred.inFlight();
        long[] undeleted = deferred.undeleted();
        // fewer than two batches of published rows ahead of their deletes: when the deletes do not answer (a
        // stalled statement: a lock on the table, a slow disk), the shard waits for them rather than publish on,
        // every later delete carrying the ids of all before it
        int outstanding = deferred.outstanding();
        boolean behind = outstanding >= config.batchSize();
        if (inFlight && (ownRead || undeleted != null || behind)) {
            deletes.hurry();
            CompletableFuture<Void> settled = deferred.settled();
            if (behind && !ownRead && undeleted == null) {
                warnIfStillWaiting(settled, outstanding);
            }
            settled.whenComplete((v, t) -> onWorker(this::step));
            return false;
        }
        if (undeleted == null) {
            return true;
        }
        deleteWaited(undeleted, () -> loop.next(0, false));
        return false;
    }

    /**
     * Logs a WARN if the shard's deferred deletes, which it waits for before it publishes more, have not
     * answered after {@link #DELETE_WAIT_WARN_SECONDS}: the shard publishes nothing meanwhile.
     */
    private void warnIfStillWaiting(CompletableFuture<Void> settled, int outstanding) {
        try {
            workers.schedule(
                    () -> {
                        if (!settled.isDone()) {
                            log.warn(
                                    "shard {}: {} published rows not deleted after {} s; the shard publishes nothing"
                                            + " more until their delete answers (a lock on the outbox table, or a"
                                            + " connection without a socket timeout?)",
                                    shard,
                                    outstanding,
                                    DELETE_WAIT_WARN_SECONDS);
                        }
                    },
                    DELETE_WAIT_WARN_SECONDS,
                    TimeUnit.SECONDS);
        } catch (RejectedExecutionException e) {
            // the relay is closing: nothing to warn about
        }
    }

    /**
     * Deletes published rows through the relay's delete queue, the shard waiting, together with the
     * rows of its deferred deletes not known to have committed ({@link DeferredDeletes#carrying}): a
     * lost lease drops the shard, else the rows count as published and {@code then} runs as the
     * shard's next task.
     */
    private void deleteWaited(long[] rows, Runnable then) {
        long[] ids = deferred.carrying(rows);
        afterWrite(deletes.submit(new ShardRows.Deletion(shard, epoch, ids)), "delete", result -> {
            if (!result.leaseHeld()) {
                fenced("delete " + rows.length + " published rows");
                return;
            }
            deferred.committed(ids);
            metrics.published.increment(result.rows());
            then.run();
        });
    }

    /**
     * The shard's transactional producer could not be initialised or begin a transaction, or there is no
     * shared producer (creating one failed, {@link Publisher.Unavailable}): fenced (a later owner
     * initialised the shard's transactional id), the shard is dropped; else the round is retried after a
     * backoff.
     */
    private void transactionFailed(String what, RuntimeException e) {
        ahead.rows = null;
        if (Errors.isFenced(e)) {
            releasePermit();
            fenced(what + " (" + Errors.describe(e) + ")");
            return;
        }
        metrics.retriable.increment();
        if (permitHeld) {
            permitHeld = false;
            breaker.onError(0, TimeUnit.NANOSECONDS, e);
        }
        long delay = waits.backoff();
        log.retry(
                "shard {}: could not {}, retrying in {} ms (attempt {}): {}",
                shard,
                what,
                TimeUnit.NANOSECONDS.toMillis(delay),
                waits.attempt(),
                Errors.describe(e));
        loop.next(delay, false);
    }

    private void send(Batch batch) {
        boolean topicFailed = sender.send(batch, held.keys);
        held.seen = batch.heldRows;
        if (!topicFailed
                && !batch.stoppedEarly
                && !batch.leaseExpired
                && batch.full
                && batch.sentRows > 0
                && leaderless.isEmpty()
                && !batch.skipped
                && !loop.isStopping()
                && deferred.clear()
                && !pastHeldTopics()) {
            // (a deferred delete in flight, or one that failed while this batch was sent: its rows are still in the
            // table, and the read-ahead would take them, to be sent again after later rows of their keys;
            // past the held rows it remembers, a shard reads each round itself, so that it sees a held topic
            // get metadata and counts the checks of its held rows: a round that takes rows read ahead does not)
            SQLException failed = ahead.read(db, shard, batch, held, config.batchSize());
            if (failed != null) {
                metrics.database.increment();
                log.retry(
                        "shard {}: database read ahead failed (SQLState {}); the next round reads itself: {}",
                        shard,
                        failed.getSQLState(),
                        failed.getMessage());
            }
        }
        batch.release();
    }

    /** Every record of the batch was answered: its completion runs as a task of the shard. */
    private void answered(Batch batch) {
        onWorker(() -> complete(batch));
    }

    /**
     * Runs the shard's next piece of work as a task on the worker pool; an unexpected failure in it
     * ends the round with a backoff. The loop is over when the pool refuses the task.
     */
    private void onWorker(Runnable task) {
        try {
            workers.execute(() -> {
                try {
                    task.run();
                } catch (Throwable t) {
                    unexpected("completing a batch", t);
                }
            });
        } catch (RejectedExecutionException e) {
            loop.abandon();
        }
    }

    /** What a finished batch still has to do once its acknowledged rows are deleted. */
    private record Rest(
            Batch batch,
            Throwable failure,
            List<Integer> poison,
            List<Integer> failures,
            Map<String, TopicHealth.Uncounted> checks,
            boolean countAttempts) {}

    private void complete(Batch batch) {
        if (batch.sentRows > 0) {
            rowReads++;
        } else {
            emptyReads++;
        }
        boolean sawAll = (batch.heldRows > 0 || !held.isEmpty())
                && !batch.full
                && batch.taken == batch.rows.size()
                && !batch.leaseExpired
                && !batch.stoppedEarly
                && !batch.skipped;
        heldUpTo = sawAll ? Math.max(batch.rows.get(batch.rows.size() - 1).id(), held.max) : Long.MIN_VALUE;
        parkedRow = false;
        if (publisher.atomic() && !settle(batch)) {
            return;
        }
        List<OutboxRow> rows = batch.rows;
        BatchOutcome outcome = BatchOutcome.of(batch.describe(
                relay.kafkaAnsweredSince().test(batch.started),
                !publisher.isCurrent(batch.producer) && !batch.order.stoppedProducer(),
                relay.pausedSince().test(batch.started)));
        // held rows of a topic that failed a metadata check (with Kafka answering) since this shard last
        // counted one: one attempt each per failed check, so maxAttempts still parks them (G7)
        Map<String, TopicHealth.Uncounted> checks = batch.heldChecks(topics, shard);
        // a check of a topic whose remembered rows this read left out is counted once they are read again
        checks.keySet().removeAll(leftOut);
        List<Integer> failures = new ArrayList<>(outcome.counted());
        for (int i = 0; i < batch.taken; i++) {
            TopicHealth.Uncounted check = batch.held[i] ? checks.get(rows.get(i).topic()) : null;
            if (check != null) {
                batch.errors[i] = check.error();
                failures.add(i);
            }
        }
        permitHeld = false;
        end.report(batch, outcome, time.nanoTime() - batch.started);
        if (!outcome.keepReadAhead()) {
            ahead.rows = null;
        }
        Rest rest = new Rest(batch, outcome.failure(), outcome.poison(), failures, checks, outcome.countAttempts());
        long[] delete = outcome.delete().stream().mapToLong(Long::longValue).toArray();
        if (delete.length == 0) {
            afterDelete(rest);
            return;
        }
        if (deferrable(rest)) {
            deferDelete(delete);
            afterDelete(rest);
            return;
        }
        // the relay's delete queue runs one statement for many shards; the loop stays RUNNING (a stop
        // waits) until the rest of the batch's completion runs as the shard's next task
        deleteWaited(delete, () -> afterDelete(rest));
    }

    /**
     * @return whether the batch's delete may go on without the shard: the batch was not full (the shard
     *     waits for the probe next, not reading for itself), every row it took was published, and
     *     nothing is held, failed or read ahead
     */
    private boolean deferrable(Rest rest) {
        Batch batch = rest.batch;
        return !batch.full
                && batch.taken == batch.rows.size()
                && batch.heldRows == 0
                && rest.failure == null
                && rest.poison.isEmpty()
                && rest.failures.isEmpty()
                && !batch.aborted
                && !batch.stoppedEarly
                && !batch.leaseExpired
                && !batch.skipped
                && held.isEmpty()
                && leaderless.isEmpty()
                && ahead.rows == null
                && !loop.isStopping();
    }

    /**
     * Submits the delete of published rows without waiting for it ({@link DeferredDeletes}), together
     * with the rows of the shard's earlier deferred deletes not known to have committed; a deferred
     * delete that did not delete them wakes the shard, whose next round acts on it.
     */
    private void deferDelete(long[] rows) {
        long[] ids = deferred.started(rows);
        deletes.submitDeferred(new ShardRows.Deletion(shard, epoch, ids)).whenComplete((result, error) -> {
            if (error == null) {
                relay.databaseAnswered().run();
                if (result.leaseHeld()) {
                    metrics.published.increment(result.rows());
                }
            } else if (error instanceof SQLException) {
                metrics.database.increment();
            }
            if (deferred.finished(ids, result, error)) {
                loop.wake();
            }
        });
    }

    /**
     * Runs {@code then} as the shard's next task once the relay's write queue answered; a statement that
     * failed backs the shard off, a queue stopped by the relay's shutdown ends the loop.
     */
    private <T> void afterWrite(CompletableFuture<T> write, String what, Consumer<T> then) {
        write.whenComplete((result, error) -> onWorker(() -> {
            if (error == null) {
                relay.databaseAnswered().run();
                then.accept(result);
            } else if (error instanceof SQLException e) {
                ahead.rows = null;
                databaseFailure(what, e);
            } else if (error instanceof RejectedExecutionException) {
                loop.abandon(); // the relay is shutting down and stopped its write queues
            } else {
                throw new IllegalStateException("the " + what + " statement failed", error);
            }
        }));
    }

    /** Records the batch's failed rows (through the relay's failure queue), then {@link #afterFailures}. */
    private void afterDelete(Rest rest) {
        if (rest.poison.isEmpty() && rest.failures.isEmpty()) {
            afterFailures(rest);
            return;
        }
        Batch batch = rest.batch;
        Batch.Failures f = batch.failures(rest.poison, rest.failures);
        afterWrite(failureQueue.submit(end.failure(f)), "park", result -> {
            String fencedWhat = end.recorded(batch, f, result, () -> {
                heldUpTo = Long.MIN_VALUE; // rows of its key behind it may be publishable now
                parkedRow = true;
            });
            if (fencedWhat != null) {
                fenced(fencedWhat);
                return;
            }
            rest.checks.forEach((topic, check) -> topics.counted(topic, shard, check));
            afterFailures(rest);
        });
    }

    /** Remembers what the batch held and decides the next round. */
    private void afterFailures(Rest rest) {
        Batch batch = rest.batch;
        if (rest.failure == null && rest.poison.isEmpty() && !parkedRow && !batch.aborted && !batch.stoppedEarly) {
            rememberHeld(batch);
        } else {
            forgetHeld();
        }
        if (rest.failure == null && batch.leaseExpired) {
            ahead.rows = null;
            loop.next(waits.leaseWaitNanos(), false);
            return;
        }
        if (rest.failure == null && batch.aborted) {
            // only rows that can never be published failed, and they are parked now: the rest goes again at once
            ahead.rows = null;
            loop.next(0, false);
            return;
        }
        if (rest.failure != null) {
            ahead.rows = null;
            long delay = waits.backoff();
            log.retry(
                    "shard {}: publishing failed, retrying in {} ms (attempt {}{}): {}",
                    shard,
                    TimeUnit.NANOSECONDS.toMillis(delay),
                    waits.attempt(),
                    rest.countAttempts ? ", counted toward max attempts" : "",
                    Errors.describe(rest.failure));
            loop.next(delay, false);
            return;
        }
        waits.resetAttempts();
        if (batch.sentRows == 0) {
            // nothing to send (every row held): wait like an empty read, so the probe leaves the shard alone
            loop.next(waits.leaderWait(waits.emptyWaitNanos(), leaderless), true);
            return;
        }
        waits.resetPoll();
        metrics.batch.record(Duration.ofNanos(time.nanoTime() - batch.started));
        loop.next(waits.leaderWait(waits.idleAfter(batch.full, ahead.rows != null), leaderless), true);
    }

    /** @return false when the producer was fenced: the shard is being dropped ({@link BatchEnd#settle}) */
    private boolean settle(Batch batch) {
        String fencedWhat = end.settle(batch);
        if (fencedWhat != null) {
            releasePermit();
            fenced(fencedWhat);
            return false;
        }
        return true;
    }

    /**
     * Remembers the rows the batch held, so that the next reads leave them out (up to the bound). A
     * read-ahead that left out rows it cannot remember is dropped: their keys would not be held.
     */
    private void rememberHeld(Batch batch) {
        if (!held.remember(batch, HELD_WINDOW_BATCHES * config.batchSize())) {
            ahead.rows = null;
            overflow(true);
        } else if (batch.heldRows == 0 && held.isEmpty()) {
            overflow(false);
        }
    }

    /**
     * Reports whether the shard holds more rows of topics without metadata than it remembers (the gauge
     * {@link RelayMetrics#heldOverflow}, and a log line when that changes): until they are parked or
     * published, its reads leave out the held topics' rows and their keys' later rows ({@link #pastHeldTopics}).
     */
    private void overflow(boolean now) {
        if (now == overflowing) {
            return;
        }
        overflowing = now;
        if (now) {
            metrics.heldOverflow.incrementAndGet();
            // the rows remembered include later rows of held keys for topics that have metadata: not named,
            // unless a held topic got its metadata meanwhile and none is left
            Set<String> withoutMetadata = new TreeSet<>(held.rowTopics);
            withoutMetadata.retainAll(topics.held());
            if (withoutMetadata.isEmpty()) {
                withoutMetadata.addAll(held.rowTopics);
            }
            log.warn(
                    "shard {}: holds more rows of topics without metadata {} than it remembers ({} rows, {} batches):"
                            + " its reads now leave out those topics' rows and their keys' rows from each key's first"
                            + " held one on, each visiting every held row, until these are parked (max-attempts) or their"
                            + " topics are created",
                    shard,
                    withoutMetadata,
                    held.ids.size(),
                    HELD_WINDOW_BATCHES);
        } else {
            metrics.heldOverflow.decrementAndGet();
            log.info("shard {}: holds no more rows of topics without metadata than it remembers", shard);
        }
    }

    /**
     * @return whether the shard's reads leave out the held topics' rows and their keys' later rows: it holds
     *     more rows than it remembers, and remembers some (which a failed check of their topic makes it
     *     read again, and count)
     */
    private boolean pastHeldTopics() {
        return overflowing && !held.isEmpty();
    }

    /** The next read takes the held rows again (as many as the window allows), with what they tell. */
    private void forgetHeld() {
        if (ahead.filtered) {
            // it read past the rows forgotten now (or held by the batch just done)
            ahead.rows = null;
        }
        held.forget();
    }

    private void fenced(String what) {
        ahead.rows = null;
        metrics.fenced.increment();
        log.warn("shard {}: lease epoch {} no longer held, could not {}; dropping the shard", shard, epoch, what);
        loop.stopping();
        relay.dropped().accept(this);
        loop.next(0, false);
    }

    private void databaseFailure(String what, SQLException e) {
        metrics.database.increment();
        long delay = waits.backoff();
        log.retry(
                "shard {}: database {} failed (SQLState {}), retrying in {} ms (attempt {}): {}",
                shard,
                what,
                e.getSQLState(),
                TimeUnit.NANOSECONDS.toMillis(delay),
                waits.attempt(),
                e.getMessage());
        loop.next(delay, false);
    }

    /** Gives the breaker's permit back when a batch ended without an outcome (an unexpected exception). */
    private void releasePermit() {
        if (permitHeld) {
            permitHeld = false;
            breaker.releasePermission();
        }
    }
}
