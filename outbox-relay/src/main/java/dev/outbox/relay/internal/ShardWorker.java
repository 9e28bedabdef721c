package dev.outbox.relay.internal;

import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.core.internal.TimeSource;
import dev.outbox.relay.ParkPolicy;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.common.errors.InterruptException;

/**
 * The batch loop of one leased shard at one epoch. {@link ShardLoop} decides when it runs (its
 * states and transitions); {@link BatchOutcome} decides what a finished batch means; {@link
 * RecordMapper} makes the records. This class carries out the rounds.
 *
 * <p>One round: read up to batchSize publishable rows in id order; send them all; while the acks
 * come in, read the next rows (excluding the ones in flight); once every record is answered, delete
 * the acknowledged rows in one statement fenced by the lease, park the poison ones, and go on. After
 * a retriable failure nothing read ahead is kept: the next round re-reads what is left in the table,
 * so a key's rows always leave in id order.
 */
final class ShardWorker {
    private static final long MIN_POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(10);
    /** While topics are held, a read may take up to this many batches of held rows besides a batch to send. */
    static final int HELD_WINDOW_BATCHES = 10;

    final int shard;
    final long epoch;
    final LeaseClock lease;
    private final RelayConfig config;
    private final ShardRows db;
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

    // confined to the one running task
    private List<OutboxRow> prefetched;
    // the read-ahead left out the held rows (and took the held topics' rows without their payload)
    private boolean prefetchFiltered;
    private Set<String> prefetchedWithoutPayload = Set.of();
    private long pollNanos = MIN_POLL_NANOS;
    private int attempt;
    // rows the last batch held (their topic without metadata): the next read takes as many more
    private int heldSeen;
    // rows this shard holds (their topic has no metadata, or an earlier row of their key is held), left
    // out of its reads so that they are not read again with every batch, at most HELD_WINDOW_BATCHES
    // batches of them; the keys of these rows, whose other rows are held too; the topics of these rows;
    // and the held topics when they were read. Forgotten (read again) when the held topics change, a
    // metadata check of their topic is to be counted as an attempt, a row is parked or a batch fails.
    private final List<Long> heldIds = new ArrayList<>();
    private final Set<String> heldKeys = new HashSet<>();
    private final Set<String> heldRowTopics = new HashSet<>();
    private Set<String> heldTopicsRead = Set.of();
    private long heldMax = Long.MIN_VALUE;
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
    private final LeaderlessKeys leaderless = new LeaderlessKeys();

