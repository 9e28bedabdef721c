package dev.outbox.relay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.OutboxMessage;
import dev.outbox.core.Shards;
import dev.outbox.core.retry.Backoff;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.ToIntFunction;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.jooq.DSLContext;

/** Shared pieces of the relay's integration tests. */
final class Fixtures {
    static final Outbox OUTBOX = Outbox.builder().build();

    private Fixtures() {}

    /** A relay builder on the test database and broker with short, test-friendly timings. */
    static Relay.Builder relay(TestDatabase db, String bootstrap, String id, MeterRegistry registry) {
        return Relay.builder()
                .dataSource(db.newDataSource(10))
                .instanceId(id)
                .producerProperties(Map.of("bootstrap.servers", bootstrap))
                .leaseDuration(Duration.ofSeconds(3))
                .idlePollInterval(Duration.ofMillis(200))
                .backoff(Backoff.of(Duration.ofMillis(50), Duration.ofSeconds(1)))
                .shutdownTimeout(Duration.ofSeconds(15))
                .meterRegistry(registry);
    }

    /**
     * A relay for tests that stop brokers: producer timeouts of a few seconds inside a 9 s lease, and a
     * circuit breaker that half-opens by itself after 0.5 s.
     *
     * @param producerExtra producer properties added to or replacing those defaults
     */
    static Relay.Builder outageRelay(
            TestDatabase db, String bootstrap, String id, MeterRegistry registry, Map<String, Object> producerExtra) {
        Map<String, Object> producer = new HashMap<>(Map.of(
                "bootstrap.servers", bootstrap,
                "delivery.timeout.ms", 3_000,
                "request.timeout.ms", 1_000,
                "max.block.ms", 2_000,
                "reconnect.backoff.max.ms", 200));
        producer.putAll(producerExtra);
        return relay(db, bootstrap, id, registry)
                .producerProperties(producer)
                .leaseDuration(Duration.ofSeconds(9)) // delivery.timeout.ms must fit in a third of the lease
                .circuitBreaker(CircuitBreakerConfig.custom()
                        .waitDurationInOpenState(Duration.ofMillis(500))
                        .automaticTransitionFromOpenToHalfOpenEnabled(true)
                        .build());
    }

    static Relay.Builder relay(TestDatabase db, TestKafka kafka, String id) {
        return relay(db, kafka.bootstrapServers(), id, new SimpleMeterRegistry());
    }

    static OutboxMessage message(String topic, String key, String body) {
        return OutboxMessage.of(topic, key, "Test", "text/plain", body.getBytes(StandardCharsets.UTF_8));
    }

    /**
     * G3: the first appearance of each message, in log order, gives every key's versions as 1, 2, 3 and
     * on (each key lives in one partition), {@code total} of them in all.
     *
     * @param version the version a record carries (it may check more of the record)
     */
    static void assertVersionsInCommitOrder(Collector kafkaSide, int total, ToIntFunction<Received> version) {
        Map<String, List<Integer>> versionsByKey = new HashMap<>();
        List<Received> inLogOrder = new ArrayList<>(kafkaSide.records());
        inLogOrder.sort(Comparator.comparingInt(Received::partition).thenComparingLong(Received::offset));
        Set<UUID> seen = new HashSet<>();
        for (Received r : inLogOrder) {
            if (seen.add(r.messageId())) {
                versionsByKey.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(version.applyAsInt(r));
            }
        }
        int sum = 0;
        for (var e : versionsByKey.entrySet()) {
            List<Integer> versions = e.getValue();
            List<Integer> expected = new ArrayList<>();
            for (int v = 1; v <= versions.size(); v++) {
                expected.add(v);
            }
            assertThat(versions)
                    .as("versions of %s in their partition", e.getKey())
                    .containsExactlyElementsOf(expected);
            sum += versions.size();
        }
        assertThat(sum).isEqualTo(total);
    }

    /** Appends and commits one transaction; returns the message ids. */
    static List<UUID> commit(DSLContext dsl, List<OutboxMessage> messages) {
        return dsl.transactionResult(tx -> OUTBOX.appendAll(tx.dsl(), messages));
    }

    static double counter(MeterRegistry r, String name, String... tags) {
        var c = r.find(name).tags(tags).counter();
        return c == null ? 0 : c.count();
    }

    static double gauge(MeterRegistry r, String name) {
        var g = r.find(name).gauge();
        return g == null ? Double.NaN : g.value();
    }

