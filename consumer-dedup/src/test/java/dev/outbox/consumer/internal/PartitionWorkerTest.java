package dev.outbox.consumer.internal;

import static dev.outbox.consumer.internal.Fakes.idOf;
import static dev.outbox.consumer.internal.Fakes.records;
import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.outbox.consumer.DeadLetterHeaders;
import dev.outbox.consumer.PermanentHandlerException;
import dev.outbox.consumer.TransientHandlerException;
import dev.outbox.consumer.internal.BatchStore.Outcome;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * The rules of one partition's worker, with an in-memory database, dead-letter topic, clock and
 * scheduler: each test runs in milliseconds what the integration tests prove slowly against
 * PostgreSQL and Kafka (G4 exactly once per id, G6 infrastructure retries without attempts, G7
 * dead letters after the attempts).
 */
class PartitionWorkerTest {
    private final Fakes.Time time = new Fakes.Time();
    private final Fakes.Scheduler scheduler = new Fakes.Scheduler(time);
    private final Fakes.Store store = new Fakes.Store();
    private final Fakes.Sink sink = new Fakes.Sink();
    private final List<Integer> retriesScheduled = new ArrayList<>();
    private final Hooks hooks = new Hooks() {
        @Override
        public void retryScheduled(UUID messageId, int failedAttempts, Duration delay) {
            retriesScheduled.add(failedAttempts);
        }
    };

    private PartitionWorker worker(int maxAttempts, int maxRecords, Duration maxTransientRetry) {
        return worker(maxAttempts, maxRecords, maxTransientRetry, null);
    }

    private PartitionWorker worker(
            int maxAttempts, int maxRecords, Duration maxTransientRetry, PartitionWorker.Carried carried) {
        return Fakes.worker(
                Fakes.settings(maxAttempts, maxRecords, maxTransientRetry, hooks, null),
                store,
                sink,
                time,
                scheduler,
                carried);
    }

    /**
     * Runs a worker on records 0 and 1 until the record at 0, whose handler always fails, has used two of its
     * three attempts, then revokes its partition.
     *
     * @return what the worker hands over to the next one
     */
    private PartitionWorker.Carried revokedAfterTwoFailedAttempts() {
        store.handler = r -> r.offset() == 0 ? new IllegalStateException("always") : null;
        PartitionWorker first = worker(3, 10, Duration.ofHours(1));
        first.enqueue(records(0, 2));
        scheduler.runAll(2);
        assertThat(store.calls.get(0L)).isEqualTo(2);
        first.stop();
        PartitionWorker.Carried carried = first.carried();
        assertThat(carried).isNotNull();
        return carried;
    }

    /**
     * Runs a worker given {@code carried} on {@code records}, in which the record at {@code offset} has used two of
     * its three attempts and fails again: it uses its last attempt there and is dead-lettered.
     *
     * @return that worker
     */
    private PartitionWorker lastAttemptDeadLetters(
            PartitionWorker.Carried carried, long offset, List<ConsumerRecord<byte[], byte[]>> records) {
        PartitionWorker worker = worker(3, 10, Duration.ofHours(1), carried);
        worker.enqueue(records);
        scheduler.runAll(100);
        assertThat(store.calls.get(offset)).as("the third attempt was the last").isEqualTo(3);
        assertThat(sink.sent)
                .singleElement()
                .satisfies(s -> assertThat(s.attempts()).isEqualTo(3));
        return worker;
    }

