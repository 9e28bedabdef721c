package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.core.internal.TimeSource;
import dev.outbox.core.retry.Backoff;
import dev.outbox.relay.ParkPolicy;
import dev.outbox.relay.PublishMode;
import dev.outbox.relay.Relay;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.sql.SQLException;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Cluster;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * The decisions of one shard's batch loop, without PostgreSQL or a broker: Kafka's {@code
 * MockProducer}, a fake outbox ({@link ShardRows}), a circuit breaker that records what it was
 * told, and a fake clock with a scheduler that runs the loop's tasks on the test's thread when the
 * test moves the time. Each test names the rule it guards (G1: nothing lost, G3: per-key order, G7:
 * bounded attempts, F1: nothing handed to the producer after the local lease deadline).
 */
class ShardWorkerDecisionsTest {
    static final Node NODE = new Node(0, "localhost", 9092);
    private static final Cluster CLUSTER = new Cluster(
            "c", List.of(NODE), List.of(partition("a"), partition("b"), partition("c")), Set.of(), Set.of());

    private final FakeTime time = new FakeTime();
    private final ManualScheduler workers = new ManualScheduler(time);
    private final List<MockProducer<byte[], byte[]>> made = new CopyOnWriteArrayList<>();
    private volatile boolean autoComplete = true;
    private volatile RuntimeException sendException;
    // thrown by the producer factory while set, as new KafkaProducer(...) throws when it cannot be created
    private volatile RuntimeException creationFailure;
    private final AtomicInteger creations = new AtomicInteger();
    // made at the first worker, so that a test sets autoComplete and sendException before
    private volatile Publisher shared;
    private final FakeRows rows = new FakeRows();
    // runs the delete queue's statements: the worker pool, unless a test runs them itself
    private volatile Executor deleteRunner;
    /** Runs once, as the next record is handed to a producer. */
    private final AtomicReference<Runnable> onFirstSend = new AtomicReference<>();

    private final CountDownLatch slowLookup = new CountDownLatch(1);
    /**
     * Thrown once by the next lookup of topic "no-leader", as a producer that failed to sign in reports
     * it to the first call that waits for metadata.
     */
    private final AtomicReference<RuntimeException> unusableOnce = new AtomicReference<>();
    /** Whether the producers made from now on see a leader of topic "no-leader"'s partition. */
    private volatile boolean leaderElected;
    /** Whether every producer, those made already included, sees a leader of topic "no-leader"'s partition. */
    private volatile boolean leaderBack;

    private final BreakerCalls calls = new BreakerCalls();
    private final CircuitBreaker breaker = calls.wrap(CircuitBreaker.of("test", CircuitBreakerConfig.ofDefaults()));
    private final RelayMetrics metrics = new RelayMetrics(new SimpleMeterRegistry(), "test", () -> 1, breaker);
    private final AtomicBoolean kafkaAnswered = new AtomicBoolean();
    // when the process last stood still, on {@link #time}: long before the test by default
    private final AtomicLong pausedSince = new AtomicLong(Long.MIN_VALUE / 2);
    private final AtomicInteger dropped = new AtomicInteger();
    private final PendingDeletes pending = new PendingDeletes();
    private final RelayConfig config = config(Backoff.of(Duration.ofMillis(1), Duration.ofMillis(5)));
    private final PrefixedLog log =
            new PrefixedLog(LoggerFactory.getLogger(ShardWorkerDecisionsTest.class), "relay[test]");
    // lookups run on a thread of their own, as in the relay: a worker waits for them at most 500 ms
    private final TopicHealth topics = new TopicHealth(
            config,
            () -> shared,
            n -> kafkaAnswered.get(),
            () -> {},
            log,
            10_000,
            TopicHealth.lookupThreads(config, 1),
            time);

    @AfterEach
    void stop() {
        workers.shutdownNow();
        topics.close();
    }

    private Publisher shared() {
        if (shared == null) {
            shared = new Publisher(
                    () -> {
                        creations.incrementAndGet();
                        RuntimeException failure = creationFailure;
                        if (failure != null) {
                            throw failure;
                        }
                        boolean seesLeader = leaderElected;
                        MockProducer<byte[], byte[]> p =
                                new MockProducer<>(
                                        CLUSTER,
                                        autoComplete,
                                        null,
                                        new ByteArraySerializer(),
                                        new ByteArraySerializer()) {
                                    @Override
                                    public List<PartitionInfo> partitionsFor(String topic) {
                                        if (topic.equals("slow")) {
                                            try {
                                                slowLookup.await();
                                            } catch (InterruptedException e) {
                                                Thread.currentThread().interrupt();
                                            }
                                            return List.of(partition("slow"));
                                        }
                                        if (topic.equals("gone")) {
                                            // a deleted topic: the lookup fails while Kafka answers
                                            throw new TimeoutException(
                                                    "Topic gone not present in metadata after 1000 ms.");
                                        }
                                        if (topic.equals("no-leader")) {
                                            RuntimeException unusable = unusableOnce.getAndSet(null);
                                            if (unusable != null) {
                                                throw unusable;
                                            }
                                            Node leader = seesLeader || leaderBack ? NODE : null;
                                            return List.of(new PartitionInfo(
                                                    topic,
                                                    0,
                                                    leader,
                                                    new Node[] {NODE},
                                                    leader == null ? new Node[0] : new Node[] {NODE}));
                                        }
                                        if (topic.equals("late")) {
                                            // the lookup takes until the shard's local lease deadline
                                            time.advance(Duration.ofSeconds(20));
                                            return List.of(partition("late"));
                                        }
                                        return super.partitionsFor(topic);
                                    }

                                    @Override
                                    public synchronized Future<RecordMetadata> send(
                                            ProducerRecord<byte[], byte[]> record, Callback callback) {
                                        Runnable hook = onFirstSend.getAndSet(null);
                                        if (hook != null) {
                                            hook.run();
                                        }
                                        return super.send(record, callback);
                                    }
                                };
                        p.sendException = sendException;
                        made.add(p);
                        return p;
                    },
                    "test");
        }
        return shared;
    }

    private ShardWorker worker(ShardPublisher publisher) {
        return worker(publisher, time.nanoTime());
    }

    /**
     * Starts shard 7's loop and runs what is due now: the first round, and its batch's completion when
     * the producer answered at once. Later rounds run when the test moves the time.
     *
     * @param claimStarted when the claim of the shard's lease started, on {@link #time}
     */
    private ShardWorker worker(ShardPublisher publisher, long claimStarted) {
        ShardServices services = new ShardServices(
                config,
                rows,
                WriteQueue.deletes(
                        rows,
                        deleteRunner == null ? workers : deleteRunner,
                        metrics,
                        WriteQueue.MAX_SHARDS,
                        WriteQueue.MAX_IDS),
                pending,
                WriteQueue.failures(rows, workers, config.maxAttempts(), n -> {}, TimeSource.SYSTEM),
                breaker,
                metrics,
                workers,
                topics,
                shared(),
                log,
                () -> {},
                () -> kafkaAnswered.set(true),
                n -> kafkaAnswered.get(),
                n -> pausedSince.get() - n > 0,
                w -> dropped.incrementAndGet(),
                () -> true,
                time);
        ShardWorker w = new ShardWorker(services, publisher, 7, 1, claimStarted);
        w.loop.start();
        workers.runDue();
        return w;
    }

    private ShardWorker worker() {
        return worker(ShardPublisher.shared(shared()));
    }

    @Test
    void aLostLeaseAtTheDeleteDeletesNothingAndDropsTheShard() {
        rows.leaseHeld = false;
        rows.reads.add(List.of(row(1, "a", "k1"), row(2, "a", "k2")));
        ShardWorker w = worker();

        assertThat(w.loop.stopped()).isDone();
        assertThat(rows.deleteAttempts).hasSize(1);
        assertThat(rows.deleted)
                .as("the fence refused the delete: the rows stay for the new owner (G1)")
                .isEmpty();
        assertThat(dropped).hasValue(1);
        assertThat(metrics.fenced.count()).isEqualTo(1);
        assertThat(metrics.published.count()).isZero();
        assertThat(w.loop.state()).isEqualTo(ShardLoop.State.STOPPED);
    }

