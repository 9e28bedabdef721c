package dev.outbox.consumer;

import static dev.outbox.consumer.Fixtures.builder;
import static dev.outbox.consumer.Fixtures.header;
import static dev.outbox.consumer.Fixtures.payment;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.MessageIds;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.retry.Backoff;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.postgresql.util.PSQLException;

/**
 * How handler failures are classified (transient, retried, permanent), commit-time failures,
 * handler {@code Error}s, and what an operator does with dead letters: replay them, and what
 * happens when the dead-letter topic refuses a record for good.
 */
@ExtendWith(RealServices.class)
@Timeout(300)
class FailureClassificationIT {
    private static final Duration WAIT = Duration.ofSeconds(90);
    private static final Backoff FAST = Backoff.of(Duration.ofMillis(20), Duration.ofMillis(100));

    @BeforeAll
    static void schema(TestDatabase db) throws Exception {
        Fixtures.createPayments(db);
    }

    /**
     * G7 versus a short outage downstream, with the default retry schedule: the handler's
     * downstream service fails every call for 2.5 seconds; every message that arrives meanwhile is
     * still handled once, none is dead-lettered. Fails with a schedule that gives up within about a
     * second (the former 5 attempts from 100 ms dead-lettered them).
     */
    @Test
    void defaultScheduleRidesOutAShortDownstreamOutage(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("edge-blip");
        kafka.createTopic(topic, 1);
        kafka.createTopic(topic + ".dlt", 1);
        List<UUID> ids = publish(kafka, topic, 5);
        AtomicLong outageEnds = new AtomicLong();
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();
        try (IdempotentConsumer consumer = builder(kafka, db, topic, "edge-blip")
                .meterRegistry(registry)
                .handler((m, tx) -> {
                    outageEnds.compareAndSet(
                            0, System.nanoTime() + Duration.ofMillis(2500).toNanos());
                    if (System.nanoTime() - outageEnds.get() < 0) {
                        throw new IllegalStateException("payment service answered 503");
                    }
                    payments.handle(m, tx);
                })
                .build()) {
            consumer.start();
            await().atMost(WAIT)
                    .failFast(
                            "dead-lettered during the outage",
                            () -> assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                                    .isZero())
                    .untilAsserted(
                            () -> assertThat(Fixtures.paymentsOf(db, ids)).hasSize(ids.size()));
            assertThat(Fixtures.paymentsOf(db, ids))
                    .allSatisfy((id, n) -> assertThat(n).isOne());
            assertThat(registry.get("outbox.consumer.retries")
                            .tag("cause", "handler")
                            .counter()
                            .count())
                    .isPositive();
            assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                    .isZero();
        }
    }

