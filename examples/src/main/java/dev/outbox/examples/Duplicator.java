package dev.outbox.examples;

import dev.outbox.testkit.TestKafka;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;

/** Delivers a share of the topic's records a second time, as a flaky network or a producer retry would. */
final class Duplicator implements Runnable {
    private final TestKafka kafka;
    private final double rate;
    private final AtomicBoolean running = new AtomicBoolean(true);
    private final Map<TopicPartition, Long> position = new ConcurrentHashMap<>();

    Duplicator(TestKafka kafka, double rate) {
        this.kafka = kafka;
        this.rate = rate;
    }

    @Override
    public void run() {
        var props = kafka.consumerProperties("demo-duplicator-" + UUID.randomUUID());
        try (var consumer = new KafkaConsumer<byte[], byte[]>(props);
                var producer = new KafkaProducer<byte[], byte[]>(kafka.producerProperties())) {
            consumer.subscribe(List.of(OrdersService.TOPIC));
            while (running.get()) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
                    position.put(new TopicPartition(r.topic(), r.partition()), r.offset() + 1);
                    if (r.headers().lastHeader(Demo.INJECTED) == null
                            && ThreadLocalRandom.current().nextDouble() < rate) {
                        ProducerRecord<byte[], byte[]> copy =
                                new ProducerRecord<>(r.topic(), r.partition(), r.key(), r.value(), r.headers());
                        copy.headers().add(Demo.INJECTED, "true".getBytes(StandardCharsets.UTF_8));
                        producer.send(copy);
                    }
                }
            }
        }
    }

    /** @return whether it has read up to the end of the topic as it stood a moment ago */
    boolean caughtUp(TestKafka kafka) {
        try (var admin = kafka.admin()) {
            var parts = admin.describeTopics(List.of(OrdersService.TOPIC))
                    .allTopicNames()
                    .get()
                    .get(OrdersService.TOPIC)
                    .partitions();
            Map<TopicPartition, OffsetSpec> specs = new HashMap<>();
            parts.forEach(p -> specs.put(new TopicPartition(OrdersService.TOPIC, p.partition()), OffsetSpec.latest()));
            var ends = admin.listOffsets(specs).all().get();
            return ends.entrySet().stream()
                    .allMatch(e -> e.getValue().offset() == 0
                            || position.getOrDefault(e.getKey(), 0L)
                                    >= e.getValue().offset());
        } catch (Exception e) {
            return false;
        }
    }

    void stop() {
        running.set(false);
    }
}
