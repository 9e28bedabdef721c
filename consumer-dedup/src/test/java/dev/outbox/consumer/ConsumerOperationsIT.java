package dev.outbox.consumer;

import static dev.outbox.consumer.Fixtures.payment;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import com.zaxxer.hikari.HikariDataSource;
import dev.outbox.consumer.internal.Hooks;
import dev.outbox.core.MessageIds;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.retry.Backoff;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Metrics;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.SQLFeatureNotSupportedException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.function.Supplier;
import javax.sql.DataSource;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerInterceptor;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.awaitility.core.ConditionFactory;
import org.awaitility.core.ThrowingRunnable;
import org.jooq.exception.DataAccessException;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.slf4j.LoggerFactory;

/**
 * Operational behaviours of the consumer that run by themselves: the scheduled retention purge,
 * the lag gauge, and riding out a sustained database outage under the circuit breaker.
 */
@ExtendWith(RealServices.class)
@Timeout(300)
class ConsumerOperationsIT {
    private static final Duration WAIT = Duration.ofSeconds(90);
    /** The consumer logs through this logger (purge results, circuit breaker transitions). */
    private static final String CONSUMER_LOGGER = IdempotentConsumer.class.getName();

    @BeforeAll
    static void schema(TestDatabase db) throws Exception {
        Fixtures.createPayments(db);
    }

    /**
     * Retention (README "Retention", DESIGN "Processed ids are purged after a retention"): with the
     * shortest purge interval (1 s) and the shortest retention (1 hour), a running consumer deletes
     * its own ids older than the retention by itself, without anyone calling purgeProcessed, and
     * again on later runs; ids younger than the retention (seeded ones and the one it has just
     * processed) and another consumer's old ids stay. Each purge run is reported in the consumer's
     * log with the number of ids it deleted. Fails if the purge is never scheduled, runs only once,
     * uses another age than the configured retention, or leaves its own consumer scope.
     */
    @Test
    void scheduledPurgeDeletesIdsPastRetentionByItself(TestDatabase db, TestKafka kafka) throws Exception {
        String name = "ops-purge";
        String topic = TestKafka.uniqueTopic("ops-purge");
        kafka.createTopic(topic, 1);
        // 1,500 old ids need two purge statements (1,000 rows each) within one run
        seedProcessed(db, name, 1500, Duration.ofHours(2));
        seedProcessed(db, name, 300, Duration.ofMinutes(10));
        seedProcessed(db, name + "-other", 10, Duration.ofDays(30));
        UUID live = MessageIds.next();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            producer.send(payment(topic, live, "order-live", 1)).get();
        }
        MeterRegistry registry = new SimpleMeterRegistry();
        try (LogCapture log = LogCapture.attach();
                IdempotentConsumer consumer = Fixtures.builder(kafka, db, topic, name)
                        .meterRegistry(registry)
                        .purgeInterval(Duration.ofSeconds(1))
                        .retention(Duration.ofHours(1))
                        .build()) {
            consumer.start();
            await().atMost(WAIT).untilAsserted(() -> {
                assertThat(processedOlderThan(db, name, Duration.ofHours(1))).isZero();
                assertThat(log.messages(name))
                        .anyMatch(m -> m.contains("purged 1500 processed message id(s) older than 1h"));
                assertThat(Fixtures.counter(registry, "outbox.consumer.purged")).isEqualTo(1500);
            });
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(Fixtures.paymentsPerId(db)).containsEntry(live, 1L));
            assertThat(processed(db, name))
                    .as("ids younger than the retention, and the one just processed")
                    .isEqualTo(301);
            assertThat(processed(db, name + "-other")).isEqualTo(10);