    @Test
    void aRowReadWithoutItsPayloadIsNeverSentAsATombstone() {
        rows.reads.add(List.of(row(1, "slow", "k1")));
        // the second read runs while "slow" is held: its rows come without payload; the topic's lookup
        // succeeds just after that read, before the send loop asks for the topic's state
        rows.reads.add(List.of(new OutboxRow(
                1, UUID.randomUUID(), "slow", "k1", "t", "application/json", "{}", null, OffsetDateTime.now())));
        rows.beforeFilteredRead = () -> {
            slowLookup.countDown();
            // the lookup runs on the lookup thread: wait for it, not for time to pass
            await().atMost(Duration.ofSeconds(5)).until(() -> topics.held().isEmpty());
        };
        rows.reads.add(List.of(row(1, "slow", "k1")));
        ShardWorker w = worker();
        for (int read = 1; read <= 3; read++) {
            workers.runDue();
            assertThat(rows.readCalls).hasValue(read);
            assertThat(w.loop.idleWaiting()).isTrue();
            w.loop.wake();
        }

        assertThat(made.get(0).history())
                .as("a record without the row's payload would be a tombstone (G1)")
                .isNotEmpty()
                .allSatisfy(r -> assertThat(r.value()).isNotNull());
        assertThat(rows.deleted).containsExactly(1L);
    }

    @Test
    void aHeldRowIsNotReadAgainAndStillHoldsTheLaterRowsOfItsKey() {
        // a and b get their metadata first (the one lookup thread then waits for "slow")
        rows.reads.add(List.of(row(1, "a", "k0"), row(2, "b", "k9")));
        // "slow" has no metadata yet (its lookup does not answer): its rows are held
        rows.reads.add(List.of(row(3, "slow", "k1"), row(4, "a", "k2")));
        rows.reads.add(List.of(row(5, "a", "k1"), row(6, "b", "k6")));
        rows.reads.add(List.of(row(7, "a", "k1"), row(8, "b", "k8")));
        ShardWorker w = worker();
        // the lookups answer on their own thread: run what is due until each read is done
        for (int read = 1; read <= 4; read++) {
            int done = read;
            await().atMost(Duration.ofSeconds(5)).until(() -> {
                workers.runDue();
                return rows.readCalls.get() >= done && w.loop.idleWaiting();
            });
            w.loop.wake();
        }
        await().atMost(Duration.ofSeconds(5)).until(() -> {
            workers.runDue();
            return rows.deleted.contains(8L);
        });

        // the first two reads saw no topic held (plain reads); the third found "slow" held and left out the
        // row the second batch held (a topic newly held changes nothing for it); the fourth also row 5
        assertThat(rows.heldIds.get(0))
                .as("the third read leaves out the row the second batch held")
                .containsExactly(3L);
        assertThat(rows.heldIds.get(1))
                .as("the fourth read leaves out the rows the shard holds")
                .containsExactlyInAnyOrder(3L, 5L);
        assertThat(made.get(0).history())
                .as("k1's later rows wait behind its held row, also when that row is not read again (G3)")
                .extracting(r -> new String(r.key(), StandardCharsets.UTF_8))
                .containsExactly("k0", "k9", "k2", "k6", "k8");
        assertThat(rows.deleted).containsExactly(1L, 2L, 4L, 6L, 8L);
    }

    /**
     * G7, and G1's "eventually": a topic whose first lookup outlasts the send loop's wait holds its rows
     * and their keys, and once its metadata arrives they go out, also while another topic stays held
     * relay-wide. The shard forgot its held rows only when the held topics at a read no longer
     * included those at the previous read; this topic was never among them (not yet met at that read,
     * ready at the next), so its rows and every later row of their keys stayed held for as long as the
     * other topic was missing and the shard kept finding rows.
     */
    @Test
    void aTopicWhoseFirstLookupOutlastedItsBatchReleasesItsKeysWhileAnotherTopicStaysHeld() {
        kafkaAnswered.set(true);
        shared();
        // another shard holds rows of a deleted topic: held for the whole relay
        assertThat(topics.status("gone").state()).isEqualTo(TopicHealth.State.HOLD);
        topics.holding("gone", new Object(), true);
        assertThat(topics.held()).containsExactly("gone");
        // "slow" is new: its lookup does not answer within the wait, so row 1 and its key k1 are held
        rows.reads.add(List.of(row(1, "slow", "k1")));
        // read once "slow" has metadata (while "gone" is still held): row 1 again, and a later row of k1
        rows.reads.add(List.of(row(1, "slow", "k1"), row(2, "a", "k1")));
        ShardWorker w = worker();
        await().atMost(Duration.ofSeconds(5)).until(() -> {
            workers.runDue();
            return rows.readCalls.get() >= 1 && w.loop.idleWaiting();
        });
        assertThat(made.get(0).history()).isEmpty();

        slowLookup.countDown();
        await().atMost(Duration.ofSeconds(5)).until(() -> topics.held().equals(Set.of("gone")));
        await().atMost(Duration.ofSeconds(5)).until(() -> {
            workers.runDue();
            if (w.loop.idleWaiting()) {
                w.loop.wake();
            }
            return rows.deleted.contains(2L);
        });

        assertThat(made.get(0).history())
                .as("k1's rows go out once their topic has metadata, in order (G3)")
                .extracting(r -> r.topic() + "/" + new String(r.key(), StandardCharsets.UTF_8))
                .containsExactly("slow/k1", "a/k1");
        assertThat(rows.deleted).containsExactly(1L, 2L);
    }

    @Test
    void whileATopicIsHeldAShardHoldingNoneOfItsRowsTakesTheProbesReadAndStillHoldsItsKeys() {
        // a and b get their metadata first (the one lookup thread then waits for "slow")
        rows.reads.add(List.of(row(1, "a", "k0"), row(2, "b", "k9")));
        // "slow" has no metadata yet (its lookup does not answer): row 10 is held, row 11 sent
        rows.reads.add(List.of(row(10, "slow", "k1"), row(11, "a", "k2")));
        ShardWorker w = worker();
        // row 10 is gone meanwhile (deleted by hand): the shard's own reads, filtered while "slow" is
        // held, find nothing, and it idles holding no row while "slow" stays held
        await().atMost(Duration.ofSeconds(5)).until(() -> {
            workers.runDue();
            boolean idle = w.loop.idleWaiting();
            if (idle && (rows.readCalls.get() < 2 || w.heldUpTo() != Long.MIN_VALUE)) {
                w.loop.wake();
            }
            return rows.deleted.contains(11L) && idle && w.heldUpTo() == Long.MIN_VALUE;
        });
        assertThat(topics.held()).containsExactly("slow");
        int readsBefore = rows.readCalls.get();

        // the probe reads for it: a row of the held topic comes first in its key
        assertThat(w.loop.wakeWith(
                        w.loop.idleTicket(), List.of(row(3, "a", "k3"), row(4, "slow", "k4"), row(5, "b", "k4"))))
                .isTrue();
        await().atMost(Duration.ofSeconds(5)).until(() -> {
            workers.runDue();
            return rows.deleted.contains(3L) && w.loop.idleWaiting();
        });

        assertThat(rows.readCalls)
                .as("the probe's read is the shard's read: it does not read again")
                .hasValue(readsBefore);
        assertThat(made.get(0).history())
                .as("k4's later row waits behind its held row (G3)")
                .extracting(r -> new String(r.key(), StandardCharsets.UTF_8))
                .containsExactly("k0", "k9", "k2", "k3");
        assertThat(rows.deleted).containsExactly(1L, 2L, 11L, 3L);
        assertThat(w.heldUpTo())
                .as("holding rows, the shard reads for itself again: the probe only wakes it")
                .isNotEqualTo(Long.MIN_VALUE);
        int filteredBefore = rows.heldIds.size();
        w.loop.wake();
        await().atMost(Duration.ofSeconds(5)).until(() -> {
            workers.runDue();
            return rows.readCalls.get() > readsBefore && w.loop.idleWaiting();
        });
        assertThat(rows.heldIds.get(filteredBefore))
                .as("its next read leaves out the rows it holds")
                .containsExactlyInAnyOrder(4L, 5L);
    }

