package dev.outbox.examples;

import dev.outbox.core.OutboxHeaders;
import dev.outbox.testkit.TestKafka;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;

/** Counts the topic's records: published by the relay (with its duplicates) and injected by the demo. */
record TopicCount(long published, long distinct, long injected) {
    static TopicCount scan(TestKafka kafka) {
        long published = 0;
        long injected = 0;
        Set<String> ids = new HashSet<>();
        var props = kafka.consumerProperties("demo-scan-" + UUID.randomUUID());
        try (var consumer = new KafkaConsumer<byte[], byte[]>(props)) {
            List<TopicPartition> parts = consumer.partitionsFor(OrdersService.TOPIC).stream()
                    .map(p -> new TopicPartition(p.topic(), p.partition()))
                    .toList();
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            Map<TopicPartition, Long> end = consumer.endOffsets(parts);
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (parts.stream().anyMatch(p -> consumer.position(p) < end.get(p)) && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    if (r.headers().lastHeader(Demo.INJECTED) != null) {
                        injected++;
                        continue;
                    }
                    published++;
                    Header id = r.headers().lastHeader(OutboxHeaders.MESSAGE_ID);
                    ids.add(id == null ? "missing-" + r.offset() : new String(id.value(), StandardCharsets.UTF_8));
                }
            }
        }
        return new TopicCount(published, ids.size(), injected);
    }
}
