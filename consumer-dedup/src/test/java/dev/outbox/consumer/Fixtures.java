package dev.outbox.consumer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.MessageIds;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.MeterRegistry;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Collectors;
import javax.sql.DataSource;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.internals.RecordHeaders;

/** Test records, the payments business table and helpers to read Kafka and the database. */
final class Fixtures {
    /** No unique constraint on message_id: a second effect of one message would show as a second row. */
    static final String PAYMENTS_DDL = "create table if not exists payments(id bigserial primary key,"
            + " message_id uuid not null, order_id text, amount bigint)";

    private Fixtures() {}

    static void createPayments(TestDatabase db) throws SQLException {
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute(PAYMENTS_DDL);
        }
    }

    static KafkaProducer<byte[], byte[]> producer(TestKafka kafka) {
        return new KafkaProducer<>(kafka.producerProperties());
    }

    /** A record as the relay publishes it: key, payload {@code orderId:amount}, the outbox headers. */
    static ProducerRecord<byte[], byte[]> payment(String topic, UUID id, String orderId, long amount) {
        RecordHeaders headers = new RecordHeaders();
        if (id != null) {
            headers.add(OutboxHeaders.MESSAGE_ID, id.toString().getBytes(StandardCharsets.UTF_8));
        }
        headers.add(OutboxHeaders.MESSAGE_TYPE, "PaymentRequested".getBytes(StandardCharsets.UTF_8));
        headers.add(OutboxHeaders.CONTENT_TYPE, "text/plain".getBytes(StandardCharsets.UTF_8));
        return new ProducerRecord<>(
                topic,
                null,
                orderId.getBytes(StandardCharsets.UTF_8),
                (orderId + ":" + amount).getBytes(StandardCharsets.UTF_8),
                headers);
    }

    /** Inserts one payment row per handled message, in the consumer's transaction. */
    static MessageHandler paymentsHandler() {
        return (message, tx) -> {
            String[] parts = new String(message.payload(), StandardCharsets.UTF_8).split(":");
            tx.execute(
                    "insert into payments(message_id, order_id, amount) values (?, ?, ?)",
                    message.messageId(),
                    parts[0],
                    Long.parseLong(parts[1]));
        };
    }

    static Map<String, Object> consumerProperties(TestKafka kafka, String group) {
        Map<String, Object> props = new HashMap<>();
        props.put("bootstrap.servers", kafka.bootstrapServers());
        props.put("group.id", group);
        props.put("session.timeout.ms", "10000");
        props.put("heartbeat.interval.ms", "1000");
        return props;
    }

    static IdempotentConsumer.Builder builder(TestKafka kafka, TestDatabase db, String topic, String name) {
        return IdempotentConsumer.builder()
                .kafkaProperties(consumerProperties(kafka, name + "-group"))
                .topics(topic)
                .consumerName(name)
                .dataSource(db.dataSource())
                .handler(paymentsHandler())
                .purgeInterval(Duration.ZERO);
    }

    /**
     * @param dataSource a data source of pgjdbc connections
     * @return one whose connections answer no to {@code isWrapperFor} and refuse {@code unwrap}, as
     *     some pools and proxies do: the driver's own state cannot be read through them
     */
    static DataSource hidingTheDriver(DataSource dataSource) {
        return (DataSource) Proxy.newProxyInstance(
                Fixtures.class.getClassLoader(), new Class<?>[] {DataSource.class}, (proxy, method, args) -> {
                    Object result = invoke(dataSource, method, args);
                    if (method.getName().equals("getConnection")) {
                        Connection connection = (Connection) result;
                        return Proxy.newProxyInstance(
                                Fixtures.class.getClassLoader(),
                                new Class<?>[] {Connection.class},
                                (p, m, a) -> switch (m.getName()) {
                                    case "isWrapperFor" -> false;
                                    case "unwrap" -> throw new SQLException("this connection does not unwrap");
                                    default -> invoke(connection, m, a);
                                });
                    }
                    return result;
                });
    }

    private static Object invoke(Object target, Method method, Object[] args) throws Throwable {
        try {
            return method.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    /** @return number of payment rows per message id */
    static Map<UUID, Long> paymentsPerId(TestDatabase db) throws SQLException {
        Map<UUID, Long> rows = new HashMap<>();
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select message_id, count(*) from payments group by message_id")) {
            while (rs.next()) {
                rows.put(rs.getObject(1, UUID.class), rs.getLong(2));
            }
        }
        return rows;
    }

    /** @return the business rows per message id, for the given ids only */
    static Map<UUID, Long> paymentsOf(TestDatabase db, Collection<UUID> ids) throws SQLException {
        Map<UUID, Long> rows = new HashMap<>(paymentsPerId(db));
        rows.keySet().retainAll(new HashSet<>(ids));
        return rows;
    }

    /** @return the sum of every counter named {@code name}, whatever its tags */
    static double counter(MeterRegistry registry, String name) {
        return registry.find(name).counters().stream()
                .mapToDouble(c -> c.count())
                .sum();
    }

    static long scalar(TestDatabase db, String sql) throws SQLException {
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    /**
     * While a processed id's row on partition 0 is held: messages sent to partition 1 are handled by the one worker
     * within 45 s (the consumer under test has one worker), the waits were counted as contention and the database breaker stayed closed.
     */
    static void handledBesideAHeldRow(
            TestDatabase db, KafkaProducer<byte[], byte[]> producer, String topic, MeterRegistry registry)
            throws SQLException {
        List<UUID> others = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            UUID id = MessageIds.next();
            others.add(id);
            ProducerRecord<byte[], byte[]> r = payment(topic, id, "order-other-" + i, i);
            producer.send(new ProducerRecord<>(topic, 1, r.key(), r.value(), r.headers()));
        }
        producer.flush();
        await().atMost(Duration.ofSeconds(45))
                .untilAsserted(() -> assertThat(paymentsOf(db, others))
                        .as("the other partition's messages, handled while a row of partition 0 is held")
                        .hasSize(others.size()));
        assertThat(registry.get("outbox.consumer.retries")
                        .tag("cause", "contention")
                        .counter()
                        .count())
                .isPositive();
        assertThat(breakerState(registry, "database")).isZero();
    }

    /** @return the state gauge of the consumer's breaker named {@code breaker}: 0 closed, 1 open, 2 half-open */
    static double breakerState(MeterRegistry registry, String breaker) {
        return registry.get("outbox.consumer.breaker.state")
                .tag("breaker", breaker)
                .gauge()
                .value();
    }

    /**
     * Waits up to 90 s until a session of the test database other than the one asking waits for a lock in a
     * statement {@code like} the pattern.
     */
    static void awaitLockWait(TestDatabase db, String like) {
        await().atMost(Duration.ofSeconds(90))
                .until(() -> scalar(
                                db,
                                "select count(*) from pg_stat_activity where datname = current_database()"
                                        + " and pid <> pg_backend_pid() and wait_event_type = 'Lock' and query like '"
                                        + like.replace("'", "''") + "'")
                        > 0);
    }

    /** Asserts the group committed every partition of the topic up to its end. */
    static void assertCommittedToEnd(TestKafka kafka, String group, String topic) throws Exception {
        try (Admin admin = kafka.admin()) {
            Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata()
                    .get(30, TimeUnit.SECONDS);
            Set<TopicPartition> tps = admin
                    .describeTopics(List.of(topic))
                    .allTopicNames()
                    .get(30, TimeUnit.SECONDS)
                    .get(topic)
                    .partitions()
                    .stream()
                    .map(p -> new TopicPartition(topic, p.partition()))
                    .collect(Collectors.toSet());
            Map<TopicPartition, OffsetSpec> latest =
                    tps.stream().collect(Collectors.toMap(tp -> tp, tp -> OffsetSpec.latest()));
            Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> ends =
                    admin.listOffsets(latest).all().get(30, TimeUnit.SECONDS);
            for (TopicPartition tp : tps) {
                long end = ends.get(tp).offset();
                OffsetAndMetadata c = committed.get(tp);
                assertThat(end == 0 ? 0 : c == null ? -1 : c.offset())
                        .as("committed offset of %s", tp)
                        .isEqualTo(end);
            }
        }
    }

    /** Reads every record of a topic from the beginning until {@code expected} have arrived or time runs out. */
    static List<ConsumerRecord<byte[], byte[]>> readAll(TestKafka kafka, String topic, int expected, Duration timeout) {
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        var props = kafka.consumerProperties("reader-" + UUID.randomUUID());
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(props)) {
            long deadline = System.nanoTime() + timeout.toNanos();
            List<PartitionInfo> infos = List.of();
            while (infos.isEmpty() && System.nanoTime() < deadline) {
                infos = c.partitionsFor(topic, Duration.ofSeconds(5));
            }
            List<TopicPartition> tps = infos.stream()
                    .map(p -> new TopicPartition(topic, p.partition()))
                    .toList();
            c.assign(tps);
            c.seekToBeginning(tps);
            while (out.size() < expected && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(200)).forEach(out::add);
            }
        }
        return out;
    }

    /**
     * Publishes one record per id, plus 2nd (and sometimes 3rd) copies of {@code duplicateShare} of
     * them, each copy sent somewhere later in the stream, in ticks of {@code perTick} records to keep
     * the stream flowing for a while.
     *
     * @return completes when every record is acknowledged; its value is the number of records sent
     */
    static CompletableFuture<Integer> publishWithDuplicates(
            TestKafka kafka, String topic, List<UUID> ids, double duplicateShare, int perTick, Duration tick) {
        return publishWithDuplicates(
                kafka, topic, ids, duplicateShare, perTick, tick, 0, CompletableFuture.completedFuture(null));
    }

    /**
     * As {@link #publishWithDuplicates(TestKafka, String, List, double, int, Duration)}, but the stream
     * stops after {@code holdAt} records until {@code resume} completes, so that a test can make
     * something happen mid-stream however fast the consumers drain what was sent before.
     *
     * @return completes when every record is acknowledged; fails when {@code resume} did not complete
     *     within 5 minutes
     */
    static CompletableFuture<Integer> publishWithDuplicates(
            TestKafka kafka,
            String topic,
            List<UUID> ids,
            double duplicateShare,
            int perTick,
            Duration tick,
            int holdAt,
            CompletableFuture<?> resume) {
        Random random = new Random(ids.size());
        List<ProducerRecord<byte[], byte[]>> stream = new ArrayList<>();
        for (int i = 0; i < ids.size(); i++) {
            stream.add(payment(topic, ids.get(i), "order-" + i, i));
        }
        int originals = stream.size();
        for (int i = 0; i < ids.size(); i++) {
            if (random.nextDouble() < duplicateShare) {
                int copies = random.nextInt(4) == 0 ? 2 : 1;
                for (int c = 0; c < copies; c++) {
                    int at = Math.min(stream.size(), i + 1 + random.nextInt(Math.max(1, originals / 4)));
                    stream.add(at, payment(topic, ids.get(i), "order-" + i, i));
                }
            }
        }
        var future = new CompletableFuture<Integer>();
        Thread t = new Thread(
                () -> {
                    try (KafkaProducer<byte[], byte[]> producer = producer(kafka)) {
                        for (int i = 0; i < stream.size(); i++) {
                            if (i == holdAt) {
                                producer.flush();
                                resume.get(5, TimeUnit.MINUTES);
                            }
                            producer.send(stream.get(i));
                            if ((i + 1) % perTick == 0) {
                                producer.flush();
                                LockSupport.parkNanos(tick.toNanos()); // pacing, not synchronisation
                            }
                        }
                        producer.flush();
                        future.complete(stream.size());
                    } catch (RuntimeException | ExecutionException | TimeoutException e) {
                        future.completeExceptionally(e);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        future.completeExceptionally(e);
                    }
                },
                "test-publisher");
        t.setDaemon(true);
        t.start();
        return future;
    }

    static String header(ConsumerRecord<byte[], byte[]> r, String name) {
        var h = r.headers().lastHeader(name);
        return h == null ? null : new String(h.value(), StandardCharsets.UTF_8);
    }
}
