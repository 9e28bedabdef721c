package dev.outbox.testkit;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The kit hands out a working Kafka broker. The migrated database is tested in the migrations
 * module ({@code TestKitDatabaseIT}), whose scripts the kit migrates its template with.
 */
@ExtendWith(RealServices.class)
class RealServicesIT {

    @Test
    void kafkaProducesAndConsumes(TestKafka kafka) {
        // a topic of this run only: a broker named by outbox.test.kafka.bootstrap outlives the JVM, and
        // records of an earlier run would be read from the earliest offset too
        String topic = TestKafka.uniqueTopic("kit-roundtrip");
        kafka.createTopic(topic, 3);
        try (var producer = new KafkaProducer<byte[], byte[]>(kafka.producerProperties())) {
            for (int i = 0; i < 30; i++) {
                producer.send(new ProducerRecord<>(
                        topic, ("k" + i).getBytes(StandardCharsets.UTF_8), ("v" + i).getBytes(StandardCharsets.UTF_8)));
            }
            producer.flush();
        }
        List<String> values = new ArrayList<>();
        try (var consumer = new KafkaConsumer<byte[], byte[]>(kafka.consumerProperties("kit-" + UUID.randomUUID()))) {
            consumer.subscribe(List.of(topic));
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (values.size() < 30 && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    values.add(new String(r.value(), StandardCharsets.UTF_8));
                }
            }
        }
        assertThat(values).hasSize(30).contains("v0", "v29");
    }
}
