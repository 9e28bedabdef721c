package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxMessage;
import dev.outbox.core.internal.TimeSource;
import dev.outbox.core.retry.Backoff;
import dev.outbox.relay.Relay;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerInterceptor;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.errors.InvalidTimestampException;
import org.apache.kafka.common.metrics.KafkaMetric;
import org.apache.kafka.common.metrics.MetricsReporter;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * G3 and G1 when the producer that {@link KeyOrder} replaces cannot be created, on the in-JVM broker
 * and PostgreSQL: a key's first record is refused by the broker (stamped before the topic's {@code
 * message.timestamp.before.max.ms}, as in {@link FirstBatchRefusedIT}) while its later records wait in
 * the producer, and creating the replacement producer fails (a metric reporter that refuses to start,
 * standing for bootstrap hosts that do not resolve or an unreadable keystore). Before, the exception
 * left the record's callback: the batch never ended, so the shard never published again, and the
 * failed producer stayed open and wrote the key's later records ahead of the refused one. Now the
 * failed producer is closed, the batch ends, the shard backs off while no producer can be created, and
 * once one can, every message is published once, in the key's order, and the outbox drains.
 *
 * <p>The refusal must come back while the key's later records are still unanswered, or {@link KeyOrder}
 * has no producer to replace: on a loaded machine the broker's answer can outrun the send loop. {@link
 * HandedFirst} holds the refusal's callback until the later records have been handed to the producer.
 */
@ExtendWith(RealServices.class)
@Tag("integration")
class ReplacementNotCreatedIT {
    private static final int MESSAGES = 5;

    /** Fails the creation of every producer while {@link #FAIL} is set, counting the refusals. */
    public static final class RefusingReporter implements MetricsReporter {
        static final AtomicBoolean FAIL = new AtomicBoolean();
        static final AtomicInteger REFUSED = new AtomicInteger();

        public RefusingReporter() {}

        @Override
        public void configure(Map<String, ?> configs) {
            // producers only: the relay's readiness probe makes an admin client from the same properties
            if (FAIL.get() && configs.containsKey("key.serializer")) {
                REFUSED.incrementAndGet();
                throw new IllegalStateException("the test's metric reporter refuses to start");
            }
        }

        @Override
        public void init(List<KafkaMetric> metrics) {}

        @Override
        public void metricChange(KafkaMetric metric) {}

        @Override
        public void metricRemoval(KafkaMetric metric) {}

        @Override
        public void close() {}
    }

    /**
     * Holds the broker's refusal of a record (on the producer's I/O thread, before the relay's callback)
     * until {@link #HANDED} records of the test's key have been handed to the producer, at most 10 s.
     */
    public static final class HandedFirst implements ProducerInterceptor<byte[], byte[]> {
        static final AtomicInteger HANDED = new AtomicInteger();
        static volatile int wanted;

        public HandedFirst() {}

        @Override
        public ProducerRecord<byte[], byte[]> onSend(ProducerRecord<byte[], byte[]> record) {
            if (record.key() != null && "k".equals(new String(record.key(), StandardCharsets.UTF_8))) {
                HANDED.incrementAndGet();
            }
            return record;
        }

        @Override
        public void onAcknowledgement(RecordMetadata metadata, Exception exception) {
            if (exception instanceof InvalidTimestampException) {
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (HANDED.get() < wanted && System.nanoTime() < deadline) {
                    LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(1));
                }
            }
        }

        @Override
        public void close() {}

