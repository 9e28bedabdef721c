package dev.outbox.consumer.internal;

import dev.outbox.consumer.DeadLetterHeaders;
import dev.outbox.consumer.FailureKind;
import dev.outbox.consumer.internal.BatchStore.Outcome;
import dev.outbox.core.internal.TimeSource;
import java.time.Duration;
import java.util.function.IntUnaryOperator;

/**
 * The decisions of a {@link PartitionWorker}, as pure functions of what it knows ({@link
 * Progress}): which records the next transaction takes, and, from a transaction's outcome, what is
 * committed, what is redone, what is retried (and whether that uses one of the record's attempts)
 * and what is dead-lettered. No I/O, no clock of their own, no randomness: the worker carries out
 * the decision (backoff delays are drawn from the returned step).
 */
final class BatchRules {
    private BatchRules() {}

    /** The retry limits: {@code maxAttempts} handler failures, {@code maxTransientRetry} of transient ones. */
    record Policy(int maxAttempts, Duration maxTransientRetry) {}

    /**
     * What the worker knows about the record at the head of its partition and the records behind it.
     *
     * @param attempts failed handler calls of the head that count as attempts
     * @param lastFailure the head's last handler failure, or null
     * @param deadLetterNow the head is to be dead-lettered without another call (failed permanently,
     *     or transiently for longer than {@code maxTransientRetry})
     * @param transientFailures transient failures of the head in a row, for their backoff
     * @param transientSince when the first of them happened ({@link TimeSource#nanoTime()})
     * @param isolateThrough after a refused commit, records up to this offset run one per
     *     transaction; or -1
     * @param pendingFailureOffset a record whose handler failed in a batch that was rolled back as a
     *     whole, or -1: the records before it are redone first, then its failure counts
     * @param pendingFailure that record's failure
     */
    record Progress(
            int attempts,
            Throwable lastFailure,
            boolean deadLetterNow,
            int transientFailures,
            long transientSince,
            long isolateThrough,
            long pendingFailureOffset,
            Throwable pendingFailure) {

        static final Progress START = new Progress(0, null, false, 0, 0, -1, -1, null);

        /** The head committed or was dead-lettered: the next record starts afresh. */
        Progress headSettled() {
            return new Progress(0, null, false, 0, 0, isolateThrough, pendingFailureOffset, pendingFailure);
        }

        Progress isolating(long through) {
            return new Progress(
                    attempts,
                    lastFailure,
                    deadLetterNow,
                    transientFailures,
                    transientSince,
                    through,
                    pendingFailureOffset,
                    pendingFailure);
        }

        Progress pending(long offset, Throwable failure) {
            return new Progress(
                    attempts,
                    lastFailure,
                    deadLetterNow,
                    transientFailures,
                    transientSince,
                    isolateThrough,
                    offset,
                    failure);
        }
    }

    enum Step {
        /** Publish the head to the dead-letter topic. */
        DEAD_LETTER,
        /** The head's handler failed already (in a rolled-back batch): apply {@link #failed} to {@code failure}. */
        FAIL_HEAD,
        /** Run a transaction over the first {@code count} records. */
        PROCESS
    }

    /**
     * What to do with the records at the head of the queue.
     *
     * @param reason the dead-letter reason when {@code step} is {@link Step#DEAD_LETTER}
     */
    record Plan(Progress progress, Step step, int count, String reason, Throwable failure) {}

    /**
     * @param offsets the offsets of the queued records the next transaction may take, in order (at least one)
     * @param withIds how many of the first {@code n} of them, from the first on, have a message id;
     *     asked at most once, when a transaction is planned (reading ids calls the configured extractor)
     * @param headReason why the head has no message id, or null when it has one
     */
    static Plan plan(Progress p, Policy policy, long[] offsets, IntUnaryOperator withIds, String headReason) {
        if (headReason != null) {
            return new Plan(p, Step.DEAD_LETTER, 1, headReason, null);
        }
        if (p.attempts() >= policy.maxAttempts() || p.deadLetterNow()) {
            return new Plan(p, Step.DEAD_LETTER, 1, DeadLetterHeaders.REASON_HANDLER_FAILED, p.lastFailure());
        }
        long head = offsets[0];
        if (p.isolateThrough() >= 0 && head > p.isolateThrough()) {
            p = p.isolating(-1);
        }
        int count = withIds.applyAsInt(p.isolateThrough() >= 0 ? 1 : offsets.length);
        if (p.pendingFailureOffset() >= 0 && head > p.pendingFailureOffset()) {
            p = p.pending(-1, null);
        }
        if (p.pendingFailureOffset() >= 0) {
            if (head == p.pendingFailureOffset()) {
                return new Plan(p.pending(-1, null), Step.FAIL_HEAD, 1, null, p.pendingFailure());
            }
            int before = 0;
            while (before < count && offsets[before] < p.pendingFailureOffset()) {
                before++;
            }
            count = before;
        }
        return new Plan(p, Step.PROCESS, count, null, null);
    }

