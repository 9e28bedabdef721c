package dev.outbox.torture;

import dev.outbox.core.OutboxHeaders;
import dev.outbox.examples.OrdersService;
import dev.outbox.testkit.TestKafka;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.function.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.jooq.DSLContext;
import org.jooq.Record;

/** Reads a drained run back into a {@link History}: the database's tables and both topics, start to end. */
final class Recorder {
    private Recorder() {}

    static History record(
            DSLContext dsl, TestKafka kafka, String topic, Writers writers, HttpLoad http, Ledger ledger) {
        List<History.Committed> committed = new ArrayList<>();
        for (Record r : dsl.fetch("select message_id, key, seq, amount from torture.written")) {
            committed.add(new History.Committed(
                    r.get(0, UUID.class), r.get(1, String.class), r.get(2, Long.class), r.get(3, Long.class)));
        }
        Set<UUID> committedIds = new HashSet<>();
        committed.forEach(c -> committedIds.add(c.id()));
        Set<UUID> aborted = new HashSet<>(writers.notKnownCommitted());
        aborted.removeAll(committedIds);

        Map<UUID, Integer> effects = new HashMap<>();
        for (Record r : dsl.fetch("select message_id, count(*) from torture.charge group by message_id")) {
            effects.put(r.get(0, UUID.class), r.get(1, Integer.class));
        }
        Map<String, History.Total> totals = new HashMap<>();
        for (Record r : dsl.fetch("select key, applied, total from torture.running_total")) {
            totals.put(r.get(0, String.class), new History.Total(r.get(1, Long.class), r.get(2, Long.class)));
        }
        long unpublished = Recorder.count(dsl, "select count(*) from outbox.outbox_message where parked_at is null");
        long parked = Recorder.count(dsl, "select count(*) from outbox.outbox_message where parked_at is not null");

        Map<String, List<String>> ordersByRef = new HashMap<>();
        for (Record r : dsl.fetch("select client_ref, order_id::text from shop.orders")) {
            ordersByRef
                    .computeIfAbsent(r.get(0, String.class), k -> new ArrayList<>())
                    .add(r.get(1, String.class));
        }
        List<History.HttpOperation> ops = new ArrayList<>();
        for (int op = 0; op < http.operations(); op++) {
            String ref = HttpLoad.clientRef(op);
            ops.add(new History.HttpOperation(ref, ordersByRef.getOrDefault(ref, List.of()), http.answered(op)));
        }

        List<History.TopicRecord> records = new ArrayList<>();
        Set<String> orderKeys = new HashSet<>();
        scan(kafka, topic, r -> {
            Header id = r.headers().lastHeader(OutboxHeaders.MESSAGE_ID);
            records.add(new History.TopicRecord(
                    r.partition(),
                    r.offset(),
                    r.key() == null ? "" : new String(r.key(), StandardCharsets.UTF_8),
                    id == null ? new UUID(0, 0) : UUID.fromString(new String(id.value(), StandardCharsets.UTF_8)),
                    r.headers().lastHeader(Duplicator.INJECTED) != null,
                    r.timestamp()));
        });
        scan(kafka, OrdersService.TOPIC, r -> orderKeys.add(new String(r.key(), StandardCharsets.UTF_8)));
        records.sort(
                Comparator.comparingInt(History.TopicRecord::partition).thenComparingLong(History.TopicRecord::offset));
        return new History(
                committed, aborted, records, effects, totals, unpublished, parked, ops, orderKeys, ledger.snapshot());
    }

    static long count(DSLContext dsl, String sql) {
        return dsl.fetchOne(sql).get(0, Long.class);
    }

    private static void scan(TestKafka kafka, String topic, Consumer<ConsumerRecord<byte[], byte[]>> sink) {
        var props = kafka.consumerProperties("torture-scan-" + UUID.randomUUID());
        // what a consumer of the topic sees: records of aborted Kafka transactions, if any, are not part of it
        props.put("isolation.level", "read_committed");
        try (var consumer = new KafkaConsumer<byte[], byte[]>(props)) {
            List<TopicPartition> parts = consumer.partitionsFor(topic).stream()
                    .map(p -> new TopicPartition(topic, p.partition()))
                    .toList();
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            Map<TopicPartition, Long> end = consumer.endOffsets(parts);
            long deadline = System.nanoTime() + Duration.ofMinutes(10).toNanos();
            while (parts.stream().anyMatch(p -> consumer.position(p) < end.get(p))) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("could not read " + topic + " to its end within 10 minutes");
                }
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    if (r.offset() < end.get(new TopicPartition(r.topic(), r.partition()))) {
                        sink.accept(r);
                    }
                }
            }
        }
    }
}
