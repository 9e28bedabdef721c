package dev.outbox.consumer;

import static dev.outbox.consumer.Fixtures.builder;
import static dev.outbox.consumer.Fixtures.header;
import static dev.outbox.consumer.Fixtures.payment;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.consumer.internal.Hooks;
import dev.outbox.core.MessageIds;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.retry.Backoff;
import dev.outbox.schemas.AvroCodec;
import dev.outbox.schemas.orders.OrderLine;
import dev.outbox.schemas.orders.OrderPlaced;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

@ExtendWith(RealServices.class)
@Timeout(300)
class IdempotentConsumerIT {
    private static final Duration WAIT = Duration.ofSeconds(90);

    @BeforeAll
    static void schema(TestDatabase db) throws Exception {
        Fixtures.createPayments(db);
    }

    /**
     * G4 across redelivery: every message id published once, twice or three times (some copies
     * adjacent, some long after) leaves exactly one business row, and the offsets reach the end.
     */
    @Test
    void appliesEachMessageIdOnceWhateverTheNumberOfCopies(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("payments");
        kafka.createTopic(topic, 3);
        List<UUID> ids = new ArrayList<>();
        List<ProducerRecord<byte[], byte[]>> late = new ArrayList<>();
        int copies = 0;
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            for (int i = 0; i < 500; i++) {
                UUID id = MessageIds.next();
                ids.add(id);
                ProducerRecord<byte[], byte[]> r = payment(topic, id, "order-" + i, i);
                producer.send(r);
                if (i % 5 == 0) {
                    producer.send(r); // adjacent duplicate, likely in the same transaction batch
                    copies++;
                }
                if (i % 7 == 0) {
                    late.add(r);
                }
            }
            producer.flush();
        }
        MeterRegistry registry = new SimpleMeterRegistry();
        try (IdempotentConsumer consumer = builder(kafka, db, topic, "dedup-copies")
                .meterRegistry(registry)
                .concurrency(2)
                .maxRecordsPerTransaction(20)
                .build()) {
            consumer.start();
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(
                                    Fixtures.paymentsOf(db, new HashSet<>(ids)).size())
                            .isEqualTo(ids.size()));
            try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
                late.forEach(producer::send); // redelivered long after the first copy committed
                producer.flush();
            }
            int totalCopies = copies + late.size();
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(Fixtures.counter(registry, "outbox.consumer.duplicates"))
                            .isEqualTo(totalCopies));
            await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, "dedup-copies-group", topic));
            // a worker publishes a batch's offsets before it counts the batch: the counter may trail the commit
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                            .isEqualTo(ids.size()));
            assertThat(Fixtures.paymentsOf(db, new HashSet<>(ids)))
                    .hasSize(ids.size())
                    .allSatisfy((id, n) -> assertThat(n).isOne());
            assertThat(Fixtures.scalar(
                            db, "select count(*) from outbox.processed_message where consumer = 'dedup-copies'"))
                    .isEqualTo(ids.size());
            assertThat(registry.find("outbox.consumer.lag").gauges()).hasSize(3);
            assertThat(registry.find("outbox.consumer.handler").timer().count()).isEqualTo(ids.size());
        }
    }

    /**
     * G4 inside one transaction: two copies of a message id in one batch (the path where the bulk
     * insert adds the id once and the second copy is found in the same statement's result) apply it
     * once. The records before and after both copies report the same PostgreSQL transaction id, so
     * the batch really held both copies.
     */
    @Test
    void copiesInOneBatchApplyOnce(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("in-batch");
        kafka.createTopic(topic, 1);
        UUID first = MessageIds.next();
        UUID twice = MessageIds.next();
        UUID last = MessageIds.next();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            producer.send(payment(topic, first, "first", 1));
            producer.send(payment(topic, twice, "twice", 2));
            producer.send(payment(topic, twice, "twice", 2));
            producer.send(payment(topic, last, "last", 3));
            producer.flush();
        }
        Map<UUID, Long> transactionOf = new ConcurrentHashMap<>();
        AtomicInteger calls = new AtomicInteger();
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();
        try (IdempotentConsumer consumer = builder(kafka, db, topic, "in-batch")
                .meterRegistry(registry)
                .maxRecordsPerTransaction(50)
                .handler((m, tx) -> {
                    calls.incrementAndGet();
                    transactionOf.put(m.messageId(), ((Number) tx.fetchValue("select txid_current()")).longValue());
                    payments.handle(m, tx);
                })
                .build()) {
            consumer.start();
            await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, "in-batch-group", topic));
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(Fixtures.counter(registry, "outbox.consumer.duplicates"))
                            .isOne());
        }
        assertThat(transactionOf.get(first))
                .as("one transaction around both copies")
                .isEqualTo(transactionOf.get(last))
                .isEqualTo(transactionOf.get(twice));
        assertThat(calls).hasValue(3);
        assertThat(Fixtures.paymentsOf(db, List.of(first, twice, last)))
                .hasSize(3)
                .allSatisfy((id, n) -> assertThat(n).isOne());
    }

    /**
     * G4 for a crash between the database commit and the offset commit: the first consumer dies
     * right after its transaction committed and before any offset reaches Kafka; the record is
     * redelivered to its successor, which counts it as a duplicate and adds no row.
     */
    @Test
    void crashBetweenDatabaseCommitAndOffsetCommitIsAbsorbed(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("crash-window");
        kafka.createTopic(topic, 1);
        UUID id = MessageIds.next();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            producer.send(payment(topic, id, "order-crash", 42)).get();
        }
        List<Map<TopicPartition, OffsetAndMetadata>> attempted = new CopyOnWriteArrayList<>();
        Hooks crashBeforeOffsetCommit = new Hooks() {
            @Override
            public void beforeOffsetCommit(Map<TopicPartition, OffsetAndMetadata> offsets) {
                attempted.add(offsets);
                throw new IllegalStateException("simulated crash after the database commit, before the offset commit");
            }
        };
        MeterRegistry first = new SimpleMeterRegistry();
        try (IdempotentConsumer consumer = builder(kafka, db, topic, "crash-window")
                .meterRegistry(first)
                .hooks(crashBeforeOffsetCommit)
                .build()) {
            consumer.start();
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(consumer.isRunning()).isFalse());
            // the offset commit that crashed can run before the worker counted the record it had committed
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(Fixtures.counter(first, "outbox.consumer.handled"))
                            .isOne());
        }
        assertThat(attempted).hasSize(1);
        assertThat(Fixtures.counter(first, "outbox.consumer.handled")).isOne();
        assertThat(Fixtures.paymentsOf(db, Set.of(id))).containsEntry(id, 1L);
        try (var admin = kafka.admin()) {
            assertThat(admin.listConsumerGroupOffsets("crash-window-group")
                            .partitionsToOffsetAndMetadata()
                            .get())
                    .as("no offset was committed")
                    .allSatisfy((tp, o) -> assertThat(o).isNull());
        }

        MeterRegistry second = new SimpleMeterRegistry();
        try (IdempotentConsumer consumer =
                builder(kafka, db, topic, "crash-window").meterRegistry(second).build()) {
            consumer.start();
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(Fixtures.counter(second, "outbox.consumer.duplicates"))
                            .isOne());
            await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, "crash-window-group", topic));
            assertThat(Fixtures.counter(second, "outbox.consumer.handled")).isZero();
            assertThat(Fixtures.paymentsOf(db, Set.of(id))).containsEntry(id, 1L);
        }
    }

    /**
     * G7 and G6: a message whose handler always fails is retried with full-jitter delays within the
     * backoff's ceilings, then published to the dead-letter topic with its error headers and recorded
     * as DEAD_LETTERED; later messages of the same partition are handled. The 11 records share the
     * first transaction: without savepoints the poison rolls it back as a whole and the 5 records
     * before it are redone (their handlers run twice, their rows commit once); with a savepoint per
     * record only the poison's partial write rolls back and the records before it commit without
     * being redone (their handlers run once).
     */
    @ParameterizedTest(name = "savepointPerRecord={0}")
    @ValueSource(booleans = {false, true})
    void poisonMessageIsRetriedWithBackoffThenDeadLetteredAndThePartitionGoesOn(
            boolean savepoints, TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("poison");
        String name = "poison-" + savepoints;
        kafka.createTopic(topic, 1);
        kafka.createTopic(topic + ".dlt", 1);
        UUID poison = MessageIds.next();
        List<UUID> before = new ArrayList<>();
        List<UUID> after = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            for (int i = 0; i < 5; i++) {
                UUID id = MessageIds.next();
                before.add(id);
                producer.send(payment(topic, id, "before-" + i, i));
            }
            producer.send(payment(topic, poison, "poison", 666));
            for (int i = 0; i < 5; i++) {
                UUID id = MessageIds.next();
                after.add(id);
                producer.send(payment(topic, id, "after-" + i, i));
            }
            producer.flush();
        }
        Backoff backoff = Backoff.of(Duration.ofMillis(100), Duration.ofSeconds(5));
        List<Duration> delays = new CopyOnWriteArrayList<>();
        List<Long> attemptNanos = new CopyOnWriteArrayList<>();
        Hooks recordDelays = new Hooks() {
            @Override
            public void retryScheduled(UUID messageId, int failedAttempts, Duration delay) {
                if (messageId.equals(poison)) {
                    delays.add(delay);
                }
            }
        };
        MessageHandler payments = Fixtures.paymentsHandler();
        Map<UUID, AtomicInteger> calls = new ConcurrentHashMap<>();
        MessageHandler handler = (message, tx) -> {
            calls.computeIfAbsent(message.messageId(), id -> new AtomicInteger())
                    .incrementAndGet();
            payments.handle(message, tx); // written, then rolled back to the record's savepoint
            if (message.messageId().equals(poison)) {
                attemptNanos.add(System.nanoTime());
                throw new IllegalArgumentException("amount 666 is not payable");
            }
        };
        MeterRegistry registry = new SimpleMeterRegistry();
        try (IdempotentConsumer consumer = builder(kafka, db, topic, name)
                .handler(handler)
                .meterRegistry(registry)
                .maxAttempts(5)
                .backoff(backoff)
                .maxRecordsPerTransaction(50)
                .savepointPerRecord(savepoints)
                .hooks(recordDelays)
                .build()) {
            consumer.start();
            Set<UUID> good = new HashSet<>(before);
            good.addAll(after);
            await().atMost(WAIT)
                    .untilAsserted(
                            () -> assertThat(Fixtures.paymentsOf(db, good)).hasSize(10));
            await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, name + "-group", topic));
            assertThat(Fixtures.paymentsOf(db, good))
                    .allSatisfy((id, n) -> assertThat(n).isOne());
            assertThat(Fixtures.paymentsOf(db, Set.of(poison))).isEmpty();
            assertThat(Fixtures.scalar(
                            db,
                            "select count(*) from outbox.processed_message where consumer = '" + name + "'"
                                    + " and message_id = '" + poison + "' and outcome = 'DEAD_LETTERED'"))
                    .isOne();
            assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                    .isOne();
            assertThat(registry.find("outbox.consumer.retries")
                            .tag("cause", "handler")
                            .counter()
                            .count())
                    .isEqualTo(4);
        }

        assertThat(attemptNanos).hasSize(5);
        assertThat(delays).hasSize(4);
        for (int i = 0; i < delays.size(); i++) {
            assertThat(delays.get(i)).as("delay before retry %d", i + 1).isBetween(Duration.ZERO, backoff.ceiling(i));
            long gap = attemptNanos.get(i + 1) - attemptNanos.get(i);
            assertThat(gap)
                    .as("time between attempt %d and %d", i + 1, i + 2)
                    .isGreaterThanOrEqualTo(delays.get(i).toNanos());
        }
        assertThat(new HashSet<>(delays))
                .as("jittered, not constant: %s", delays)
                .hasSizeGreaterThan(1);
        assertThat(before)
                .as("handler calls of the records before the poison, in its first transaction")
                .allSatisfy(id -> assertThat(calls.get(id)).hasValue(savepoints ? 1 : 2));
        assertThat(after).allSatisfy(id -> assertThat(calls.get(id)).hasValue(1));
        assertThat(calls.get(poison)).hasValue(5);

        List<ConsumerRecord<byte[], byte[]>> dead = Fixtures.readAll(kafka, topic + ".dlt", 1, WAIT);
        assertThat(dead).hasSize(1);
        ConsumerRecord<byte[], byte[]> r = dead.get(0);
        assertThat(new String(r.key(), StandardCharsets.UTF_8)).isEqualTo("poison");
        assertThat(new String(r.value(), StandardCharsets.UTF_8)).isEqualTo("poison:666");
        assertThat(header(r, OutboxHeaders.MESSAGE_ID)).isEqualTo(poison.toString());
        assertThat(header(r, OutboxHeaders.MESSAGE_TYPE)).isEqualTo("PaymentRequested");
        assertThat(header(r, DeadLetterHeaders.EXCEPTION_CLASS)).isEqualTo(IllegalArgumentException.class.getName());
        assertThat(header(r, DeadLetterHeaders.EXCEPTION_MESSAGE)).isEqualTo("amount 666 is not payable");
        assertThat(header(r, DeadLetterHeaders.ATTEMPTS)).isEqualTo("5");
        assertThat(header(r, DeadLetterHeaders.ORIGINAL_TOPIC)).isEqualTo(topic);
        assertThat(header(r, DeadLetterHeaders.ORIGINAL_PARTITION)).isEqualTo("0");
        assertThat(header(r, DeadLetterHeaders.ORIGINAL_OFFSET)).isEqualTo("5");
        assertThat(header(r, DeadLetterHeaders.REASON)).isEqualTo(DeadLetterHeaders.REASON_HANDLER_FAILED);
    }

    /**
     * G4 and G7: a record without a message id, or with one that is not a UUID, goes to the
     * dead-letter topic with the reason and is never handled; the records around it are.
     */
    @Test
    void recordsWithoutUsableMessageIdAreDeadLetteredUnhandled(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("no-id");
        kafka.createTopic(topic, 1);
        kafka.createTopic(topic + ".dlt", 1);
        UUID first = MessageIds.next();
        UUID last = MessageIds.next();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            producer.send(payment(topic, first, "first", 1));
            producer.send(payment(topic, null, "missing", 2));
            ProducerRecord<byte[], byte[]> invalid = payment(topic, null, "invalid", 3);
            invalid.headers().add(OutboxHeaders.MESSAGE_ID, "not-a-uuid".getBytes(StandardCharsets.UTF_8));
            producer.send(invalid);
            ProducerRecord<byte[], byte[]> lenient = payment(topic, null, "lenient", 4);
            lenient.headers().add(OutboxHeaders.MESSAGE_ID, "1-2-3-4-5".getBytes(StandardCharsets.UTF_8));
            producer.send(lenient);
            producer.send(payment(topic, last, "last", 5));
            producer.flush();
        }
        List<String> handledKeys = new CopyOnWriteArrayList<>();
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();
        try (IdempotentConsumer consumer = builder(kafka, db, topic, "no-id")
                .meterRegistry(registry)
                .handler((m, tx) -> {
                    handledKeys.add(m.keyAsString());
                    payments.handle(m, tx);
                })
                .build()) {
            consumer.start();
            await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, "no-id-group", topic));
            assertThat(handledKeys).containsExactly("first", "last");
            assertThat(Fixtures.paymentsOf(db, Set.of(first, last)))
                    .containsOnly(Map.entry(first, 1L), Map.entry(last, 1L));
            assertThat(registry.find("outbox.consumer.dead.lettered")
                            .tag("reason", "missing-message-id")
                            .counter()
                            .count())
                    .isOne();
            assertThat(registry.find("outbox.consumer.dead.lettered")
                            .tag("reason", "invalid-message-id")
                            .counter()
                            .count())
                    .isEqualTo(2);
        }
        List<ConsumerRecord<byte[], byte[]>> dead = Fixtures.readAll(kafka, topic + ".dlt", 3, WAIT);
        assertThat(dead)
                .extracting(r -> new String(r.key(), StandardCharsets.UTF_8))
                .containsExactly("missing", "invalid", "lenient");
        assertThat(dead)
                .extracting(r -> header(r, DeadLetterHeaders.REASON))
                .containsExactly("missing-message-id", "invalid-message-id", "invalid-message-id");
        assertThat(dead)
                .extracting(r -> header(r, DeadLetterHeaders.ORIGINAL_OFFSET))
                .containsExactly("1", "2", "3");
        assertThat(dead).allSatisfy(r -> {
            assertThat(header(r, DeadLetterHeaders.ATTEMPTS)).isEqualTo("0");
            assertThat(header(r, DeadLetterHeaders.ORIGINAL_TOPIC)).isEqualTo(topic);
        });
    }

    /**
     * G7: a message id extractor that throws dead-letters its record unhandled with reason
     * invalid-message-id, and the dead-letter copy says what the extractor threw (dlt-exception-class and
     * dlt-exception-message, as for a handler's failure); the records around it are handled.
     */
    @Test
    void anExtractorThatThrowsDeadLettersTheRecordWithItsException(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("extractor-throws");
        kafka.createTopic(topic, 1);
        kafka.createTopic(topic + ".dlt", 1);
        UUID first = MessageIds.next();
        UUID last = MessageIds.next();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            producer.send(payment(topic, first, "first", 1)).get();
            producer.send(payment(topic, MessageIds.next(), "unreadable", 2)).get();
            producer.send(payment(topic, last, "last", 3)).get();
        }
        List<String> handledKeys = new CopyOnWriteArrayList<>();
        MessageHandler payments = Fixtures.paymentsHandler();
        try (IdempotentConsumer consumer = builder(kafka, db, topic, "extractor-throws")
                .messageIdExtractor(r -> {
                    if ("unreadable".equals(new String(r.key(), StandardCharsets.UTF_8))) {
                        throw new IllegalStateException("order id missing from payload version 3");
                    }
                    return ProcessedMessages.messageId(r.headers());
                })
                .handler((m, tx) -> {
                    handledKeys.add(m.keyAsString());
                    payments.handle(m, tx);
                })
                .build()) {
            consumer.start();
            await().atMost(WAIT)
                    .untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, "extractor-throws-group", topic));
            assertThat(handledKeys).containsExactly("first", "last");
        }
        ConsumerRecord<byte[], byte[]> dead =
                Fixtures.readAll(kafka, topic + ".dlt", 1, WAIT).get(0);
        assertThat(new String(dead.key(), StandardCharsets.UTF_8)).isEqualTo("unreadable");
        assertThat(header(dead, DeadLetterHeaders.REASON)).isEqualTo(DeadLetterHeaders.REASON_INVALID_MESSAGE_ID);
        assertThat(header(dead, DeadLetterHeaders.EXCEPTION_CLASS)).isEqualTo(IllegalStateException.class.getName());
        assertThat(header(dead, DeadLetterHeaders.EXCEPTION_MESSAGE))
                .isEqualTo("order id missing from payload version 3");
        assertThat(header(dead, DeadLetterHeaders.ATTEMPTS)).isEqualTo("0");
        assertThat(header(dead, DeadLetterHeaders.ORIGINAL_OFFSET)).isEqualTo("1");
    }

    /**
     * G6: a database failure inside the handler (its connection is terminated) is not a handler
     * failure: the record is retried with backoff and handled once, although maxAttempts is 1.
     */
    @Test
    void lostDatabaseConnectionIsRetriedWithoutConsumingAttempts(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("db-down");
        kafka.createTopic(topic, 1);
        kafka.createTopic(topic + ".dlt", 1);
        UUID id = MessageIds.next();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            producer.send(payment(topic, id, "order-db", 7)).get();
        }
        AtomicInteger calls = new AtomicInteger();
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();
        try (IdempotentConsumer consumer = builder(kafka, db, topic, "db-down")
                .meterRegistry(registry)
                .maxAttempts(1)
                .handler((m, tx) -> {
                    if (calls.incrementAndGet() <= 2) {
                        tx.execute("select pg_terminate_backend(pg_backend_pid())");
                    }
                    payments.handle(m, tx);
                })
                .build()) {
            consumer.start();
            await().atMost(WAIT)
                    .untilAsserted(() ->
                            assertThat(Fixtures.paymentsOf(db, Set.of(id))).containsEntry(id, 1L));
            await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, "db-down-group", topic));
            // counted by the worker after it published the offset, so possibly after the commit above
            await().atMost(WAIT)
                    .untilAsserted(() -> assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                            .isOne());
            assertThat(calls).hasValue(3);
            assertThat(registry.find("outbox.consumer.retries")
                            .tag("cause", "infrastructure")
                            .counter()
                            .count())
                    .isEqualTo(2);
            assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                    .isZero();
        }
    }

    /**
     * A handler that catches a failed statement and returns normally would otherwise make the whole
     * batch's commit roll back silently; the consumer sees the aborted transaction and treats it as
     * that record's failure. With a savepoint per record only that record rolls back and the two
     * before it commit as they are (handlers called once); without, the transaction rolls back as a
     * whole and the two before it are redone (handlers called twice). Either way every other record
     * has one row and the bad one is dead-lettered. Also when the data source's connections hide
     * pgjdbc (a pool or proxy whose connections do not unwrap to the driver's): then the consumer asks
     * the server instead of the driver (G4: no record may count as handled while its writes rolled
     * back).
     */
    @ParameterizedTest(name = "savepointPerRecord={0}, driverHidden={1}")
    @CsvSource({"false,false", "true,false", "false,true"})
    void swallowedStatementFailureCountsAsHandlerFailure(
            boolean savepoints, boolean driverHidden, TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("swallow");
        String name = "swallow-" + savepoints + "-" + driverHidden;
        kafka.createTopic(topic, 1);
        kafka.createTopic(topic + ".dlt", 1);
        List<UUID> ids = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            for (int i = 0; i < 6; i++) {
                UUID id = MessageIds.next();
                ids.add(id);
                producer.send(payment(topic, id, "order-" + i, i));
            }
            producer.flush();
        }
        UUID bad = ids.get(2);
        MessageHandler payments = Fixtures.paymentsHandler();
        MeterRegistry registry = new SimpleMeterRegistry();
        Map<UUID, AtomicInteger> calls = new ConcurrentHashMap<>();
        try (IdempotentConsumer consumer = builder(kafka, db, topic, name)
                .meterRegistry(registry)
                .maxAttempts(1)
                .savepointPerRecord(savepoints)
                .dataSource(driverHidden ? Fixtures.hidingTheDriver(db.dataSource()) : db.dataSource())
                .handler((m, tx) -> {
                    calls.computeIfAbsent(m.messageId(), id -> new AtomicInteger())
                            .incrementAndGet();
                    payments.handle(m, tx);
                    if (m.messageId().equals(bad)) {
                        try {
                            tx.execute("insert into no_such_table values (1)");
                        } catch (RuntimeException ignored) {
                            // a handler bug: the transaction is now aborted
                        }
                    }
                })
                .build()) {
            consumer.start();
            await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, name + "-group", topic));
            Set<UUID> good = new HashSet<>(ids);
            good.remove(bad);
            assertThat(Fixtures.paymentsOf(db, new HashSet<>(ids)))
                    .hasSize(5)
                    .containsOnlyKeys(good)
                    .allSatisfy((id, n) -> assertThat(n).isOne());
            assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                    .isOne();
        }
        assertThat(ids.subList(0, 2)).allSatisfy(id -> assertThat(calls.get(id)).hasValue(savepoints ? 1 : 2));
        assertThat(ids.subList(2, 6)).allSatisfy(id -> assertThat(calls.get(id)).hasValue(1));
        List<ConsumerRecord<byte[], byte[]>> dead = Fixtures.readAll(kafka, topic + ".dlt", 1, WAIT);
        assertThat(dead).singleElement().satisfies(r -> {
            assertThat(header(r, OutboxHeaders.MESSAGE_ID)).isEqualTo(bad.toString());
            assertThat(header(r, DeadLetterHeaders.EXCEPTION_MESSAGE)).contains("returned normally");
        });
    }

    /** Typed payloads: an Avro single-object-encoded record decodes with Message.payload(Class). */
    @Test
    void decodesAvroPayloads(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("avro");
        kafka.createTopic(topic, 1);
        AvroCodec codec = AvroCodec.create();
        OrderPlaced order = OrderPlaced.newBuilder()
                .setOrderId("o-1")
                .setCustomerId("c-1")
                .setAmountCents(1250)
                .setCurrency("EUR")
                .setPlacedAt(Instant.ofEpochMilli(1_700_000_000_000L))
                .setLines(List.of(
                        OrderLine.newBuilder().setSku("sku-1").setQuantity(2).build()))
                .build();
        UUID id = MessageIds.next();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            RecordHeaders headers = new RecordHeaders();
            headers.add(OutboxHeaders.MESSAGE_ID, id.toString().getBytes(StandardCharsets.UTF_8));
            producer.send(new ProducerRecord<>(
                            topic, null, "o-1".getBytes(StandardCharsets.UTF_8), codec.encode(order), headers))
                    .get();
        }
        List<OrderPlaced> seen = Collections.synchronizedList(new ArrayList<>());
        try (IdempotentConsumer consumer = builder(kafka, db, topic, "avro")
                .codec(codec)
                .handler((m, tx) -> seen.add(m.payload(OrderPlaced.class)))
                .build()) {
            consumer.start();
            await().atMost(WAIT).untilAsserted(() -> assertThat(seen).containsExactly(order));
        }
    }

    /**
     * G4 with a user DSLContext: the handler's nested jOOQ transactions become savepoints of the
     * consumer's transaction instead of committing it (a failure after a nested transaction still
     * rolls everything back and the retry applies it once); a nested transaction that fails rolls
     * back alone; a redelivered copy adds nothing.
     */
    @Test
    void nestedHandlerTransactionsAreSavepointsOfTheConsumersTransaction(TestDatabase db, TestKafka kafka)
            throws Exception {
        String topic = TestKafka.uniqueTopic("nested");
        kafka.createTopic(topic, 1);
        UUID id = MessageIds.next();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            producer.send(payment(topic, id, "order-nested", 5));
            producer.send(payment(topic, id, "order-nested", 5));
            producer.flush();
        }
        MeterRegistry registry = new SimpleMeterRegistry();
        AtomicInteger calls = new AtomicInteger();
        try (IdempotentConsumer consumer = IdempotentConsumer.builder()
                .kafkaProperties(Fixtures.consumerProperties(kafka, "nested-group"))
                .topics(topic)
                .consumerName("nested")
                .dsl(db.dsl())
                .meterRegistry(registry)
                .purgeInterval(Duration.ZERO)
                .maxRecordsPerTransaction(1)
                .backoff(Backoff.of(Duration.ofMillis(10), Duration.ofMillis(50)))
                .handler((m, tx) -> {
                    tx.transaction(nested -> nested.dsl()
                            .execute(
                                    "insert into payments(message_id, order_id, amount) values (?, 'kept', 1)",
                                    m.messageId()));
                    if (calls.incrementAndGet() == 1) {
                        // had the nested transaction committed the connection, this failure could not undo it
                        throw new IllegalStateException("first attempt fails after the nested transaction");
                    }
                    try {
                        tx.transaction(nested -> {
                            nested.dsl()
                                    .execute(
                                            "insert into payments(message_id, order_id, amount) values (?, 'rolled-back', 2)",
                                            m.messageId());
                            throw new IllegalStateException("business rule");
                        });
                    } catch (RuntimeException expected) {
                        // the nested transaction rolled back to its savepoint
                    }
                })
                .build()) {
            consumer.start();
            await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, "nested-group", topic));
            // counted by the worker after it published the offset, so possibly after the commit above
            await().atMost(WAIT).untilAsserted(() -> {
                assertThat(Fixtures.counter(registry, "outbox.consumer.handled"))
                        .isOne();
                assertThat(Fixtures.counter(registry, "outbox.consumer.duplicates"))
                        .isOne();
            });
            assertThat(calls).hasValue(2);
        }
        assertThat(Fixtures.scalar(db, "select count(*) from payments where message_id = '" + id + "'"))
                .isOne();
        assertThat(Fixtures.scalar(
                        db, "select count(*) from payments where message_id = '" + id + "' and order_id = 'kept'"))
                .isOne();
    }

    /** The retention rule: the purge deletes only this consumer's ids older than the given age. */
    @Test
    void purgeRemovesOnlyIdsPastRetention(TestDatabase db, TestKafka kafka) throws Exception {
        List<UUID> old = new ArrayList<>();
        List<UUID> recent = new ArrayList<>();
        try (Connection c = db.connect();
                PreparedStatement ps = c.prepareStatement(
                        "insert into outbox.processed_message (consumer, message_id, processed_at, outcome)"
                                + " values (?, ?, now() - make_interval(hours => ?), ?)")) {
            for (int i = 0; i < 2500; i++) {
                UUID id = MessageIds.next();
                boolean isOld = i % 2 == 0;
                (isOld ? old : recent).add(id);
                ps.setString(1, "purge");
                ps.setObject(2, id);
                ps.setInt(3, isOld ? 24 * 8 : 24 * 6);
                ps.setString(4, i % 10 == 0 ? "DEAD_LETTERED" : "HANDLED");
                ps.addBatch();
            }
            for (int i = 0; i < 10; i++) { // another consumer's old ids: not in this consumer's scope
                ps.setString(1, "purge-other");
                ps.setObject(2, MessageIds.next());
                ps.setInt(3, 24 * 30);
                ps.setString(4, "HANDLED");
                ps.addBatch();
            }
            ps.executeBatch();
        }
        try (IdempotentConsumer consumer = builder(kafka, db, "unused", "purge").build()) {
            assertThat(consumer.purgeProcessed(Duration.ofDays(7))).isEqualTo(old.size());
            assertThat(consumer.purgeProcessed(Duration.ofDays(7))).isZero();
        }
        assertThat(Fixtures.scalar(db, "select count(*) from outbox.processed_message where consumer = 'purge'"))
                .isEqualTo(recent.size());
        assertThat(Fixtures.scalar(
                        db,
                        "select count(*) from outbox.processed_message where consumer = 'purge'"
                                + " and processed_at < now() - interval '7 days'"))
                .isZero();
        assertThat(Fixtures.scalar(db, "select count(*) from outbox.processed_message where consumer = 'purge-other'"))
                .isEqualTo(10);
    }
}
