package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestKafka;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidTimestampException;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * G3 at the producer the relay configures: a new producer's first batch to a partition is refused
 * by the broker while the key's next message waits in a later batch; {@link KeyOrder} closes the
 * producer from the failed record's callback. The later message must then never reach the
 * partition ahead of the earlier one. With several requests in flight per connection it does: the
 * later batch is already on the wire when the refusal comes back, and a broker that holds no state
 * for the new producer takes it as that producer's first batch. The relay's default of one request
 * in flight ({@link ProducerSettings}) keeps the later batch in the producer until the earlier one
 * is answered, so closing the producer drops it.
 */
@ExtendWith(RealServices.class)
@Tag("integration")
class FirstBatchRefusedIT {

    @Test
    @Timeout(value = 2, unit = TimeUnit.MINUTES)
    void aLaterMessageNeverLandsAheadOfARefusedFirstBatch(TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("first-batch-refused");
        createTopicRefusingStaleRecords(kafka, topic);
        Map<String, Object> config = ProducerSettings.boundByLease(
                ProducerSettings.validate(Map.of("bootstrap.servers", kafka.bootstrapServers()), "refused-test"),
                Duration.ofSeconds(30));
        for (int round = 0; round < 5; round++) {
            AtomicReference<KafkaProducer<byte[], byte[]>> holder = new AtomicReference<>();
            CompletableFuture<Exception> earlier = new CompletableFuture<>();
            CompletableFuture<Exception> later = new CompletableFuture<>();
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(config)) {
                holder.set(producer);
                // larger than batch.size: a batch of its own, stamped a minute ago, so the broker refuses it
                byte[] big = new byte[70_000];
                producer.send(
                        new ProducerRecord<>(topic, 0, System.currentTimeMillis() - 60_000, bytes("k"), big),
                        (md, e) -> {
                            if (e != null) {
                                // what KeyOrder does when a later record of the key is still unanswered
                                holder.get().close(Duration.ZERO);
                            }
                            earlier.complete(e);
                        });
                producer.send(
                        new ProducerRecord<>(topic, 0, System.currentTimeMillis(), bytes("k"), bytes("later-" + round)),
                        (md, e) -> later.complete(e));
                assertThat(earlier.get(30, TimeUnit.SECONDS))
                        .as("the broker refuses the first batch")
                        .isInstanceOf(InvalidTimestampException.class);
                later.get(30, TimeUnit.SECONDS);
            }
        }
        assertThat(values(kafka, topic, "refused-check"))
                .as("G3: no later message of the key on the partition while its earlier one is not")
                .isEmpty();
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /**
     * Creates {@code topic} with one partition whose broker refuses records stamped more than 3 s ago
     * ({@code message.timestamp.before.max.ms}, the bound the README prescribes).
     */
    static void createTopicRefusingStaleRecords(TestKafka kafka, String topic) throws Exception {
        try (Admin admin = kafka.admin()) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1)
                            .configs(Map.of("message.timestamp.before.max.ms", "3000"))))
                    .all()
                    .get(30, TimeUnit.SECONDS);
        }
    }

    /** @return the values of partition 0 of {@code topic}, in log order, read with consumer group {@code group} */
    static List<String> values(TestKafka kafka, String topic, String group) {
        List<String> values = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(kafka.consumerProperties(group))) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long end = consumer.endOffsets(List.of(tp)).get(tp);
            while (consumer.position(tp) < end) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    values.add(new String(r.value(), StandardCharsets.UTF_8));
                }
            }
        }
        return values;
    }
}