    @Test
    void aSecondTopicWithoutMetadataStopsTheBatch() {
        sendException = new TimeoutException("Topic a not present in metadata after 10000 ms.");
        rows.reads.add(List.of(row(1, "a", "k1"), row(2, "a", "k2"), row(3, "b", "k3"), row(4, "c", "k4")));
        CountingPublisher publisher = new CountingPublisher(ShardPublisher.shared(shared()));
        worker(publisher);

        assertThat(calls.onError).hasValue(1);
        // a's first row fails, a's other row is skipped, b's row fails as well: that looks like the broker,
        // so c's row is not even tried
        assertThat(made.get(0).history()).isEmpty();
        assertThat(sends(made.get(0))).isEqualTo(2);
        assertThat(rows.deleted).isEmpty();
    }

    @Test
    void aRowSkippedForItsFailedTopicHoldsTheLaterRowsOfItsKeyInOtherTopics() {
        sendException = new TimeoutException("Topic a not present in metadata after 10000 ms.");
        // a's first row fails; a's second row is skipped without a send, and so must be k2's later row of b
        rows.reads.add(List.of(row(1, "a", "k1"), row(2, "a", "k2"), row(3, "b", "k2")));
        worker(new CountingPublisher(ShardPublisher.shared(shared())));

        assertThat(sends(made.get(0)))
                .as("k2's row of b is not sent before k2's row of a, which is read again (G3)")
                .isEqualTo(1);
        assertThat(rows.deleted).isEmpty();
    }

    @Test
    void aTopicFailureCountsAnAttemptOnlyWhileKafkaAnswers() {
        sendException = new TimeoutException("Topic a not present in metadata after 10000 ms.");
        rows.reads.add(List.of(row(1, "a", "k1")));
        worker();
        assertThat(calls.onError).hasValue(1);
        assertThat(rows.failed)
                .as("Kafka did not answer: an outage parks nothing and counts nothing (G7)")
                .isEmpty();

        ShardWorkerDecisionsTest second = new ShardWorkerDecisionsTest();
        try {
            second.sendException = new TimeoutException("Topic a not present in metadata after 10000 ms.");
            second.kafkaAnswered.set(true);
            second.rows.reads.add(List.of(row(1, "a", "k1")));
            second.worker();
            assertThat(second.rows.failed).containsExactly(List.of(1L));
            assertThat(second.calls.onError.get())
                    .as("a counted failure is the row's own, not the breaker's")
                    .isZero();
        } finally {
            second.stop();
        }
    }

    /**
     * A batch whose requests expired while the process stood still (a pause that {@link PauseWatch}
     * noticed ending after the batch was sent) tells the breaker nothing: after such a pause every shard's
     * batch fails at once, and counting them opened the breaker for its whole interval. The row is read
     * and sent again; the same failure of a batch sent after the pause counts.
     */
    @Test
    void aBatchThatFailedAcrossAPauseOfTheProcessIsNotABreakerFailure() {
        autoComplete = false;
        rows.reads.add(List.of(row(1, "a", "k")));
        rows.reads.add(List.of(row(1, "a", "k")));
        worker();
        assertThat(sent()).isEqualTo(1);

        time.advance(Duration.ofSeconds(12)); // the process stood still, within the lease
        pausedSince.set(time.nanoTime());
        lastProducer().errorNext(new TimeoutException("Expiring 1 record(s) for a-0: 12001 ms has passed"));
        workers.runDue();
        assertThat(calls.onError).as("a failure across a pause").hasValue(0);
        assertThat(calls.released).hasValue(1);
        assertThat(rows.deleted).isEmpty();

        workers.advance(config.backoff().cap());
        assertThat(sent()).as("the row sent again").isEqualTo(2);
        lastProducer().errorNext(new TimeoutException("Expiring 1 record(s) for a-0: 12001 ms has passed"));
        workers.runDue();
        assertThat(calls.onError)
                .as("the same failure with no pause since the send")
                .hasValue(1);
        assertThat(rows.deleted).isEmpty();
    }

    private MockProducer<byte[], byte[]> lastProducer() {
        return made.get(made.size() - 1);
    }

    @Test
    void aFailedRecordWithALaterRecordOfItsKeyPendingReplacesTheProducer() {
        autoComplete = false;
        rows.reads.add(List.of(row(1, "a", "k"), row(2, "a", "k")));
        worker();
        assertThat(made.get(0).history()).hasSize(2);
        Publisher.Generation first = shared.current();

        made.get(0).errorNext(new TimeoutException("Expiring 1 record(s) for a-0"));

        assertThat(shared.current())
                .as("the later record of k must never be written ahead of the failed one (G3)")
                .isNotSameAs(first);
        assertThat(made.get(0).closed()).isTrue();
        made.get(0).errorNext(new KafkaException("Producer is closed forcefully."));
        workers.runDue();
        assertThat(calls.onError).hasValue(1);
        assertThat(rows.deleted).isEmpty();
    }

    /**
     * G3 and G1 when the producer that replaces a failed one cannot be created (no host of
     * bootstrap.servers resolves, an unreadable keystore): the failed producer is closed all the same, so
     * the key's later record it holds never reaches Kafka ahead of the failed one; both answers reach the
     * batch, so it ends and the shard goes on; the rounds without a producer fail at once and back off;
     * once a producer can be created again, the key is published from its failed record on, in order.
     */
    @Test
    void aReplacementThatCannotBeCreatedStillClosesTheFailedProducerEndsTheBatchAndHealsLater() throws Exception {
        autoComplete = false;
        rows.reads.add(List.of(row(1, "a", "k", 1), row(2, "a", "k", 2)));
        worker();
        assertThat(made.get(0).history()).hasSize(2);
        creationFailure = new KafkaException(
                "Failed to construct kafka producer",
                new ConfigException("No resolvable bootstrap urls given in bootstrap.servers"));

        // a KafkaProducer logs and drops what a callback throws ("Error executing user-provided callback")
        List<Throwable> thrownByCallbacks = new ArrayList<>();
        thrownByCallbacks.add(
                catchThrowable(() -> made.get(0).errorNext(new TimeoutException("Expiring 1 record(s) for a-0"))));

        assertThat(made.get(0).closed())
                .as("closed although no successor could be created: record 2 never lands ahead of record 1 (G3)")
                .isTrue();
        // what the close does to the record the producer still held
        thrownByCallbacks.add(
                catchThrowable(() -> made.get(0).errorNext(new KafkaException("Producer is closed forcefully."))));
        workers.runDue();
        assertThat(metrics.retriable.count())
                .as("both answers reached the batch: it ended")
                .isEqualTo(1);
        assertThat(thrownByCallbacks).containsOnlyNulls();
        assertThat(rows.deleted).isEmpty();

        // no producer yet: the next round fails at once, without sending or creating one per round, and backs off
        rows.reads.add(List.of(row(1, "a", "k", 1), row(2, "a", "k", 2)));
        workers.advance(workers.lastDelay());
        assertThat(rows.readCalls).hasValue(2);
        assertThat(metrics.retriable.count()).isEqualTo(2);
        assertThat(made).hasSize(1);
        assertThat(creations)
                .as("the first producer and the failed replacement")
                .hasValue(2);

        creationFailure = null;
        // the publisher's own wait between creations runs on the real clock
        Thread.sleep(300);
        rows.reads.add(List.of(row(1, "a", "k", 1), row(2, "a", "k", 2)));
        workers.advance(workers.lastDelay());

        assertThat(made).as("a producer is created again once creation works").hasSize(2);
        assertThat(made.get(1).history())
                .extracting(r -> (int) r.value()[0])
                .as("the key from its failed record on, in order (G3)")
                .containsExactly(1, 2);
        made.get(1).completeNext();
        made.get(1).completeNext();
        workers.runDue();
        assertThat(rows.deleted).as("G1: both published").containsExactly(1L, 2L);
    }