            // the purge keeps running: old ids that appear later go too
            seedProcessed(db, name, 700, Duration.ofHours(3));
            await().atMost(WAIT).untilAsserted(() -> {
                assertThat(processedOlderThan(db, name, Duration.ofHours(1))).isZero();
                assertThat(log.messages(name))
                        .anyMatch(m -> m.contains("purged 700 processed message id(s) older than 1h"));
                assertThat(Fixtures.counter(registry, "outbox.consumer.purged")).isEqualTo(2200);
            });
            assertThat(Fixtures.counter(registry, "outbox.consumer.purge.failures"))
                    .isZero();
            assertThat(processed(db, name)).isEqualTo(301);
            assertThat(processed(db, name + "-other")).isEqualTo(10);
            assertThat(Fixtures.scalar(
                            db,
                            "select count(*) from outbox.processed_message where consumer = '" + name
                                    + "' and message_id = '" + live + "'"))
                    .isOne();
        }
    }

    /**
     * Retention with several instances of one consumer: each purges on its own schedule, so a purge
     * skips the rows another purge has locked instead of waiting for them. With 100 of 300 old ids
     * locked by another open transaction, purgeProcessed returns at once with the other 200 deleted;
     * the locked ones stay. Fails if the purge waited on row locks (it would not return while the
     * other transaction is open).
     */
    @Test
    void purgeSkipsRowsAnotherPurgeHasLocked(TestDatabase db, TestKafka kafka) throws Exception {
        String name = "ops-purge-locked";
        seedProcessed(db, name, 300, Duration.ofHours(2));
        try (Connection other = db.connect()) {
            other.setAutoCommit(false);
            try (Statement st = other.createStatement()) {
                st.execute("select 1 from outbox.processed_message where consumer = '" + name + "'"
                        + " order by message_id limit 100 for update");
            }
            try (IdempotentConsumer consumer = Fixtures.builder(
                            kafka, db, TestKafka.uniqueTopic("ops-purge-locked"), name)
                    .purgeInterval(Duration.ZERO)
                    .build()) {
                long deleted = Assertions.assertTimeoutPreemptively(
                        Duration.ofSeconds(30),
                        () -> consumer.purgeProcessed(Duration.ofHours(1)),
                        "the purge waited for rows another transaction holds");
                assertThat(deleted).isEqualTo(200);
            } finally {
                other.rollback();
            }
        }
        assertThat(processed(db, name)).isEqualTo(100);
    }

    /**
     * The lag gauge of a held partition keeps up with what arrives: with the handler stuck on the
     * partition's first record and more than 1,000 records fetched, the partition is paused (a paused
     * partition is not fetched, so the consumer's own view of its end offset stops moving), and records
     * published meanwhile still show in the gauge, from the end offsets asked for every few seconds. So
     * README's alert (lag growing while handled stays flat) fires for a held partition. Fails if the
     * gauge froze at the end offset of the last fetch before the pause.
     */
    @Test
    void theLagOfAHeldPartitionKeepsGrowing(TestDatabase db, TestKafka kafka) throws Exception {
        String name = "ops-held-lag";
        String topic = TestKafka.uniqueTopic("ops-held-lag");
        kafka.createTopic(topic, 1);
        int before = 1100; // past the 1,000 queued records at which a partition is paused
        int[] waves = {200, 100};
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            sendPayments(producer, topic, 0, before);
            CountDownLatch blocked = new CountDownLatch(1);
            CountDownLatch release = new CountDownLatch(1);
            MeterRegistry registry = new SimpleMeterRegistry();
            List<Double> observed = new CopyOnWriteArrayList<>();
            try (IdempotentConsumer consumer = Fixtures.builder(kafka, db, topic, name)
                    .meterRegistry(registry)
                    .concurrency(1)
                    .handler((m, tx) -> {
                        if (m.offset() == 0) {
                            blocked.countDown();
                            // bounded, so that a failing test still lets close() finish
                            if (!release.await(3, TimeUnit.MINUTES)) {
                                throw new IllegalStateException("the test never released the handler");
                            }
                        }
                    })
                    .build()) {
                consumer.start();
                try {
                    assertThat(blocked.await(WAIT.toSeconds(), TimeUnit.SECONDS))
                            .isTrue();
                    await().atMost(WAIT)
                            .untilAsserted(() ->
                                    assertThat(lag(registry, topic, observed)).isEqualTo(before));
                    int end = before;
                    for (int wave : waves) {
                        sendPayments(producer, topic, end, wave);
                        end += wave;
                        int expected = end;
                        await().atMost(WAIT)
                                .untilAsserted(() -> assertThat(lag(registry, topic, observed))
                                        .as("lag of the held partition after %d records", expected)
                                        .isEqualTo(expected));
                    }
                    assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                            .as("handled stays flat")
                            .isZero();
                } finally {
                    release.countDown();
                }
                int total = before + Arrays.stream(waves).sum();
                await().atMost(WAIT).untilAsserted(() -> {
                    assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                            .isEqualTo(total);
                    assertThat(lag(registry, topic, observed)).isZero();
                });
            }
        }
    }

    /** Sends {@code count} payments, the first one numbered {@code from}, and waits until the broker has them. */
    private static void sendPayments(KafkaProducer<byte[], byte[]> producer, String topic, int from, int count)
            throws Exception {
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        for (int i = from; i < from + count; i++) {
            sent.add(producer.send(payment(topic, MessageIds.next(), "order-" + i, i)));
        }
        producer.flush();
        for (Future<RecordMetadata> f : sent) {
            f.get();
        }
    }

    /**
     * The lag gauge {@code outbox.consumer.lag} (README "Metrics": log end offset minus the next
     * offset to process) measures what is not processed yet, not what is not fetched yet: with N
     * records on the partition and the handler blocked on the sixth, the consumer has fetched
     * everything but committed only five transactions, and the gauge reports exactly N - 5 (never
     * more than N); once the handler is released and every record is handled, it reports 0. Fails if
     * the gauge tracked the fetch position (it would read 0 while the handler is stuck), stopped
     * being updated, or counted handled records as outstanding.
     */
    @Test
    void lagGaugeReportsTheUnprocessedBacklog(TestDatabase db, TestKafka kafka) throws Exception {
        String name = "ops-lag";
        String topic = TestKafka.uniqueTopic("ops-lag");
        kafka.createTopic(topic, 1);
        int n = 20;
        int blockAt = 5;
        List<UUID> ids = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            for (int i = 0; i < n; i++) {
                UUID id = MessageIds.next();
                ids.add(id);
                producer.send(payment(topic, id, "order-" + i, i));
            }
            producer.flush();
        }
        CountDownLatch blocked = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();
        List<Double> observed = new CopyOnWriteArrayList<>();
        try (IdempotentConsumer consumer = Fixtures.builder(kafka, db, topic, name)
                .meterRegistry(registry)
                .concurrency(1)
                .maxRecordsPerTransaction(1)
                .handler((m, tx) -> {
                    if (m.offset() == blockAt) {
                        blocked.countDown();
                        // bounded, so that a failing test still lets close() finish
                        if (!release.await(2, TimeUnit.MINUTES)) {
                            throw new IllegalStateException("the test never released the handler");
                        }
                    }
                    payments.handle(m, tx);
                })
                .build()) {
            consumer.start();
            try {
                await().atMost(WAIT).untilAsserted(() -> {
                    assertThat(blocked.getCount())
                            .as("handler blocked on offset %d", blockAt)
                            .isZero();
                    assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                            .isEqualTo(blockAt);
                    assertThat(lag(registry, topic, observed))
                            .as("records not processed yet")
                            .isEqualTo(n - blockAt);
                });
                assertThat(Fixtures.paymentsOf(db, ids))
                        .as("records whose transaction committed")
                        .hasSize(blockAt);
            } finally {
                release.countDown();
            }
            await().atMost(WAIT).untilAsserted(() -> {
                assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                        .isEqualTo(n);
                assertThat(lag(registry, topic, observed)).isZero();
            });
            await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, name + "-group", topic));
            assertThat(Fixtures.paymentsOf(db, ids))
                    .hasSize(n)
                    .allSatisfy((id, rows) -> assertThat(rows).isOne());
            assertThat(observed)
                    .as("every lag the gauge reported")
                    .allSatisfy(v -> assertThat(v).isBetween(0.0, (double) n));
        }
    }

    /**
     * The lag gauge reaches 0 on a topic written by a transactional producer (the relay's
     * publish-mode=transactional): each transaction ends with a commit marker, which takes an offset
     * but is no record, so the consumer's position ends one past the last record it processed. Before,
     * the lag stayed at 1 (one more per aborted transaction) however long the consumer had nothing left
     * to do.
     */
    @Test
    void lagGaugeReachesZeroAfterATransactionalProducersMarkers(TestDatabase db, TestKafka kafka) throws Exception {
        String name = "ops-lag-tx";
        String topic = TestKafka.uniqueTopic("ops-lag-tx");
        kafka.createTopic(topic, 1);
        List<UUID> ids = new ArrayList<>();
        Properties props = new Properties();
        props.put("bootstrap.servers", kafka.bootstrapServers());
        props.put("transactional.id", "ops-lag-tx-" + UUID.randomUUID());
        try (KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer())) {
            producer.initTransactions();
            for (int t = 0; t < 3; t++) {
                producer.beginTransaction();
                for (int i = 0; i < 4; i++) {
                    UUID id = MessageIds.next();
                    ids.add(id);
                    producer.send(payment(topic, id, "order-" + t + "-" + i, i));
                }
                producer.commitTransaction();
            }
            producer.beginTransaction();
            producer.send(payment(topic, MessageIds.next(), "aborted", 0));
            producer.abortTransaction();
        }
        MeterRegistry registry = new SimpleMeterRegistry();
        List<Double> observed = new CopyOnWriteArrayList<>();
        try (IdempotentConsumer consumer = Fixtures.builder(kafka, db, topic, name)
                .meterRegistry(registry)
                .handler(Fixtures.paymentsHandler())
                .build()) {
            consumer.start();
            await().atMost(WAIT).untilAsserted(() -> {
                assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                        .isEqualTo(ids.size());
                assertThat(lag(registry, topic, observed))
                        .as("lag once every committed record is processed")
                        .isZero();
            });
            assertThat(Fixtures.paymentsOf(db, ids)).hasSize(ids.size());
        }
    }

    /**
     * G6 (bounded retries under a circuit breaker) and G4 for a sustained database outage: the
     * consumer's database stops accepting connections and every session of it is terminated (one of
     * them inside a running handler) while 40 records wait. The database circuit breaker opens, and a
     * probe after its open interval fails and opens it again; while open, the consumer makes no
     * connection attempt beyond the one that may already have been permitted. During the outage no
     * offset moves past the last record whose transaction committed, nothing is dead-lettered and no
     * handler failure is counted (although maxAttempts is 2), and every offset the consumer commits,
     * before and after, covers only records whose dedup row is in the database. When the database
     * accepts connections again the breaker closes, and every message id has exactly one business
     * row. Fails if outages were treated as handler failures, retried without the breaker, or if an
     * offset were committed ahead of the database.
     */
    @Test
    void sustainedDatabaseOutageOpensTheBreakerAndLosesNothing(TestDatabase db, TestKafka kafka) throws Exception {
        String name = "ops-outage";
        String group = name + "-group";
        String topic = TestKafka.uniqueTopic("ops-outage");
        int concurrency = 2;
        kafka.createTopic(topic, 2);
        kafka.createTopic(topic + ".dlt", 1);
        List<UUID> phaseA = newIds(20);
        List<UUID> phaseB = newIds(40);
        Set<UUID> blockedIds = Set.copyOf(phaseB);
        Map<Integer, NavigableMap<Long, UUID>> idsByOffset = new ConcurrentHashMap<>();
        List<String> aheadOfDatabase = new CopyOnWriteArrayList<>();
        CountDownLatch handlerBlocked = new CountDownLatch(1);
        CountDownLatch outageStarted = new CountDownLatch(1);
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();

        try (Connection control = db.connect();
                HikariDataSource pool = outagePool(db);
                LogCapture log = LogCapture.attach()) {
            CountingDataSource dataSource = new CountingDataSource(pool);
            // Every offset about to be committed must cover only records whose dedup row is committed.
            Hooks checkOffsets = new Hooks() {
                @Override
                public void beforeOffsetCommit(Map<TopicPartition, OffsetAndMetadata> offsets) {
                    offsets.forEach((tp, om) -> {
                        List<UUID> below = new ArrayList<>(idsByOffset
                                .getOrDefault(tp.partition(), new ConcurrentSkipListMap<>())
                                .headMap(om.offset())
                                .values());
                        try {
                            long inDatabase = countProcessed(control, name, below);
                            if (below.size() != om.offset() || inDatabase != om.offset()) {
                                aheadOfDatabase.add(tp + " committed at " + om.offset() + " with " + inDatabase
                                        + " of its records in processed_message");
                            }
                        } catch (SQLException e) {
                            aheadOfDatabase.add(tp + " committed at " + om.offset()
                                    + " while the database could not be checked: " + e);
                        }
                    });
                }
            };
            // checked on every poll of every wait below, so that a broken guarantee fails at once and says so
            Runnable invariants = () -> {
                assertThat(aheadOfDatabase)
                        .as("offsets committed ahead of the database")
                        .isEmpty();
                assertThat(registry.get("outbox.consumer.retries")
                                .tag("cause", "handler")
                                .counter()
                                .count())
                        .as("database failures counted as handler failures")
                        .isZero();
                assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                        .as("dead-lettered records")
                        .isZero();
            };
            Supplier<ConditionFactory> watched = () -> await().atMost(WAIT).failFast("G4/G6 broken", invariants::run);
            publish(kafka, topic, phaseA, 0, idsByOffset);
            try (IdempotentConsumer consumer = Fixtures.builder(kafka, db, topic, name)
                    .dataSource(dataSource)
                    .meterRegistry(registry)
                    .hooks(checkOffsets)
                    .concurrency(concurrency)
                    .maxAttempts(2)
                    .backoff(Backoff.of(Duration.ofMillis(50), Duration.ofSeconds(1)))
                    .handler((m, tx) -> {
                        if (blockedIds.contains(m.messageId()) && outageStarted.getCount() > 0) {
                            handlerBlocked.countDown();
                            // holds the transaction open until its session is terminated under it
                            outageStarted.await(2, TimeUnit.MINUTES);
                        }
                        payments.handle(m, tx);
                    })
                    .build()) {
                consumer.start();
                watched.get().untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, group, topic));
                assertThat(Fixtures.paymentsOf(db, phaseA)).hasSize(phaseA.size());
                Map<TopicPartition, Long> committedBefore = committed(kafka, group);

                publish(kafka, topic, phaseB, phaseA.size(), idsByOffset);
                assertThat(handlerBlocked.await(WAIT.toSeconds(), TimeUnit.SECONDS))
                        .as("a phase-B handler started")
                        .isTrue();
                long outageStart = System.nanoTime();
                try {
                    stopAcceptingConnections(db, control);
                    outageStarted.countDown();

                    // the breaker opens, and stays open after a failed probe: the outage is sustained
                    watched.get().untilAsserted(() -> log.assertOpenedProbedAndOpenAgain(name, outageStart));
                    long opened = log.breakerTransitionTime(name, outageStart, "CLOSED to OPEN");
                    long probed = log.breakerTransitionTime(name, opened, "OPEN to HALF_OPEN");
                    assertThat(TimeUnit.NANOSECONDS.toMillis(probed - opened))
                            .as("open interval in ms")
                            .isGreaterThanOrEqualTo(4900);
                    // what an operator sees: the database breaker's gauge is not closed (1 open, 2 half-open)
                    assertThat(Fixtures.breakerState(registry, "database"))
                            .as("database breaker gauge during the outage")
                            .isIn(1.0, 2.0);
                    assertThat(dataSource.callsBetween(opened, probed))
                            .as("connection attempts while the breaker was open")
                            .isLessThanOrEqualTo(concurrency - 1);

                    assertThat(committed(kafka, group))
                            .as("committed offsets during the outage")
                            .isEqualTo(committedBefore);
                    assertThat(countProcessed(control, name, phaseB)).isZero();
                    assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                            .isEqualTo(phaseA.size());
                    assertThat(registry.get("outbox.consumer.retries")
                                    .tag("cause", "infrastructure")
                                    .counter()
                                    .count())
                            .isGreaterThanOrEqualTo(5);
                    assertThat(endOffset(kafka, new TopicPartition(topic + ".dlt", 0)))
                            .as("dead-letter records")
                            .isZero();
                    invariants.run();
                } finally {
                    outageStarted.countDown(); // never leave a handler blocked, whatever failed above
                    acceptConnections(db);
                }

                watched.get().untilAsserted(() -> {
                    assertThat(Fixtures.paymentsOf(db, phaseB)).hasSize(phaseB.size());
                    Fixtures.assertCommittedToEnd(kafka, group, topic);
                });
                // a probe after the restart succeeded and nothing opened the breaker again
                watched.get()
                        .untilAsserted(() -> assertThat(log.breakerTransitions(name, outageStart))
                                .containsSubsequence("CLOSED to OPEN", "HALF_OPEN to OPEN", "HALF_OPEN to CLOSED")
                                .last()
                                .isEqualTo("HALF_OPEN to CLOSED"));
                assertThat(Fixtures.breakerState(registry, "database"))
                        .as("database breaker gauge after the outage")
                        .isZero();
                assertThat(Fixtures.breakerState(registry, "dead-letter")).isZero();
                List<UUID> all = new ArrayList<>(phaseA);
                all.addAll(phaseB);
                assertThat(Fixtures.paymentsOf(db, all))
                        .hasSize(all.size())
                        .allSatisfy((id, rows) -> assertThat(rows).isOne());
                // the counters move just after a batch's offsets become committable: wait for them
                watched.get()
                        .untilAsserted(() -> assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                                .isEqualTo(all.size()));
                assertThat(Fixtures.counter(registry, "outbox.consumer.duplicates"))
                        .isZero();
                invariants.run();
                assertAllHandledOnceNoneDeadLettered(db, kafka, name, topic, all.size());
            }
            assertThat(aheadOfDatabase)
                    .as("offsets committed ahead of the database")
                    .isEmpty();
        }
    }

    /**
     * G6 (bounded retries; no partition waits for ever behind another) when the one call a half-open
     * database breaker lets through hangs. A real outage (the database refuses sessions and ends
     * them) opens the breaker while only partition 0 has records waiting, so that when the database
     * is back the probe the half-open breaker lets through is partition 0's batch; its handler then
     * waits on a row lock the test holds (no lock_timeout: it waits as long as the test keeps the
     * lock, as a handler blocked on another system would). Records then published on partition 1 are
     * refused while the probe runs; once it has been out longer than closeTimeout (2 s here) a refused
     * call opens the breaker again, a batch of partition 1 probes 5 s later and closes it, and
     * partition 1 is processed and committed to its end while the first probe still waits on the
     * lock, its dedup row and offset not committed. When the test releases the lock the probe
     * completes, its handler having been called once, and every message id has exactly one business
     * row and one dedup row; nothing is dead-lettered and no handler failure is counted. Fails if a
     * hung probe held the half-open breaker: partition 1 would be refused until the probe returns,
     * here until the lock is released, in production until a restart.
     */
    @Test
    void aHungBreakerProbeDoesNotHoldTheOtherPartitions(TestDatabase db, TestKafka kafka) throws Exception {
        String name = "ops-hung-probe";
        String group = name + "-group";
        String topic = TestKafka.uniqueTopic("ops-hung-probe");
        Duration closeTimeout = Duration.ofSeconds(2);
        TopicPartition hungPartition = new TopicPartition(topic, 0);
        TopicPartition otherPartition = new TopicPartition(topic, 1);
        kafka.createTopic(topic, 2);
        kafka.createTopic(topic + ".dlt", 1);
        List<UUID> warmUp = newIds(2);
        UUID probe = MessageIds.next();
        List<UUID> behindProbe = newIds(5);
        List<UUID> others = newIds(20);
        Map<Integer, NavigableMap<Long, UUID>> idsByOffset = new ConcurrentHashMap<>();
        CountDownLatch probeInHandler = new CountDownLatch(1);
        AtomicInteger probeCalls = new AtomicInteger();
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();

        try (Connection control = db.connect();
                Connection locker = lockedStockRow(db, "ops_probe_lock");
                HikariDataSource pool = outagePool(db);
                LogCapture log = LogCapture.attach()) {
            Runnable invariants = () -> {
                assertThat(registry.get("outbox.consumer.retries")
                                .tag("cause", "handler")
                                .counter()
                                .count())
                        .as("database failures or a hung probe counted as handler failures")
                        .isZero();
                assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                        .as("dead-lettered records")
                        .isZero();
            };
            Supplier<ConditionFactory> watched = () -> await().atMost(WAIT).failFast("G6 broken", invariants::run);
            try (IdempotentConsumer consumer = Fixtures.builder(kafka, db, topic, name)
                    .dataSource(pool)
                    .meterRegistry(registry)
                    .concurrency(2)
                    .closeTimeout(closeTimeout)
                    .maxAttempts(2)
                    .backoff(Backoff.of(Duration.ofMillis(50), Duration.ofSeconds(1)))
                    .handler((m, tx) -> {
                        if (m.messageId().equals(probe)) {
                            probeCalls.incrementAndGet();
                            probeInHandler.countDown();
                            // waits for the row the test keeps locked, in the consumer's transaction
                            tx.fetch("select * from ops_probe_lock where id = 1 for update");
                        }
                        payments.handle(m, tx);
                    })
                    .build()) {
                consumer.start();
                publish(kafka, topic, 0, warmUp.subList(0, 1), 0, idsByOffset);
                publish(kafka, topic, 1, warmUp.subList(1, 2), 1, idsByOffset);
                watched.get().untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, group, topic));

                long outageStart = System.nanoTime();
                try {
                    stopAcceptingConnections(db, control, locker);
                    watched.get()
                            .untilAsserted(() -> assertThat(otherSessions(control))
                                    .as("sessions of the test database other than control, the locker's included")
                                    .isOne());
                    // only partition 0 has work: the call the half-open breaker lets through is its batch
                    publish(kafka, topic, 0, List.of(probe), 2, idsByOffset);
                    publish(kafka, topic, 0, behindProbe, 3, idsByOffset);
                    watched.get()
                            .untilAsserted(() -> assertThat(log.breakerTransitions(name, outageStart))
                                    .contains("CLOSED to OPEN"));
                    assertThat(probeCalls).as("handler calls during the outage").hasValue(0);
                } finally {
                    acceptConnections(db);
                }

                try {
                    assertThat(probeInHandler.await(WAIT.toSeconds(), TimeUnit.SECONDS))
                            .as("the probe reached the handler")
                            .isTrue();
                    watched.get()
                            .untilAsserted(() -> assertThat(waitingOnALock(control, "ops_probe_lock"))
                                    .as("sessions waiting on the locked row")
                                    .isOne());
                    long hungSince = System.nanoTime();
                    long probeLetThrough = log.lastBreakerTransitionTime(name, hungSince, "OPEN to HALF_OPEN");
                    assertThat(Fixtures.breakerState(registry, "database"))
                            .as("database breaker gauge while the probe waits")
                            .isEqualTo(2.0);
                    long committedHung = committed(kafka, group).get(hungPartition);

                    publish(kafka, topic, 1, others, 10, idsByOffset);
                    watched.get().untilAsserted(() -> {
                        assertThat(Fixtures.paymentsOf(db, others))
                                .as("business rows of partition 1 while partition 0's probe hangs")
                                .hasSize(others.size())
                                .allSatisfy((id, rows) -> assertThat(rows).isOne());
                        assertThat(committed(kafka, group).get(otherPartition))
                                .as("committed offset of %s", otherPartition)
                                .isEqualTo(endOffset(kafka, otherPartition));
                    });

                    // the probe let through first is still out: it neither returned nor was dropped
                    assertThat(waitingOnALock(control, "ops_probe_lock")).isOne();
                    assertThat(countProcessed(control, name, List.of(probe))).isZero();
                    assertThat(committed(kafka, group).get(hungPartition))
                            .as("committed offset of %s while its batch waits", hungPartition)
                            .isEqualTo(committedHung);
                    assertThat(log.breakerTransitions(name, probeLetThrough))
                            .as("after the hung probe was let through")
                            .containsExactly("HALF_OPEN to OPEN", "OPEN to HALF_OPEN", "HALF_OPEN to CLOSED");
                    long reopened = log.breakerTransitionTime(name, probeLetThrough, "HALF_OPEN to OPEN");
                    long probedAgain = log.breakerTransitionTime(name, reopened, "OPEN to HALF_OPEN");
                    assertThat(TimeUnit.NANOSECONDS.toMillis(reopened - probeLetThrough))
                            .as("ms from the hung probe to the breaker opening again")
                            .isGreaterThanOrEqualTo(closeTimeout.toMillis());
                    assertThat(TimeUnit.NANOSECONDS.toMillis(probedAgain - reopened))
                            .as("open interval in ms")
                            .isGreaterThanOrEqualTo(4900);
                    assertThat(Fixtures.breakerState(registry, "database")).isZero();
                } finally {
                    locker.rollback(); // the probe's handler goes on, whatever failed above
                }

                List<UUID> all = new ArrayList<>(warmUp);
                all.add(probe);
                all.addAll(behindProbe);
                all.addAll(others);
                watched.get().untilAsserted(() -> {
                    assertThat(Fixtures.paymentsOf(db, all)).hasSize(all.size());
                    Fixtures.assertCommittedToEnd(kafka, group, topic);
                });
                assertThat(Fixtures.paymentsOf(db, all))
                        .allSatisfy((id, rows) -> assertThat(rows).isOne());
                watched.get()
                        .untilAsserted(() -> assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                                .isEqualTo(all.size()));
                assertThat(Fixtures.counter(registry, "outbox.consumer.duplicates"))
                        .isZero();
                assertThat(probeCalls)
                        .as("handler calls of the hung probe's record")
                        .hasValue(1);
                assertAllHandledOnceNoneDeadLettered(db, kafka, name, topic, all.size());
                assertThat(Fixtures.breakerState(registry, "database")).isZero();
                invariants.run();
            }
        }
    }

    /**
     * G6 and G4 when the database goes away as a record is dead-lettered: its handler failed for good, and the
     * database stops accepting connections (and ends the consumer's sessions) while the dead-letter copy is being
     * sent. Recording its id then fails under the database breaker, which opens, and while it is open the consumer
     * asks the database for no connection; no offset is committed past the record, whose id is not in the table,
     * and the record behind it waits. When the database accepts connections again the breaker lets the recording
     * through and closes: the id is in processed_message once, as DEAD_LETTERED, the copy was sent once, and the
     * offsets pass the record. A copy of the message published afterwards is a duplicate, its handler not called.
     * Fails if the recording bypassed the breaker (it then never opens: a down database met one caller more per
     * dead-lettering partition), if an offset were committed ahead of the recording, or if the id were lost.
     */
    @Test
    void aDeadLetterDuringADatabaseOutageIsRecordedOnceTheBreakerLetsItThrough(TestDatabase db, TestKafka kafka)
            throws Exception {
        String name = "ops-outage-dead-letter";
        String group = name + "-group";
        String topic = TestKafka.uniqueTopic("ops-outage-dead-letter");
        TopicPartition tp = new TopicPartition(topic, 0);
        TopicPartition deadLetters = new TopicPartition(topic + ".dlt", 0);
        kafka.createTopic(topic, 1);
        kafka.createTopic(deadLetters.topic(), 1);
        UUID warmUp = MessageIds.next();
        UUID poison = MessageIds.next();
        UUID behind = MessageIds.next();
        Map<Integer, NavigableMap<Long, UUID>> idsByOffset = new ConcurrentHashMap<>();
        List<String> aheadOfDatabase = new CopyOnWriteArrayList<>();
        AtomicInteger poisonCalls = new AtomicInteger();
        CountDownLatch sending = new CountDownLatch(1);
        CountDownLatch outageStarted = new CountDownLatch(1);
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();

        OutageOnDeadLetterSend.arm(sending, outageStarted);
        try (Connection control = db.connect();
                HikariDataSource pool = outagePool(db);
                LogCapture log = LogCapture.attach()) {
            CountingDataSource dataSource = new CountingDataSource(pool);
            // an offset past the poison message (offset 1) only once its id is recorded
            Hooks checkOffsets = new Hooks() {
                @Override
                public void beforeOffsetCommit(Map<TopicPartition, OffsetAndMetadata> offsets) {
                    OffsetAndMetadata om = offsets.get(tp);
                    if (om == null || om.offset() <= 1) {
                        return;
                    }
                    try {
                        if (countProcessed(control, name, List.of(poison)) != 1) {
                            aheadOfDatabase.add(
                                    tp + " committed at " + om.offset() + " before " + poison + " was recorded");
                        }
                    } catch (SQLException e) {
                        aheadOfDatabase.add(
                                tp + " committed at " + om.offset() + " while the database could not be checked: " + e);
                    }
                }
            };
            Runnable invariants = () -> assertThat(aheadOfDatabase)
                    .as("offsets committed ahead of the database")
                    .isEmpty();
            Supplier<ConditionFactory> watched = () -> await().atMost(WAIT).failFast("G4 broken", invariants::run);
            try (IdempotentConsumer consumer = Fixtures.builder(kafka, db, topic, name)
                    .dataSource(dataSource)
                    .meterRegistry(registry)
                    .hooks(checkOffsets)
                    .concurrency(1)
                    .backoff(Backoff.of(Duration.ofMillis(50), Duration.ofSeconds(1)))
                    .producerProperties(
                            Map.of(ProducerConfig.INTERCEPTOR_CLASSES_CONFIG, OutageOnDeadLetterSend.class.getName()))
                    .handler((m, tx) -> {
                        if (m.messageId().equals(poison)) {
                            poisonCalls.incrementAndGet();
                            throw new PermanentHandlerException("not payable");
                        }
                        payments.handle(m, tx);
                    })
                    .build()) {
                consumer.start();
                publish(kafka, topic, 0, List.of(warmUp), 0, idsByOffset);
                watched.get().untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, group, topic));

                publish(kafka, topic, 0, List.of(poison, behind), 1, idsByOffset);
                assertThat(sending.await(WAIT.toSeconds(), TimeUnit.SECONDS))
                        .as("the poison message's dead-letter copy is being sent")
                        .isTrue();
                long outageStart = System.nanoTime();
                try {
                    stopAcceptingConnections(db, control);
                    outageStarted.countDown();

                    // the recording fails and opens the breaker, which stays open after a failed probe
                    watched.get().untilAsserted(() -> log.assertOpenedProbedAndOpenAgain(name, outageStart));
                    long opened = log.breakerTransitionTime(name, outageStart, "CLOSED to OPEN");
                    long probed = log.breakerTransitionTime(name, opened, "OPEN to HALF_OPEN");
                    assertThat(dataSource.callsBetween(opened, probed))
                            .as("connection attempts while the breaker was open")
                            .isZero();
                    assertThat(committed(kafka, group).get(tp))
                            .as("committed offset during the outage")
                            .isOne();
                    assertThat(countProcessed(control, name, List.of(poison, behind)))
                            .isZero();
                    assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                            .as("counted once recorded")
                            .isZero();
                    assertThat(endOffset(kafka, deadLetters))
                            .as("dead-letter copies")
                            .isOne();
                    invariants.run();
                } finally {
                    outageStarted.countDown(); // never leave the worker blocked, whatever failed above
                    acceptConnections(db);
                }

                watched.get().untilAsserted(() -> {
                    assertThat(Fixtures.paymentsOf(db, List.of(behind))).containsEntry(behind, 1L);
                    Fixtures.assertCommittedToEnd(kafka, group, topic);
                });
                assertThat(Fixtures.scalar(
                                db,
                                "select count(*) from outbox.processed_message where consumer = '" + name
                                        + "' and message_id = '" + poison + "' and outcome = 'DEAD_LETTERED'"))
                        .as("the poison message's id, recorded once as dead-lettered")
                        .isOne();
                assertThat(log.breakerTransitions(name, outageStart))
                        .as("the recording let through closed the breaker")
                        .last()
                        .isEqualTo("HALF_OPEN to CLOSED");
                assertThat(Fixtures.breakerState(registry, "database")).isZero();
                assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                        .isOne();

                // a copy of the dead-lettered message is a duplicate
                publish(kafka, topic, 0, List.of(poison), 3, idsByOffset);
                watched.get().untilAsserted(() -> {
                    assertThat(Fixtures.counter(registry, "outbox.consumer.duplicates"))
                            .isOne();
                    Fixtures.assertCommittedToEnd(kafka, group, topic);
                });
                assertThat(poisonCalls)
                        .as("handler calls of the poison message")
                        .hasValue(1);
                assertThat(Fixtures.scalar(
                                db,
                                "select count(*) from outbox.processed_message where consumer = '" + name
                                        + "' and message_id = '" + poison + "'"))
                        .isOne();
                assertThat(endOffset(kafka, deadLetters))
                        .as("dead-letter copies")
                        .isOne();
                assertThat(Fixtures.paymentsOf(db, List.of(warmUp, poison, behind)))
                        .containsOnlyKeys(warmUp, behind)
                        .allSatisfy((id, rows) -> assertThat(rows).isOne());
                invariants.run();
            }
        } finally {
            OutageOnDeadLetterSend.disarm();
        }
    }

    /**
     * G6 with a processed-id row that another transaction holds: what a consumer instance leaves when it loses its
     * partitions with a transaction open (a network partition, a paused process), whose session the server keeps
     * until TCP gives up, or for as long as the paused process lives. The consumer's own insert of that id stops
     * waiting after Database.DEDUP_LOCK_TIMEOUT, and the batch is retried after a backoff
     * (retries{cause="contention"}), without using attempts or opening the database breaker, so that its one worker
     * thread goes on with the other partition meanwhile. Before, the insert waited for as long as the row was held,
     * the worker with it, and the other partition's messages were not handled. Once the holder rolls back, the
     * message is handled once. With a savepoint per record, a message ahead of the held one in the same transaction
     * commits and is not handled again while the held one waits.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void aProcessedIdHeldByAnotherTransactionDoesNotHoldTheWorker(boolean savepoints, TestDatabase db, TestKafka kafka)
            throws Throwable {
        heldIdDoesNotHoldTheWorker(savepoints, db, kafka, "ops-held-id-" + savepoints, db.dataSource());
    }

    /**
     * The same with a session {@code statement_timeout} (1 s) shorter than the insert's own lock wait (2 s):
     * the insert of the held id is cancelled (57014) rather than timed out (55P03), and is contention all the
     * same. Before, it was an infrastructure failure: retries{cause="infrastructure"}, counted by the database
     * breaker, which could open and hold every partition while one id was held.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void aProcessedIdHeldUnderAShorterStatementTimeoutIsContentionToo(
            boolean savepoints, TestDatabase db, TestKafka kafka) throws Throwable {
        try (HikariDataSource timed =
                db.newDataSource(4, c -> c.setConnectionInitSql("set statement_timeout = '1s'"))) {
            heldIdDoesNotHoldTheWorker(savepoints, db, kafka, "ops-held-id-timeout-" + savepoints, timed);
        }
    }

    private void heldIdDoesNotHoldTheWorker(
            boolean savepoints, TestDatabase db, TestKafka kafka, String name, DataSource consumerData)
            throws Throwable {
        String topic = TestKafka.uniqueTopic("ops-held-id");
        kafka.createTopic(topic, 2);
        kafka.createTopic(topic + ".dlt", 1);
        MeterRegistry registry = new SimpleMeterRegistry();
        UUID held = MessageIds.next();
        UUID ahead = MessageIds.next();
        Map<UUID, AtomicInteger> calls = new ConcurrentHashMap<>();
        MessageHandler payments = Fixtures.paymentsHandler();
        try (Connection holder = db.dataSource().getConnection()) {
            holder.setAutoCommit(false);
            try (PreparedStatement ps = holder.prepareStatement(
                    "insert into outbox.processed_message (consumer, message_id) values (?, ?)")) {
                ps.setString(1, name);
                ps.setObject(2, held);
                ps.executeUpdate();
            }
            try (IdempotentConsumer consumer = Fixtures.builder(kafka, db, topic, name)
                            .dataSource(consumerData)
                            .meterRegistry(registry)
                            .concurrency(1)
                            .maxAttempts(2)
                            .savepointPerRecord(savepoints)
                            .backoff(Backoff.of(Duration.ofMillis(50), Duration.ofMillis(500)))
                            .handler((m, tx) -> {
                                calls.computeIfAbsent(m.messageId(), k -> new AtomicInteger())
                                        .incrementAndGet();
                                payments.handle(m, tx);
                            })
                            .build();
                    KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
                if (savepoints) {
                    ProducerRecord<byte[], byte[]> r = payment(topic, ahead, "order-ahead", 1);
                    producer.send(new ProducerRecord<>(topic, 0, r.key(), r.value(), r.headers()));
                }
                ProducerRecord<byte[], byte[]> first = payment(topic, held, "order-held", 1);
                producer.send(new ProducerRecord<>(topic, 0, first.key(), first.value(), first.headers()))
                        .get();
                consumer.start();
                // the worker is at the held row before the other partition has anything
                Fixtures.awaitLockWait(db, "%processed_message%");
                Fixtures.handledBesideAHeldRow(db, producer, topic, registry);
                assertThat(Fixtures.paymentsOf(db, List.of(held))).isEmpty();
                if (savepoints) {
                    assertThat(Fixtures.paymentsOf(db, List.of(ahead))).containsEntry(ahead, 1L);
                    assertThat(calls.get(ahead))
                            .as("handler calls of the message ahead of the held one, which committed")
                            .hasValue(1);
                }

                holder.rollback();
                await().atMost(WAIT)
                        .untilAsserted(
                                () -> assertThat(Fixtures.paymentsPerId(db)).containsEntry(held, 1L));
                assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                        .isZero();
                assertThat(registry.get("outbox.consumer.retries")
                                .tag("cause", "handler")
                                .counter()
                                .count())
                        .isZero();
                assertThat(registry.get("outbox.consumer.retries")
                                .tag("cause", "infrastructure")
                                .counter()
                                .count())
                        .as("waits for the held id are contention, not a database failure")
                        .isZero();
            } finally {
                if (!holder.isClosed()) {
                    holder.rollback();
                }
            }
        }
    }

    /**
     * G6 when the dead-letter record's row is held: a consumer instance that lost the partition takes the processed
     * id's row right after this consumer's handler failed permanently and rolled back (played here by a test
     * transaction whose insert waited behind the handler's). Recording the message as dead-lettered then stops
     * waiting after Database.DEDUP_LOCK_TIMEOUT and is retried after a backoff (retries{cause="contention"}), without
     * opening the database breaker and without publishing the dead-letter copy again, while the one worker thread
     * handles the other partition. Before, that insert waited for as long as the row was held, the worker with it,
     * and the other partition's messages were not handled. Once the holder rolls back, the id is recorded as
     * dead-lettered, with one dead-letter copy.
     */
    @Test
    void aDeadLetterRecordWhoseRowIsHeldDoesNotHoldTheWorker(TestDatabase db, TestKafka kafka) throws Throwable {
        String name = "ops-held-dead-letter";
        String topic = TestKafka.uniqueTopic("ops-held-dead-letter");
        kafka.createTopic(topic, 2);
        kafka.createTopic(topic + ".dlt", 1);
        MeterRegistry registry = new SimpleMeterRegistry();
        UUID poison = MessageIds.next();
        MessageHandler payments = Fixtures.paymentsHandler();
        try (Connection holder = db.dataSource().getConnection()) {
            holder.setAutoCommit(false);
            CompletableFuture<Void> taken = new CompletableFuture<>();
            try (IdempotentConsumer consumer = Fixtures.builder(kafka, db, topic, name)
                            .meterRegistry(registry)
                            .concurrency(1)
                            .backoff(Backoff.of(Duration.ofMillis(50), Duration.ofMillis(500)))
                            .handler((m, tx) -> {
                                if (!m.messageId().equals(poison)) {
                                    payments.handle(m, tx);
                                    return;
                                }
                                // the holder's insert waits behind this transaction's own, and holds the row
                                // once this transaction rolls back
                                CompletableFuture.runAsync(() -> {
                                    try (PreparedStatement ps = holder.prepareStatement(
                                            "insert into outbox.processed_message (consumer, message_id) values (?, ?)")) {
                                        ps.setString(1, name);
                                        ps.setObject(2, poison);
                                        ps.executeUpdate();
                                        taken.complete(null);
                                    } catch (SQLException e) {
                                        taken.completeExceptionally(e);
                                    }
                                });
                                Fixtures.awaitLockWait(db, "insert into outbox.processed_message%");
                                throw new PermanentHandlerException("not payable");
                            })
                            .build();
                    KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
                ProducerRecord<byte[], byte[]> first = payment(topic, poison, "order-poison", 1);
                producer.send(new ProducerRecord<>(topic, 0, first.key(), first.value(), first.headers()))
                        .get();
                consumer.start();
                taken.get(WAIT.toSeconds(), TimeUnit.SECONDS);
                // the worker is at the dead-letter record before the other partition has anything
                Fixtures.awaitLockWait(db, "%DEAD_LETTERED%");
                Fixtures.handledBesideAHeldRow(db, producer, topic, registry);

                holder.rollback();
                await().atMost(WAIT)
                        .until(() -> Fixtures.scalar(
                                        db,
                                        "select count(*) from outbox.processed_message where consumer = '" + name
                                                + "' and message_id = '" + poison + "' and outcome = 'DEAD_LETTERED'")
                                == 1);
                assertThat(Fixtures.readAll(kafka, topic + ".dlt", 2, Duration.ofSeconds(5)))
                        .as("dead-letter copies of the poison message")
                        .hasSize(1);
                assertThat(Fixtures.paymentsOf(db, List.of(poison))).isEmpty();
            } finally {
                if (!holder.isClosed()) {
                    holder.rollback();
                }
            }
        }
    }

    /**
     * G4 against a handler that ends the consumer's transaction itself (a commit through tx, also after a comment or
     * as the second statement of a string, or through the connection tx hands out, also through a statement or a
     * prepared statement of it, or through a statement's getConnection()): refused with an error that says why, so the batch's processed ids never commit ahead
     * of their handlers. Before, the commit in the second record's handler committed the ids of all three records of
     * the batch; the third record's handler then failed once, the batch rolled back, and on the retry the third
     * record was a duplicate: never handled. Now each of the three is handled once.
     */
    @ParameterizedTest
    @ValueSource(
            strings = {
                "sql",
                "sql-after-a-comment",
                "sql-second-statement",
                "jdbc",
                "jdbc-statement",
                "jdbc-prepared",
                "jdbc-statements-connection"
            })
    void aHandlerCannotCommitTheConsumersTransaction(String how, TestDatabase db, TestKafka kafka) throws Throwable {
        String name = "ops-handler-commit-" + how;
        String topic = TestKafka.uniqueTopic("ops-handler-commit");
        kafka.createTopic(topic, 1);
        kafka.createTopic(topic + ".dlt", 1);
        List<UUID> ids = List.of(MessageIds.next(), MessageIds.next(), MessageIds.next());
        AtomicInteger commits = new AtomicInteger();
        AtomicInteger thirdCalls = new AtomicInteger();
        List<Throwable> refusals = new CopyOnWriteArrayList<>();
        MessageHandler payments = Fixtures.paymentsHandler();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            for (int i = 0; i < ids.size(); i++) {
                producer.send(payment(topic, ids.get(i), "order-commit-" + i, i));
            }
            producer.flush();
        }
        try (IdempotentConsumer consumer = Fixtures.builder(kafka, db, topic, name)
                .concurrency(1)
                .maxRecordsPerTransaction(3)
                .backoff(Backoff.of(Duration.ofMillis(50), Duration.ofMillis(200)))
                .handler((m, tx) -> {
                    payments.handle(m, tx);
                    if (m.messageId().equals(ids.get(1)) && commits.getAndIncrement() == 0) {
                        try {
                            switch (how) {
                                case "sql" -> tx.execute("commit");
                                case "sql-after-a-comment" -> tx.execute("/* c */ commit");
                                case "sql-second-statement" -> tx.execute("select 1; commit");
                                case "jdbc" -> tx.connection(Connection::commit);
                                case "jdbc-statement" ->
                                    tx.connection(c -> {
                                        try (Statement s = c.createStatement()) {
                                            s.execute("commit");
                                        }
                                    });
                                case "jdbc-prepared" ->
                                    tx.connection(c -> {
                                        try (PreparedStatement ps = c.prepareStatement("commit")) {
                                            ps.execute();
                                        }
                                    });
                                case "jdbc-statements-connection" ->
                                    tx.connection(c -> {
                                        try (Statement s = c.createStatement()) {
                                            s.getConnection().commit();
                                        }
                                    });
                                default -> throw new IllegalArgumentException(how);
                            }
                        } catch (RuntimeException e) {
                            refusals.add(e);
                            throw e;
                        }
                    }
                    if (m.messageId().equals(ids.get(2)) && thirdCalls.getAndIncrement() == 0) {
                        throw new IllegalStateException("the third record fails once");
                    }
                })
                .build()) {
            consumer.start();
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(Fixtures.paymentsOf(db, ids))
                            .as("payments per message")
                            .containsOnlyKeys(ids)
                            .allSatisfy((id, n) -> assertThat(n).isOne()));
        }
        assertThat(refusals).hasSize(1);
        assertThat(refusals.get(0)).hasStackTraceContaining("a handler may not end the consumer's transaction");
    }

    /**
     * Re-admitting a dead-lettered id whose row another transaction holds (a replayed copy being handled, or an
     * instance that lost its partitions with its transaction open) fails after Database.DEDUP_LOCK_TIMEOUT with a
     * message that says so, instead of holding the caller (an operator's command, an admin endpoint) for as long as
     * the row is held; once the row is free, the same call re-admits it.
     */
    @Test
    void readmittingAHeldIdFailsInsteadOfWaiting(TestDatabase db, TestKafka kafka) throws Throwable {
        String name = "ops-readmit-held";
        String topic = TestKafka.uniqueTopic("ops-readmit-held");
        UUID id = MessageIds.next();
        try (Connection setup = db.dataSource().getConnection();
                PreparedStatement ps = setup.prepareStatement("insert into outbox.processed_message"
                        + " (consumer, message_id, outcome) values (?, ?, 'DEAD_LETTERED')")) {
            ps.setString(1, name);
            ps.setObject(2, id);
            ps.executeUpdate();
        }
        try (IdempotentConsumer consumer = Fixtures.builder(kafka, db, topic, name)
                        .handler((m, tx) -> {})
                        .build();
                Connection holder = db.dataSource().getConnection()) {
            holder.setAutoCommit(false);
            try (PreparedStatement lock = holder.prepareStatement(
                    "select 1 from outbox.processed_message where consumer = ? and message_id = ? for update")) {
                lock.setString(1, name);
                lock.setObject(2, id);
                lock.executeQuery().close();
            }
            Assertions.assertTimeoutPreemptively(
                    Duration.ofSeconds(20),
                    () -> assertThatThrownBy(() -> consumer.readmitDeadLettered(List.of(id)))
                            .isInstanceOf(DataAccessException.class)
                            .hasMessageContaining("SQLState 55P03")
                            .hasMessageContaining("another transaction holds the row")
                            .hasMessageContaining("nothing was re-admitted"));
            holder.rollback();
            assertThat(consumer.readmitDeadLettered(List.of(id))).isEqualTo(1);
        }
    }

    /**
     * G6 against G7: lock contention inside the handler that a retry cures, here a lock timeout
     * (SQLState 55P03) on a connection that keeps working, is a transient failure. It is retried
     * without using up the handler's attempts: with maxAttempts 2 it fails many more times than that,
     * and is neither counted as a handler failure nor dead-lettered. It says nothing about the
     * database's health, so the shared database circuit breaker stays closed (other partitions are
     * not stalled by one hot row). When the lock is released the message is handled exactly once.
     * Fails if such errors were classified as handler failures (the message would be dead-lettered
     * after two attempts and never applied) or fed the database breaker (it opens after 5).
     */
    @Test
    void transientDatabaseErrorInTheHandlerIsRetriedNotDeadLettered(TestDatabase db, TestKafka kafka) throws Throwable {
        String name = "ops-lock";
        String topic = TestKafka.uniqueTopic("ops-lock");
        kafka.createTopic(topic, 1);
        kafka.createTopic(topic + ".dlt", 1);
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();
        UUID id = MessageIds.next();
        try (Connection locker = lockedStockRow(db, "ops_stock")) {
            try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
                producer.send(payment(topic, id, "order-lock", 7)).get();
            }
            try (IdempotentConsumer consumer = Fixtures.builder(kafka, db, topic, name)
                    .meterRegistry(registry)
                    .maxAttempts(2)
                    .backoff(Backoff.of(Duration.ofMillis(50), Duration.ofMillis(500)))
                    .handler((m, tx) -> {
                        tx.execute("set local lock_timeout = '200ms'");
                        tx.execute("update ops_stock set reserved = reserved + 1 where id = 1");
                        payments.handle(m, tx);
                    })
                    .build()) {
                consumer.start();
                ThrowingRunnable notAHandlerFailure = () -> {
                    assertThat(registry.get("outbox.consumer.retries")
                                    .tag("cause", "handler")
                                    .counter()
                                    .count())
                            .as("lock timeouts counted as handler failures")
                            .isZero();
                    assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                            .as("dead-lettered records")
                            .isZero();
                    assertThat(Fixtures.breakerState(registry, "database"))
                            .as("database breaker gauge")
                            .isZero();
                };
                await().atMost(WAIT)
                        .failFast("G7 misclassified a transient database error", notAHandlerFailure)
                        .untilAsserted(() -> assertThat(registry.get("outbox.consumer.retries")
                                        .tag("cause", "transient")
                                        .counter()
                                        .count())
                                .as("lock timeouts retried as transient failures")
                                .isGreaterThanOrEqualTo(8));
                assertThat(consumer.readiness().databaseBreakerClosed()).isTrue();
                notAHandlerFailure.run();
                assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                        .isZero();

                locker.rollback();
                await().atMost(WAIT).untilAsserted(() -> {
                    assertThat(Fixtures.paymentsPerId(db)).containsEntry(id, 1L);
                    assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                            .isOne();
                });
                assertThat(Fixtures.scalar(db, "select reserved from ops_stock where id = 1"))
                        .isOne();
                assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                        .isZero();
                assertThat(endOffset(kafka, new TopicPartition(topic + ".dlt", 0)))
                        .as("dead-letter records")
                        .isZero();
            } finally {
                if (!locker.isClosed()) {
                    locker.rollback();
                }
            }
        }
    }

    /**
     * G7, and what consumer-dedup/README.md says of statement timeouts: a handler whose session sets
     * only {@code statement_timeout} and waits for a row lock another transaction holds fails with
     * 57014, which is an ordinary handler failure by default (PostgreSQL raises it for slow queries
     * too): with maxAttempts 2 the message is dead-lettered, and the business write never applied.
     * Fails if 57014 were taken for contention (it would wait for the lock instead).
     */
    @Test
    void aStatementTimeoutInTheHandlerIsAHandlerFailureByDefault(TestDatabase db, TestKafka kafka) throws Throwable {
        statementTimeoutInTheHandler(db, kafka, "ops-timeout", null);
    }

    /**
     * The README's remedy for a handler whose statement timeouts can only be lock waits: a {@code
     * failureClassifier} that returns {@link FailureKind#TRANSIENT} for 57014. The message is then
     * retried without using attempts while the lock is held, and applied exactly once when it is
     * released, nothing dead-lettered. Fails if the classifier's answer were not applied to database
     * errors raised by the handler.
     */
    @Test
    void aStatementTimeoutClassifiedTransientWaitsForTheLock(TestDatabase db, TestKafka kafka) throws Throwable {
        statementTimeoutInTheHandler(db, kafka, "ops-timeout-transient", e -> {
            for (Throwable t = e; t != null; t = t.getCause()) {
                if (t instanceof SQLException sql && "57014".equals(sql.getSQLState())) {
                    return FailureKind.TRANSIENT;
                }
            }
            return null;
        });
    }

    /**
     * Runs a handler that waits for a locked row under {@code statement_timeout = 200ms}, with
     * maxAttempts 2, while the test holds the lock for a few seconds.
     *
     * @param classifier the consumer's failure classifier, or null for the default rule
     */
    private void statementTimeoutInTheHandler(
            TestDatabase db, TestKafka kafka, String name, Function<Throwable, FailureKind> classifier)
            throws Throwable {
        String topic = TestKafka.uniqueTopic(name);
        String table = name.replace('-', '_');
        kafka.createTopic(topic, 1);
        kafka.createTopic(topic + ".dlt", 1);
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();
        UUID id = MessageIds.next();
        try (Connection locker = lockedStockRow(db, table)) {
            try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
                producer.send(payment(topic, id, "order-timeout", 7)).get();
            }
            IdempotentConsumer.Builder builder = Fixtures.builder(kafka, db, topic, name)
                    .meterRegistry(registry)
                    .maxAttempts(2)
                    .backoff(Backoff.of(Duration.ofMillis(50), Duration.ofMillis(500)))
                    .handler((m, tx) -> {
                        tx.execute("set local statement_timeout = '200ms'");
                        tx.execute("update " + table + " set reserved = reserved + 1 where id = 1");
                        payments.handle(m, tx);
                    });
            if (classifier != null) {
                builder.failureClassifier(classifier);
            }
            try (IdempotentConsumer consumer = builder.build()) {
                consumer.start();
                if (classifier == null) {
                    await().atMost(WAIT)
                            .untilAsserted(() -> assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                                    .as("dead-lettered after its two attempts")
                                    .isOne());
                    assertThat(endOffset(kafka, new TopicPartition(topic + ".dlt", 0)))
                            .as("dead-letter records")
                            .isOne();
                } else {
                    await().atMost(WAIT)
                            .untilAsserted(() -> assertThat(registry.get("outbox.consumer.retries")
                                            .tag("cause", "transient")
                                            .counter()
                                            .count())
                                    .as("statement timeouts retried as transient failures")
                                    .isGreaterThanOrEqualTo(4));
                    assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                            .isZero();
                }
                locker.rollback();
                if (classifier == null) {
                    assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                            .isZero();
                    assertThat(Fixtures.paymentsPerId(db)).doesNotContainKey(id);
                } else {
                    await().atMost(WAIT)
                            .untilAsserted(
                                    () -> assertThat(Fixtures.paymentsPerId(db)).containsEntry(id, 1L));
                    assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                            .isZero();
                    assertThat(registry.get("outbox.consumer.retries")
                                    .tag("cause", "handler")
                                    .counter()
                                    .count())
                            .isZero();
                }
                assertThat(Fixtures.scalar(db, "select reserved from " + table + " where id = 1"))
                        .isEqualTo(classifier == null ? 0 : 1);
            } finally {
                if (!locker.isClosed()) {
                    locker.rollback();
                }
            }
        }
    }

    /**
     * Creates {@code table (id, reserved)} with the row 1 and locks that row in a transaction of its
     * own.
     *
     * @return the connection holding the lock, until its rollback
     */
    private static Connection lockedStockRow(TestDatabase db, String table) throws SQLException {
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("create table " + table + "(id int primary key, reserved int not null)");
            st.execute("insert into " + table + " values (1, 0)");
        }
        Connection locker = db.connect();
        locker.setAutoCommit(false);
        try (Statement st = locker.createStatement()) {
            st.execute("select * from " + table + " where id = 1 for update");
        }
        return locker;
    }

    /**
     * The retention guard: at start the consumer asks the brokers for each topic's retention.ms and
     * segment.ms and warns about a topic that keeps records longer than the consumer keeps processed
     * ids (a replay from old offsets would apply purged ids again), or for ever (retention.ms -1); a
     * topic whose retention.ms plus segment.ms is shorter gets no warning. Fails if the topic's
     * retention is not checked.
     */
    @Test
    void retentionGuardWarnsWhenATopicOutlivesTheProcessedIds(TestDatabase db, TestKafka kafka) throws Exception {
        String longTopic = TestKafka.uniqueTopic("ops-retention-long");
        String foreverTopic = TestKafka.uniqueTopic("ops-retention-forever");
        String shortTopic = TestKafka.uniqueTopic("ops-retention-short");
        createTopics(
                kafka,
                Map.of(
                        longTopic,
                        Map.of("retention.ms", days(30)),
                        foreverTopic,
                        Map.of("retention.ms", "-1"),
                        shortTopic,
                        Map.of("retention.ms", days(2), "segment.ms", days(1))));
        try (LogCapture log = LogCapture.attach();
                IdempotentConsumer consumer =
                        keepingIdsAWeek(db, kafka, "ops-retention", longTopic, foreverTopic, shortTopic)) {
            consumer.start();
            List<String> messages =
                    retentionGuardWithout(log, "ops-retention", m -> m.contains("topic " + shortTopic + " "));
            assertThat(messages)
                    .anyMatch(m -> m.contains("topic " + longTopic + " keeps records for up to 37d (retention.ms="
                            + days(30) + " (30d) plus segment.ms=" + days(7) + " (7d)"));
            assertThat(messages)
                    .anyMatch(m -> m.contains("topic " + foreverTopic + " keeps records for ever (retention.ms=-1"));
            await().atMost(WAIT)
                    .untilAsserted(
                            () -> assertThat(consumer.readiness().ready()).isTrue());
        }
    }

    /**
     * The retention guard counts segment.ms on top of retention.ms: Kafka deletes whole segments, and
     * a segment only once its newest record is older than retention.ms, so a record can be read for up
     * to retention.ms + segment.ms. A topic with retention.ms of 6 days and Kafka's default segment.ms
     * of 7 days keeps records for up to 13 days, longer than the 7 days the consumer keeps processed
     * ids: the consumer warns, naming both settings, their sum and the retention to set. Before, only
     * retention.ms was compared, and this topic passed without a word.
     */
    @Test
    void retentionGuardCountsTheSegmentOnTopOfRetentionMs(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("ops-retention-segment");
        createTopics(kafka, Map.of(topic, Map.of("retention.ms", days(6))));
        try (LogCapture log = LogCapture.attach();
                IdempotentConsumer consumer = keepingIdsAWeek(db, kafka, "ops-retention-segment", topic)) {
            consumer.start();
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(log.messages("ops-retention-segment"))
                            .anyMatch(m -> m.contains("topic " + topic + " keeps records for up to 13d (retention.ms="
                                            + days(6) + " (6d) plus segment.ms=" + days(7) + " (7d)")
                                    && m.contains("longer than this consumer keeps processed ids (7d)")
                                    && m.contains("Set retention(...) to at least 13d, or lower the topic's"
                                            + " retention.ms or segment.ms so that their sum is at most 7d")));
        }
    }

    /**
     * The retention guard is silent about a topic whose retention.ms plus segment.ms is within the
     * retention of processed ids: 6 days and 1 day against the consumer's 7 days (the examples'
     * orders topic), the longest a record can be read equal to the retention, not longer.
     */
    @Test
    void retentionGuardIsSilentWhenRetentionPlusSegmentFitsTheProcessedIds(TestDatabase db, TestKafka kafka)
            throws Exception {
        String topic = TestKafka.uniqueTopic("ops-retention-fits");
        createTopics(kafka, Map.of(topic, Map.of("retention.ms", days(6), "segment.ms", days(1))));
        try (LogCapture log = LogCapture.attach();
                IdempotentConsumer consumer = keepingIdsAWeek(db, kafka, "ops-retention-fits", topic)) {
            consumer.start();
            List<String> messages =
                    retentionGuardWithout(log, "ops-retention-fits", m -> m.contains("topic " + topic + " "));
            assertThat(messages)
                    .anyMatch(m -> m.contains("retention guard checked topics [" + topic
                            + "] against the retention of processed ids (7d): 0 of them can keep records longer"));
        }
    }

    /**
     * The retention guard on {@code cleanup.policy=compact,delete}: such a topic also deletes records
     * older than retention.ms, each key's last one too, so it gets the time check (retention.ms plus
     * segment.ms), not the compacted topic's "kept for ever" warning: with 2 days plus 1 day it is
     * silent, with 6 days plus the default 7 days it warns that records are kept for up to 13 days.
     * Before, any policy containing "compact" was warned about as kept for ever.
     */
    @Test
    void retentionGuardAppliesTheTimeCheckToCompactDelete(TestDatabase db, TestKafka kafka) throws Exception {
        String shortTopic = TestKafka.uniqueTopic("ops-retention-cd-short");
        String longTopic = TestKafka.uniqueTopic("ops-retention-cd-long");
        createTopics(
                kafka,
                Map.of(
                        shortTopic,
                                Map.of(
                                        "cleanup.policy",
                                        "compact,delete",
                                        "retention.ms",
                                        days(2),
                                        "segment.ms",
                                        days(1)),
                        longTopic, Map.of("cleanup.policy", "compact,delete", "retention.ms", days(6))));
        try (LogCapture log = LogCapture.attach();
                IdempotentConsumer consumer = keepingIdsAWeek(db, kafka, "ops-retention-cd", shortTopic, longTopic)) {
            consumer.start();
            List<String> messages = retentionGuardWithout(
                    log, "ops-retention-cd", m -> m.contains("for ever") || m.contains("topic " + shortTopic + " "));
            assertThat(messages)
                    .anyMatch(m -> m.contains("topic " + longTopic + " keeps records for up to 13d (retention.ms="
                            + days(6) + " (6d) plus segment.ms=" + days(7) + " (7d)"));
        }
    }

    /** Creates each topic with its settings, one partition, and waits for it. */
    private static void createTopics(TestKafka kafka, Map<String, Map<String, String>> topics) throws Exception {
        try (Admin admin = kafka.admin()) {
            admin.createTopics(topics.entrySet().stream()
                            .map(t -> new NewTopic(t.getKey(), 1, (short) 1).configs(t.getValue()))
                            .toList())
                    .all()
                    .get(30, TimeUnit.SECONDS);
        }
    }

    /** @return {@code n} days in milliseconds, as a topic setting is written */
    private static String days(int n) {
        return Long.toString(Duration.ofDays(n).toMillis());
    }

    /**
     * Waits until the retention guard of consumer {@code name} logged the line that ends its run, or
     * a message matching {@code unwanted}, then asserts that none matches {@code unwanted}.
     *
     * @return the consumer's log messages then, the guard's warnings among them
     */
    private static List<String> retentionGuardWithout(LogCapture log, String name, Predicate<String> unwanted) {
        await().atMost(WAIT)
                .untilAsserted(() -> assertThat(log.messages(name))
                        .anyMatch(m -> m.contains("retention guard checked topics") || unwanted.test(m)));
        List<String> messages = log.messages(name);
        assertThat(messages).noneMatch(unwanted);
        return messages;
    }

    /**
     * The retention guard on a compacted topic: it keeps each key's last record for ever, whatever
     * its retention.ms says, so a replay from old offsets would apply each key's last message again
     * once its id was purged; the consumer warns at start. Before, a compacted topic with a short
     * retention.ms passed without a word.
     */
    @Test
    void retentionGuardWarnsAboutACompactedTopic(TestDatabase db, TestKafka kafka) throws Exception {
        String compacted = TestKafka.uniqueTopic("ops-retention-compacted");
        try (Admin admin = kafka.admin()) {
            admin.createTopics(List.of(new NewTopic(compacted, 1, (short) 1)
                            .configs(Map.of(
                                    "cleanup.policy",
                                    "compact",
                                    "retention.ms",
                                    Long.toString(Duration.ofDays(1).toMillis())))))
                    .all()
                    .get(30, TimeUnit.SECONDS);
        }
        try (LogCapture log = LogCapture.attach();
                IdempotentConsumer consumer = keepingIdsAWeek(db, kafka, "ops-retention-compacted", compacted)) {
            consumer.start();
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(log.messages("ops-retention-compacted"))
                            .anyMatch(
                                    m -> m.contains("topic " + compacted + " is compacted (cleanup.policy=compact)")));
        }
    }

    /** A consumer named {@code name} (its group {@code name-group}) that keeps processed ids for 7 days. */
    private static IdempotentConsumer keepingIdsAWeek(TestDatabase db, TestKafka kafka, String name, String... topics) {
        return IdempotentConsumer.builder()
                .kafkaProperties(Fixtures.consumerProperties(kafka, name + "-group"))
                .topics(topics)
                .consumerName(name)
                .dataSource(db.dataSource())
                .handler(Fixtures.paymentsHandler())
                .purgeInterval(Duration.ZERO)
                .meterRegistry(new SimpleMeterRegistry())
                .retention(Duration.ofDays(7))
                .build();
    }

    /**
     * The staleness guard: a message whose outbox created-at is older than the retention of
     * processed ids (its id may have been purged) is still handled, but not silently: it is counted
     * under outbox.consumer.stale and logged with its id; a recent message is not. Fails if old
     * messages were treated as new without saying so.
     */
    @Test
    void messageOlderThanTheRetentionIsCountedAndLogged(TestDatabase db, TestKafka kafka) throws Exception {
        String name = "ops-stale";
        String topic = TestKafka.uniqueTopic("ops-stale");
        kafka.createTopic(topic, 1);
        UUID old = MessageIds.next();
        UUID recent = MessageIds.next();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            var a = payment(topic, old, "order-old", 1);
            a.headers()
                    .add(
                            OutboxHeaders.CREATED_AT,
                            Instant.now().minus(Duration.ofHours(3)).toString().getBytes(StandardCharsets.UTF_8));
            producer.send(a);
            var b = payment(topic, recent, "order-recent", 2);
            b.headers().add(OutboxHeaders.CREATED_AT, Instant.now().toString().getBytes(StandardCharsets.UTF_8));
            producer.send(b);
            producer.flush();
        }
        MeterRegistry registry = new SimpleMeterRegistry();
        try (LogCapture log = LogCapture.attach();
                IdempotentConsumer consumer = Fixtures.builder(kafka, db, topic, name)
                        .meterRegistry(registry)
                        .retention(Duration.ofHours(1))
                        .build()) {
            consumer.start();
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                            .isEqualTo(2));
            assertThat(Fixtures.counter(registry, "outbox.consumer.stale")).isOne();
            assertThat(log.messages(name))
                    .anyMatch(m -> m.contains("message " + old + " ") && m.contains("older than the retention"))
                    .noneMatch(m -> m.contains("message " + recent + " "));
            assertThat(Fixtures.paymentsOf(db, List.of(old, recent))).hasSize(2);
        }
    }

    /**
     * Readiness and a bounded dead-letter send: on a broker that does not create topics, the
     * dead-letter topic is missing. Each publish attempt gives up after closeTimeout (2 s) instead of
     * blocking the worker for the producer's default 60 s, the dead-letter breaker opens and the
     * consumer reports itself not ready, naming the breaker. Once the topic exists, the record is
     * dead-lettered and the consumer is ready again; after close() it is not. Fails if a send could
     * block a worker for max.block.ms (no retry would be seen within 30 s) or readiness ignored the
     * dead-letter breaker.
     */
    @Test
    void readinessFollowsTheDeadLetterBreakerAndSendsAreBounded(TestDatabase db) throws Exception {
        String name = "ops-ready";
        String topic = "ops-ready";
        try (TestKafka own = TestKafka.startInJvm(Map.of("auto.create.topics.enable", "false"))) {
            own.createTopic(topic, 1);
            try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(own)) {
                producer.send(payment(topic, MessageIds.next(), "order-ready", 1))
                        .get();
            }
            MeterRegistry registry = new SimpleMeterRegistry();
            IdempotentConsumer consumer = Fixtures.builder(own, db, topic, name)
                    .meterRegistry(registry)
                    .closeTimeout(Duration.ofSeconds(2))
                    .backoff(Backoff.of(Duration.ofMillis(50), Duration.ofMillis(200)))
                    .handler((m, tx) -> {
                        throw new PermanentHandlerException("not payable");
                    })
                    .build();
            try {
                assertThat(consumer.readiness()).satisfies(r -> {
                    assertThat(r.ready()).isFalse();
                    assertThat(r.running()).isFalse();
                    assertThat(r.reason()).contains("not running");
                });
                consumer.start();
                long started = System.nanoTime();
                await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                    assertThat(registry.get("outbox.consumer.retries")
                                    .tag("cause", "infrastructure")
                                    .counter()
                                    .count())
                            .as("bounded dead-letter attempts")
                            .isGreaterThanOrEqualTo(3);
                    assertThat(consumer.readiness()).satisfies(r -> {
                        assertThat(r.ready()).isFalse();
                        assertThat(r.running()).isTrue();
                        assertThat(r.assigned()).isTrue();
                        assertThat(r.partitions()).isOne();
                        assertThat(r.deadLetterBreakerClosed()).isFalse();
                        assertThat(r.reason()).contains("dead-letter circuit breaker");
                    });
                });
                assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(Duration.ofSeconds(30));
                own.createTopic(topic + ".dlt", 1);
                await().atMost(WAIT).untilAsserted(() -> {
                    assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                            .isOne();
                    assertThat(consumer.readiness().ready())
                            .as("%s", consumer.readiness())
                            .isTrue();
                });
                await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(own, name + "-group", topic));
            } finally {
                consumer.close();
            }
            assertThat(consumer.readiness().ready()).isFalse();
            assertThat(consumer.readiness().reason()).contains("not running");
        }
    }

    /**
     * Metrics: two consumers of one name in one registry (say two deployments of a handler in one
     * JVM) keep their own breaker, lag and buffered bytes gauges, tagged consumer.instance, and closing one leaves the
     * other's gauges; without a registry of its own, a consumer's meters go to Micrometer's global
     * registry, where an application's registry is attached. Fails if the gauges collided (one gauge
     * for both, removed by the first close) or the meters went to a private registry.
     */
    @Test
    void metersOfTwoConsumersOfOneNameDoNotCollideAndDefaultToTheGlobalRegistry(TestDatabase db, TestKafka kafka)
            throws Exception {
        String name = "ops-meters";
        String topicA = TestKafka.uniqueTopic("ops-meters-a");
        String topicB = TestKafka.uniqueTopic("ops-meters-b");
        kafka.createTopic(topicA, 1);
        kafka.createTopic(topicB, 1);
        MeterRegistry shared = new SimpleMeterRegistry();
        try (IdempotentConsumer a = IdempotentConsumer.builder()
                        .kafkaProperties(Fixtures.consumerProperties(kafka, name + "-a"))
                        .topics(topicA)
                        .consumerName(name)
                        .dataSource(db.dataSource())
                        .handler(Fixtures.paymentsHandler())
                        .purgeInterval(Duration.ZERO)
                        .meterRegistry(shared)
                        .build();
                IdempotentConsumer b = IdempotentConsumer.builder()
                        .kafkaProperties(Fixtures.consumerProperties(kafka, name + "-b"))
                        .topics(topicB)
                        .consumerName(name)
                        .dataSource(db.dataSource())
                        .handler(Fixtures.paymentsHandler())
                        .purgeInterval(Duration.ZERO)
                        .meterRegistry(shared)
                        .build()) {
            a.start();
            b.start();
            await().atMost(WAIT).untilAsserted(() -> {
                assertThat(shared.find("outbox.consumer.breaker.state")
                                .tag("breaker", "database")
                                .gauges())
                        .hasSize(2);
                assertThat(shared.find("outbox.consumer.lag").gauges()).hasSize(2);
            });
            assertThat(shared.find("outbox.consumer.buffered.bytes").gauges()).hasSize(2);
            a.close();
            assertThat(shared.find("outbox.consumer.buffered.bytes").gauges()).hasSize(1);
            assertThat(shared.find("outbox.consumer.breaker.state")
                            .tag("breaker", "database")
                            .gauges())
                    .hasSize(1);
            assertThat(shared.find("outbox.consumer.lag").gauges()).hasSize(1);
            assertThat(shared.find("outbox.consumer.lag").tag("topic", topicB).gauges())
                    .hasSize(1);
        }

        SimpleMeterRegistry application = new SimpleMeterRegistry();
        Metrics.globalRegistry.add(application);
        String topic = TestKafka.uniqueTopic("ops-meters-global");
        kafka.createTopic(topic, 1);
        UUID id = MessageIds.next();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            producer.send(payment(topic, id, "order-global", 1)).get();
        }
        try (IdempotentConsumer consumer = IdempotentConsumer.builder()
                .kafkaProperties(Fixtures.consumerProperties(kafka, "ops-meters-global-group"))
                .topics(topic)
                .consumerName("ops-meters-global")
                .dataSource(db.dataSource())
                .handler(Fixtures.paymentsHandler())
                .purgeInterval(Duration.ZERO)
                .build()) {
            consumer.start();
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(application
                                    .find("outbox.consumer.handled")
                                    .tag("consumer", "ops-meters-global")
                                    .counter())
                            .isNotNull()
                            .satisfies(c -> assertThat(c.count()).isOne()));
        } finally {
            Metrics.globalRegistry.remove(application);
        }
    }

    // --- database helpers

    /**
     * Every one of {@code count} records of {@code topic} has exactly one dedup row, marked handled,
     * and the dead-letter topic is empty.
     */
    private static void assertAllHandledOnceNoneDeadLettered(
            TestDatabase db, TestKafka kafka, String name, String topic, int count) throws Exception {
        assertThat(Fixtures.scalar(
                        db,
                        "select count(*) from outbox.processed_message where consumer = '" + name
                                + "' and outcome = 'HANDLED'"))
                .as("handled dedup rows")
                .isEqualTo(count);
        assertThat(Fixtures.scalar(db, "select count(*) from outbox.processed_message where consumer = '" + name + "'"))
                .as("dedup rows")
                .isEqualTo(count);
        assertThat(endOffset(kafka, new TopicPartition(topic + ".dlt", 0)))
                .as("dead-letter records")
                .isZero();
    }

    private static void seedProcessed(TestDatabase db, String consumer, int count, Duration age) throws SQLException {
        try (Connection c = db.connect();
                PreparedStatement ps =
                        c.prepareStatement("insert into outbox.processed_message (consumer, message_id, processed_at)"
                                + " values (?, ?, now() - make_interval(secs => ?))")) {
            for (int i = 0; i < count; i++) {
                ps.setString(1, consumer);
                ps.setObject(2, MessageIds.next());
                ps.setDouble(3, age.toSeconds());
                ps.addBatch();
            }
            // one transaction: a batch in autocommit mode may commit in several parts, and a purge running
            // between them would split the count the test expects in one log line
            c.setAutoCommit(false);
            ps.executeBatch();
            c.commit();
        }
    }

    private static long processed(TestDatabase db, String consumer) throws SQLException {
        return Fixtures.scalar(db, "select count(*) from outbox.processed_message where consumer = '" + consumer + "'");
    }

    private static long processedOlderThan(TestDatabase db, String consumer, Duration age) throws SQLException {
        return Fixtures.scalar(
                db,
                "select count(*) from outbox.processed_message where consumer = '" + consumer
                        + "' and processed_at < now() - make_interval(secs => " + age.toSeconds() + ")");
    }

    private static long countProcessed(Connection control, String consumer, List<UUID> ids) throws SQLException {
        synchronized (control) { // shared by the test thread and the consumer's poll thread
            try (PreparedStatement ps = control.prepareStatement(
                    "select count(*) from outbox.processed_message where consumer = ? and message_id = any(?)")) {
                ps.setString(1, consumer);
                ps.setArray(2, control.createArrayOf("uuid", ids.toArray()));
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    return rs.getLong(1);
                }
            }
        }
    }

    /**
     * A real outage of the test database only: PostgreSQL refuses new sessions to it and its client
     * sessions are terminated, except {@code control}, which the test keeps to look inside, and
     * {@code spared} (say, one holding a lock). Run from the server's administration database, since
     * a database cannot refuse connections to itself.
     */
    private static void stopAcceptingConnections(TestDatabase db, Connection control, Connection... spared)
            throws SQLException {
        List<Integer> keep = new ArrayList<>();
        synchronized (control) {
            keep.add(backendPid(control));
        }
        for (Connection c : spared) {
            keep.add(backendPid(c));
        }
        try (Connection admin = db.server().connectAdmin();
                PreparedStatement terminate =
                        admin.prepareStatement("select pg_terminate_backend(pid) from pg_stat_activity"
                                + " where datname = ? and pid <> all(?) and backend_type = 'client backend'")) {
            try (Statement st = admin.createStatement()) {
                st.execute("alter database \"" + db.name() + "\" allow_connections false");
            }
            terminate.setString(1, db.name());
            terminate.setArray(2, admin.createArrayOf("int4", keep.toArray()));
            terminate.execute();
        }
    }

    private static int backendPid(Connection c) throws SQLException {
        try (Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select pg_backend_pid()")) {
            rs.next();
            return rs.getInt(1);
        }
    }

    /** @return the client sessions of the test database other than {@code control} */
    private static long otherSessions(Connection control) throws SQLException {
        synchronized (control) {
            try (Statement st = control.createStatement();
                    ResultSet rs = st.executeQuery("select count(*) from pg_stat_activity where datname ="
                            + " current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()")) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }

    /** @return the sessions of the test database whose statement on {@code table} waits for a lock */
    private static long waitingOnALock(Connection control, String table) throws SQLException {
        synchronized (control) {
            try (PreparedStatement ps = control.prepareStatement("select count(*) from pg_stat_activity"
                    + " where datname = current_database() and wait_event_type = 'Lock' and query like ?")) {
                ps.setString(1, "%" + table + "%");
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    return rs.getLong(1);
                }
            }
        }
    }

    private static void acceptConnections(TestDatabase db) throws SQLException {
        try (Connection admin = db.server().connectAdmin();
                Statement st = admin.createStatement()) {
            st.execute("alter database \"" + db.name() + "\" allow_connections true");
        }
    }

    /**
     * The consumer's own pool, with a short connection timeout so that each attempt during the
     * outage fails within a second instead of Hikari's default 30 s.
     */
    private static HikariDataSource outagePool(TestDatabase db) {
        return db.newDataSource(4, config -> {
            config.setConnectionTimeout(1000);
            config.setValidationTimeout(500);
            config.setPoolName("ops-outage");
        });
    }

    /** Delegates to a real pool and records when the consumer asked it for a connection. */
    private static final class CountingDataSource implements DataSource {
        private final DataSource delegate;
        private final ConcurrentLinkedQueue<Long> calls = new ConcurrentLinkedQueue<>();

        CountingDataSource(DataSource delegate) {
            this.delegate = delegate;
        }

        long callsBetween(long fromNanos, long toNanos) {
            return calls.stream()
                    .filter(t -> t - fromNanos > 0 && toNanos - t > 0)
                    .count();
        }

        @Override
        public Connection getConnection() throws SQLException {
            calls.add(System.nanoTime());
            return delegate.getConnection();
        }

        @Override
        public Connection getConnection(String username, String password) throws SQLException {
            calls.add(System.nanoTime());
            return delegate.getConnection(username, password);
        }

        @Override
        public PrintWriter getLogWriter() throws SQLException {
            return delegate.getLogWriter();
        }

        @Override
        public void setLogWriter(PrintWriter out) throws SQLException {
            delegate.setLogWriter(out);
        }

        @Override
        public void setLoginTimeout(int seconds) throws SQLException {
            delegate.setLoginTimeout(seconds);
        }

        @Override
        public int getLoginTimeout() throws SQLException {
            return delegate.getLoginTimeout();
        }

        @Override
        public java.util.logging.Logger getParentLogger() throws SQLFeatureNotSupportedException {
            return delegate.getParentLogger();
        }

        @Override
        public <T> T unwrap(Class<T> iface) throws SQLException {
            return iface.isInstance(this) ? iface.cast(this) : delegate.unwrap(iface);
        }

        @Override
        public boolean isWrapperFor(Class<?> iface) throws SQLException {
            return iface.isInstance(this) || delegate.isWrapperFor(iface);
        }
    }

    // --- Kafka helpers

    /**
     * An interceptor of the dead-letter producer: once armed, the first send counts down {@code sending} and waits
     * for {@code resume} (at most 2 minutes), so that a test acts between a record's failure and its dead letter.
     */
    public static final class OutageOnDeadLetterSend implements ProducerInterceptor<byte[], byte[]> {
        private static final AtomicReference<CountDownLatch[]> ARMED = new AtomicReference<>();

        static void arm(CountDownLatch sending, CountDownLatch resume) {
            ARMED.set(new CountDownLatch[] {sending, resume});
        }

        static void disarm() {
            ARMED.set(null);
        }

        @Override
        public ProducerRecord<byte[], byte[]> onSend(ProducerRecord<byte[], byte[]> record) {
            CountDownLatch[] latches = ARMED.getAndSet(null);
            if (latches != null) {
                latches[0].countDown();
                try {
                    latches[1].await(2, TimeUnit.MINUTES);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            return record;
        }

        @Override
        public void onAcknowledgement(RecordMetadata metadata, Exception exception) {}

        @Override
        public void close() {}

        @Override
        public void configure(Map<String, ?> configs) {}
    }

    private static List<UUID> newIds(int count) {
        List<UUID> ids = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            ids.add(MessageIds.next());
        }
        return ids;
    }

    /** Publishes one record per id and remembers at which partition and offset each one landed. */
    private static void publish(
            TestKafka kafka,
            String topic,
            List<UUID> ids,
            int firstOrder,
            Map<Integer, NavigableMap<Long, UUID>> idsByOffset)
            throws Exception {
        publish(kafka, topic, null, ids, firstOrder, idsByOffset);
    }

    /** As above, to {@code partition}, or where the producer's partitioner puts each record when null. */
    private static void publish(
            TestKafka kafka,
            String topic,
            Integer partition,
            List<UUID> ids,
            int firstOrder,
            Map<Integer, NavigableMap<Long, UUID>> idsByOffset)
            throws Exception {
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < ids.size(); i++) {
                ProducerRecord<byte[], byte[]> r =
                        payment(topic, ids.get(i), "order-" + (firstOrder + i), firstOrder + i);
                sent.add(producer.send(new ProducerRecord<>(topic, partition, r.key(), r.value(), r.headers())));
            }
            producer.flush();
            for (int i = 0; i < ids.size(); i++) {
                RecordMetadata md = sent.get(i).get(30, TimeUnit.SECONDS);
                idsByOffset
                        .computeIfAbsent(md.partition(), p -> new ConcurrentSkipListMap<>())
                        .put(md.offset(), ids.get(i));
            }
        }
    }

    private static Map<TopicPartition, Long> committed(TestKafka kafka, String group) throws Exception {
        try (Admin admin = kafka.admin()) {
            Map<TopicPartition, Long> out = new HashMap<>();
            admin.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata()
                    .get(30, TimeUnit.SECONDS)
                    .forEach((tp, om) -> out.put(tp, om == null ? null : om.offset()));
            return out;
        }
    }

    private static long endOffset(TestKafka kafka, TopicPartition tp) throws Exception {
        try (Admin admin = kafka.admin()) {
            return admin.listOffsets(Map.of(tp, OffsetSpec.latest()))
                    .partitionResult(tp)
                    .get(30, TimeUnit.SECONDS)
                    .offset();
        }
    }

    // --- metrics helpers

    /** The lag gauge of partition 0 of {@code topic}, remembered in {@code observed}; NaN before assignment. */
    private static double lag(MeterRegistry registry, String topic, List<Double> observed) {
        Gauge gauge = registry.find("outbox.consumer.lag")
                .tag("topic", topic)
                .tag("partition", "0")
                .gauge();
        if (gauge == null) {
            return Double.NaN;
        }
        double value = gauge.value();
        observed.add(value);
        return value;
    }

    // --- log capture

    /** Records the consumer's log events, with the time each was logged, while attached. */
    private static final class LogCapture extends AppenderBase<ILoggingEvent> implements AutoCloseable {
        private record Event(long nanos, String message) {}

        private final List<Event> events = new CopyOnWriteArrayList<>();
        private final Logger logger = (Logger) LoggerFactory.getLogger(CONSUMER_LOGGER);

        static LogCapture attach() {
            LogCapture capture = new LogCapture();
            capture.setName("ops-capture");
            capture.setContext(capture.logger.getLoggerContext());
            capture.start();
            capture.logger.addAppender(capture);
            return capture;
        }

        @Override
        protected void append(ILoggingEvent event) {
            // appenders run on the logging thread, so this time orders the event against other events
            events.add(new Event(System.nanoTime(), event.getFormattedMessage()));
        }

        private static String prefix(String consumer) {
            return "[consumer-dedup " + consumer + "#";
        }

        List<String> messages(String consumer) {
            return events.stream()
                    .map(Event::message)
                    .filter(m -> m.startsWith(prefix(consumer)))
                    .toList();
        }

        /** @return the database breaker's transitions ("CLOSED to OPEN", ...) logged after {@code since}, in order */
        List<String> breakerTransitions(String consumer, long since) {
            return events.stream()
                    .filter(e -> e.nanos() - since > 0 && e.message().startsWith(prefix(consumer)))
                    .map(Event::message)
                    .filter(m -> m.contains(" database circuit breaker: State transition from "))
                    .map(m -> m.substring(m.indexOf("State transition from ") + "State transition from ".length()))
                    .toList();
        }

        /** Asserts that the database breaker opened after {@code since}, was probed, and opened again. */
        void assertOpenedProbedAndOpenAgain(String consumer, long since) {
            assertThat(breakerTransitions(consumer, since))
                    .containsSubsequence("CLOSED to OPEN", "OPEN to HALF_OPEN", "HALF_OPEN to OPEN");
        }

        /** @return when the first {@code transition} of the database breaker after {@code since} was logged */
        long breakerTransitionTime(String consumer, long since, String transition) {
            return events.stream()
                    .filter(e -> e.nanos() - since > 0
                            && e.message().startsWith(prefix(consumer))
                            && e.message().endsWith(" database circuit breaker: State transition from " + transition))
                    .mapToLong(Event::nanos)
                    .findFirst()
                    .orElseThrow(() -> new AssertionError("no breaker transition " + transition + " logged"));
        }

        /** @return when the last {@code transition} of the database breaker before {@code before} was logged */
        long lastBreakerTransitionTime(String consumer, long before, String transition) {
            return events.stream()
                    .filter(e -> before - e.nanos() > 0
                            && e.message().startsWith(prefix(consumer))
                            && e.message().endsWith(" database circuit breaker: State transition from " + transition))
                    .mapToLong(Event::nanos)
                    .reduce((first, second) -> second)
                    .orElseThrow(() -> new AssertionError("no breaker transition " + transition + " logged"));
        }

        @Override
        public void close() {
            logger.detachAppender(this);
            stop();
        }
    }
}
