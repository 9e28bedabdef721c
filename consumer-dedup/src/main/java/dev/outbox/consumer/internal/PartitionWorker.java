package dev.outbox.consumer.internal;

import dev.outbox.consumer.DeadLetterHeaders;
import dev.outbox.consumer.FailureKind;
import dev.outbox.consumer.PermanentHandlerException;
import dev.outbox.consumer.TransientHandlerException;
import dev.outbox.consumer.internal.BatchRules.Decision;
import dev.outbox.consumer.internal.BatchRules.Plan;
import dev.outbox.consumer.internal.BatchRules.Policy;
import dev.outbox.consumer.internal.BatchRules.Progress;
import dev.outbox.consumer.internal.BatchStore.Outcome;
import dev.outbox.consumer.internal.RecordMapping.MessageId;
import dev.outbox.consumer.internal.SerialTask.Next;
import dev.outbox.core.internal.Durations;
import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.core.internal.TimeSource;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;

/**
 * The work of one assigned partition: a queue of fetched records, processed strictly in offset
 * order, one transaction (batch) per step, by a {@link SerialTask} (its states: idle, queued,
 * running, waiting for a retry, stopped). What each step does is decided by {@link BatchRules}
 * from the worker's {@link Progress}; the worker carries it out: transactions and the recording of
 * dead-lettered ids through the {@link BatchStore}, dead letters through the {@link DeadLetterSink},
 * each under its {@link Breaker}.
 *
 * <p>The poll thread adds records ({@link #enqueue}), reads {@link #nextToCommit()} (the offset
 * after the last record whose transaction committed) and {@link #stop() stops} the worker on
 * revocation; everything else runs on the worker's steps, one at a time.
 */
final class PartitionWorker {

    /** What the workers of one consumer share. */
    record Parts(
            Settings settings,
            RecordMapping mapping,
            BatchStore store,
            DeadLetterSink deadLetters,
            Breaker databaseBreaker,
            Breaker deadLetterBreaker,
            Metrics metrics,
            PrefixedLog log,
            TimeSource time,
            SerialTask.Scheduler scheduler) {}

    /** How far the dead-letter copy of the head record got. */
    private enum DeadLetterState {
        NOT_SENT,
        /** The dead-letter topic acknowledged the copy. */
        SENT,
        /** The dead-letter topic refused the copy for good: the head is skipped without one. */
        REFUSED
    }

    /** How many message ids the description of a transaction names; the others are counted. */
    private static final int DESCRIBED_IDS = 3;

    private final TopicPartition tp;
    private final Parts parts;
    private final Settings settings;
    private final PrefixedLog log;
    private final Policy policy;
    private final SerialTask task;
    private final AtomicLong lag = new AtomicLong();
    private final ArrayDeque<ConsumerRecord<byte[], byte[]>> queue = new ArrayDeque<>();
    /** The {@link #sizeOf sizes} of the records in {@link #queue}, summed; guarded by {@code queue}. */
    private long queuedBytes;

    private volatile long doneNext = -1;
    private volatile long firstFetched = -1;
    /** What the step in flight does, or null between steps. */
    private volatile Activity activity;

    // touched by steps only, which never run at once
    private Progress progress = Progress.START;
    // what the partition's previous worker in this consumer knew of its head, until the first step
    private Carried carried;
    private DeadLetterState deadLetter = DeadLetterState.NOT_SENT;
    private int infrastructureFailures;
    // batches in a row whose dedup rows another transaction held
    private int busyFailures;
    // the record whose handler retry waits, or -1, and when that retry is due (TimeSource#nanoTime)
    private long retryOffset = -1;
    private long retryAt;

    /**
     * What a stopped worker knew of the record at its head: its failures so far and when its retry is
     * due, so that a rebalance that revokes the partition and assigns it to this consumer again
     * neither restarts the retry bounds ({@code maxAttempts}, {@code maxTransientRetry}) nor cuts the
     * backoff wait short with an extra call.
     *
     * @param offset the head record's offset
     * @param progress its failures so far
     * @param retryAt when its retry is due ({@link TimeSource#nanoTime()}); not after the time it was
     *     carried when no retry waited
     */
    record Carried(long offset, Progress progress, long retryAt) {}