    @Test
    void aBatchRolledBackByAHandlerFailureIsRedoneUpToTheFailingRecordWhichThenUsesAnAttempt() {
        PartitionWorker worker = worker(3, 10, Duration.ofHours(1));
        AtomicInteger failuresOf2 = new AtomicInteger(1);
        store.handler =
                r -> r.offset() == 2 && failuresOf2.getAndDecrement() > 0 ? new IllegalStateException("boom") : null;

        worker.enqueue(records(0, 5));
        scheduler.runAll(100);

        // the whole batch, rolled back at offset 2; the records before it redone on their own; offset 2
        // failed (one attempt, a retry after a backoff), then the rest in one batch
        assertThat(store.transactions)
                .containsExactly(List.of(0L, 1L, 2L, 3L, 4L), List.of(0L, 1L), List.of(2L, 3L, 4L));
        assertThat(retriesScheduled).containsExactly(1);
        assertThat(store.calls)
                .containsEntry(0L, 2)
                .containsEntry(1L, 2)
                .containsEntry(2L, 2)
                .containsEntry(3L, 1);
        assertThat(store.processed).hasSize(5);
        assertThat(sink.sent).isEmpty();
        assertThat(worker.nextToCommit()).isEqualTo(5);
    }

    @Test
    void aRecordWhoseHandlerKeepsFailingIsDeadLetteredAfterMaxAttemptsAndSkipped() {
        PartitionWorker worker = worker(3, 10, Duration.ofHours(1));
        store.handler = r -> r.offset() == 1 ? new IllegalStateException("always") : null;

        worker.enqueue(records(0, 3));
        scheduler.runAll(100);

        assertThat(store.calls.get(1L)).isEqualTo(3);
        assertThat(retriesScheduled).containsExactly(1, 2);
        assertThat(sink.sent).singleElement().satisfies(s -> {
            assertThat(s.offset()).isEqualTo(1);
            assertThat(s.reason()).isEqualTo(DeadLetterHeaders.REASON_HANDLER_FAILED);
            assertThat(s.attempts()).isEqualTo(3);
            assertThat(s.failure()).hasMessage("always");
        });
        assertThat(store.deadLettered).containsExactly(idOf(1));
        assertThat(store.processed).containsExactlyInAnyOrder(idOf(0), idOf(2));
        assertThat(worker.nextToCommit()).isEqualTo(3);
    }

    /**
     * G7: a message id extractor that throws dead-letters its record unhandled, and what it threw is not
     * dropped: the dead-letter copy carries it (its dlt-exception-* headers), and the WARN line that
     * reports the dead letter carries it with its stack trace.
     */
    @Test
    void anExtractorThatThrowsDeadLettersTheRecordWithWhatItThrew() {
        IllegalStateException thrown = new IllegalStateException("payload v3 has no order id");
        Settings settings = Fakes.withExtractor(Fakes.settings(3, 10, Duration.ofHours(1), hooks, null), r -> {
            if (r.offset() == 1) {
                throw thrown;
            }
            return Optional.of(idOf(r.offset()));
        });
        Logger logger = (Logger) LoggerFactory.getLogger(PartitionWorker.class);
        ListAppender<ILoggingEvent> logged = new ListAppender<>();
        logged.start();
        logger.addAppender(logged);
        try {
            PartitionWorker worker = Fakes.worker(settings, store, sink, time, scheduler);
            worker.enqueue(records(0, 3));
            scheduler.runAll(100);

            assertThat(sink.sent).singleElement().satisfies(s -> {
                assertThat(s.offset()).isEqualTo(1);
                assertThat(s.reason()).isEqualTo(DeadLetterHeaders.REASON_INVALID_MESSAGE_ID);
                assertThat(s.attempts()).isZero();
                assertThat(s.failure()).isSameAs(thrown);
            });
            assertThat(store.calls).doesNotContainKey(1L);
            assertThat(store.processed).containsExactlyInAnyOrder(idOf(0), idOf(2));
            assertThat(worker.nextToCommit()).isEqualTo(3);
            assertThat(logged.list)
                    .filteredOn(e -> e.getLevel() == Level.WARN
                            && e.getFormattedMessage().contains("dead-lettered"))
                    .singleElement()
                    .satisfies(e -> {
                        assertThat(e.getFormattedMessage())
                                .contains("@1 ")
                                .contains(DeadLetterHeaders.REASON_INVALID_MESSAGE_ID)
                                .contains("messageIdExtractor threw")
                                .contains("payload v3 has no order id");
                        assertThat(e.getThrowableProxy()).isNotNull();
                        assertThat(e.getThrowableProxy().getClassName())
                                .isEqualTo(IllegalStateException.class.getName());
                    });
        } finally {
            logger.detachAppender(logged);
        }
    }