        @Override
        public void configure(Map<String, ?> configs) {}
    }

    @Test
    @Timeout(value = 3, unit = TimeUnit.MINUTES)
    void aReplacementThatCannotBeCreatedHealsAndTheKeyIsPublishedOnceInOrder(TestDatabase db, TestKafka kafka)
            throws Exception {
        String topic = TestKafka.uniqueTopic("replacement-not-created");
        FirstBatchRefusedIT.createTopicRefusingStaleRecords(kafka, topic);
        // the record timestamps of the next `stale` sends are a minute old
        AtomicInteger stale = new AtomicInteger();
        TimeSource time = new TimeSource() {
            @Override
            public long nanoTime() {
                return System.nanoTime();
            }

            @Override
            public long currentTimeMillis() {
                long now = System.currentTimeMillis();
                return stale.getAndUpdate(n -> Math.max(0, n - 1)) > 0 ? now - 60_000 : now;
            }
        };
        RelayEngine built = (RelayEngine) Relay.builder()
                .dataSource(db.newDataSource(10))
                .instanceId("replacement-not-created")
                .producerProperties(Map.of(
                        "bootstrap.servers",
                        kafka.bootstrapServers(),
                        "metric.reporters",
                        RefusingReporter.class.getName(),
                        // the first message (2 KB) is a producer batch of its own; the later ones wait behind it
                        "batch.size",
                        "1024"))
                .leaseDuration(Duration.ofSeconds(3))
                .idlePollInterval(Duration.ofMillis(200))
                .backoff(Backoff.of(Duration.ofMillis(50), Duration.ofSeconds(1)))
                .shutdownTimeout(Duration.ofSeconds(15))
                .meterRegistry(new SimpleMeterRegistry())
                .build();
        // interceptors are refused in the relay's settings (they could change a key): added after validation
        RelayConfig c = built.config();
        Map<String, Object> producer = new HashMap<>(c.producerProperties());
        producer.put(ProducerConfig.INTERCEPTOR_CLASSES_CONFIG, HandedFirst.class.getName());
        RelayEngine relay = new RelayEngine(
                new RelayConfig(
                        c.dataSource(),
                        c.schema(),
                        c.instanceId(),
                        producer,
                        c.batchSize(),
                        c.batchBytes(),
                        c.leaseDuration(),
                        c.idlePollInterval(),
                        c.shutdownTimeout(),
                        c.workerThreads(),
                        c.backoff(),
                        c.circuitBreaker(),
                        c.parkPolicy(),
                        c.meterRegistry(),
                        c.maxAttempts(),
                        c.probeInterval(),
                        c.probeIntervalUnderLoad(),
                        c.listenDataSource(),
                        c.publishMode(),
                        c.transactionalIdPrefix(),
                        c.vacuumAfterRows()),
                time);
        Outbox outbox = Outbox.builder().build();
        RefusingReporter.FAIL.set(false);
        RefusingReporter.REFUSED.set(0);
        HandedFirst.HANDED.set(0);
        HandedFirst.wanted = MESSAGES;
        try {
            relay.start();
            // the topic's metadata known and the producer in use, before the test's messages
            db.dsl().transaction(tx -> outbox.append(tx.dsl(), message(topic, "warm-up", "warm-up")));
            await().atMost(Duration.ofSeconds(60)).until(() -> rows(db) == 0);

            stale.set(1);
            RefusingReporter.FAIL.set(true);
            List<OutboxMessage> messages = new ArrayList<>();
            messages.add(message(topic, "k", "1:" + "x".repeat(2_000)));
            for (int i = 2; i <= MESSAGES; i++) {
                messages.add(message(topic, "k", i + ":"));
            }
            db.dsl().transaction(tx -> outbox.appendAll(tx.dsl(), messages));

            await().atMost(Duration.ofSeconds(30))
                    .alias("the first message was refused while the later ones waited, and its callback tried to"
                            + " create a replacement producer")
                    .until(() -> RefusingReporter.REFUSED.get() >= 1);
            // the shard's later rounds find no producer and try to create one again, after a backoff
            await().atMost(Duration.ofSeconds(30))
                    .alias("the shard's batch ended and its next rounds try to create a producer again")
                    .until(() -> RefusingReporter.REFUSED.get() >= 2);
            assertThat(rows(db))
                    .as("nothing published while no producer can be created")
                    .isEqualTo(MESSAGES);
            assertThat(relay.isLive()).isTrue();

            RefusingReporter.FAIL.set(false);
            await().atMost(Duration.ofSeconds(60))
                    .alias("G1: the outbox drains once a producer can be created again")
                    .until(() -> rows(db) == 0);
        } finally {
            RefusingReporter.FAIL.set(false);
            HandedFirst.wanted = 0;
            relay.close();
        }
        assertThat(values(kafka, topic))
                .as("G3: the key's messages once each, in order, the refused one first")
                .containsExactly("warm-up", "1", "2", "3", "4", "5");
    }

    private static OutboxMessage message(String topic, String key, String body) {
        return OutboxMessage.of(topic, key, "Test", "text/plain", body.getBytes(StandardCharsets.UTF_8));
    }

    private static long rows(TestDatabase db) throws Exception {
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select count(*) from " + db.schema() + ".outbox_message")) {
            rs.next();
            return rs.getLong(1);
        }
    }

    /** @return each record's value up to its first ':', in log order */
    private static List<String> values(TestKafka kafka, String topic) {
        return FirstBatchRefusedIT.values(kafka, topic, "replacement-not-created-check").stream()
                .map(v -> {
                    int colon = v.indexOf(':');
                    return colon < 0 ? v : v.substring(0, colon);
                })
                .toList();
    }
}