    /**
     * What a step does, so that a close that gives up waiting for it can say what still runs and what
     * it holds.
     *
     * @param what the work and its records, e.g. {@code the transaction of orders-0@17..19 (3 records,
     *     message ids ...)}
     * @param transaction whether a database transaction of the consumer's is open in it
     * @param thread the worker thread running it
     * @param sinceNanos when the step began ({@link TimeSource#nanoTime()})
     */
    record Activity(String what, boolean transaction, Thread thread, long sinceNanos) {}

    PartitionWorker(TopicPartition tp, Parts parts) {
        this(tp, parts, null);
    }

    /** @param carried what the partition's previous worker here knew of its head, or null */
    PartitionWorker(TopicPartition tp, Parts parts, Carried carried) {
        this.carried = carried;
        this.tp = tp;
        this.parts = parts;
        this.settings = parts.settings();
        this.log = parts.log();
        this.policy = new Policy(settings.maxAttempts(), settings.maxTransientRetry());
        this.task = new SerialTask(parts.scheduler(), this::step, () -> queued() > 0);
    }

    TopicPartition partition() {
        return tp;
    }

    /** The partition's lag, for its gauge; set by the poll thread. */
    AtomicLong lag() {
        return lag;
    }

    /** Adds fetched records and makes sure a step will process them. */
    void enqueue(List<ConsumerRecord<byte[], byte[]>> records) {
        synchronized (queue) {
            if (firstFetched < 0 && !records.isEmpty()) {
                firstFetched = records.get(0).offset();
            }
            for (ConsumerRecord<byte[], byte[]> r : records) {
                queuedBytes += sizeOf(r);
            }
            queue.addAll(records);
        }
        task.wake();
    }

    int queued() {
        synchronized (queue) {
            return queue.size();
        }
    }

    /**
     * @return the bytes of the records fetched and not yet done (the records of a step in flight
     *     included), as {@link #sizeOf} counts them; any thread
     */
    long queuedBytes() {
        synchronized (queue) {
            return queuedBytes;
        }
    }

    /**
     * What a record holds of its own: its key, its value and its headers (names and values). The Java
     * objects around them are not counted; the poll thread also bounds how many records a partition
     * queues.
     *
     * @return the record's size in bytes, header names counted one byte a character
     */
    static long sizeOf(ConsumerRecord<byte[], byte[]> record) {
        long size = 0;
        if (record.key() != null) {
            size += record.key().length;
        }
        if (record.value() != null) {
            size += record.value().length;
        }
        for (Header h : record.headers()) {
            size += h.key().length();
            if (h.value() != null) {
                size += h.value().length;
            }
        }
        return size;
    }

    /** @return the offset after the last record whose transaction committed, or -1 */
    long nextToCommit() {
        return doneNext;
    }

    /**
     * @param position the consumer's position on the partition, or -1 when not known
     * @return the next offset to process: after the last one done, else the first fetched, else {@code
     *     position}; {@code position} once every record fetched is done and no step runs, since the
     *     offsets between the last record done and the position hold no record to process (the commit
     *     markers of a transactional producer, such as the relay's transactional mode, and the records of
     *     aborted transactions, which a read_committed consumer never gets)
     */
    long nextToProcess(long position) {
        long done = doneNext;
        if (done >= 0 && position > done && caughtUp()) {
            return position;
        }
        return done >= 0 ? done : firstFetched >= 0 ? firstFetched : position;
    }

    /** @return whether no record fetched waits and no step runs: every record fetched is done */
    private boolean caughtUp() {
        synchronized (queue) {
            if (!queue.isEmpty()) {
                return false;
            }
        }
        return task.state() == SerialTask.State.IDLE;
    }

    /** Whether the worker waits for a retry: the poll thread then pauses the partition. */
    boolean isWaiting() {
        return task.state() == SerialTask.State.WAITING;
    }

    SerialTask.State state() {
        return task.state();
    }

    /** Stops for good: no step starts after this one; see {@link #awaitStep}. */
    void stop() {
        task.stop();
    }

    /** @return false when the step in flight did not finish within {@code timeoutNanos} */
    boolean awaitStep(long timeoutNanos) {
        return task.awaitStep(timeoutNanos);
    }

    /** @return what the step in flight does, or null when no step runs */
    Activity activity() {
        return activity;
    }