    @Test
    void databaseFailuresAreRetriedWithoutUsingTheRecordsAttempts() {
        PartitionWorker worker = worker(2, 10, Duration.ofHours(1));
        store.infrastructureFailures = 4; // more than maxAttempts, fewer than the breaker needs to open

        worker.enqueue(records(0, 2));
        scheduler.runAll(100);

        assertThat(store.transactions).hasSize(5);
        assertThat(scheduler.delays).hasSize(4);
        assertThat(retriesScheduled).isEmpty();
        assertThat(sink.sent).isEmpty();
        assertThat(store.processed).containsExactlyInAnyOrder(idOf(0), idOf(1));
        assertThat(worker.nextToCommit()).isEqualTo(2);
    }

    @Test
    void whileTheDatabaseBreakerIsOpenNoTransactionIsTriedUntilItsOpenDurationPassed() {
        List<Long> tried = new ArrayList<>();
        Fakes.Store timed = new Fakes.Store() {
            @Override
            public Outcome process(List<ConsumerRecord<byte[], byte[]>> batch, List<UUID> ids)
                    throws InfrastructureException, CommitRefusedException {
                tried.add(time.nanoTime());
                return super.process(batch, ids);
            }
        };
        timed.infrastructureFailures = 5; // enough to open the breaker: half of at least 5 calls failed
        PartitionWorker worker =
                Fakes.worker(Fakes.settings(2, 10, Duration.ofHours(1), hooks, null), timed, sink, time, scheduler);

        worker.enqueue(records(0, 2));
        scheduler.runAll(1000);

        assertThat(tried).hasSize(6);
        assertThat(Duration.ofNanos(tried.get(5) - tried.get(4)))
                .as("the breaker stays open 5 s: the database is not asked meanwhile (G6)")
                .isGreaterThanOrEqualTo(Duration.ofSeconds(5));
        assertThat(timed.processed).containsExactlyInAnyOrder(idOf(0), idOf(1));
        assertThat(retriesScheduled).as("no attempt of the records is used").isEmpty();
        assertThat(worker.nextToCommit()).isEqualTo(2);
    }