    /**
     * G6 and G7 with the handler's own classification: a {@link TransientHandlerException} is
     * retried far beyond maxAttempts (2) without being dead-lettered and the record is then handled
     * once; a {@link PermanentHandlerException} is dead-lettered after one call; an exception the
     * configured classifier calls permanent likewise; the partition goes on. Fails if the markers or
     * the classifier were ignored (the transient record would be dead-lettered after 2 calls, the
     * permanent ones called twice).
     */
    @Test
    void handlerSaysTransientOrPermanent(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("edge-kinds");
        kafka.createTopic(topic, 1);
        kafka.createTopic(topic + ".dlt", 1);
        List<UUID> ids = publish(kafka, topic, 4);
        UUID transientId = ids.get(0);
        UUID permanentId = ids.get(1);
        UUID classifiedId = ids.get(2);
        Map<UUID, AtomicInteger> calls = new ConcurrentHashMap<>();
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();
        try (IdempotentConsumer consumer = builder(kafka, db, topic, "edge-kinds")
                .meterRegistry(registry)
                .maxAttempts(2)
                .backoff(FAST)
                .maxRecordsPerTransaction(1)
                .failureClassifier(t -> t instanceof UnsupportedOperationException ? FailureKind.PERMANENT : null)
                .handler((m, tx) -> {
                    int call = calls.computeIfAbsent(m.messageId(), id -> new AtomicInteger())
                            .incrementAndGet();
                    payments.handle(m, tx);
                    if (m.messageId().equals(transientId) && call <= 12) {
                        throw new TransientHandlerException("rate limited", new IOException("429"));
                    }
                    if (m.messageId().equals(permanentId)) {
                        throw new IllegalArgumentException(
                                "wrapped", new PermanentHandlerException("order has no lines"));
                    }
                    if (m.messageId().equals(classifiedId)) {
                        throw new UnsupportedOperationException("currency XTS");
                    }
                })
                .build()) {
            consumer.start();
            await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, "edge-kinds-group", topic));
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                            .isEqualTo(2));
            assertThat(calls.get(transientId)).hasValue(13);
            assertThat(calls.get(permanentId)).hasValue(1);
            assertThat(calls.get(classifiedId)).hasValue(1);
            assertThat(Fixtures.paymentsOf(db, ids))
                    .containsOnlyKeys(transientId, ids.get(3))
                    .allSatisfy((id, n) -> assertThat(n).isOne());
            assertThat(registry.get("outbox.consumer.retries")
                            .tag("cause", "transient")
                            .counter()
                            .count())
                    .isEqualTo(12);
            assertThat(registry.get("outbox.consumer.retries")
                            .tag("cause", "handler")
                            .counter()
                            .count())
                    .isZero();
            assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                    .isEqualTo(2);
        }
        List<ConsumerRecord<byte[], byte[]>> dead = Fixtures.readAll(kafka, topic + ".dlt", 2, WAIT);
        assertThat(dead)
                .extracting(r -> header(r, OutboxHeaders.MESSAGE_ID))
                .containsExactly(permanentId.toString(), classifiedId.toString());
        assertThat(dead).extracting(r -> header(r, DeadLetterHeaders.ATTEMPTS)).containsExactly("1", "1");
    }

    /**
     * G6 and G7 for a record whose handler stays transient: its retries are bounded in time by
     * {@code maxTransientRetry}, then it is dead-lettered and the partition moves on. Fails if
     * transient failures were retried without end (the record would hold its partition, and the
     * record behind it would never be handled).
     */
    @Test
    void transientFailuresAreBoundedInTime(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("edge-transient-bound");
        kafka.createTopic(topic, 1);
        kafka.createTopic(topic + ".dlt", 1);
        List<UUID> ids = publish(kafka, topic, 2);
        UUID stuck = ids.get(0);
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();
        AtomicInteger stuckCalls = new AtomicInteger();
        long started = System.nanoTime();
        try (IdempotentConsumer consumer = builder(kafka, db, topic, "edge-transient-bound")
                .meterRegistry(registry)
                .backoff(FAST)
                .maxRecordsPerTransaction(1)
                .maxTransientRetry(Duration.ofSeconds(2))
                .handler((m, tx) -> {
                    payments.handle(m, tx);
                    if (m.messageId().equals(stuck)) {
                        stuckCalls.incrementAndGet();
                        throw new TransientHandlerException("downstream away", new IOException("503"));
                    }
                })
                .build()) {
            consumer.start();
            await().atMost(WAIT)
                    .untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, "edge-transient-bound-group", topic));
            assertThat(Duration.ofNanos(System.nanoTime() - started)).isGreaterThanOrEqualTo(Duration.ofSeconds(2));
            assertThat(stuckCalls.get()).isGreaterThan(1);
            assertThat(Fixtures.paymentsOf(db, ids)).containsOnlyKeys(ids.get(1));
            assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                    .isOne();
        }
        assertThat(Fixtures.readAll(kafka, topic + ".dlt", 1, WAIT))
                .singleElement()
                .satisfies(r -> assertThat(header(r, OutboxHeaders.MESSAGE_ID)).isEqualTo(stuck.toString()));
    }

    /**
     * G7 across a rebalance: a record whose handler always fails, with {@code maxAttempts} 3, is
     * dead-lettered after three calls in all, though the group rebalanced (eagerly, revoking every
     * partition) during its second attempt and assigned its partition back. Before, the new worker
     * started the record's attempts afresh: three more calls after every rebalance, so that under
     * frequent rebalances (deploys, autoscaling) the record held its partition for ever.
     */
    @Test
    void aRecordsAttemptsAreNotRestartedByARebalance(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("edge-rebalance-attempts");
        String other = TestKafka.uniqueTopic("edge-rebalance-other");
        kafka.createTopic(topic, 1);
        kafka.createTopic(topic + ".dlt", 1);
        kafka.createTopic(other, 1);
        List<UUID> ids = publish(kafka, topic, 2);
        UUID stuck = ids.get(0);
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();
        MeterRegistry otherRegistry = new SimpleMeterRegistry();
        AtomicInteger stuckCalls = new AtomicInteger();
        String name = "edge-rebalance-attempts";
        // eager: every rebalance revokes every partition, also the ones it assigns back
        Map<String, Object> eager = new HashMap<>(Fixtures.consumerProperties(kafka, name + "-group"));
        eager.put("partition.assignment.strategy", "org.apache.kafka.clients.consumer.RangeAssignor");
        try (IdempotentConsumer consumer = builder(kafka, db, topic, name)
                .kafkaProperties(eager)
                .meterRegistry(registry)
                .maxAttempts(3)
                .backoff(FAST)
                .maxRecordsPerTransaction(1)
                .handler((m, tx) -> {
                    payments.handle(m, tx);
                    if (m.messageId().equals(stuck)) {
                        stuckCalls.incrementAndGet();
                        // long enough for the rebalance below to revoke the partition during the second attempt
                        Thread.sleep(2_000);
                        throw new IllegalStateException("always fails");
                    }
                })
                .build()) {
            consumer.start();
            await().atMost(WAIT).until(() -> stuckCalls.get() == 2);
            // a member of the same group for another topic: the group rebalances, and the partition comes back
            try (IdempotentConsumer joiner = builder(kafka, db, other, name)
                    .kafkaProperties(eager)
                    .meterRegistry(otherRegistry)
                    .build()) {
                joiner.start();
                await().atMost(WAIT)
                        .untilAsserted(() -> assertThat(registry.find("outbox.consumer.dead.lettered")
                                        .counter())
                                .isNotNull()
                                .satisfies(c -> assertThat(c.count()).isOne()));
            }
            await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, name + "-group", topic));
            assertThat(stuckCalls.get())
                    .as("calls of the record's handler, across the rebalance")
                    .isEqualTo(3);
            assertThat(Fixtures.paymentsOf(db, ids)).containsOnlyKeys(ids.get(1));
        }
        assertThat(Fixtures.readAll(kafka, topic + ".dlt", 1, WAIT))
                .singleElement()
                .satisfies(r -> assertThat(header(r, OutboxHeaders.MESSAGE_ID)).isEqualTo(stuck.toString()));
    }

    /**
     * G6 and G7 for a connection failure of another database the handler uses: the handler reads
     * from a second connection (its "reporting database") whose session the server has terminated,
     * so it throws a class 08 or 57P01 SQLException while the consumer's own connection and database
     * are healthy. That failure is the handler's, not a database outage of the consumer: it is
     * retried as {@code TRANSIENT} (no attempt used) until {@code maxTransientRetry}, then
     * dead-lettered, and the partition goes on; the database circuit breaker stays closed and no
     * infrastructure retry is counted. Also when the handler's own transaction was aborted before
     * (a failed statement it caught), which leaves the consumer's connection usable. Fails if every
     * transient SQLState in the handler's failure were taken for an outage of the consumer's own
     * database (the record would be retried without end and the breaker would open for every
     * partition). {@code IdempotentConsumerIT#lostDatabaseConnectionIsRetriedWithoutConsumingAttempts}
     * keeps the other side: a lost connection of the consumer's own transaction is still an outage.
     */
    @ParameterizedTest(name = "ownTransactionAborted={0}")
    @ValueSource(booleans = {false, true})
    void aConnectionFailureOfAnotherDatabaseIsTheHandlersTransientFailure(
            boolean ownTransactionAborted, TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("edge-foreign-db");
        String name = "edge-foreign-db-" + ownTransactionAborted;
        kafka.createTopic(topic, 1);
        kafka.createTopic(topic + ".dlt", 1);
        List<UUID> ids = publish(kafka, topic, 2);
        UUID reporting = ids.get(0);
        List<String> statesSeen = new CopyOnWriteArrayList<>();
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();
        try (Connection reportingDb = terminatedConnection(db);
                IdempotentConsumer consumer = builder(kafka, db, topic, name)
                        .meterRegistry(registry)
                        .maxAttempts(2)
                        .backoff(FAST)
                        .maxRecordsPerTransaction(1)
                        .maxTransientRetry(Duration.ofSeconds(2))
                        .handler((m, tx) -> {
                            payments.handle(m, tx);
                            if (!m.messageId().equals(reporting)) {
                                return;
                            }
                            if (ownTransactionAborted) {
                                try {
                                    tx.execute("select 1 / 0");
                                } catch (RuntimeException ignored) {
                                    // the consumer's transaction is aborted now, its connection still fine
                                }
                            }
                            try (Statement st = reportingDb.createStatement()) {
                                st.execute("select 1");
                            } catch (SQLException e) {
                                statesSeen.add(String.valueOf(e.getSQLState()));
                                throw e;
                            }
                        })
                        .build()) {
            consumer.start();
            await().atMost(WAIT)
                    .failFast("taken for an outage of the consumer's database", () -> {
                        assertThat(registry.get("outbox.consumer.breaker.state")
                                        .tag("breaker", "database")
                                        .gauge()
                                        .value())
                                .as("database breaker state")
                                .isZero();
                        assertThat(registry.get("outbox.consumer.retries")
                                        .tag("cause", "infrastructure")
                                        .counter()
                                        .count())
                                .as("infrastructure retries")
                                .isZero();
                    })
                    .untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, name + "-group", topic));
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                            .isOne());
            assertThat(statesSeen)
                    .as("SQLStates the reporting connection raised")
                    .isNotEmpty()
                    .allSatisfy(state -> assertThat(state.startsWith("08") || state.equals("57P01"))
                            .as(state)
                            .isTrue());
            assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                    .isOne();
            assertThat(registry.get("outbox.consumer.retries")
                            .tag("cause", "transient")
                            .counter()
                            .count())
                    .isPositive();
            assertThat(registry.get("outbox.consumer.retries")
                            .tag("cause", "handler")
                            .counter()
                            .count())
                    .as("attempts used")
                    .isZero();
            assertThat(consumer.readiness().databaseBreakerClosed()).isTrue();
            assertThat(Fixtures.paymentsOf(db, ids)).containsOnlyKeys(ids.get(1));
        }
        assertThat(Fixtures.readAll(kafka, topic + ".dlt", 1, WAIT))
                .singleElement()
                .satisfies(r -> {
                    assertThat(header(r, OutboxHeaders.MESSAGE_ID)).isEqualTo(reporting.toString());
                    assertThat(header(r, DeadLetterHeaders.EXCEPTION_CLASS)).isEqualTo(PSQLException.class.getName());
                });
    }

    /** @return a connection to the test database whose session the server has terminated */
    private static Connection terminatedConnection(TestDatabase db) throws SQLException {
        Connection connection = db.connect();
        try (Connection admin = db.connect();
                Statement st = admin.createStatement();
                Statement pid = connection.createStatement();
                ResultSet rs = pid.executeQuery("select pg_backend_pid()")) {
            rs.next();
            long backend = rs.getLong(1);
            st.execute("select pg_terminate_backend(" + backend + ")");
            // the session ends asynchronously: wait until the server no longer lists it
            await().atMost(WAIT).until(() -> {
                try (ResultSet gone = st.executeQuery("select count(*) from pg_stat_activity where pid = " + backend)) {
                    gone.next();
                    return gone.getLong(1) == 0;
                }
            });
        }
        return connection;
    }

    /**
     * G4 and G7 for a failure at commit caused by one record's handler: a deferred unique constraint
     * fails only at COMMIT. The consumer redoes the batch one record per transaction, so the other
     * records are handled once and only the culprit is retried and dead-lettered, with the
     * constraint's error in its headers; nothing is counted as a database outage. Fails if a refused
     * commit were retried as infrastructure (forever, with no record named) or blamed on the whole
     * batch.
     */
    @ParameterizedTest(name = "savepointPerRecord={0}")
    @ValueSource(booleans = {false, true})
    void refusedCommitIsIsolatedToTheRecordThatCausedIt(boolean savepoints, TestDatabase db, TestKafka kafka)
            throws Exception {
        String table = "edge_deferred_" + savepoints;
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("create table " + table + "(order_id text, constraint " + table
                    + "_uq unique (order_id) deferrable initially deferred)");
            st.execute("insert into " + table + " values ('order-taken')");
        }
        String topic = TestKafka.uniqueTopic("edge-deferred");
        String name = "edge-deferred-" + savepoints;
        kafka.createTopic(topic, 1);
        kafka.createTopic(topic + ".dlt", 1);
        List<UUID> ids = new ArrayList<>();
        UUID culprit = MessageIds.next();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            for (int i = 0; i < 9; i++) {
                UUID id = i == 4 ? culprit : MessageIds.next();
                ids.add(id);
                producer.send(payment(topic, id, i == 4 ? "order-taken" : "order-" + i, i));
            }
            producer.flush();
        }
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();
        try (IdempotentConsumer consumer = builder(kafka, db, topic, name)
                .meterRegistry(registry)
                .maxAttempts(2)
                .backoff(FAST)
                .maxRecordsPerTransaction(50)
                .savepointPerRecord(savepoints)
                .handler((m, tx) -> {
                    payments.handle(m, tx);
                    tx.execute("insert into " + table + " values (?)", m.keyAsString());
                })
                .build()) {
            consumer.start();
            await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, name + "-group", topic));
            Set<UUID> good = new HashSet<>(ids);
            good.remove(culprit);
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                            .isEqualTo(8));
            assertThat(Fixtures.paymentsOf(db, ids))
                    .containsOnlyKeys(good)
                    .allSatisfy((id, n) -> assertThat(n).isOne());
            assertThat(Fixtures.scalar(
                            db,
                            "select count(*) from outbox.processed_message where consumer = '" + name
                                    + "' and message_id = '" + culprit + "' and outcome = 'DEAD_LETTERED'"))
                    .isOne();
            assertThat(registry.get("outbox.consumer.retries")
                            .tag("cause", "infrastructure")
                            .counter()
                            .count())
                    .isZero();
            assertThat(registry.get("outbox.consumer.retries")
                            .tag("cause", "handler")
                            .counter()
                            .count())
                    .isOne();
        }
        List<ConsumerRecord<byte[], byte[]>> dead = Fixtures.readAll(kafka, topic + ".dlt", 1, WAIT);
        assertThat(dead).singleElement().satisfies(r -> {
            assertThat(header(r, OutboxHeaders.MESSAGE_ID)).isEqualTo(culprit.toString());
            assertThat(header(r, DeadLetterHeaders.EXCEPTION_MESSAGE)).contains(table + "_uq");
            assertThat(header(r, DeadLetterHeaders.ATTEMPTS)).isEqualTo("2");
        });
    }

    /**
     * G4 and G7 for contention at commit: a serialization failure raised only at COMMIT (here by a
     * deferred constraint trigger, as a serializable transaction's pivot is refused) is contention with
     * another transaction, as when a handler's statement meets it: retried as transient, no attempt used,
     * never dead-lettered while it lasts; once it passes the message is applied once. Fails if the refused
     * commit counted as a handler failure (dead-lettered after maxAttempts 2).
     */
    @Test
    void aSerializationFailureAtCommitIsRetriedNotDeadLettered(TestDatabase db, TestKafka kafka) throws Exception {
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("create table edge_serial(order_id text)");
            st.execute("create table edge_serial_conflict(on_now boolean)");
            st.execute("insert into edge_serial_conflict values (true)");
            st.execute("create function edge_serial_refuse() returns trigger language plpgsql as $$ begin"
                    + " if exists (select 1 from edge_serial_conflict) then"
                    + " raise exception 'could not serialize access due to read/write dependencies'"
                    + " using errcode = '40001'; end if; return null; end $$");
            st.execute("create constraint trigger edge_serial_at_commit after insert on edge_serial"
                    + " deferrable initially deferred for each row execute function edge_serial_refuse()");
        }
        String topic = TestKafka.uniqueTopic("edge-serial");
        String name = "edge-serial";
        kafka.createTopic(topic, 1);
        kafka.createTopic(topic + ".dlt", 1);
        UUID id = MessageIds.next();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            producer.send(payment(topic, id, "order-serial", 1));
            producer.flush();
        }
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();
        try (IdempotentConsumer consumer = builder(kafka, db, topic, name)
                .meterRegistry(registry)
                .maxAttempts(2)
                .backoff(FAST)
                .handler((m, tx) -> {
                    payments.handle(m, tx);
                    tx.execute("insert into edge_serial values (?)", m.keyAsString());
                })
                .build()) {
            consumer.start();
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(registry.get("outbox.consumer.retries")
                                    .tag("cause", "transient")
                                    .counter()
                                    .count())
                            .isGreaterThanOrEqualTo(5));
            assertThat(registry.get("outbox.consumer.retries")
                            .tag("cause", "handler")
                            .counter()
                            .count())
                    .as("no attempt used")
                    .isZero();
            assertThat(Fixtures.paymentsOf(db, List.of(id))).isEmpty();

            try (Connection c = db.connect();
                    Statement st = c.createStatement()) {
                st.execute("delete from edge_serial_conflict");
            }
            await().atMost(WAIT)
                    .untilAsserted(() ->
                            assertThat(Fixtures.paymentsOf(db, List.of(id))).containsExactly(Map.entry(id, 1L)));
            await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, name + "-group", topic));
        }
        assertThat(Fixtures.readAll(kafka, topic + ".dlt", 0, Duration.ofSeconds(2)))
                .isEmpty();
        assertThat(Fixtures.scalar(db, "select count(*) from edge_serial")).isOne();
    }

    /**
     * G4 and G7 when the server ends the consumer's session for idling in its transaction ({@code
     * idle_in_transaction_session_timeout}): a handler that waited too
     * long between statements, or a consumer process paused (GC, SIGSTOP) mid-transaction. Nothing was
     * written; it passes by itself when the wait does not recur, so it is transient, like contention:
     * no attempt used until maxTransientRetry has passed. Here the first call waits past a 300 ms
     * timeout and the second does not: the message is applied once and nothing is dead-lettered.
     * Fails if the ended session counted as a handler failure (dead-lettered at maxAttempts 1).
     *
     * @param statementAfterTheWait whether the handler runs a statement after its wait, which meets the closed
     *     connection (a database failure: the rollback fails too), rather than returning and leaving it to the
     *     commit (25P03 there, transient)
     */
    @ParameterizedTest(name = "a statement after the wait: {0}")
    @ValueSource(booleans = {false, true})
    void aSessionEndedForIdlingInItsTransactionIsRetriedNotDeadLettered(
            boolean statementAfterTheWait, TestDatabase db, TestKafka kafka) throws Exception {
        String name = statementAfterTheWait ? "edge-idle-statement" : "edge-idle";
        String topic = TestKafka.uniqueTopic(name);
        kafka.createTopic(topic, 1);
        kafka.createTopic(topic + ".dlt", 1);
        UUID id = MessageIds.next();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            producer.send(payment(topic, id, "order-idle", 1));
            producer.flush();
        }
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();
        AtomicInteger calls = new AtomicInteger();
        try (IdempotentConsumer consumer = builder(kafka, db, topic, name)
                .meterRegistry(registry)
                .maxAttempts(1)
                .backoff(FAST)
                .handler((m, tx) -> {
                    payments.handle(m, tx);
                    if (calls.incrementAndGet() == 1) {
                        tx.execute("set local idle_in_transaction_session_timeout = '300ms'");
                        Thread.sleep(1_000);
                        if (statementAfterTheWait) {
                            tx.execute("select 1");
                        }
                    }
                })
                .build()) {
            consumer.start();
            await().atMost(WAIT)
                    .untilAsserted(() ->
                            assertThat(Fixtures.paymentsOf(db, List.of(id))).containsExactly(Map.entry(id, 1L)));
            await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, name + "-group", topic));
            assertThat(calls)
                    .as("the ended session's call, then the one that committed")
                    .hasValue(2);
            assertThat(registry.get("outbox.consumer.retries")
                            .tag("cause", "handler")
                            .counter()
                            .count())
                    .as("no attempt used")
                    .isZero();
        }
        assertThat(Fixtures.readAll(kafka, topic + ".dlt", 0, Duration.ofSeconds(2)))
                .isEmpty();
    }

    /**
     * G7 for handler {@code Error}s: an {@code AssertionError} and a {@code StackOverflowError} are
     * handler failures, retried up to maxAttempts and dead-lettered; the partition goes on. Fails if
     * an Error escaped the handler's failure path (it was retried forever as an unexpected failure).
     */
    @Test
    void handlerErrorsAreHandlerFailures(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("edge-error");
        kafka.createTopic(topic, 1);
        kafka.createTopic(topic + ".dlt", 1);
        List<UUID> ids = publish(kafka, topic, 3);
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();
        Map<UUID, AtomicInteger> calls = new ConcurrentHashMap<>();
        try (IdempotentConsumer consumer = builder(kafka, db, topic, "edge-error")
                .meterRegistry(registry)
                .maxAttempts(3)
                .backoff(FAST)
                .handler((m, tx) -> {
                    calls.computeIfAbsent(m.messageId(), id -> new AtomicInteger())
                            .incrementAndGet();
                    if (m.messageId().equals(ids.get(0))) {
                        throw new AssertionError("invariant broken");
                    }
                    if (m.messageId().equals(ids.get(1))) {
                        recurse(0);
                    }
                    payments.handle(m, tx);
                })
                .build()) {
            consumer.start();
            await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, "edge-error-group", topic));
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                            .isOne());
            assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                    .isEqualTo(2);
            assertThat(calls.get(ids.get(0))).hasValue(3);
            assertThat(calls.get(ids.get(1))).hasValue(3);
            assertThat(Fixtures.paymentsOf(db, ids)).containsOnlyKeys(ids.get(2));
            assertThat(registry.get("outbox.consumer.retries")
                            .tag("cause", "infrastructure")
                            .counter()
                            .count())
                    .isZero();
        }
        assertThat(Fixtures.readAll(kafka, topic + ".dlt", 2, WAIT))
                .extracting(r -> header(r, DeadLetterHeaders.EXCEPTION_CLASS))
                .containsExactly(AssertionError.class.getName(), StackOverflowError.class.getName());
    }

    @SuppressWarnings("InfiniteRecursion") // on purpose: the handler needs a StackOverflowError
    private static int recurse(int depth) {
        return recurse(depth + 1) + 1;
    }

    /**
     * Dead letters can be replayed (G4 kept): with Spring's dead-letter names ({@code <topic>.DLT}),
     * a message that failed for good is dead-lettered; after the handler is fixed, an operator copies
     * the dead-letter record back to the source topic twice with {@code dlt-replay: true}: it is
     * handled exactly once and its row becomes HANDLED. A copy without the header is skipped as a
     * duplicate, unless its id was re-admitted with {@link IdempotentConsumer#readmitDeadLettered}.
     * Fails if the DEAD_LETTERED row kept the replayed copies out, or let both copies in.
     */
    @Test
    void deadLettersCanBeReplayedOnce(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("edge-replay");
        String name = "edge-replay";
        kafka.createTopic(topic, 1);
        kafka.createTopic(topic + ".DLT", 1);
        List<UUID> ids = publish(kafka, topic, 3);
        UUID viaHeader = ids.get(0);
        UUID viaApi = ids.get(1);
        AtomicBoolean broken = new AtomicBoolean(true);
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();
        try (IdempotentConsumer consumer = builder(kafka, db, topic, name)
                .meterRegistry(registry)
                .deadLetterTopicSuffix(IdempotentConsumer.Builder.SPRING_DEAD_LETTER_SUFFIX)
                .handler((m, tx) -> {
                    if (broken.get() && !m.messageId().equals(ids.get(2))) {
                        throw new PermanentHandlerException("bug in the handler");
                    }
                    payments.handle(m, tx);
                })
                .build()) {
            consumer.start();
            await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, name + "-group", topic));
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                            .isEqualTo(2));
            List<ConsumerRecord<byte[], byte[]>> dead = Fixtures.readAll(kafka, topic + ".DLT", 2, WAIT);
            assertThat(dead).hasSize(2);
            ConsumerRecord<byte[], byte[]> deadViaHeader = dead.stream()
                    .filter(r -> viaHeader.toString().equals(header(r, OutboxHeaders.MESSAGE_ID)))
                    .findFirst()
                    .orElseThrow();
            ConsumerRecord<byte[], byte[]> deadViaApi = dead.stream()
                    .filter(r -> viaApi.toString().equals(header(r, OutboxHeaders.MESSAGE_ID)))
                    .findFirst()
                    .orElseThrow();

            broken.set(false); // the handler is fixed and redeployed
            try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
                producer.send(copy(topic, deadViaApi, false)).get(); // not re-admitted yet: a duplicate
                producer.send(copy(topic, deadViaHeader, true));
                producer.send(copy(topic, deadViaHeader, true));
                producer.flush();
            }
            await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, name + "-group", topic));
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(Fixtures.counter(registry, "outbox.consumer.replayed"))
                            .isOne());
            assertThat(Fixtures.paymentsOf(db, ids))
                    .containsOnlyKeys(viaHeader, ids.get(2))
                    .allSatisfy((id, n) -> assertThat(n).isOne());

            assertThat(consumer.readmitDeadLettered(List.of(viaApi, viaHeader, ids.get(2))))
                    .isOne();
            try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
                producer.send(copy(topic, deadViaApi, false)).get();
            }
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(Fixtures.paymentsOf(db, ids))
                            .hasSize(3)
                            .allSatisfy((id, n) -> assertThat(n).isOne()));
            assertThat(Fixtures.scalar(
                            db,
                            "select count(*) from outbox.processed_message where consumer = '" + name
                                    + "' and outcome = 'HANDLED'"))
                    .isEqualTo(3);
        }
    }

    /** A copy of a dead-letter record for its source topic, as an operator's tool would publish it. */
    private static ProducerRecord<byte[], byte[]> copy(
            String topic, ConsumerRecord<byte[], byte[]> dead, boolean replay) {
        ProducerRecord<byte[], byte[]> r = new ProducerRecord<>(topic, null, dead.key(), dead.value(), dead.headers());
        if (replay) {
            r.headers().add(DeadLetterHeaders.REPLAY, "true".getBytes(StandardCharsets.UTF_8));
        }
        return r;
    }

    /**
     * G7 when the dead-letter topic refuses a record for good: a record too large for the
     * dead-letter producer is published without its value (header {@code dlt-value-dropped}); one
     * too large even without it (its headers alone exceed the limit) is counted under {@code
     * outbox.consumer.dead.letter.refused}, recorded DEAD_LETTERED and skipped, and the partition goes
     * on. Fails if such permanent producer errors were retried forever (the partition would stop).
     */
    @Test
    void deadLetterTopicRefusingARecordForGoodIsCountedAndSkipped(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("edge-refused");
        String name = "edge-refused";
        kafka.createTopic(topic, 1);
        kafka.createTopic(topic + ".dlt", 1);
        UUID bigValue = MessageIds.next();
        UUID bigHeader = MessageIds.next();
        UUID last = MessageIds.next();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            ProducerRecord<byte[], byte[]> a = payment(topic, bigValue, "big-value", 1);
            producer.send(new ProducerRecord<>(topic, null, a.key(), new byte[8000], a.headers()));
            ProducerRecord<byte[], byte[]> b = payment(topic, bigHeader, "big-header", 2);
            b.headers().add("trace-baggage", new byte[8000]);
            producer.send(b);
            producer.send(payment(topic, last, "last", 3));
            producer.flush();
        }
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();
        try (IdempotentConsumer consumer = builder(kafka, db, topic, name)
                .meterRegistry(registry)
                .producerProperties(Map.of("max.request.size", "4096"))
                .handler((m, tx) -> {
                    if (!m.messageId().equals(last)) {
                        throw new PermanentHandlerException("not payable");
                    }
                    payments.handle(m, tx);
                })
                .build()) {
            consumer.start();
            await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, name + "-group", topic));
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                            .isOne());
            assertThat(Fixtures.counter(registry, "outbox.consumer.dead.letter.refused"))
                    .isOne();
            assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                    .isOne();
            assertThat(Fixtures.scalar(
                            db,
                            "select count(*) from outbox.processed_message where consumer = '" + name
                                    + "' and outcome = 'DEAD_LETTERED'"))
                    .isEqualTo(2);
        }
        List<ConsumerRecord<byte[], byte[]>> dead = Fixtures.readAll(kafka, topic + ".dlt", 1, WAIT);
        assertThat(dead).singleElement().satisfies(r -> {
            assertThat(header(r, OutboxHeaders.MESSAGE_ID)).isEqualTo(bigValue.toString());
            assertThat(r.value()).isNull();
            assertThat(header(r, DeadLetterHeaders.VALUE_DROPPED)).isEqualTo("8000");
            assertThat(header(r, DeadLetterHeaders.ORIGINAL_OFFSET)).isEqualTo("0");
        });
    }

    private static List<UUID> publish(TestKafka kafka, String topic, int count) throws Exception {
        List<UUID> ids = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            for (int i = 0; i < count; i++) {
                UUID id = MessageIds.next();
                ids.add(id);
                producer.send(payment(topic, id, "order-" + i, i));
            }
            producer.flush();
        }
        return ids;
    }
}