    /**
     * For a stopped worker: what it knew of the record at its head, for the partition's next worker in
     * this consumer.
     *
     * @return null when the head has not failed, or a step is still running; what the previous worker
     *     handed over when no record reached this one
     */
    Carried carried() {
        long now = now();
        if (!awaitStep(0)) {
            return null; // the lock taken and released orders this read after the last step's writes
        }
        if (carried != null) {
            // handed over by the previous worker and not taken up by a step of this one (no record reached
            // it before this revocation): passed on as it came
            return carried;
        }
        // the offset of the record the progress is about: the queue's head, which need not follow the last one done
        // (a transaction marker or a compacted record between them)
        long head;
        synchronized (queue) {
            ConsumerRecord<byte[], byte[]> first = queue.peekFirst();
            head = first != null ? first.offset() : nextToProcess(-1);
        }
        if (progress == Progress.START || head < 0) {
            return null;
        }
        return new Carried(head, progress, retryOffset == head ? retryAt : now);
    }

    /** Drops the fetched records not yet processed (they are redelivered to the next owner). */
    void clear() {
        synchronized (queue) {
            queue.clear();
            queuedBytes = 0;
        }
    }

    private List<ConsumerRecord<byte[], byte[]>> peek(int max) {
        synchronized (queue) {
            List<ConsumerRecord<byte[], byte[]>> batch = new ArrayList<>(Math.min(max, queue.size()));
            for (ConsumerRecord<byte[], byte[]> r : queue) {
                if (batch.size() == max) {
                    break;
                }
                batch.add(r);
            }
            return batch;
        }
    }

    private void complete(int count) {
        synchronized (queue) {
            long next = -1;
            for (int i = 0; i < count; i++) {
                ConsumerRecord<byte[], byte[]> done = queue.pollFirst();
                if (done == null) {
                    break; // cleared by a revocation that stopped waiting for this transaction; nothing to commit
                }
                next = done.offset() + 1;
                queuedBytes -= sizeOf(done);
            }
            if (queue.isEmpty()) {
                // a messageIdExtractor is given the record itself and could have changed its headers since it was
                // counted: whatever the sum says, an empty queue holds nothing
                queuedBytes = 0;
            }
            if (next >= 0) {
                doneNext = next;
            }
        }
    }

    private Next step() {
        activity = new Activity("a step of " + tp, false, Thread.currentThread(), now());
        try {
            return process();
        } catch (RuntimeException | Error e) {
            log.error("unexpected failure on {}; retrying with backoff", tp, e);
            return infrastructureDelay(new InfrastructureException("unexpected failure: " + e, e));
        } finally {
            activity = null;
        }
    }

    /** Records what the step in flight does now; on the worker's steps only. */
    private void doing(String what, boolean transaction) {
        Activity step = activity;
        activity = new Activity(what, transaction, Thread.currentThread(), step != null ? step.sinceNanos() : now());
    }

    private Next process() {
        List<ConsumerRecord<byte[], byte[]>> batch = peek(settings.maxRecordsPerTransaction());
        if (batch.isEmpty()) {
            return Next.IDLE;
        }
        ConsumerRecord<byte[], byte[]> head = batch.get(0);
        if (carried != null) {
            Carried before = carried;
            carried = null; // at another offset it does not apply: another owner went past that record meanwhile
            if (before.offset() == head.offset()) {
                progress = before.progress();
                retryOffset = head.offset();
                retryAt = before.retryAt();
                long wait = Math.max(0, retryAt - now());
                log.info(
                        "{}@{}: going on with its {} failed attempt(s) and {} transient failure(s) from before the"
                                + " partition was revoked; retrying in {}",
                        tp,
                        head.offset(),
                        progress.attempts(),
                        progress.transientFailures(),
                        Durations.format(Duration.ofNanos(wait)));
                if (wait > 0) {
                    // what is left of the retry's backoff: waited like any retry, the partition paused
                    return Next.after(Duration.ofNanos(wait));
                }
            }
        }
        MessageId headId = parts.mapping().messageId(head);
        List<UUID> ids = new ArrayList<>(batch.size());
        Plan plan = BatchRules.plan(
                progress,
                policy,
                offsets(batch),
                limit -> {
                    for (int i = ids.size(); i < limit; i++) {
                        UUID id = i == 0
                                ? headId.id()
                                : parts.mapping().messageId(batch.get(i)).id();
                        if (id == null) {
                            break; // dead-lettered on its own, when it reaches the head
                        }
                        ids.add(id);
                    }
                    return Math.min(ids.size(), limit);
                },
                headId.reason());
        progress = plan.progress();
        return switch (plan.step()) {
            case DEAD_LETTER ->
                deadLetter(
                        head,
                        plan.reason(),
                        headId.id() == null ? headId.failure() : plan.failure(),
                        headId.id() == null ? 0 : progress.attempts(),
                        headId.id());
            case FAIL_HEAD ->
                carryOut(
                        BatchRules.failed(progress, policy, classify(plan.failure()), plan.failure(), now()),
                        head,
                        headId.id(),
                        plan.failure());
            case PROCESS -> transaction(batch.subList(0, plan.count()), ids.subList(0, plan.count()));
        };
    }