    /**
     * G1's liveness and G3 for a key whose partition has no leader: the idle shard re-checks the key on the
     * shared producer, and when that producer turns out unusable (a failed sign-in, reported once, to the
     * first call that waits for metadata: here the re-check) the shard replaces that very producer, once,
     * and keeps the key held, its rows left out of the read; its next re-check asks the new producer, which
     * sees a leader, and the key's row goes out. Without the replacement the producer stayed in use, its
     * sends only timing out; letting go of the key would hand its rows to a partition without a leader.
     */
    @Test
    void anUnusableProducerMetByTheLeaderRecheckIsReplacedAndTheKeyStaysHeldUntilItsPartitionHasALeader() {
        AtomicInteger replaced = new AtomicInteger();
        shared().onReplaced(replaced::incrementAndGet);
        // k1's partition has no leader: its row is not sent, the key is held
        rows.reads.add(List.of(row(1, "no-leader", "k1")));
        ShardWorker w = worker();
        await().atMost(Duration.ofSeconds(5)).until(() -> {
            workers.runDue();
            return rows.readCalls.get() >= 1 && w.loop.idleWaiting();
        });
        assertThat(sent()).isZero();
        MockProducer<byte[], byte[]> unusable = made.get(0);

        // the producer failed to sign in; the producers made from now on see a leader
        unusableOnce.set(new SaslAuthenticationException("Authentication failed during authentication"));
        leaderElected = true;
        int filteredBefore = rows.waitingKeys.size();
        w.loop.wake();
        await().atMost(Duration.ofSeconds(5)).until(() -> {
            workers.runDue();
            return rows.readCalls.get() >= 2 && w.loop.idleWaiting();
        });
        assertThat(unusableOnce).as("the shard's re-check met the report").hasValue(null);
        assertThat(replaced).as("replaced once").hasValue(1);
        assertThat(made).as("the unusable producer and its successor").hasSize(2);
        assertThat(unusable.closed())
                .as("the producer the re-check found unusable")
                .isTrue();
        assertThat(shared.current().producer()).isSameAs(made.get(1));
        assertThat(rows.waitingKeys)
                .as("the read after the failed re-check still leaves k1 out")
                .hasSize(filteredBefore + 1)
                .last()
                .isEqualTo(List.of("k1"));
        assertThat(sent()).isZero();
        assertThat(rows.deleted).isEmpty();

        // the new producer sees a leader: the next re-check lets go of k1, and the read finds its row
        rows.reads.add(List.of(row(1, "no-leader", "k1")));
        w.loop.wake();
        await().atMost(Duration.ofSeconds(5)).until(() -> {
            workers.runDue();
            return rows.deleted.contains(1L);
        });
        assertThat(rows.waitingKeys.get(filteredBefore + 1))
                .as("re-checked on the new producer: nothing left out")
                .isEmpty();
        assertThat(unusable.history()).isEmpty();
        assertThat(made.get(1).history())
                .singleElement()
                .satisfies(r ->
                        assertThat(new String(r.key(), StandardCharsets.UTF_8)).isEqualTo("k1"));
        assertThat(rows.failed)
                .as("a key waiting for a leader costs no attempt")
                .isEmpty();
        assertThat(replaced).as("no other replacement").hasValue(1);
    }

    /**
     * G1's liveness for a key whose partition has no leader, on a shard with nothing else to read: no new
     * row wakes such a key (the probe finds none: its rows are left out of the read), so the shard looks
     * again within the idle poll interval, as it does after a batch, and not only at the next lease
     * renewal (10 s here), which would delay the key's rows that long after its partition has a leader.
     */
    @Test
    void aKeyWaitingForALeaderIsCheckedAgainWithinTheIdlePollIntervalWhenNothingElseIsLeft() {
        rows.reads.add(List.of(row(1, "no-leader", "k1")));
        worker();
        // the batch leaves k1 held; the next read, with k1 left out, finds nothing
        workers.advance(config.idlePollInterval());
        assertThat(rows.waitingKeys).as("a read left k1 out").contains(List.of("k1"));
        assertThat(sent()).isZero();
        int reads = rows.readCalls.get();

        // the partition has a leader again
        leaderBack = true;
        rows.reads.add(List.of(row(1, "no-leader", "k1")));
        workers.advance(config.idlePollInterval());
        assertThat(rows.readCalls.get())
                .as("read again within the idle poll interval, not at the next renewal")
                .isGreaterThan(reads);
        assertThat(rows.deleted)
                .as("G1: k1's row published once its partition has a leader")
                .containsExactly(1L);
        assertThat(config.renewInterval())
                .isGreaterThan(config.idlePollInterval().multipliedBy(2));
    }

    @Test
    void anAbortedTransactionalBatchDeletesNothingAndIsSentAgainAfterTheBackoff() {
        CountingPublisher publisher = new CountingPublisher(ShardPublisher.shared(shared())) {
            @Override
            public boolean atomic() {
                return true;
            }

            @Override
            public void commit(Publisher.Generation generation) {
                commits.incrementAndGet();
                throw new KafkaException("commit failed");
            }
        };
        rows.reads.add(List.of(row(1, "a", "k1"), row(2, "b", "k2")));
        rows.reads.add(List.of(row(1, "a", "k1"), row(2, "b", "k2")));
        worker(publisher);
        assertThat(publisher.commits).hasValue(1);
        assertThat(publisher.aborts).hasValue(1);
        Duration backoff = workers.lastDelay();
        assertThat(backoff).isPositive();

        workers.advance(backoff.minusNanos(1));
        assertThat(publisher.commits).as("not before the backoff").hasValue(1);
        workers.advance(Duration.ofNanos(1));
        assertThat(publisher.commits).as("sent again once the backoff elapsed").hasValue(2);
        assertThat(rows.deleteAttempts)
                .as("acknowledged but rolled back: nothing of the batch was published")
                .isEmpty();
        assertThat(metrics.aborted.count()).isEqualTo(2);
    }

    @Test
    void inAnAbortedTransactionOnlyTheRowThatFailedFirstWithAPoisonErrorIsParked() {
        autoComplete = false;
        CountingPublisher publisher = new CountingPublisher(ShardPublisher.shared(shared())) {
            @Override
            public boolean atomic() {
                return true;
            }
        };
        rows.reads.add(List.of(row(1, "a", "k1"), row(2, "b", "k2"), row(3, "c", "k3")));
        worker(publisher);
        // the broker refuses row 1's record; the producer then fails the transaction's records not yet
        // sent with that same exception, its last error
        RecordTooLargeException tooLarge = new RecordTooLargeException(
                "The request included a message larger than" + " the max message size the server will accept.");
        made.get(0).errorNext(tooLarge);
        made.get(0).completeNext();
        made.get(0).errorNext(tooLarge);
        workers.runDue();

        assertThat(publisher.aborts).hasValue(1);
        assertThat(rows.failed)
                .as("row 3 only shared the transaction's error: it is sent again, not parked (G7)")
                .containsExactly(List.of(1L));
        assertThat(rows.deleted).isEmpty();
    }

