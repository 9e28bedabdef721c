package dev.outbox.consumer.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.consumer.DeadLetterHeaders;
import dev.outbox.consumer.FailureKind;
import dev.outbox.consumer.internal.BatchRules.Action;
import dev.outbox.consumer.internal.BatchRules.Decision;
import dev.outbox.consumer.internal.BatchRules.Plan;
import dev.outbox.consumer.internal.BatchRules.Policy;
import dev.outbox.consumer.internal.BatchRules.Progress;
import dev.outbox.consumer.internal.BatchRules.Step;
import dev.outbox.consumer.internal.BatchStore.Outcome;
import java.sql.SQLException;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The worker's decisions as pure functions: the same inputs, the same decision, no I/O. */
class BatchRulesTest {
    private static final Policy POLICY = new Policy(3, Duration.ofMinutes(10));
    private static final long[] OFFSETS = {10, 11, 12, 13};
    private static final RuntimeException BOOM = new IllegalStateException("boom");

    @Test
    void aTransientFailureStartsItsClockAndUsesNoAttemptUntilMaxTransientRetryHasPassed() {
        long t0 = 5_000;
        Decision first = BatchRules.failed(Progress.START, POLICY, FailureKind.TRANSIENT, BOOM, t0);
        assertThat(first.action()).isEqualTo(Action.RETRY_TRANSIENT);
        assertThat(first.progress().attempts()).isZero();
        assertThat(first.progress().transientSince()).isEqualTo(t0);

        long justBefore = t0 + Duration.ofMinutes(10).toNanos() - 1;
        Decision still = BatchRules.failed(first.progress(), POLICY, FailureKind.TRANSIENT, BOOM, justBefore);
        assertThat(still.action()).isEqualTo(Action.RETRY_TRANSIENT);
        assertThat(still.backoffStep()).isEqualTo(1);

        Decision expired = BatchRules.failed(still.progress(), POLICY, FailureKind.TRANSIENT, BOOM, justBefore + 1);
        assertThat(expired.action()).isEqualTo(Action.DEAD_LETTER_TRANSIENT_EXPIRED);
        assertThat(expired.progress().attempts()).isEqualTo(1);
        assertThat(BatchRules.plan(expired.progress(), POLICY, OFFSETS, n -> n, null)
                        .step())
                .isEqualTo(Step.DEAD_LETTER);
    }

    @Test
    void aSingleRecordsCommitRefusedForContentionIsTransientAndForItsWritesUsesAnAttempt() {
        long[] one = {10};
        Throwable serialization = new CommitRefusedException(new SQLException("could not serialize", "40001"));
        Decision contention = BatchRules.afterCommitRefused(Progress.START, POLICY, one, serialization, 0);
        assertThat(contention.action()).isEqualTo(Action.RETRY_TRANSIENT);
        assertThat(contention.progress().attempts()).isZero();

        Throwable idle = new CommitRefusedException(
                new SQLException("terminating connection due to idle-in-transaction timeout", "25P03"));
        Decision idled = BatchRules.afterCommitRefused(Progress.START, POLICY, one, idle, 0);
        assertThat(idled.action())
                .as("a session ended for idling in its transaction passes by itself")
                .isEqualTo(Action.RETRY_TRANSIENT);
        assertThat(idled.progress().attempts()).isZero();

        Throwable deferred = new CommitRefusedException(new SQLException("violates foreign key", "23503"));
        Decision constraint = BatchRules.afterCommitRefused(Progress.START, POLICY, one, deferred, 0);
        assertThat(constraint.action()).isEqualTo(Action.RETRY);
        assertThat(constraint.progress().attempts()).isEqualTo(1);

        Decision batch = BatchRules.afterCommitRefused(Progress.START, POLICY, OFFSETS, serialization, 0);
        assertThat(batch.action())
                .as("a batch is redone one record at a time first")
                .isEqualTo(Action.ISOLATE);
    }

    @Test
    void retryAndPermanentFailuresUseAnAttemptAndThePermanentOneIsDeadLetteredAtOnce() {
        Decision retry = BatchRules.failed(Progress.START, POLICY, FailureKind.RETRY, BOOM, 0);
        assertThat(retry.action()).isEqualTo(Action.RETRY);
        assertThat(retry.progress().attempts()).isEqualTo(1);
        assertThat(retry.backoffStep()).isZero();

        Decision permanent = BatchRules.failed(retry.progress(), POLICY, FailureKind.PERMANENT, BOOM, 0);
        assertThat(permanent.action()).isEqualTo(Action.DEAD_LETTER_PERMANENT);
        Plan plan = BatchRules.plan(permanent.progress(), POLICY, OFFSETS, n -> n, null);
        assertThat(plan.step()).isEqualTo(Step.DEAD_LETTER);
        assertThat(plan.reason()).isEqualTo(DeadLetterHeaders.REASON_HANDLER_FAILED);
        assertThat(plan.failure()).isSameAs(BOOM);
    }

    @Test
    void aBatchRolledBackAtItsThirdRecordIsRedoneUpToItThenItsFailureCounts() {
        Decision rolledBack =
                BatchRules.afterOutcome(Progress.START, POLICY, Outcome.rolledBack(BOOM, 2), OFFSETS, null, 0);
        assertThat(rolledBack.action()).isEqualTo(Action.REDO_BEFORE_FAILURE);
        assertThat(rolledBack.commit()).isZero();
        assertThat(rolledBack.progress().attempts()).as("no attempt yet").isZero();

        Plan redo = BatchRules.plan(rolledBack.progress(), POLICY, OFFSETS, n -> n, null);
        assertThat(redo.step()).isEqualTo(Step.PROCESS);
        assertThat(redo.count()).isEqualTo(2);

        Decision done =
                BatchRules.afterOutcome(redo.progress(), POLICY, Outcome.committed(2, 2, 0, 0, 0), OFFSETS, null, 0);
        long[] rest = {12, 13};
        Plan failHead = BatchRules.plan(done.progress(), POLICY, rest, n -> n, null);
        assertThat(failHead.step()).isEqualTo(Step.FAIL_HEAD);
        assertThat(failHead.failure()).isSameAs(BOOM);
    }

    @Test
    void aRecordWithoutAnIdIsDeadLetteredAndTheBatchStopsBeforeTheNextOne() {
        Plan noId =
                BatchRules.plan(Progress.START, POLICY, OFFSETS, n -> n, DeadLetterHeaders.REASON_MISSING_MESSAGE_ID);
        assertThat(noId.step()).isEqualTo(Step.DEAD_LETTER);
        assertThat(noId.reason()).isEqualTo(DeadLetterHeaders.REASON_MISSING_MESSAGE_ID);

        Plan upToIt = BatchRules.plan(Progress.START, POLICY, OFFSETS, n -> Math.min(n, 2), null);
        assertThat(upToIt.count()).isEqualTo(2);
    }
}