    private Next transaction(List<ConsumerRecord<byte[], byte[]>> batch, List<UUID> ids) {
        doing(describe(batch, ids), true);
        Outcome outcome;
        try {
            outcome = parts.databaseBreaker().call(() -> parts.store().process(batch, ids));
        } catch (Breaker.OpenException e) {
            return infrastructureDelay(null);
        } catch (InfrastructureException e) {
            return infrastructureDelay(e);
        } catch (CommitRefusedException e) {
            // the database works: what the transaction wrote made it fail
            infrastructureFailures = 0;
            busyFailures = 0;
            Decision decision =
                    BatchRules.afterCommitRefused(progress, policy, offsets(batch), e.sqlException(), now());
            if (decision.action() == BatchRules.Action.ISOLATE) {
                log.warn(
                        "{} for the batch {}@{}..{}; redoing it one record per transaction to find the record that causes it",
                        e.getMessage(),
                        tp,
                        batch.get(0).offset(),
                        decision.progress().isolateThrough());
            }
            return carryOut(decision, batch.get(0), ids.get(0), e.sqlException());
        }
        infrastructureFailures = 0;
        // counted before the offsets become committable, so a committed offset is never ahead of them
        parts.metrics().handled.increment(outcome.handled());
        parts.metrics().duplicates.increment(outcome.duplicates());
        parts.metrics().replayed.increment(outcome.replayed());
        parts.metrics().stale.increment(outcome.stale());
        if (outcome.busy()) {
            if (outcome.done() > 0) {
                complete(outcome.done());
                progress = progress.headSettled();
            }
            List<ConsumerRecord<byte[], byte[]>> held = batch.subList(outcome.done(), batch.size());
            return busyDelay(
                    "inserting the processed ids of " + tp + "@" + held.get(0).offset() + ".."
                            + held.get(held.size() - 1).offset() + " (not committed)",
                    outcome.failure());
        }
        busyFailures = 0;
        int failed = outcome.failure() != null && outcome.failureIndex() == outcome.done() ? outcome.done() : -1;
        FailureKind kind = failed >= 0 ? classify(outcome.failure()) : null;
        Decision decision = BatchRules.afterOutcome(progress, policy, outcome, offsets(batch), kind, now());
        return failed >= 0
                ? carryOut(decision, batch.get(failed), ids.get(failed), outcome.failure())
                : carryOut(decision, null, null, null);
    }

    /** Carries out {@code decision}; {@code failed} is the record whose handler failed, if any. */
    private Next carryOut(Decision decision, ConsumerRecord<byte[], byte[]> failed, UUID failedId, Throwable failure) {
        if (decision.commit() > 0) {
            complete(decision.commit());
        }
        progress = decision.progress();
        int attempts = progress.attempts();
        return switch (decision.action()) {
            case CONTINUE, REDO_BEFORE_FAILURE, ISOLATE -> Next.CONTINUE;
            case DEAD_LETTER_TRANSIENT_EXPIRED -> {
                log.warn(
                        "message {} ({}@{}) failed transiently {} time(s) for longer than maxTransientRetry ({}):"
                                + " dead-lettering it",
                        failedId,
                        tp,
                        failed.offset(),
                        progress.transientFailures(),
                        settings.maxTransientRetry(),
                        failure);
                yield Next.CONTINUE;
            }
            case DEAD_LETTER_PERMANENT -> {
                log.warn(
                        "handler failed permanently on message {} ({}@{}); dead-lettering it",
                        failedId,
                        tp,
                        failed.offset(),
                        failure);
                yield Next.CONTINUE;
            }
            case DEAD_LETTER_EXHAUSTED -> {
                log.warn(
                        "handler failed on message {} ({}@{}) {} time(s), the maximum; dead-lettering it",
                        failedId,
                        tp,
                        failed.offset(),
                        attempts,
                        failure);
                yield Next.CONTINUE;
            }
            case RETRY_TRANSIENT -> {
                Duration delay = settings.backoff().delay(decision.backoffStep());
                parts.metrics().transientRetries.increment();
                log.warn(
                        "transient failure on message {} ({}@{}), {} in a row; retrying in {} without using an attempt: {}",
                        failedId,
                        tp,
                        failed.offset(),
                        progress.transientFailures(),
                        Durations.format(delay),
                        failure.toString());
                yield retryAfter(failed, delay);
            }
            case RETRY -> {
                Duration delay = settings.backoff().delay(decision.backoffStep());
                parts.metrics().handlerRetries.increment();
                settings.hooks().retryScheduled(failedId, attempts, delay);
                log.warn(
                        "handler failed on message {} ({}@{}), attempt {} of {}; retrying in {}: {}",
                        failedId,
                        tp,
                        failed.offset(),
                        attempts,
                        policy.maxAttempts(),
                        Durations.format(delay),
                        failure.toString());
                yield retryAfter(failed, delay);
            }
        };
    }

