package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestKafka;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The broker-side fence of the transactional publish mode, without timing luck: the old owner of a
 * shard has its batch written to the partition (acknowledged) when the new owner's producer of the
 * same {@code transactional.id} initialises; the old owner's commit then fails as fenced, and a
 * {@code read_committed} consumer sees only the new owner's records, although the old owner's are
 * in the log (a {@code read_uncommitted} consumer sees them: without the fence they would count).
 */
@ExtendWith(RealServices.class)
@Tag("integration")
class TransactionalFencingIT {

    @Test
    @Timeout(value = 2, unit = TimeUnit.MINUTES)
    void aFencedOwnersAcknowledgedBatchNeverBecomesVisible(TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("tx-fence");
        kafka.createTopic(topic, 1);
        Map<String, Object> shared = ProducerSettings.boundSendWait(
                ProducerSettings.boundByLease(
                        ProducerSettings.validate(Map.of("bootstrap.servers", kafka.bootstrapServers()), "fence-test"),
                        Duration.ofSeconds(30)),
                Duration.ofSeconds(30),
                true);
        String id = "outbox-relay.test." + topic + ".7";
        TransactionalPublisher old = new TransactionalPublisher(shared, id, Duration.ofSeconds(30), "old", () -> {});
        TransactionalPublisher next = new TransactionalPublisher(shared, id, Duration.ofSeconds(30), "new", () -> {});
        try {
            Publisher.Generation zombie = old.begin();
            for (int i = 0; i < 5; i++) {
                zombie.producer()
                        .send(record(topic, "stale-" + i))
                        .get(30, TimeUnit.SECONDS); // in the log, acknowledged
            }
            next.init(); // the new owner claims the shard: the broker fences the old producer
            assertThatThrownBy(() -> old.commit(zombie))
                    .satisfies(e ->
                            assertThat(Errors.isFenced(e)).as("fenced: %s", e).isTrue())
                    .isInstanceOfAny(ProducerFencedException.class, InvalidProducerEpochException.class);
            Publisher.Generation owner = next.begin();
            owner.producer().send(record(topic, "fresh")).get(30, TimeUnit.SECONDS);
            next.commit(owner);

            assertThat(values(kafka, topic, "read_committed", 1))
                    .as("G3: read_committed sees only the new owner")
                    .containsExactly("fresh");
            assertThat(values(kafka, topic, "read_uncommitted", 6))
                    .as("the fenced records did reach the log")
                    .contains("stale-0", "stale-4", "fresh");
        } finally {
            old.close();
            next.close();
        }
    }

    private static ProducerRecord<byte[], byte[]> record(String topic, String value) {
        return new ProducerRecord<>(
                topic, "k".getBytes(StandardCharsets.UTF_8), value.getBytes(StandardCharsets.UTF_8));
    }

    /** @return the values in the partition, read up to its end (the last stable offset for read_committed) */
    private static List<String> values(TestKafka kafka, String topic, String isolation, int atLeast) {
        Properties p = kafka.consumerProperties("unused");
        p.remove("group.id");
        p.put("isolation.level", isolation);
        List<String> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long end = consumer.endOffsets(List.of(tp)).get(tp);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while ((consumer.position(tp) < end || out.size() < atLeast) && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    out.add(new String(r.value(), StandardCharsets.UTF_8));
                }
            }
        }
        return out;
    }
}