    /** What a test needs of one consumed record. */
    record Received(
            int partition,
            long offset,
            String key,
            UUID messageId,
            long outboxId,
            String payload,
            Map<String, String> headers) {}

    /**
     * @param extra consumer properties added to the defaults
     * @return a consumer without a group, assigned every partition of {@code topic} from the beginning
     */
    static KafkaConsumer<byte[], byte[]> fromTheBeginning(String bootstrap, String topic, Map<String, String> extra) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.deserializer", "org.apache.kafka.common.serialization.ByteArrayDeserializer");
        p.put("value.deserializer", "org.apache.kafka.common.serialization.ByteArrayDeserializer");
        p.put("enable.auto.commit", "false");
        p.put("auto.offset.reset", "earliest");
        p.putAll(extra);
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p);
        List<TopicPartition> partitions = new ArrayList<>();
        await().atMost(Duration.ofSeconds(60)).until(() -> {
            List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofSeconds(5));
            partitions.clear();
            if (infos != null) {
                infos.forEach(i -> partitions.add(new TopicPartition(topic, i.partition())));
            }
            return !partitions.isEmpty();
        });
        consumer.assign(partitions);
        consumer.seekToBeginning(partitions);
        return consumer;
    }

    /** Reads every partition of a topic from the beginning on a background thread, without a consumer group. */
    static final class Collector implements AutoCloseable {
        private final List<Received> records = new ArrayList<>();
        private final AtomicBoolean running = new AtomicBoolean(true);
        private final Thread thread;

        Collector(String bootstrap, String topic) {
            this(bootstrap, topic, Map.of());
        }

        /** @param extra consumer properties, e.g. {@code isolation.level} */
        Collector(String bootstrap, String topic, Map<String, String> extra) {
            KafkaConsumer<byte[], byte[]> consumer = fromTheBeginning(bootstrap, topic, extra);
            thread = new Thread(
                    () -> {
                        try (consumer) {
                            while (running.get()) {
                                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
                                    Map<String, String> headers = new LinkedHashMap<>();
                                    for (Header h : r.headers()) {
                                        headers.put(h.key(), new String(h.value(), StandardCharsets.UTF_8));
                                    }
                                    String id = headers.get(OutboxHeaders.MESSAGE_ID);
                                    String outboxId = headers.get(OutboxHeaders.OUTBOX_ID);
                                    synchronized (records) {
                                        records.add(new Received(
                                                r.partition(),
                                                r.offset(),
                                                r.key() == null ? null : new String(r.key(), StandardCharsets.UTF_8),
                                                id == null ? null : UUID.fromString(id),
                                                outboxId == null ? -1 : Long.parseLong(outboxId),
                                                r.value() == null
                                                        ? null
                                                        : new String(r.value(), StandardCharsets.UTF_8),
                                                headers));
                                    }
                                }
                            }
                        } catch (RuntimeException e) {
                            if (running.get()) {
                                throw e;
                            }
                        }
                    },
                    "test-collector-" + topic);
            thread.setDaemon(true);
            thread.start();
        }

        List<Received> records() {
            synchronized (records) {
                return List.copyOf(records);
            }
        }

        Set<UUID> ids() {
            Set<UUID> out = new HashSet<>();
            for (Received r : records()) {
                out.add(r.messageId());
            }
            return out;
        }

        /** @return per key, the outbox ids in the order of their first appearance in the key's partition */
        Map<String, List<Long>> firstAppearancesByKey() {
            List<Received> all = new ArrayList<>(records());
            all.sort(Comparator.comparingInt(Received::partition).thenComparingLong(Received::offset));
            Map<String, List<Long>> out = new HashMap<>();
            Set<Long> seen = new HashSet<>();
            for (Received r : all) {
                if (seen.add(r.outboxId())) {
                    out.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.outboxId());
                }
            }
            return out;
        }

        @Override
        public void close() throws InterruptedException {
            running.set(false);
            thread.join(10_000);
        }
    }

    /** @return {@code n} keys other than {@code key} that fall on its shard (of 64) */
    static List<String> sameShardKeys(String key, int n) {
        int shard = Shards.of(key, null, 64);
        List<String> out = new ArrayList<>();
        for (int i = 0; out.size() < n; i++) {
            String k = "n-" + i;
            if (Shards.of(k, null, 64) == shard) {
                out.add(k);
            }
        }
        return out;
    }
}