    @Test
    void aStopWhileABatchIsInFlightLetsTheBatchFinishFirst() {
        autoComplete = false;
        rows.reads.add(List.of(row(1, "a", "k1")));
        ShardWorker w = worker();
        assertThat(made.get(0).history()).hasSize(1);

        var stopped = w.loop.stop();
        assertThat(w.loop.state()).isEqualTo(ShardLoop.State.STOPPING);
        assertThat(stopped)
                .as("the shard is not handed back while its batch is in flight")
                .isNotDone();

        made.get(0).completeNext();
        workers.runDue();
        assertThat(stopped).isDone();
        assertThat(rows.deleted).containsExactly(1L);
    }

    @Test
    void aFullBatchWaitingForItsDeleteStaysRunningAndAStopWaitsForTheDelete() {
        List<Runnable> deletes = new ArrayList<>();
        deleteRunner = deletes::add;
        List<OutboxRow> full = new ArrayList<>();
        for (int i = 1; i <= config.batchSize(); i++) {
            full.add(row(i, "a", "k" + i));
        }
        rows.reads.add(full);
        ShardWorker w = worker();
        assertThat(made.get(0).history()).hasSize(config.batchSize());
        assertThat(deletes)
                .as("the acknowledged rows wait in the relay's delete queue")
                .hasSize(1);
        assertThat(w.loop.state())
                .as("no next round before the delete of a full batch answered")
                .isEqualTo(ShardLoop.State.RUNNING);
        int reads = rows.readCalls.get();
        w.loop.wake();
        workers.runDue();
        assertThat(rows.readCalls).as("a wake does not start a round meanwhile").hasValue(reads);

        var stopped = w.stop();
        workers.advance(Duration.ofSeconds(1));
        assertThat(stopped)
                .as("the shard is not handed back while its batch's delete is queued (G1, G3)")
                .isNotDone();

        deletes.remove(0).run();
        workers.runDue();
        assertThat(rows.deleted).hasSize(config.batchSize());
        assertThat(metrics.published.count()).isEqualTo(config.batchSize());
        assertThat(stopped).isDone();
    }

    /**
     * A short batch (G3): the shard goes to its idle wait without waiting for the delete, but its own
     * next read waits for it (the read would take the published row again), and a stop completes only
     * once the delete ran.
     */
    @Test
    void aShortBatchDoesNotWaitForItsDeleteButTheShardsOwnNextReadDoes() {
        List<Runnable> deletes = new ArrayList<>();
        deleteRunner = deletes::add;
        rows.reads.add(List.of(row(1, "a", "k1")));
        ShardWorker w = worker();
        assertThat(made.get(0).history()).hasSize(1);
        assertThat(deletes)
                .as("the acknowledged row waits in the relay's delete queue")
                .hasSize(1);
        assertThat(w.loop.state())
                .as("the shard waits for new rows, not for the delete")
                .isEqualTo(ShardLoop.State.IDLE);

        w.loop.wake();
        workers.runDue();
        assertThat(rows.readCalls).as("its own read waits for the delete").hasValue(1);
        assertThat(w.loop.state()).isEqualTo(ShardLoop.State.RUNNING);

        var stopped = w.stop();
        workers.advance(Duration.ofSeconds(1));
        assertThat(stopped)
                .as("the shard is not handed back while its delete is queued (G1, G3)")
                .isNotDone();

        deletes.remove(0).run();
        workers.runDue();
        assertThat(rows.deleted).containsExactly(1L);
        assertThat(metrics.published.count()).isEqualTo(1);
        assertThat(stopped).isDone();
    }

    /**
     * A shard that held a row lately reads for itself while its topic is held, also when the probe
     * handed it rows, and that read waits for the shard's deferred delete like any read of its own:
     * the published row whose delete is pending is not read and published a second time.
     */
    @Test
    void aShardThatHeldARowLatelyWaitsForItsDeferredDeleteBeforeReadingForItselfAlsoWithRowsHanded() {
        List<Runnable> deletes = new ArrayList<>();
        deleteRunner = deletes::add;
        rows.reads.add(List.of(row(1, "a", "k1")));
        ShardWorker w = worker();
        assertThat(deletes).as("row 1's delete is deferred").hasSize(1);
        assertThat(w.loop.state()).isEqualTo(ShardLoop.State.IDLE);

        // the probe hands a row of "slow", whose lookup does not answer (held), and a row whose headers make
        // no record (parked): the shard holds no row after that round, and "slow" stays held
        OutboxRow malformed = new OutboxRow(
                3,
                UUID.randomUUID(),
                "a",
                "k3",
                "t",
                "application/json",
                "not json",
                new byte[] {1},
                OffsetDateTime.now());
        assertThat(w.loop.wakeWith(w.loop.idleTicket(), List.of(row(2, "slow", "k2"), malformed)))
                .isTrue();
        workers.runDue();
        assertThat(rows.failed).as("the malformed row is parked").containsExactly(List.of(3L));
        assertThat(w.loop.state()).isEqualTo(ShardLoop.State.IDLE);
        assertThat(topics.held()).containsExactly("slow");
        assertThat(deletes).as("row 1's delete has not run yet").hasSize(1);
        int readsBefore = rows.readCalls.get();

        // the shard's own read finds what the table holds: row 1 until its delete ran, and row 4
        rows.beforeFilteredRead = () -> rows.reads.add(
                rows.deleted.contains(1L) ? List.of(row(4, "a", "k4")) : List.of(row(1, "a", "k1"), row(4, "a", "k4")));
        assertThat(w.loop.wakeWith(w.loop.idleTicket(), List.of(row(4, "a", "k4"))))
                .isTrue();
        workers.runDue();
        assertThat(rows.readCalls)
                .as("having held a row lately, it reads for itself, but not before row 1's delete ran")
                .hasValue(readsBefore);

        deletes.remove(0).run();
        workers.runDue();
        assertThat(rows.readCalls).as("then it reads").hasValue(readsBefore + 1);
        assertThat(made.get(0).history())
                .as("row 1 is published once")
                .extracting(r -> new String(r.key(), StandardCharsets.UTF_8))
                .containsExactly("k1", "k4");
        assertThat(rows.deleted).containsExactly(1L);
    }

    /**
     * A deferred delete whose statement failed (G3): its row stays left out of the probe's reads, and
     * the shard deletes it again, waiting this time, before it reads or sends anything; it never
     * publishes that row again after later rows of its key.
     */
    @Test
    void aDeferredDeleteThatFailedIsDeletedAgainBeforeTheShardReads() {
        List<Runnable> deletes = new ArrayList<>();
        deleteRunner = deletes::add;
        rows.reads.add(List.of(row(1, "a", "k1")));
        ShardWorker w = worker();
        assertThat(pending.ids()).containsExactly(1L);

        rows.deleteFailures = 1;
        deletes.remove(0).run();
        workers.runDue();
        assertThat(rows.deleted).isEmpty();
        assertThat(pending.ids()).as("still left out of the probe's reads").containsExactly(1L);
        assertThat(deletes).as("the shard, woken, deletes the row again").hasSize(1);
        assertThat(rows.readCalls)
                .as("and reads nothing before that delete answered")
                .hasValue(1);
        assertThat(w.loop.state()).isEqualTo(ShardLoop.State.RUNNING);

        deletes.remove(0).run();
        workers.runDue();
        assertThat(rows.deleted).containsExactly(1L);
        assertThat(pending.ids()).isEmpty();
        assertThat(pending.takeReleased()).isFalse();
        assertThat(metrics.published.count()).isEqualTo(1);
        assertThat(rows.readCalls).as("then the round goes on").hasValue(2);
    }