    /** Waits {@code delay} before the next call of {@code failed}'s handler, remembering when it is due. */
    private Next retryAfter(ConsumerRecord<byte[], byte[]> failed, Duration delay) {
        retryOffset = failed.offset();
        retryAt = now() + delay.toNanos();
        return Next.after(delay);
    }

    /**
     * What a handler failure means: lock contention raised by the handler's statements passes by
     * itself; otherwise the configured classifier decides, then the marker exceptions, then a
     * transient SQLState in the cause chain ({@link FailureKind#TRANSIENT}: the consumer's own
     * connection answered, so another database the handler uses failed), then {@link
     * FailureKind#RETRY}.
     */
    private FailureKind classify(Throwable failure) {
        if (SqlErrors.isContention(failure)) {
            return FailureKind.TRANSIENT;
        }
        Function<Throwable, FailureKind> classifier = settings.failureClassifier();
        if (classifier != null) {
            try {
                FailureKind kind = classifier.apply(failure);
                if (kind != null) {
                    return kind;
                }
            } catch (RuntimeException e) {
                log.warn("failureClassifier threw on {}; treating the failure as RETRY", failure, e);
                return FailureKind.RETRY;
            }
        }
        int depth = 0;
        for (Throwable t = failure; t != null && depth < 32; t = t.getCause(), depth++) {
            if (t instanceof PermanentHandlerException) {
                return FailureKind.PERMANENT;
            }
            if (t instanceof TransientHandlerException) {
                return FailureKind.TRANSIENT;
            }
        }
        return SqlErrors.isTransient(failure) ? FailureKind.TRANSIENT : FailureKind.RETRY;
    }

    private Next deadLetter(
            ConsumerRecord<byte[], byte[]> record, String reason, Throwable failure, int attempts, UUID id) {
        if (deadLetter == DeadLetterState.NOT_SENT) {
            doing(
                    "the dead-letter publish of " + tp + "@" + record.offset() + " (message id " + id + ") to "
                            + parts.deadLetters().topicFor(record.topic()),
                    false);
            try {
                parts.deadLetterBreaker().call(() -> {
                    parts.deadLetters().publish(record, reason, failure, attempts);
                    return null;
                });
                deadLetter = DeadLetterState.SENT;
            } catch (Breaker.OpenException e) {
                return infrastructureDelay(null);
            } catch (InfrastructureException e) {
                return infrastructureDelay(e);
            } catch (DeadLetterRefusedException e) {
                deadLetter = DeadLetterState.REFUSED;
                parts.metrics().deadLetterRefused.increment();
                log.error(
                        "{}; skipping {}@{} (message id {}, {}) without a dead-letter copy: read it from the source topic at"
                                + " that offset while the topic keeps it",
                        e.getMessage(),
                        tp,
                        record.offset(),
                        id,
                        reason,
                        failure);
            }
        }
        if (id != null) {
            doing("recording message id " + id + " of " + tp + "@" + record.offset() + " as dead-lettered", false);
            try {
                // under the database breaker like the batches: while it is open the record stays at the head,
                // its copy sent and its id not recorded, and nothing is committed past it
                parts.databaseBreaker().call(() -> {
                    parts.store().recordDeadLettered(id);
                    return null;
                });
            } catch (Breaker.OpenException e) {
                return infrastructureDelay(null);
            } catch (InfrastructureException e) {
                if (e.contention()) {
                    infrastructureFailures = 0; // the database answered
                    return busyDelay(e.getMessage() + " (" + tp + "@" + record.offset() + ")", e.getCause());
                }
                return infrastructureDelay(e);
            }
            busyFailures = 0;
        }
        if (deadLetter == DeadLetterState.SENT) {
            switch (reason) {
                case DeadLetterHeaders.REASON_MISSING_MESSAGE_ID ->
                    parts.metrics().deadLetteredMissingId.increment();
                case DeadLetterHeaders.REASON_INVALID_MESSAGE_ID ->
                    parts.metrics().deadLetteredInvalidId.increment();
                default -> parts.metrics().deadLetteredHandlerFailed.increment();
            }
            if (id == null && failure != null) {
                // a handler's failure was logged when it was decided; the extractor's is logged here, once
                log.warn(
                        "dead-lettered {}@{} to {}: {}, the messageIdExtractor threw {}",
                        tp,
                        record.offset(),
                        parts.deadLetters().topicFor(record.topic()),
                        reason,
                        failure.toString(),
                        failure);
            } else {
                log.warn(
                        "dead-lettered {}@{} (message id {}) to {}: {}",
                        tp,
                        record.offset(),
                        id,
                        parts.deadLetters().topicFor(record.topic()),
                        reason);
            }
        }
        complete(1);
        progress = progress.headSettled();
        deadLetter = DeadLetterState.NOT_SENT;
        infrastructureFailures = 0;
        return Next.CONTINUE;
    }

