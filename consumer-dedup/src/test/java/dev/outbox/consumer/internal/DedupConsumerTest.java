package dev.outbox.consumer.internal;

import static dev.outbox.consumer.internal.Fakes.TP;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import dev.outbox.consumer.IdempotentConsumer;
import dev.outbox.core.internal.TimeSource;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntSupplier;
import org.apache.kafka.clients.consumer.MockConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * The poll thread with Kafka's {@link MockConsumer} and an in-memory database: what a rebalance
 * does to the work in flight (G4: an offset is committed only after its transaction committed).
 */
class DedupConsumerTest {

    @Test
    void aRevocationWaitsForTheTransactionInFlightCommitsItsOffsetsAndLeavesTheRestForTheNextOwner() throws Exception {
        MockConsumer<byte[], byte[]> kafka = new MockConsumer<>("earliest");
        Fakes.Store store = new Fakes.Store();
        CountDownLatch inFlight = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        store.handler = r -> {
            if (r.offset() == 0) {
                inFlight.countDown();
                try {
                    release.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            return null;
        };
        List<Map<TopicPartition, OffsetAndMetadata>> commits = new CopyOnWriteArrayList<>();
        Hooks hooks = new Hooks() {
            @Override
            public void beforeOffsetCommit(Map<TopicPartition, OffsetAndMetadata> offsets) {
                commits.add(Map.copyOf(offsets));
            }
        };
        Settings settings = Fakes.settings(3, 2, Duration.ofHours(1), hooks, null);
        try (DedupConsumer consumer = new DedupConsumer(settings, kafka, store, new Fakes.Sink(), TimeSource.SYSTEM)) {
            kafka.schedulePollTask(() -> {
                kafka.updateBeginningOffsets(Map.of(TP, 0L));
                kafka.rebalance(List.of(TP));
                Fakes.records(0, 6).forEach(kafka::addRecord);
            });
            consumer.start();
            assertThat(inFlight.await(10, TimeUnit.SECONDS)).isTrue();
            Thread poll = Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> t.getName().endsWith("-poll") && t.getName().contains(settings.consumerName() + "#"))
                    .findFirst()
                    .orElseThrow();

            kafka.schedulePollTask(() -> kafka.rebalance(List.of()));
            // the poll thread waits in the revocation for the transaction in flight
            await().atMost(Duration.ofSeconds(10)).until(() -> poll.getState() == Thread.State.TIMED_WAITING);
            release.countDown();

            // (MockConsumer reports offset 0 as committed for a partition it no longer assigns: the hook sees the
            // commit)
            await().atMost(Duration.ofSeconds(10))
                    .untilAsserted(() -> assertThat(commits).containsExactly(Map.of(TP, new OffsetAndMetadata(2))));
            assertThat(store.transactions).containsExactly(List.of(0L, 1L));
            assertThat(consumer.readiness().partitions()).isZero();
        }
    }

    /**
     * A database breaker left open with no work to call it (its partitions' work moved to another
     * member): the idle consumer has the database checked through it once its open interval has
     * passed, twice in vain here, and it closes once the database answers, so that readiness and the
     * breaker gauge follow the database. Before, it stayed open, and readiness false, until a record
     * arrived: hours on a quiet topic.
     */
    @Test
    void anOpenDatabaseBreakerNoWorkCallsClosesOnceTheDatabaseAnswers() throws Exception {
        MockConsumer<byte[], byte[]> kafka = new MockConsumer<>("earliest");
        Fakes.Store store = new Fakes.Store();
        store.pingFailures = 2;
        Fakes.Time time = new Fakes.Time();
        Settings settings = Fakes.settings(3, 2, Duration.ofHours(1), Hooks.NONE, null);
        try (DedupConsumer consumer = new DedupConsumer(settings, kafka, store, new Fakes.Sink(), time)) {
            kafka.schedulePollTask(() -> {
                kafka.updateBeginningOffsets(Map.of(TP, 0L));
                kafka.rebalance(List.of(TP));
            });
            consumer.start();
            await().atMost(Duration.ofSeconds(10))
                    .until(() -> consumer.readiness().partitions() == 1);
            consumer.databaseCircuitBreaker().transitionToOpenState();
            assertThat(consumer.readiness().databaseBreakerClosed()).isFalse();

            Thread.sleep(1_500); // polls, on a clock that has not moved: the open interval has not passed
            assertThat(store.pings).as("checks let through while open").hasValue(0);
            threeChecksAfterTheOpenInterval(time, () -> store.pings.get());
            await().atMost(Duration.ofSeconds(10))
                    .untilAsserted(() -> assertThat(consumer.readiness().databaseBreakerClosed())
                            .isTrue());
            assertThat(consumer.databaseCircuitBreaker().getState()).isEqualTo(CircuitBreaker.State.CLOSED);
        }
    }

    /**
     * The same for the dead-letter breaker, left open after the partition whose record it could not
     * dead-letter moved to another member: the idle consumer asks the brokers for the dead-letter
     * topic's partitions through it, twice in vain here, and it closes once they answer. Before,
     * readiness stayed false until another record failed for good on this member.
     */
    @Test
    void anOpenDeadLetterBreakerNoWorkCallsClosesOnceTheBrokersAnswer() throws Exception {
        MockConsumer<byte[], byte[]> kafka = new MockConsumer<>("earliest");
        Fakes.Sink sink = new Fakes.Sink();
        sink.pingFailures = 2;
        Fakes.Time time = new Fakes.Time();
        Settings settings = Fakes.settings(3, 2, Duration.ofHours(1), Hooks.NONE, null);
        try (DedupConsumer consumer = new DedupConsumer(settings, kafka, new Fakes.Store(), sink, time)) {
            kafka.schedulePollTask(() -> {
                kafka.updateBeginningOffsets(Map.of(TP, 0L));
                kafka.rebalance(List.of(TP));
            });
            consumer.start();
            await().atMost(Duration.ofSeconds(10))
                    .until(() -> consumer.readiness().partitions() == 1);
            consumer.deadLetterCircuitBreaker().transitionToOpenState();
            assertThat(consumer.readiness().deadLetterBreakerClosed()).isFalse();

            Thread.sleep(1_500); // polls, on a clock that has not moved: the open interval has not passed
            assertThat(sink.pings).as("checks let through while open").isEmpty();
            threeChecksAfterTheOpenInterval(time, () -> sink.pings.size());
            await().atMost(Duration.ofSeconds(10))
                    .untilAsserted(() -> assertThat(consumer.readiness().deadLetterBreakerClosed())
                            .isTrue());
            assertThat(consumer.deadLetterCircuitBreaker().getState()).isEqualTo(CircuitBreaker.State.CLOSED);
            assertThat(sink.pings).containsOnly(TP.topic() + ".dlt");
        }
    }

    /**
     * The dead-letter breaker is checked while a partition has records queued too: only a record that
     * fails for good asks that breaker, so records of other work (here one whose handler is still
     * running, with more queued behind it) do not. Before, its check ran only when no partition had
     * work, and under steady traffic readiness reported the dead-letter topic down after the record that
     * opened the breaker had gone elsewhere.
     */
    @Test
    void anOpenDeadLetterBreakerClosesWhilePartitionsHaveWork() throws Exception {
        MockConsumer<byte[], byte[]> kafka = new MockConsumer<>("earliest");
        Fakes.Store store = new Fakes.Store();
        CountDownLatch inHandler = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        store.handler = r -> {
            inHandler.countDown();
            try {
                release.await(1, TimeUnit.MINUTES);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return null;
        };
        Fakes.Sink sink = new Fakes.Sink();
        sink.pingFailures = 2;
        Fakes.Time time = new Fakes.Time();
        // a second worker thread for the check: the first one runs the handler
        Settings settings = Fakes.settings(3, 2, Duration.ofHours(1), Hooks.NONE, null, 2);
        try (DedupConsumer consumer = new DedupConsumer(settings, kafka, store, sink, time)) {
            kafka.schedulePollTask(() -> {
                kafka.updateBeginningOffsets(Map.of(TP, 0L));
                kafka.rebalance(List.of(TP));
                Fakes.records(0, 3).forEach(kafka::addRecord);
            });
            consumer.start();
            assertThat(inHandler.await(10, TimeUnit.SECONDS)).isTrue();
            consumer.deadLetterCircuitBreaker().transitionToOpenState();
            threeChecksAfterTheOpenInterval(time, () -> sink.pings.size());
            await().atMost(Duration.ofSeconds(10))
                    .untilAsserted(() -> assertThat(consumer.readiness().deadLetterBreakerClosed())
                            .isTrue());
            assertThat(release.getCount())
                    .as("the handler was still running throughout")
                    .isOne();
        } finally {
            release.countDown();
        }
    }

    /**
     * close() and a handler that does not return: after the wait for the transaction in flight
     * (closeTimeout, 200 ms here) the consumer closes without it, logs at ERROR what still runs (the
     * transaction's partition, offset and message id, the worker thread and its stack) and what it holds
     * (its transaction stays open), and interrupts the worker; close() returns once the poll thread has
     * stopped, well within its bound. Before, the stuck step was waited for once more and then
     * interrupted without a word.
     */
    @Test
    void aHandlerThatDoesNotReturnIsReportedAtErrorAndInterruptedAtClose() throws Exception {
        MockConsumer<byte[], byte[]> kafka = new MockConsumer<>("earliest");
        Fakes.Store store = new Fakes.Store();
        CountDownLatch inHandler = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicBoolean interrupted = new AtomicBoolean();
        store.handler = r -> {
            inHandler.countDown();
            // ignores interrupts, as a JDBC statement waiting for a lock does
            while (true) {
                try {
                    if (release.await(1, TimeUnit.MINUTES)) {
                        return null;
                    }
                } catch (InterruptedException e) {
                    interrupted.set(true);
                }
            }
        };
        Duration closeTimeout = Duration.ofMillis(200);
        Settings settings =
                Fakes.withCloseTimeout(Fakes.settings(3, 2, Duration.ofHours(1), Hooks.NONE, null), closeTimeout);
        LogCapture log = LogCapture.attach();
        DedupConsumer consumer = new DedupConsumer(settings, kafka, store, new Fakes.Sink(), TimeSource.SYSTEM);
        try {
            kafka.schedulePollTask(() -> {
                kafka.updateBeginningOffsets(Map.of(TP, 0L));
                kafka.rebalance(List.of(TP));
                Fakes.records(0, 1).forEach(kafka::addRecord);
            });
            consumer.start();
            assertThat(inHandler.await(10, TimeUnit.SECONDS)).isTrue();

            long start = System.nanoTime();
            consumer.close();
            Duration took = Duration.ofNanos(System.nanoTime() - start);

            assertThat(took).isLessThan(Duration.ofSeconds(5));
            assertThat(kafka.closed()).isTrue();
            await().atMost(Duration.ofSeconds(10)).untilTrue(interrupted);
            assertThat(errors(log)).singleElement().satisfies(e -> {
                assertThat(e.getFormattedMessage())
                        .contains("the transaction of " + TP + "@0 (1 record, message id ")
                        .contains(
                                "-worker-1, and the consumer stops without it (a close or a revocation waits closeTimeout, 200ms")
                        .contains("its transaction stays open until the handler returns")
                        .contains("interrupting it");
                assertThat(e.getThrowableProxy()).as("the worker's stack").isNotNull();
            });
        } finally {
            release.countDown();
            log.close();
        }
    }

    /**
     * A poll loop that fails (here its poll throws) lets the handler in flight end, for up to closeTimeout,
     * before the workers are stopped: nothing else waits for it on that path (no revocation callback runs
     * for lost partitions, or for a Kafka consumer whose close fails). Interrupted at once, a handler doing
     * interruptible I/O failed and rolled back for nothing.
     */
    @Test
    void aFailedPollLoopLetsTheHandlerInFlightEndBeforeStoppingTheWorkers() throws Exception {
        MockConsumer<byte[], byte[]> kafka = new MockConsumer<>("earliest");
        Fakes.Store store = new Fakes.Store();
        CountDownLatch inHandler = new CountDownLatch(1);
        AtomicBoolean interrupted = new AtomicBoolean();
        AtomicBoolean finished = new AtomicBoolean();
        store.handler = r -> {
            inHandler.countDown();
            try {
                Thread.sleep(500); // an interruptible call: an HTTP request, a Future's get
                finished.set(true);
            } catch (InterruptedException e) {
                interrupted.set(true);
                Thread.currentThread().interrupt();
            }
            return null;
        };
        Settings settings = Fakes.withCloseTimeout(
                Fakes.settings(3, 2, Duration.ofHours(1), Hooks.NONE, null), Duration.ofSeconds(5));
        DedupConsumer consumer = new DedupConsumer(settings, kafka, store, new Fakes.Sink(), TimeSource.SYSTEM);
        try {
            kafka.schedulePollTask(() -> {
                kafka.updateBeginningOffsets(Map.of(TP, 0L));
                kafka.rebalance(List.of(TP));
                Fakes.records(0, 1).forEach(kafka::addRecord);
            });
            consumer.start();
            assertThat(inHandler.await(10, TimeUnit.SECONDS)).isTrue();
            kafka.setPollException(new KafkaException("the consumer broke"));

            await().atMost(Duration.ofSeconds(10)).until(() -> finished.get() || interrupted.get());
            assertThat(interrupted).as("the handler was interrupted").isFalse();
            assertThat(finished).isTrue();
        } finally {
            consumer.close();
        }
    }

    /**
     * close() when the poll thread does not stop within the bound, which only a Kafka call overstaying
     * its timeout can cause (here the Kafka consumer's close, which also ignores interrupts until the test
     * lets it go): close() waits 6 × closeTimeout + 5 s, logs at ERROR what the poll thread does and the
     * partitions it holds, wakes the Kafka consumer up and interrupts the poll thread, waits one
     * closeTimeout more and returns with a second ERROR, the poll thread still running and the consumer
     * reported as closing; once let go, the poll thread stops. Before, close() logged a WARN after 2 ×
     * closeTimeout + 10 s that named nothing it held, and neither woke up nor interrupted anything.
     */
    @Test
    void aPollThreadPastTheCloseBoundIsReportedWokenUpAndInterrupted() throws Exception {
        CountDownLatch letGo = new CountDownLatch(1);
        AtomicBoolean interrupted = new AtomicBoolean();
        AtomicBoolean wokenUp = new AtomicBoolean();
        AtomicReference<Thread> closing = new AtomicReference<>();
        MockConsumer<byte[], byte[]> kafka = new MockConsumer<>("earliest") {
            // the close the consumer calls; not synchronized as MockConsumer's is, so that wakeup() gets through
            @Override
            @SuppressWarnings({"deprecation", "UnsynchronizedOverridesSynchronized"})
            public void close(Duration timeout) {
                closing.set(Thread.currentThread());
                while (true) {
                    try {
                        if (letGo.await(1, TimeUnit.MINUTES)) {
                            break;
                        }
                    } catch (InterruptedException e) {
                        interrupted.set(true);
                    }
                }
                super.close(timeout);
            }

            @Override
            public synchronized void wakeup() {
                wokenUp.set(true);
                super.wakeup();
            }
        };
        Duration closeTimeout = Duration.ofMillis(200);
        Settings settings =
                Fakes.withCloseTimeout(Fakes.settings(3, 2, Duration.ofHours(1), Hooks.NONE, null), closeTimeout);
        Duration bound = Duration.ofMillis(6_200); // 6 × closeTimeout + 5 s
        LogCapture log = LogCapture.attach();
        DedupConsumer consumer =
                new DedupConsumer(settings, kafka, new Fakes.Store(), new Fakes.Sink(), TimeSource.SYSTEM);
        try {
            kafka.schedulePollTask(() -> {
                kafka.updateBeginningOffsets(Map.of(TP, 0L));
                kafka.rebalance(List.of(TP));
            });
            consumer.start();
            await().atMost(Duration.ofSeconds(10))
                    .until(() -> consumer.readiness().partitions() == 1);

            long start = System.nanoTime();
            consumer.close();
            Duration took = Duration.ofNanos(System.nanoTime() - start);

            assertThat(took)
                    .isBetween(
                            bound.plus(closeTimeout), bound.plus(closeTimeout).plusSeconds(3));
            assertThat(wokenUp).isTrue();
            assertThat(interrupted).isTrue();
            Thread poll = closing.get();
            assertThat(poll.getName()).endsWith("-poll");
            assertThat(poll.isAlive()).isTrue();
            assertThat(consumer.isRunning()).isFalse();
            assertThat(consumer.readiness().reason()).isEqualTo("not running (closing)");
            assertThat(errors(log)).hasSize(2).allSatisfy(e -> {
                assertThat(e.getFormattedMessage())
                        .contains("it is closing the Kafka consumer (leaving the group)")
                        .contains("the Kafka consumer is open in group g, holding partitions [" + TP + "]");
                assertThat(e.getThrowableProxy()).as("the poll thread's stack").isNotNull();
            });
            assertThat(errors(log).get(0).getFormattedMessage())
                    .contains("the poll thread has not stopped within 6s200ms (6 times closeTimeout (200ms) and 5s")
                    .contains("Waking it up and interrupting it, and waiting 200ms more");
            assertThat(errors(log).get(1).getFormattedMessage())
                    .contains("the poll thread did not stop once interrupted either")
                    .contains("close() returns while it runs");

            letGo.countDown();
            poll.join(10_000);
            assertThat(poll.isAlive()).isFalse();
            assertThat(consumer.readiness().reason()).isEqualTo("not running (closed)");
        } finally {
            letGo.countDown();
            consumer.close();
            log.close();
        }
    }

    private static List<ILoggingEvent> errors(LogCapture log) {
        return log.events.stream().filter(e -> e.getLevel() == Level.ERROR).toList();
    }

    /** Records the consumer's log events while attached; appended to from any thread. */
    private static final class LogCapture extends AppenderBase<ILoggingEvent> implements AutoCloseable {
        final List<ILoggingEvent> events = new CopyOnWriteArrayList<>();
        private final Logger logger = (Logger) LoggerFactory.getLogger(IdempotentConsumer.class);

        static LogCapture attach() {
            LogCapture capture = new LogCapture();
            capture.setContext(capture.logger.getLoggerContext());
            capture.start();
            capture.logger.addAppender(capture);
            return capture;
        }

        @Override
        protected void append(ILoggingEvent event) {
            events.add(event);
        }

        @Override
        public void close() {
            logger.detachAppender(this);
            stop();
        }
    }

    /**
     * Moves the clock past the open interval and the consumer's idle pace three times, each time waiting
     * for one more check let through the breaker.
     */
    private static void threeChecksAfterTheOpenInterval(Fakes.Time time, IntSupplier checks) {
        for (int check = 1; check <= 3; check++) {
            time.advance(Duration.ofSeconds(6));
            int expected = check;
            await().atMost(Duration.ofSeconds(10)).until(() -> checks.getAsInt() == expected);
        }
    }
}