    enum Action {
        /** Go on with the next transaction at once. */
        CONTINUE,
        /** The batch rolled back as a whole at a failing record: redo the records before it first. */
        REDO_BEFORE_FAILURE,
        /** The commit was refused: redo the batch one record per transaction to find the culprit. */
        ISOLATE,
        /** The head failed and used an attempt: retry after the backoff of {@code backoffStep}. */
        RETRY,
        /** The head failed transiently: retry after the backoff of {@code backoffStep}, without using an attempt. */
        RETRY_TRANSIENT,
        /** The head failed permanently: dead-letter it next. */
        DEAD_LETTER_PERMANENT,
        /** The head used its last attempt: dead-letter it next. */
        DEAD_LETTER_EXHAUSTED,
        /** The head failed transiently for longer than {@code maxTransientRetry}: dead-letter it next. */
        DEAD_LETTER_TRANSIENT_EXPIRED
    }

    /**
     * @param commit how many records at the head settled and committed (their offsets become committable)
     * @param backoffStep the retry number whose backoff delay to wait, for {@link Action#RETRY} and
     *     {@link Action#RETRY_TRANSIENT}
     */
    record Decision(Progress progress, int commit, Action action, int backoffStep) {}

    /**
     * After a transaction over the records at {@code offsets} ended with {@code outcome}.
     *
     * @param kind the kind of {@code outcome.failure()} when it is the failure of the first record not
     *     done ({@code failureIndex == done}); else unused
     * @param now {@link TimeSource#nanoTime()}
     */
    static Decision afterOutcome(
            Progress p, Policy policy, Outcome outcome, long[] offsets, FailureKind kind, long now) {
        int commit = outcome.done();
        if (commit > 0) {
            p = p.headSettled();
        }
        if (outcome.failure() == null) {
            return new Decision(p, commit, Action.CONTINUE, 0);
        }
        if (outcome.failureIndex() > commit) {
            return new Decision(
                    p.pending(offsets[outcome.failureIndex()], outcome.failure()),
                    commit,
                    Action.REDO_BEFORE_FAILURE,
                    0);
        }
        Decision failed = failed(p, policy, kind, outcome.failure(), now);
        return new Decision(failed.progress(), commit, failed.action(), failed.backoffStep());
    }

    /** After the database refused to commit a transaction over the records at {@code offsets}. */
    static Decision afterCommitRefused(Progress p, Policy policy, long[] offsets, Throwable refusal, long now) {
        if (offsets.length > 1) {
            return new Decision(p.isolating(offsets[offsets.length - 1]), 0, Action.ISOLATE, 0);
        }
        // one record: its handler's writes are the cause; retried, then dead-lettered like a handler failure. A
        // serialization failure or deadlock at the commit is contention with another transaction, as it is when a
        // handler's statement meets it, and a session the server ended for idling in its transaction passes unless
        // the wait recurs: transient, no attempt used until maxTransientRetry has passed
        FailureKind kind = SqlErrors.isContention(refusal) || SqlErrors.isIdleSessionEnded(refusal)
                ? FailureKind.TRANSIENT
                : FailureKind.RETRY;
        return failed(p, policy, kind, refusal, now);
    }

    /**
     * The head's handler failed with {@code failure} of {@code kind}. Only {@code RETRY} and {@code
     * PERMANENT} failures use an attempt; {@code TRANSIENT} ones do until they have lasted {@code
     * maxTransientRetry}, and then one attempt is counted for the dead-letter record.
     */
    static Decision failed(Progress p, Policy policy, FailureKind kind, Throwable failure, long now) {
        if (kind == FailureKind.TRANSIENT) {
            long since = p.transientFailures() == 0 ? now : p.transientSince();
            if (now - since >= policy.maxTransientRetry().toNanos()) {
                return new Decision(
                        new Progress(
                                p.attempts() + 1,
                                failure,
                                true,
                                p.transientFailures(),
                                since,
                                p.isolateThrough(),
                                p.pendingFailureOffset(),
                                p.pendingFailure()),
                        0,
                        Action.DEAD_LETTER_TRANSIENT_EXPIRED,
                        0);
            }
            return new Decision(
                    new Progress(
                            p.attempts(),
                            failure,
                            p.deadLetterNow(),
                            p.transientFailures() + 1,
                            since,
                            p.isolateThrough(),
                            p.pendingFailureOffset(),
                            p.pendingFailure()),
                    0,
                    Action.RETRY_TRANSIENT,
                    Math.min(p.transientFailures(), 30));
        }
        int attempts = p.attempts() + 1;
        boolean permanent = kind == FailureKind.PERMANENT;
        Progress next = new Progress(
                attempts,
                failure,
                p.deadLetterNow() || permanent,
                p.transientFailures(),
                p.transientSince(),
                p.isolateThrough(),
                p.pendingFailureOffset(),
                p.pendingFailure());
        if (permanent) {
            return new Decision(next, 0, Action.DEAD_LETTER_PERMANENT, 0);
        }
        if (attempts >= policy.maxAttempts()) {
            return new Decision(next, 0, Action.DEAD_LETTER_EXHAUSTED, 0);
        }
        return new Decision(next, 0, Action.RETRY, attempts - 1);
    }
}