    /**
     * G3, the last record of a key is its latest committed message: a deferred delete of row 1 (key
     * k) is in flight when the probe hands the shard row 2 of k, which is published and its delete
     * queued behind; row 1's statement fails and row 2's commits. Row 2 must not leave the table while
     * row 1 is still in it: a crash, a hand-back or a lost lease before row 1's retry would have the
     * next owner publish row 1 again after row 2, and a compacted topic would keep row 1.
     */
    @Test
    void aLaterRowOfAKeyIsNotDeletedWhileTheFailedDeferredDeleteOfAnEarlierOneAwaitsItsRetry() {
        List<Runnable> deletes = new ArrayList<>();
        deleteRunner = deletes::add;
        rows.reads.add(List.of(row(1, "a", "k")));
        ShardWorker w = worker();
        assertThat(deletes).as("row 1's delete is deferred").hasSize(1);
        assertThat(w.loop.state()).isEqualTo(ShardLoop.State.IDLE);

        // the probe's read leaves row 1 out and hands row 2 of the same key: no read of the shard's own
        assertThat(w.loop.wakeWith(w.loop.idleTicket(), List.of(row(2, "a", "k"))))
                .isTrue();
        workers.runDue();
        assertThat(made.get(0).history())
                .extracting(r -> new String(r.value(), StandardCharsets.UTF_8))
                .hasSize(2);
        assertThat(w.loop.state()).isEqualTo(ShardLoop.State.IDLE);

        // the queue's first statement (row 1's) fails; the next one (row 2's request) commits
        rows.deleteFailures = 1;
        deletes.remove(0).run();
        assertThat(rows.deleted.contains(1L) || !rows.deleted.contains(2L))
                .as(
                        "row 2 of k deleted %s while row 1 of k is still in the table: published again after row 2"
                                + " by whoever publishes the shard next",
                        rows.deleted)
                .isTrue();

        // the shard is handed back before it retries what failed
        var stopped = w.stop();
        workers.runDue();
        assertThat(stopped).isDone();
        assertThat(w.loop.state()).isEqualTo(ShardLoop.State.STOPPED);
        assertThat(rows.deleted)
                .as("what is left for the next owner holds no row of k older than one deleted")
                .containsExactlyInAnyOrder(1L, 2L);
        assertThat(pending.ids()).isEmpty();
        assertThat(metrics.published.count()).isEqualTo(2);
    }

    /**
     * While its deferred deletes do not answer (a stalled statement: a lock on the table, a slow disk), a shard
     * publishes at most a batch of rows ahead of their deletes, then waits for them: the probe's later rows are
     * published once the deletes answered. Before, it published every row the probe handed it while nothing was
     * deleted, each delete queued carrying the ids of all before it, without bound.
     */
    @Test
    void aShardWhoseDeferredDeletesDoNotAnswerStopsPublishingAfterABatch() {
        List<Runnable> deletes = new ArrayList<>();
        deleteRunner = deletes::add;
        rows.reads.add(List.of(row(1, "a", "k1")));
        ShardWorker w = worker();
        int batch = config.batchSize();
        long handed = 1;
        for (long id = 2; id <= 3L * batch; id++) {
            // the probe hands the shard each row as it commits, while the shard is idle
            if (w.loop.wakeWith(w.loop.idleTicket(), List.of(row(id, "a", "k" + id)))) {
                handed = id;
            }
            workers.runDue();
        }
        assertThat(made.get(0).history())
                .as("records sent while no delete answered")
                .hasSize(batch);
        assertThat(handed)
                .as("the last row taken: one beyond those published, waiting")
                .isEqualTo(batch + 1);
        assertThat(rows.deleted).isEmpty();
        // an operator learns of the wait once it lasts
        Logger logger = (Logger) LoggerFactory.getLogger(ShardWorkerDecisionsTest.class);
        ListAppender<ILoggingEvent> events = new ListAppender<>();
        events.start();
        logger.addAppender(events);
        try {
            workers.advance(Duration.ofSeconds(ShardWorker.DELETE_WAIT_WARN_SECONDS));
            workers.runDue();
        } finally {
            logger.detachAppender(events);
        }
        assertThat(events.list)
                .extracting(ILoggingEvent::getFormattedMessage)
                .anySatisfy(m -> assertThat(m)
                        .contains("shard 7: " + batch + " published rows not deleted after "
                                + ShardWorker.DELETE_WAIT_WARN_SECONDS + " s"));

        while (!deletes.isEmpty()) {
            deletes.remove(0).run();
            workers.runDue();
        }
        assertThat(made.get(0).history())
                .as("once the deletes answered, the row it waited with is published")
                .hasSize(batch + 1);
        assertThat(rows.deleted).hasSize(batch + 1);
        assertThat(metrics.published.count()).isEqualTo(batch + 1);
        assertThat(pending.ids()).isEmpty();
    }

    /**
     * Shard 7 publishes row 1 of key k, a short batch, whose delete is deferred and held in {@code deletes} until the
     * test runs it.
     */
    private ShardWorker publishedRow1OfKWithItsDeleteDeferred(List<Runnable> deletes) {
        deleteRunner = deletes::add;
        rows.reads.add(List.of(row(1, "a", "k")));
        ShardWorker w = worker();
        assertThat(deletes).as("row 1's delete is deferred").hasSize(1);
        return w;
    }

    /** @return a full batch: row 2 of key k, then rows of other keys */
    private List<OutboxRow> fullBatchFromRow2OfK() {
        List<OutboxRow> full = new ArrayList<>();
        full.add(row(2, "a", "k"));
        for (int i = 3; i <= config.batchSize() + 1; i++) {
            full.add(row(i, "a", "other" + i));
        }
        return full;
    }

    /**
     * A read-ahead that fails is counted as a database error and logged, like any failed read: the next
     * round reads for itself, and nothing else changes. Before, the failure was dropped without a trace,
     * and a read-ahead failing on every batch cost a read per round unseen.
     */
    @Test
    void aFailedReadAheadIsCountedAndTheNextRoundReadsItself() {
        rows.reads.add(fullBatchFromRow2OfK());
        rows.aheadFailures = 1;
        ShardWorker w = worker();
        assertThat(rows.readAheadCalls).as("read ahead after the full batch").hasValue(1);
        assertThat(metrics.database.count()).isEqualTo(1);
        assertThat(made.get(0).history()).hasSize(config.batchSize());
        assertThat(rows.readCalls)
                .as("the first round's read, then the next round's own (a full batch reads again at once)")
                .hasValue(2);
        w.stop();
        workers.runDue();
    }

    /**
     * G3 as above, when the batch published after the deferred delete is full and its delete is one
     * the shard waits for: it must not remove row 2 of k while row 1 of k, whose deferred delete
     * failed, is still in the table.
     */
    @Test
    void aWaitedDeleteDoesNotRemoveALaterRowOfAKeyWhileTheFailedDeferredDeleteOfAnEarlierOneAwaitsItsRetry() {
        List<Runnable> deletes = new ArrayList<>();
        ShardWorker w = publishedRow1OfKWithItsDeleteDeferred(deletes);
        List<OutboxRow> full = fullBatchFromRow2OfK();
        assertThat(w.loop.wakeWith(w.loop.idleTicket(), full)).isTrue();
        workers.runDue();
        assertThat(made.get(0).history()).hasSize(1 + config.batchSize());
        assertThat(w.loop.state()).as("the full batch waits for its delete").isEqualTo(ShardLoop.State.RUNNING);

        rows.deleteFailures = 1;
        deletes.remove(0).run();
        assertThat(rows.deleted.contains(1L) || !rows.deleted.contains(2L))
                .as("row 2 of k deleted %s while row 1 of k is still in the table", rows.deleted)
                .isTrue();

        var stopped = w.stop();
        workers.runDue();
        assertThat(stopped).isDone();
        List<Long> all = new ArrayList<>();
        for (long i = 1; i <= config.batchSize() + 1; i++) {
            all.add(i);
        }
        assertThat(rows.deleted).containsExactlyInAnyOrderElementsOf(all);
        assertThat(pending.ids()).isEmpty();
        assertThat(metrics.published.count()).isEqualTo(all.size());
    }