    /**
     * A statement of the consumer's own on a processed id waited past {@link
     * Database#DEDUP_LOCK_TIMEOUT} for the row another transaction holds: nothing is the records'
     * fault and the database answers, so the work is retried after a backoff without using attempts
     * or feeding the breaker.
     *
     * @param what the work that waited, and what of it did not commit
     */
    private Next busyDelay(String what, Throwable failure) {
        Duration delay = settings.backoff().delay(Math.min(busyFailures, 30));
        busyFailures++;
        parts.metrics().contentionRetries.increment();
        log.warn(
                "{} waited past its bound for a lock another transaction holds (SQLState {}: {}): a copy of a"
                        + " message being processed elsewhere, a consumer instance that lost the partition with its"
                        + " transaction open, or a lock on the table; retrying in {} ({} in a row, no attempt used);"
                        + " pg_stat_activity shows the holder",
                what,
                SqlErrors.sqlState(failure),
                failure.getMessage(),
                Durations.format(delay),
                busyFailures);
        return Next.after(delay);
    }

    /** @param failure what failed, or null when a circuit breaker refused the attempt */
    private Next infrastructureDelay(InfrastructureException failure) {
        Duration delay = settings.backoff().delay(Math.min(infrastructureFailures, 30));
        infrastructureFailures++;
        parts.metrics().infrastructureRetries.increment();
        if (failure != null) {
            log.warn(
                    "{} on {} (failure {} in a row); retrying in {}",
                    failure.getMessage(),
                    tp,
                    infrastructureFailures,
                    Durations.format(delay));
        } else {
            log.debug("circuit breaker open; {} waits {}", tp, Durations.format(delay));
        }
        return Next.after(delay);
    }

    private long now() {
        return parts.time().nanoTime();
    }

    /** @return {@code the transaction of <tp>@<first>..<last> (<n> records, message ids ...)} */
    private String describe(List<ConsumerRecord<byte[], byte[]>> batch, List<UUID> ids) {
        long first = batch.get(0).offset();
        long last = batch.get(batch.size() - 1).offset();
        StringBuilder out =
                new StringBuilder("the transaction of ").append(tp).append('@').append(first);
        if (last != first) {
            out.append("..").append(last);
        }
        out.append(" (")
                .append(batch.size())
                .append(batch.size() == 1 ? " record, message id " : " records, message ids ");
        for (int i = 0; i < Math.min(ids.size(), DESCRIBED_IDS); i++) {
            out.append(i == 0 ? "" : ", ").append(ids.get(i));
        }
        if (ids.size() > DESCRIBED_IDS) {
            out.append(" and ").append(ids.size() - DESCRIBED_IDS).append(" more");
        }
        return out.append(')').toString();
    }

    private static long[] offsets(List<ConsumerRecord<byte[], byte[]>> records) {
        long[] offsets = new long[records.size()];
        for (int i = 0; i < offsets.length; i++) {
            offsets[i] = records.get(i).offset();
        }
        return offsets;
    }
}