    /**
     * G6 and G4 for a dead letter: the database breaker, shared by all partitions, opens (their batches failed)
     * while this partition's record fails for good. Its copy is sent, but its id is not recorded while the breaker
     * is open: the database is not asked, the record stays at the head of its paused partition and no offset passes
     * it. Once the open duration has passed, the recording is the call the breaker lets through; it closes the
     * breaker, and only then do the offsets pass the record and the records behind it run. Before, the id was
     * recorded at once, whatever the breaker said, and a database that was down met one more caller per
     * dead-lettering partition, each waiting for a connection.
     */
    @Test
    void aDeadLetteredIdIsNotRecordedWhileTheDatabaseBreakerIsOpen() {
        Breaker database = Fakes.databaseBreaker(time);
        List<Long> recordedAt = new ArrayList<>();
        List<Long> committableWhenRecorded = new ArrayList<>();
        List<Integer> transactionsWhenRecorded = new ArrayList<>();
        AtomicReference<PartitionWorker> running = new AtomicReference<>();
        Fakes.Store timed = new Fakes.Store() {
            @Override
            public void recordDeadLettered(UUID id) throws InfrastructureException {
                recordedAt.add(time.nanoTime());
                committableWhenRecorded.add(running.get().nextToCommit());
                transactionsWhenRecorded.add(transactions.size());
                super.recordDeadLettered(id);
            }
        };
        AtomicLong opened = new AtomicLong();
        timed.handler = r -> {
            if (r.offset() != 1) {
                return null;
            }
            database.circuitBreaker().transitionToOpenState();
            opened.set(time.nanoTime());
            return new PermanentHandlerException("not payable");
        };
        PartitionWorker worker = Fakes.worker(
                Fakes.settings(3, 1, Duration.ofHours(1), hooks, null), timed, sink, time, scheduler, null, database);
        running.set(worker);

        worker.enqueue(records(0, 4));
        for (int steps = 0; sink.sent.isEmpty() && steps < 10; steps++) {
            scheduler.runAll(1);
        }
        assertThat(sink.sent)
                .as("the dead-letter copy, sent under its own breaker")
                .hasSize(1);
        assertThat(database.state()).isEqualTo(CircuitBreaker.State.OPEN);
        assertThat(recordedAt)
                .as("recordings tried while the database breaker is open")
                .isEmpty();
        assertThat(worker.isWaiting())
                .as("waits: the poll thread pauses the partition")
                .isTrue();
        assertThat(worker.nextToCommit()).isOne();

        scheduler.runAll(100);

        assertThat(recordedAt)
                .singleElement()
                .satisfies(at -> assertThat(Duration.ofNanos(at - opened.get()))
                        .as("the first recording, after the breaker's open duration")
                        .isGreaterThanOrEqualTo(Duration.ofSeconds(5)));
        assertThat(committableWhenRecorded)
                .as("no offset past the record before its id is recorded")
                .containsExactly(1L);
        assertThat(transactionsWhenRecorded)
                .as("no record behind it processed before")
                .containsExactly(2);
        assertThat(timed.deadLettered).containsExactly(idOf(1));
        assertThat(sink.sent).as("the copy is not sent again").hasSize(1);
        assertThat(database.state()).as("the recording let through closed it").isEqualTo(CircuitBreaker.State.CLOSED);
        assertThat(timed.processed).containsExactlyInAnyOrder(idOf(0), idOf(2), idOf(3));
        assertThat(worker.nextToCommit()).isEqualTo(4);
    }

    /**
     * G6: the failures of recording a dead-lettered id are the database's, and count towards its breaker as a
     * batch's do: it opens, and the recording is tried again once it lets a call through. Nothing is lost: the id is
     * recorded once, its copy sent once, and the offset passes the record only then.
     */
    @Test
    void failuresToRecordADeadLetteredIdOpenTheDatabaseBreaker() {
        Breaker database = Fakes.databaseBreaker(time);
        List<CircuitBreaker.StateTransition> transitions = new ArrayList<>();
        database.circuitBreaker().getEventPublisher().onStateTransition(e -> transitions.add(e.getStateTransition()));
        store.handler = r -> r.offset() == 0 ? new PermanentHandlerException("not payable") : null;
        store.deadLetterFailures = 5;
        PartitionWorker worker = Fakes.worker(
                Fakes.settings(3, 1, Duration.ofHours(1), hooks, null), store, sink, time, scheduler, null, database);

        worker.enqueue(records(0, 2));
        scheduler.runAll(100);

        assertThat(transitions).contains(CircuitBreaker.StateTransition.CLOSED_TO_OPEN);
        assertThat(database.state()).isEqualTo(CircuitBreaker.State.CLOSED);
        assertThat(store.deadLetterCalls).isEqualTo(6);
        assertThat(store.deadLettered).containsExactly(idOf(0));
        assertThat(sink.sent).hasSize(1);
        assertThat(retriesScheduled).as("no attempt of the records is used").isEmpty();
        assertThat(store.processed).containsExactly(idOf(1));
        assertThat(worker.nextToCommit()).isEqualTo(2);
    }