    /**
     * @param publisher how the shard's batches are published; closed once the loop stopped
     * @param claimStartedNanos when the claim that gave this epoch started ({@link ShardServices#time()})
     */
    ShardWorker(ShardServices services, ShardPublisher publisher, int shard, long epoch, long claimStartedNanos) {
        this.config = services.config();
        this.db = services.rows();
        this.breaker = services.breaker();
        this.metrics = services.metrics();
        this.topics = services.topics();
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
        this.loop = new ShardLoop(workers, this::step);
        this.sender = new BatchSender(config.batchSize(), holdKey, leaderless, lease, topics, time::currentTimeMillis);
        // a shard released, lost or dropped closes its own producer (transactional mode) once its loop stopped
        loop.stopped().whenComplete((v, t) -> publisher.close());
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

    private void next(long delayNanos, boolean wakeableWait) {
        loop.next(delayNanos, wakeableWait);
    }

    private void step() {
        try {
            round();
        } catch (Throwable t) {
            if (t instanceof InterruptedException || t instanceof InterruptException) {
                Thread.currentThread().interrupt();
            }
            log.error("shard {}: unexpected failure in the batch loop, retrying: {}", shard, t.toString(), t);
            prefetched = null;
            releasePermit();
            next(backoff(), false);
        }
    }

    private void round() {
        if (loop.isStopping()) {
            next(0, false);
            return;
        }
        if (!lease.mayPublish()) {
            // the lease may have expired in the database: nothing is sent until a renewal succeeds or the
            // shard is dropped; what was read ahead may already be another relay's to publish
            prefetched = null;
            next(leaseWaitNanos(), false);
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
            prefetched = null;
            next(backoff(), false);
            return;
        }
        List<OutboxRow> rows = prefetched;
        prefetched = null;
        int limit = config.batchSize();
        Set<String> withoutPayload = rows == null ? Set.of() : prefetchedWithoutPayload;
        leftOut = rows != null && prefetchFiltered && !heldIds.isEmpty() ? Set.copyOf(heldRowTopics) : Set.of();
        if (rows == null) {
            Set<String> heldTopics = topics.held();
            if (!heldTopics.equals(heldTopicsRead) || checkToCount()) {
                forgetHeld();
                heldTopicsRead = heldTopics;
            }
            try {
                String[] waiting = leaderless.isEmpty()
                        ? null
                        : leaderless.refresh(shared.current().producer());
                if (heldTopics.isEmpty() && waiting == null) {
                    forgetHeld(); // this read takes them
                    rows = db.read(shard, limit);
                } else {
                    // held rows stay at the head of the shard: read past them, up to a bound; the rows of keys
                    // waiting for a partition leader are not read at all
                    limit += Math.min(heldSeen, HELD_WINDOW_BATCHES * config.batchSize());
                    rows = db.readFiltered(
                            shard, heldTopics, heldIds(), waiting == null ? new String[0] : waiting, limit);
                    withoutPayload = heldTopics;
                    leftOut = heldIds.isEmpty() ? Set.of() : Set.copyOf(heldRowTopics);
                }
                relay.databaseAnswered().run();
            } catch (SQLException e) {
                databaseFailure("read", e);
                return;
            }
        }
        if (rows.isEmpty()) {
            if (!heldIds.isEmpty()) {
                // only rows the shard holds are left: the probe looks above them
                heldUpTo = Math.max(heldUpTo, heldMax);
            }
            emptyReads++;
            next(emptyWaitNanos(), true);
            return;
        }
        if (!breaker.tryAcquirePermission()) {
            next(backoff(), false);
            return;
        }
        permitHeld = true;
        Publisher.Generation producer;
        try {
            producer = publisher.begin();
        } catch (RuntimeException e) {
            transactionFailed("begin a transaction", e);
            return;
        }
        Batch batch = new Batch(
                rows,
                withoutPayload,
                producer,
                new KeyOrder(shared, producer),
                time.nanoTime(),
                rows.size() >= limit,
                relay.kafkaAnswered(),
                this::answered);
        send(batch);
    }

    /**
     * The shard's transactional producer could not be initialised or begin a transaction: fenced (a
     * later owner initialised the shard's transactional id), the shard is dropped; else the round is
     * retried after a backoff.
     */
    private void transactionFailed(String what, RuntimeException e) {
        prefetched = null;
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
        long delay = backoff();
        log.retry(
                "shard {}: could not {}, retrying in {} ms (attempt {}): {}",
                shard,
                what,
                TimeUnit.NANOSECONDS.toMillis(delay),
                attempt,
                Errors.describe(e));
        next(delay, false);
    }

    /** @return the wait after a read that found nothing to send: until the probe wakes the shard, or the next poll */
    private long emptyWaitNanos() {
        long delay = relay.probeActive().getAsBoolean() ? probedWaitNanos() : pollNanos;
        pollNanos = Math.min(config.idlePollInterval().toNanos(), pollNanos * 2);
        return delay;
    }

    private void send(Batch batch) {
        boolean topicFailed = sender.send(batch, heldKeys);
        heldSeen = batch.heldRows;
        if (!topicFailed
                && !batch.stoppedEarly
                && !batch.leaseExpired
                && batch.full
                && batch.sentRows > 0
                && leaderless.isEmpty()
                && !batch.skipped
                && !loop.isStopping()) {
            try {
                if (batch.heldRows == 0 && heldIds.isEmpty() && heldTopicsRead.isEmpty()) {
                    prefetched = db.readAhead(shard, batch.takenIds(), config.batchSize());
                    prefetchFiltered = false;
                    prefetchedWithoutPayload = Set.of();
                } else {
                    // the rows held so far and this batch's rows (complete() remembers the held ones before
                    // the next batch) are left out, the held topics' rows are read without their payload
                    prefetched = db.readFiltered(
                            shard, heldTopicsRead, heldIds(batch.takenIds()), new String[0], config.batchSize());
                    prefetchFiltered = true;
                    prefetchedWithoutPayload = heldTopicsRead;
                }
            } catch (SQLException e) {
                prefetched = null; // the next round reads again
            }
        }
        batch.release();
    }

    private void completeSafely(Batch batch) {
        try {
            complete(batch);
        } catch (Throwable t) {
            if (t instanceof InterruptedException || t instanceof InterruptException) {
                Thread.currentThread().interrupt();
            }
            log.error("shard {}: unexpected failure completing a batch, retrying: {}", shard, t.toString(), t);
            prefetched = null;
            releasePermit();
            next(backoff(), false);
        }
    }

    /** Every record of the batch was answered: its completion runs as a task of the shard. */
    private void answered(Batch batch) {
        try {
            workers.execute(() -> completeSafely(batch));
        } catch (RejectedExecutionException e) {
            loop.abandon();
        }
    }

    private void complete(Batch batch) {
        if (batch.sentRows > 0) {
            rowReads++;
        } else {
            emptyReads++;
        }
        boolean sawAll = (batch.heldRows > 0 || !heldIds.isEmpty())
                && !batch.full
                && batch.taken == batch.rows.size()
                && !batch.leaseExpired
                && !batch.stoppedEarly
                && !batch.skipped;
        heldUpTo = sawAll ? Math.max(batch.rows.get(batch.rows.size() - 1).id(), heldMax) : Long.MIN_VALUE;
        parkedRow = false;
        if (publisher.atomic() && !settle(batch)) {
            return;
        }
        List<OutboxRow> rows = batch.rows;
        BatchOutcome outcome = BatchOutcome.of(batch.describe(
                relay.kafkaAnsweredSince().test(batch.started),
                !publisher.isCurrent(batch.producer) && !batch.order.stoppedProducer()));
        Throwable failure = outcome.failure();
        long elapsed = time.nanoTime() - batch.started;
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
        switch (outcome.breaker()) {
            case SUCCESS -> breaker.onSuccess(elapsed, TimeUnit.NANOSECONDS);
            case RELEASE -> breaker.releasePermission();
            case FAILURE -> breaker.onError(elapsed, TimeUnit.NANOSECONDS, failure);
        }
        if (failure != null) {
            metrics.retriable.increment();
            if (outcome.fatal()) {
                publisher.replace(batch.producer, failure);
            }
        } else if (batch.sentRows > 0) {
            relay.kafkaAnswered().run();
        }
        List<Long> delete = outcome.delete();
        List<Integer> poison = outcome.poison();
        boolean countAttempts = outcome.countAttempts();
        if (!outcome.keepReadAhead()) {
            prefetched = null;
        }
        try {
            if (!delete.isEmpty()) {
                Db.Fenced result = db.delete(
                        shard, epoch, delete.stream().mapToLong(Long::longValue).toArray());
                relay.databaseAnswered().run();
                if (!result.leaseHeld()) {
                    fenced("delete " + delete.size() + " published rows");
                    return;
                }
                metrics.published.increment(result.rows());
            }
            if (!poison.isEmpty() || !failures.isEmpty()) {
                if (!recordFailures(batch, poison, failures)) {
                    return;
                }
                checks.forEach((topic, check) -> topics.counted(topic, shard, check));
            }
        } catch (SQLException e) {
            prefetched = null;
            databaseFailure("delete or park", e);
            return;
        }
        if (failure == null && poison.isEmpty() && !parkedRow && !batch.aborted && !batch.stoppedEarly) {
            rememberHeld(batch);
        } else {
            forgetHeld();
        }
        if (failure == null && batch.leaseExpired) {
            prefetched = null;
            next(leaseWaitNanos(), false);
            return;
        }
        if (failure == null && batch.aborted) {
            // only rows that can never be published failed, and they are parked now: the rest goes again at once
            prefetched = null;
            next(0, false);
            return;
        }
        if (failure != null) {
            prefetched = null;
            long delay = backoff();
            log.retry(
                    "shard {}: publishing failed, retrying in {} ms (attempt {}{}): {}",
                    shard,
                    TimeUnit.NANOSECONDS.toMillis(delay),
                    attempt,
                    countAttempts ? ", counted toward max attempts" : "",
                    Errors.describe(failure));
            next(delay, false);
            return;
        }
        attempt = 0;
        if (batch.sentRows == 0) {
            // nothing to send (every row held): wait like an empty read, so the probe leaves the shard alone
            next(leaderWait(emptyWaitNanos()), true);
            return;
        }
        pollNanos = MIN_POLL_NANOS;
        metrics.batch.record(Duration.ofNanos(time.nanoTime() - batch.started));
        next(leaderWait(idleAfter(batch.full)), true);
    }

    /** @return {@code wait}, or less while keys wait for a partition leader: no new row wakes them */
    private long leaderWait(long wait) {
        return leaderless.isEmpty()
                ? wait
                : Math.min(wait, config.idlePollInterval().toNanos());
    }

    /**
     * Ends the batch's Kafka transaction (transactional mode): commits it when every record sent was
     * acknowledged, else aborts it, so that none of the batch's records becomes visible to {@code
     * read_committed} consumers and none of its rows is deleted. A failed record's error stays with
     * its row (a poison row is parked, a retriable failure backs off as in the idempotent mode); what
     * the other records report after the first failure is the transaction's state, not theirs, and is
     * dropped when a poison row explains the abort. A commit that fails is a retriable failure of
     * every row sent.
     *
     * @return false when the producer was fenced: the shard is being dropped
     */
    private boolean settle(Batch batch) {
        Throwable first = batch.firstError();
        Throwable commitFailure = null;
        if (first == null) {
            try {
                publisher.commit(batch.producer);
                return true;
            } catch (RuntimeException e) {
                first = commitFailure = e;
            }
        }
        boolean fenced = commitFailure != null ? Errors.isFenced(commitFailure) : anyFenced(batch.errors);
        batch.aborted(commitFailure);
        publisher.abort(batch.producer, first);
        metrics.aborted.increment();
        if (fenced) {
            releasePermit();
            fenced("commit a batch of " + batch.rows.size() + " rows (" + Errors.describe(first) + ")");
            return false;
        }
        return true;
    }

    private static boolean anyFenced(Throwable[] errors) {
        for (Throwable e : errors) {
            if (e != null && Errors.isFenced(e)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Parks the poison rows and counts an attempt of the rows that failed retriably, parking those that
     * reached maxAttempts, in one fenced statement.
     *
     * @return false when the lease was lost (the shard is being dropped)
     */
    private boolean recordFailures(Batch batch, List<Integer> poison, List<Integer> retriable) throws SQLException {
        Batch.Failures f = batch.failures(poison, retriable);
        int n = f.ids().length;
        Db.Failed result = db.fail(shard, epoch, f.ids(), f.errors(), f.park(), config.maxAttempts());
        relay.databaseAnswered().run();
        if (!result.leaseHeld()) {
            fenced("record the failure of " + n + " rows");
            return false;
        }
        for (Db.FailedRow r : result.rows()) {
            int i = f.index().get(r.id());
            OutboxRow row = batch.rows.get(i);
            String error = Errors.describe(batch.errors[i]);
            boolean isPoison = Errors.isPoison(batch.errors[i]);
            if (isPoison) {
                metrics.nonRetriable.increment();
            }
            if (r.parked()) {
                heldUpTo = Long.MIN_VALUE; // rows of its key behind it may be publishable now
                parkedRow = true;
                metrics.parked.increment();
                log.error(
                        "shard {}: parked outbox row {} (message {}, topic {}, key {}) after {} attempt(s){}: {}; requeue it"
                                + " once the cause is fixed",
                        shard,
                        row.id(),
                        row.messageId(),
                        row.topic(),
                        row.key(),
                        r.attempts(),
                        isPoison ? "" : " (max attempts " + config.maxAttempts() + ")",
                        error);
            }
        }
        return true;
    }

    /** @return the ids of the rows the shard remembers as held, and {@code more} */
    private long[] heldIds(long... more) {
        long[] ids = new long[heldIds.size() + more.length];
        for (int i = 0; i < heldIds.size(); i++) {
            ids[i] = heldIds.get(i);
        }
        System.arraycopy(more, 0, ids, heldIds.size(), more.length);
        return ids;
    }

    /**
     * Remembers the rows the batch held, so that the next reads leave them out (up to the bound). A
     * read-ahead that left out rows it cannot remember is dropped: their keys would not be held.
     */
    private void rememberHeld(Batch batch) {
        int max = HELD_WINDOW_BATCHES * config.batchSize();
        for (int i = 0; i < batch.taken; i++) {
            if (batch.held[i] && heldIds.size() >= max) {
                prefetched = null;
                break;
            }
            if (batch.held[i]) {
                OutboxRow row = batch.rows.get(i);
                heldIds.add(row.id());
                heldMax = Math.max(heldMax, row.id());
                heldRowTopics.add(row.topic());
                if (row.key() != null) {
                    heldKeys.add(row.key());
                }
            }
        }
    }

    /** The next read takes the held rows again (as many as the window allows), with what they tell. */
    private void forgetHeld() {
        if (prefetchFiltered) {
            // it read past the rows forgotten now (or held by the batch just done)
            prefetched = null;
        }
        if (heldIds.isEmpty()) {
            return;
        }
        heldSeen = Math.max(heldSeen, heldIds.size());
        heldIds.clear();
        heldKeys.clear();
        heldRowTopics.clear();
        heldMax = Long.MIN_VALUE;
    }

    /** @return whether a failed metadata check of a remembered row's topic is still to be counted by this shard */
    private boolean checkToCount() {
        for (String topic : heldRowTopics) {
            if (topics.uncountedCheck(topic, shard) != null) {
                return true;
            }
        }
        return false;
    }

    private void fenced(String what) {
        prefetched = null;
        metrics.fenced.increment();
        log.warn("shard {}: lease epoch {} no longer held, could not {}; dropping the shard", shard, epoch, what);
        loop.stopping();
        relay.dropped().accept(this);
        next(0, false);
    }

    private void databaseFailure(String what, SQLException e) {
        metrics.database.increment();
        long delay = backoff();
        log.retry(
                "shard {}: database {} failed (SQLState {}), retrying in {} ms (attempt {}): {}",
                shard,
                what,
                e.getSQLState(),
                TimeUnit.NANOSECONDS.toMillis(delay),
                attempt,
                e.getMessage());
        next(delay, false);
    }

    /**
     * @return 0 to read again at once after a full batch (more rows are likely waiting); after a
     *     shorter one, which took every row visible when it was read, the idle wait, from which the
     *     probe wakes the shard once new rows are there (one read per round instead of two)
     */
    private long idleAfter(boolean fullRead) {
        return !fullRead && prefetched == null && relay.probeActive().getAsBoolean() ? probedWaitNanos() : 0;
    }

    /**
     * @return the idle wait while the probe works: it wakes the shard when rows arrive, so the shard
     *     reads on its own only once per lease renewal interval, as a safeguard; while the probe
     *     fails, the shard polls from 10 ms up to the idle poll interval instead
     */
    private long probedWaitNanos() {
        return Math.max(
                config.idlePollInterval().toNanos(), config.renewInterval().toNanos());
    }

    /** @return how long a shard whose lease deadline passed waits before it looks again */
    private long leaseWaitNanos() {
        return Math.max(MIN_POLL_NANOS, config.renewInterval().toNanos() / 20);
    }

    /** Gives the breaker's permit back when a batch ended without an outcome (an unexpected exception). */
    private void releasePermit() {
        if (permitHeld) {
            permitHeld = false;
            breaker.releasePermission();
        }
    }

    /** @return the next retry delay of this shard, counted in the backoff metric */
    private long backoff() {
        Duration d = config.backoff().delay(Math.min(attempt, 40));
        attempt++;
        metrics.backoff.record(d);
        return Math.max(1, d.toNanos());
    }
}