    /**
     * G3: a deferred delete of row 1 (key k) that fails while the next batch, full and holding row 2 of k, is
     * being sent leaves row 1 in the table. The shard must not read ahead then: the read-ahead does not leave
     * out the rows of deferred deletes, so it would take row 1 and send it again after row 2, the last record
     * of k an older version. It read ahead before, asking only whether a deferred delete was in flight.
     */
    @Test
    void aDeferredDeleteThatFailsWhileAFullBatchIsSentStopsTheReadAhead() {
        List<Runnable> deletes = new ArrayList<>();
        ShardWorker w = publishedRow1OfKWithItsDeleteDeferred(deletes);
        List<OutboxRow> full = fullBatchFromRow2OfK();
        // what a read-ahead would find in the table now: row 1, whose delete failed
        rows.aheadReads.add(List.of(row(1, "a", "k")));
        rows.deleteFailures = 1;
        onFirstSend.set(() -> deletes.remove(0).run());
        assertThat(w.loop.wakeWith(w.loop.idleTicket(), full)).isTrue();
        workers.runDue();
        assertThat(rows.readAheadCalls)
                .as("reads ahead after its deferred delete failed")
                .hasValue(0);

        for (int round = 0; round < 20 && !deletes.isEmpty(); round++) {
            deletes.remove(0).run();
            workers.runDue();
        }
        var stopped = w.stop();
        for (int round = 0; round < 20 && !deletes.isEmpty(); round++) {
            deletes.remove(0).run();
            workers.runDue();
        }
        workers.runDue();
        assertThat(stopped).isDone();
        assertThat(made.get(0).history().stream()
                        .filter(r -> Arrays.equals(r.key(), "k".getBytes(StandardCharsets.UTF_8)))
                        .count())
                .as("records of key k: row 1, then row 2, and row 1 never again after it")
                .isEqualTo(2);
        assertThat(rows.deleted).contains(1L, 2L);
    }

    /**
     * A deferred delete that found the lease taken over drops the shard at its next round, and its
     * row is publishable again for the shard's next owner (G1), the probe told to read again.
     */
    @Test
    void aDeferredDeleteThatFoundTheLeaseLostDropsTheShard() {
        List<Runnable> deletes = new ArrayList<>();
        deleteRunner = deletes::add;
        rows.reads.add(List.of(row(1, "a", "k1")));
        ShardWorker w = worker();

        rows.leaseHeld = false;
        deletes.remove(0).run();
        workers.runDue();
        assertThat(dropped).hasValue(1);
        assertThat(w.loop.state()).isEqualTo(ShardLoop.State.STOPPED);
        assertThat(rows.deleted).isEmpty();
        assertThat(pending.ids()).isEmpty();
        assertThat(pending.takeReleased()).isTrue();
        assertThat(metrics.published.count()).isZero();
    }

    @Test
    void anUnexpectedFailureInsideCompletionGivesTheBreakerPermitBack() {
        CountingPublisher publisher = new CountingPublisher(ShardPublisher.shared(shared())) {
            @Override
            public boolean isCurrent(Publisher.Generation generation) {
                throw new IllegalStateException("boom");
            }
        };
        rows.reads.add(List.of(row(1, "a", "k1")));
        worker(publisher);

        assertThat(calls.released).hasValue(1);
        assertThat(calls.acquired).hasValue(1);
        assertThat(calls.onError.get() + calls.onSuccess.get()).isZero();
    }

    @Test
    void aBatchFailedOnlyByAnotherShardsProducerReplacementReleasesItsPermit() {
        autoComplete = false;
        rows.reads.add(List.of(row(1, "a", "k1")));
        worker();
        assertThat(made.get(0).history()).hasSize(1);

        // another shard's failure replaced (and closed) the producer this batch is on
        shared.replace(shared.current(), new KafkaException("another shard's failure"));
        made.get(0).errorNext(new KafkaException("Producer is closed forcefully."));
        workers.runDue();

        assertThat(calls.released).hasValue(1);
        assertThat(calls.onError.get())
                .as("one failure must not count once per shard against the breaker")
                .isZero();
        assertThat(rows.deleted).isEmpty();
    }

    @Test
    void aShardPastItsLocalLeaseDeadlineReadsAndSendsNothingUntilARenewal() {
        rows.reads.add(List.of(row(1, "a", "k1")));
        long claimed = time.nanoTime();
        // lease 30 s, margin a third: the local deadline is 20 s after the claim started
        time.advance(Duration.ofSeconds(20));
        ShardWorker w = worker(ShardPublisher.shared(shared()), claimed);

        workers.advance(Duration.ofSeconds(5));
        assertThat(rows.readCalls)
                .as("past the deadline another relay may own the shard: nothing is read or sent (F1)")
                .hasValue(0);
        assertThat(sent()).isZero();
        assertThat(w.loop.state()).isEqualTo(ShardLoop.State.WAITING);

        w.lease.renewed(time.nanoTime());
        // the wait for a renewal: a twentieth of the renew interval
        workers.advance(config.renewInterval().dividedBy(20));
        assertThat(rows.deleted).containsExactly(1L);
        assertThat(sent()).isEqualTo(1);
    }

    @Test
    void aRecordIsNotHandedToTheProducerOnceTheLeaseDeadlinePassedDuringTheBatch() {
        // row 2's topic lookup takes until the deadline: row 1 was sent before it, row 2 must not be
        rows.reads.add(List.of(row(1, "a", "k1"), row(2, "late", "k2"), row(3, "a", "k3")));
        ShardWorker w = worker();

        assertThat(made.get(0).history())
                .as("no record leaves after the local lease deadline (F1)")
                .singleElement()
                .satisfies(r -> assertThat(r.topic()).isEqualTo("a"));
        assertThat(rows.deleted).as("what was acknowledged before the deadline").containsExactly(1L);
        assertThat(rows.failed).as("the rows not sent are not failures").isEmpty();
        assertThat(w.loop.state()).isEqualTo(ShardLoop.State.WAITING);
    }

    @Test
    void aFailedReadIsRetriedOnlyAfterItsBackoff() {
        rows.readFailures = 1;
        rows.reads.add(List.of(row(1, "a", "k1")));
        worker();
        assertThat(rows.readCalls).hasValue(1);
        assertThat(metrics.database.count()).isEqualTo(1);
        Duration backoff = workers.lastDelay();

        workers.advance(backoff.minusNanos(1));
        assertThat(rows.readCalls).as("not before the backoff").hasValue(1);
        workers.advance(Duration.ofNanos(1));
        assertThat(rows.readCalls).hasValue(2);
        assertThat(rows.deleted).containsExactly(1L);
    }

    @Test
    void anOpenBreakerStopsTheShardFromReadingUntilItHalfOpens() {
        breaker.transitionToOpenState();
        rows.reads.add(List.of(row(1, "a", "k1")));
        worker();

        workers.advance(Duration.ofSeconds(1));
        assertThat(rows.readCalls)
                .as("while the breaker is open nothing is read (G6)")
                .hasValue(0);

        // what the relay's breaker does by itself after its open duration
        breaker.transitionToHalfOpenState();
        workers.advance(config.backoff().cap());
        assertThat(rows.deleted).containsExactly(1L);
        assertThat(calls.onSuccess).hasValue(1);
    }

    private int sent() {
        return made.stream().mapToInt(p -> p.history().size()).sum();
    }

    /** @return a relay's settings for shard 7 alone: batch size 10, lease 30 s, idle poll 1 s, max attempts 10 */
    static RelayConfig config(Backoff backoff) {
        return new RelayConfig(
                null,
                "outbox",
                "test",
                Map.of(),
                10,
                Relay.Builder.DEFAULT_BATCH_BYTES,
                Duration.ofSeconds(30),
                Duration.ofSeconds(1),
                Duration.ofSeconds(5),
                1,
                backoff,
                CircuitBreakerConfig.ofDefaults(),
                ParkPolicy.PARK_AND_CONTINUE,
                new SimpleMeterRegistry(),
                10,
                Duration.ofMillis(5),
                Duration.ofMillis(15),
                null,
                PublishMode.IDEMPOTENT,
                null,
                0);
    }