    /**
     * G6: a dead-lettered id whose row another transaction holds is contention, not a failing database: retried
     * after a backoff as often as it takes, without opening the database breaker.
     */
    @Test
    void aDeadLetteredIdWhoseRowIsHeldDoesNotOpenTheDatabaseBreaker() {
        Breaker database = Fakes.databaseBreaker(time);
        List<CircuitBreaker.StateTransition> transitions = new ArrayList<>();
        database.circuitBreaker().getEventPublisher().onStateTransition(e -> transitions.add(e.getStateTransition()));
        store.handler = r -> r.offset() == 0 ? new PermanentHandlerException("not payable") : null;
        store.deadLetterFailures = 12;
        store.deadLetterRowHeld = true;
        PartitionWorker worker = Fakes.worker(
                Fakes.settings(3, 1, Duration.ofHours(1), hooks, null), store, sink, time, scheduler, null, database);

        worker.enqueue(records(0, 2));
        scheduler.runAll(100);

        assertThat(transitions).isEmpty();
        assertThat(store.deadLetterCalls).isEqualTo(13);
        assertThat(store.deadLettered).containsExactly(idOf(0));
        assertThat(sink.sent).hasSize(1);
        assertThat(worker.nextToCommit()).isEqualTo(2);
    }

    @Test
    void transientFailuresUseNoAttemptUntilMaxTransientRetryThenTheRecordIsDeadLettered() {
        PartitionWorker worker = worker(2, 10, Duration.ofMinutes(10));
        store.handler = r -> new TransientHandlerException("downstream busy");

        worker.enqueue(records(0, 1));
        // the backoff grows to 30 s: far more than maxAttempts calls fit into 10 minutes
        scheduler.runAll(1000);

        int calls = store.calls.get(0L);
        assertThat(calls).isGreaterThan(20);
        assertThat(retriesScheduled).isEmpty();
        assertThat(sink.sent).singleElement().satisfies(s -> {
            assertThat(s.attempts()).isEqualTo(1);
            assertThat(s.failure()).isInstanceOf(TransientHandlerException.class);
        });
        long retried = scheduler.delays.stream().mapToLong(Duration::toNanos).sum();
        assertThat(Duration.ofNanos(retried)).isGreaterThanOrEqualTo(Duration.ofMinutes(10));
        assertThat(worker.nextToCommit()).isEqualTo(1);
    }

    @Test
    void aRefusedCommitIsRedoneOneRecordPerTransactionToFindTheRecordThatCausesIt() {
        PartitionWorker worker = worker(2, 10, Duration.ofHours(1));
        store.refuseCommit = batch -> batch.stream().anyMatch(r -> r.offset() == 2);

        worker.enqueue(records(0, 4));
        scheduler.runAll(100);
        worker.enqueue(records(4, 7));
        scheduler.runAll(100);

        assertThat(store.transactions)
                .containsExactly(
                        List.of(0L, 1L, 2L, 3L), // refused
                        List.of(0L),
                        List.of(1L),
                        List.of(2L), // 2 refused: attempt 1
                        List.of(2L), // refused again: attempt 2 of 2, dead-lettered
                        List.of(3L), // still one per transaction up to the end of the refused batch
                        List.of(4L, 5L, 6L)); // then batches again
        assertThat(retriesScheduled).containsExactly(1);
        assertThat(sink.sent).singleElement().satisfies(s -> {
            assertThat(s.offset()).isEqualTo(2);
            assertThat(s.attempts()).isEqualTo(2);
        });
        assertThat(store.processed).containsExactlyInAnyOrder(idOf(0), idOf(1), idOf(3), idOf(4), idOf(5), idOf(6));
        assertThat(worker.nextToCommit()).isEqualTo(7);
    }

    /**
     * G7 across rebalances: a record that failed twice before its partition was revoked and assigned
     * back to this consumer (what every eager rebalance does) uses its third and last attempt on the
     * new worker and is dead-lettered. Before, each new worker started the record's attempts and
     * {@code maxTransientRetry} afresh, so that a record failing across frequent rebalances held its
     * partition for ever. A worker whose partition came back at another offset starts afresh.
     */
    @Test
    void aRecordsFailuresSurviveItsPartitionBeingRevokedAndAssignedBack() {
        PartitionWorker.Carried carried = revokedAfterTwoFailedAttempts();
        assertThat(carried.offset()).isZero();

        PartitionWorker second = lastAttemptDeadLetters(carried, 0, records(0, 2));
        assertThat(second.nextToCommit()).isEqualTo(2);

        // came back past that record: nothing carried over applies, not even a retry's wait
        PartitionWorker third = worker(
                3,
                10,
                Duration.ofHours(1),
                new PartitionWorker.Carried(
                        5, carried.progress(), time.nanos + Duration.ofHours(1).toNanos()));
        store.handler = r -> r.offset() == 7 ? new IllegalStateException("other") : null;
        third.enqueue(records(7, 8));
        scheduler.runAll(1);
        assertThat(retriesScheduled)
                .as("attempts of each failure, the last one the first of offset 7")
                .endsWith(1);
    }

    /**
     * A record's failures survive two revocations in a row: the partition is revoked again before the
     * worker that took it over has run a step on the record, and the next worker still goes on from the
     * second attempt. Before, the worker in between handed nothing over, and the record's attempts
     * started again from the first.
     */
    @Test
    void aRecordsFailuresSurviveTwoRevocationsInARow() {
        PartitionWorker.Carried carried = revokedAfterTwoFailedAttempts();

        PartitionWorker between = worker(3, 10, Duration.ofHours(1), carried);
        between.stop(); // revoked again before any record reached it
        assertThat(between.carried()).as("handed on as it came").isEqualTo(carried);

        lastAttemptDeadLetters(between.carried(), 0, records(0, 2));
    }

    /**
     * G7 across rebalances: a record whose retry waits when its partition is revoked and assigned back
     * to this consumer waits out the rest of its backoff delay on the new worker, which the poll thread
     * pauses meanwhile, before the handler is called again. Before, the new worker called the handler
     * at once: every rebalance was an extra attempt without a wait, and the rebalances of a rolling
     * deploy used up most of a record's attempts in seconds.
     */
    @Test
    void aRecordsRetryWaitSurvivesItsPartitionBeingRevokedAndAssignedBack() {
        List<Long> callTimes = new ArrayList<>();
        AtomicInteger failuresOf0 = new AtomicInteger(1);
        store.handler = r -> {
            if (r.offset() != 0) {
                return null;
            }
            callTimes.add(time.nanos);
            return failuresOf0.getAndDecrement() > 0 ? new IllegalStateException("not yet") : null;
        };
        PartitionWorker first = worker(3, 10, Duration.ofHours(1));
        first.enqueue(records(0, 2));
        scheduler.runAll(1);
        assertThat(first.isWaiting()).isTrue();
        Duration drawn = scheduler.delays.get(scheduler.delays.size() - 1);
        long due = time.nanos + drawn.toNanos();
        time.advance(drawn.dividedBy(2)); // the rebalance takes part of the wait
        first.stop();
        PartitionWorker.Carried carried = first.carried();
        assertThat(carried).isNotNull();
        assertThat(carried.retryAt()).isEqualTo(due);

        PartitionWorker second = worker(3, 10, Duration.ofHours(1), carried);
        second.enqueue(records(0, 2));
        scheduler.runAll(1);
        assertThat(store.calls.get(0L)).as("no call before the retry is due").isOne();
        assertThat(second.isWaiting())
                .as("waits for the retry: the poll thread pauses the partition")
                .isTrue();
        assertThat(scheduler.delays.get(scheduler.delays.size() - 1))
                .as("what was left of the drawn delay")
                .isEqualTo(Duration.ofNanos(due - time.nanos));

        scheduler.runAll(100);
        assertThat(callTimes).hasSize(2);
        assertThat(callTimes.get(1))
                .as("the second call, once the retry was due")
                .isGreaterThanOrEqualTo(due);
        assertThat(retriesScheduled).as("one retry, scheduled once").containsExactly(1);
        assertThat(store.processed).containsExactlyInAnyOrder(idOf(0), idOf(1));
        assertThat(sink.sent).isEmpty();
        assertThat(second.nextToCommit()).isEqualTo(2);
    }