    private static int sends(MockProducer<byte[], byte[]> p) {
        return SEND_CALLS.getOrDefault(p, new AtomicInteger()).get();
    }

    private static final Map<Object, AtomicInteger> SEND_CALLS = new ConcurrentHashMap<>();

    static PartitionInfo partition(String topic) {
        return new PartitionInfo(topic, 0, NODE, new Node[] {NODE}, new Node[] {NODE});
    }

    private static OutboxRow row(long id, String topic, String key) {
        return row(id, topic, key, 1);
    }

    private static OutboxRow row(long id, String topic, String key, int payload) {
        return new OutboxRow(
                id,
                UUID.randomUUID(),
                topic,
                key,
                "t",
                "application/json",
                "{}",
                new byte[] {(byte) payload},
                OffsetDateTime.now());
    }

    /** A shard publisher that counts sends, commits and aborts, and otherwise delegates. */
    private static class CountingPublisher implements ShardPublisher {
        final ShardPublisher delegate;
        final AtomicInteger commits = new AtomicInteger();
        final AtomicInteger aborts = new AtomicInteger();

        CountingPublisher(ShardPublisher delegate) {
            this.delegate = delegate;
        }

        @Override
        public void init() {
            delegate.init();
        }

        @Override
        public Publisher.Generation begin() {
            Publisher.Generation g = delegate.begin();
            Producer<byte[], byte[]> counted = countingSends(g.producer());
            return new Publisher.Generation(counted, g.number());
        }

        @Override
        public boolean atomic() {
            return delegate.atomic();
        }

        @Override
        public void commit(Publisher.Generation generation) {
            commits.incrementAndGet();
            delegate.commit(generation);
        }

        @Override
        public void abort(Publisher.Generation generation, Throwable why) {
            aborts.incrementAndGet();
        }

        @Override
        public boolean isCurrent(Publisher.Generation generation) {
            return true;
        }

        @Override
        public void replace(Publisher.Generation generation, Throwable why) {}

        @Override
        public void close() {}
    }

    @SuppressWarnings("unchecked")
    private static Producer<byte[], byte[]> countingSends(Producer<byte[], byte[]> p) {
        AtomicInteger n = SEND_CALLS.computeIfAbsent(p, k -> new AtomicInteger());
        return (Producer<byte[], byte[]>) Proxy.newProxyInstance(
                Producer.class.getClassLoader(), new Class<?>[] {Producer.class}, (proxy, m, args) -> {
                    if (m.getName().equals("send")) {
                        n.incrementAndGet();
                    }
                    try {
                        return m.invoke(p, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    /** What the circuit breaker was told. */
    private static final class BreakerCalls {
        final AtomicInteger acquired = new AtomicInteger();
        final AtomicInteger released = new AtomicInteger();
        final AtomicInteger onError = new AtomicInteger();
        final AtomicInteger onSuccess = new AtomicInteger();

        CircuitBreaker wrap(CircuitBreaker real) {
            return (CircuitBreaker) Proxy.newProxyInstance(
                    CircuitBreaker.class.getClassLoader(), new Class<?>[] {CircuitBreaker.class}, (proxy, m, args) -> {
                        Object result;
                        try {
                            result = m.invoke(real, args);
                        } catch (InvocationTargetException e) {
                            throw e.getCause();
                        }
                        switch (m.getName()) {
                            case "tryAcquirePermission" -> {
                                if ((Boolean) result) {
                                    acquired.incrementAndGet();
                                }
                            }
                            case "releasePermission" -> released.incrementAndGet();
                            case "onError" -> onError.incrementAndGet();
                            case "onSuccess" -> onSuccess.incrementAndGet();
                            default -> {}
                        }
                        return result;
                    });
        }
    }

    /** The outbox of one shard: reads are served in order, then nothing; writes are recorded. */
    private static final class FakeRows implements ShardRows {
        final Deque<List<OutboxRow>> reads = new ConcurrentLinkedDeque<>();
        final List<Long> deleted = new CopyOnWriteArrayList<>();
        final List<long[]> deleteAttempts = new CopyOnWriteArrayList<>();
        final List<List<Long>> failed = new CopyOnWriteArrayList<>();
        volatile boolean leaseHeld = true;
        final AtomicInteger readCalls = new AtomicInteger();
        final AtomicInteger readAheadCalls = new AtomicInteger();
        /** What the read-ahead returns, one list per call: a test puts there what the table would hold. */
        final Deque<List<OutboxRow>> aheadReads = new ConcurrentLinkedDeque<>();

        volatile Runnable beforeFilteredRead = () -> {};
        volatile int readFailures;
        volatile int deleteFailures;
        volatile int aheadFailures;
        final List<long[]> heldIds = new CopyOnWriteArrayList<>();
        /** The keys each filtered read left out, as waiting for a partition leader. */
        final List<List<String>> waitingKeys = new CopyOnWriteArrayList<>();

        private List<OutboxRow> next() throws SQLException {
            readCalls.incrementAndGet();
            if (readFailures > 0) {
                readFailures--;
                throw new SQLException("connection lost", "08006");
            }
            List<OutboxRow> r = reads.poll();
            return r == null ? List.of() : new ArrayList<>(r);
        }

        @Override
        public List<OutboxRow> read(int shard, int limit) throws SQLException {
            return next();
        }

        @Override
        public List<OutboxRow> readFiltered(
                int shard, Collection<String> heldTopics, long[] heldIds, String[] waitingKeys, int limit)
                throws SQLException {
            beforeFilteredRead.run();
            this.heldIds.add(heldIds);
            this.waitingKeys.add(List.of(waitingKeys));
            return next();
        }

        @Override
        public List<OutboxRow> readPastHeld(
                int shard, Collection<String> heldTopics, long[] heldIds, String[] waitingKeys, int limit)
                throws SQLException {
            return readFiltered(shard, heldTopics, heldIds, waitingKeys, limit);
        }

        @Override
        public List<OutboxRow> readAhead(int shard, long[] inFlight, int limit) throws SQLException {
            readAheadCalls.incrementAndGet();
            if (aheadFailures > 0) {
                aheadFailures--;
                throw new SQLException("connection lost", "08006");
            }
            List<OutboxRow> r = aheadReads.poll();
            return r == null ? List.of() : new ArrayList<>(r);
        }

        @Override
        public List<Db.Fenced> deleteAll(List<Deletion> deletions) throws SQLException {
            if (deleteFailures > 0) {
                deleteFailures--;
                throw new SQLException("connection lost", "08006");
            }
            List<Db.Fenced> out = new ArrayList<>(deletions.size());
            for (Deletion d : deletions) {
                deleteAttempts.add(d.ids());
                if (!leaseHeld) {
                    out.add(new Db.Fenced(false, 0));
                    continue;
                }
                // as the table does: a row deleted already is not there to delete again
                int n = 0;
                for (long id : d.ids()) {
                    if (!deleted.contains(id)) {
                        deleted.add(id);
                        n++;
                    }
                }
                out.add(new Db.Fenced(true, n));
            }
            return out;
        }

        @Override
        public List<Db.Failed> failAll(List<Failure> failures, int maxAttempts) throws SQLException {
            List<Db.Failed> results = new ArrayList<>();
            for (Failure f : failures) {
                List<Long> l = new ArrayList<>();
                List<Db.FailedRow> out = new ArrayList<>();
                for (int i = 0; i < f.ids().length; i++) {
                    l.add(f.ids()[i]);
                    out.add(new Db.FailedRow(f.ids()[i], 1, f.park()[i]));
                }
                failed.add(l);
                results.add(new Db.Failed(leaseHeld, out));
            }
            return results;
        }
    }
}