    /**
     * G7 across rebalances where offsets have gaps (a transaction's commit marker after each relay batch in the
     * transactional publish mode, a compacted topic): the failing record's own offset is carried, not the one after
     * the last record done. Before, offset 1 (the marker's) was carried for the record at 2, the next worker found
     * another offset and started its attempts afresh, so a record failing across frequent rebalances was never
     * dead-lettered.
     */
    @Test
    void aRecordsFailuresSurviveARevocationAlsoAfterAnOffsetGap() {
        store.handler = r -> r.offset() == 2 ? new IllegalStateException("always") : null;
        PartitionWorker first = worker(3, 10, Duration.ofHours(1));
        first.enqueue(List.of(Fakes.record(0), Fakes.record(2)));
        for (int steps = 0; store.calls.getOrDefault(2L, 0) < 2 && steps < 20; steps++) {
            scheduler.runAll(1);
        }
        assertThat(first.nextToCommit()).isOne();
        assertThat(store.calls.get(2L))
                .as("calls of the record at 2 (two attempts used)")
                .isEqualTo(2);
        first.stop();
        PartitionWorker.Carried carried = first.carried();
        assertThat(carried).isNotNull();
        assertThat(carried.offset()).isEqualTo(2);

        lastAttemptDeadLetters(carried, 2, List.of(Fakes.record(2)));
    }

    @Test
    void aRetryThatFallsDueAfterARevocationDoesNotRun() {
        PartitionWorker worker = worker(3, 10, Duration.ofHours(1));
        store.handler = r -> new IllegalStateException("fails");

        worker.enqueue(records(0, 2));
        scheduler.runAll(1);
        assertThat(worker.isWaiting())
                .as("waits for its retry: the poll thread pauses the partition")
                .isTrue();
        worker.stop();
        scheduler.runAll(100);

        assertThat(store.transactions).hasSize(1);
        assertThat(worker.nextToCommit()).isEqualTo(-1);
        assertThat(worker.state()).isEqualTo(SerialTask.State.STOPPED);
    }

    @Test
    void aRevokedWorkerFinishesItsTransactionInFlightAndStartsNoOther() throws Exception {
        ScheduledExecutorService pool = Executors.newSingleThreadScheduledExecutor();
        try {
            CountDownLatch inFlight = new CountDownLatch(1);
            CountDownLatch release = new CountDownLatch(1);
            store.handler = r -> {
                inFlight.countDown();
                try {
                    release.await(5, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return null;
            };
            PartitionWorker worker = Fakes.worker(
                    Fakes.settings(3, 2, Duration.ofHours(1), hooks, null),
                    store,
                    sink,
                    time,
                    SerialTask.Scheduler.of(pool));

            worker.enqueue(records(0, 6));
            assertThat(inFlight.await(5, TimeUnit.SECONDS)).isTrue();
            worker.stop();
            assertThat(worker.awaitStep(TimeUnit.MILLISECONDS.toNanos(50)))
                    .as("waits for the transaction")
                    .isFalse();
            release.countDown();
            assertThat(worker.awaitStep(TimeUnit.SECONDS.toNanos(5))).isTrue();

            assertThat(worker.nextToCommit())
                    .as("the transaction in flight counts")
                    .isEqualTo(2);
            pool.shutdown();
            assertThat(pool.awaitTermination(5, TimeUnit.SECONDS)).isTrue();
            assertThat(store.transactions).containsExactly(List.of(0L, 1L));
            assertThat(worker.state()).isEqualTo(SerialTask.State.STOPPED);
        } finally {
            pool.shutdownNow();
        }
    }
}
