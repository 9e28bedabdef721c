package dev.outbox.torture;

import dev.outbox.testkit.TestKafka;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * Delivers a share of the topic's records a second time, as a producer retry or a replayed batch
 * would, marked with a header so the checker can tell them from the relay's own records.
 */
final class Duplicator implements Runnable {
    /** The header on the copies. */
    static final String INJECTED = "torture-injected-duplicate";

    private final TestKafka kafka;
    private final String topic;
    private final double rate;
    private final Random random;
    private final Ledger ledger;
    private volatile boolean running = true;

    Duplicator(TestKafka kafka, String topic, double rate, Random random, Ledger ledger) {
        this.kafka = kafka;
        this.topic = topic;
        this.rate = rate;
        this.random = random;
        this.ledger = ledger;
    }

    @Override
    public void run() {
        var props = kafka.consumerProperties("torture-duplicator");
        try (var consumer = new KafkaConsumer<byte[], byte[]>(props);
                var producer = new KafkaProducer<byte[], byte[]>(kafka.producerProperties())) {
            consumer.subscribe(List.of(topic));
            while (running) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    if (r.headers().lastHeader(INJECTED) == null && random.nextDouble() < rate) {
                        ProducerRecord<byte[], byte[]> copy =
                                new ProducerRecord<>(r.topic(), r.partition(), r.key(), r.value(), r.headers());
                        copy.headers().add(INJECTED, "true".getBytes(StandardCharsets.UTF_8));
                        producer.send(copy, (meta, e) -> {
                            if (e == null) {
                                ledger.add("duplicate delivery (record sent again)", 1);
                            }
                        });
                    }
                }
            }
            producer.flush();
        } catch (RuntimeException e) {
            if (running) {
                System.err.println("[torture] duplicator stopped: " + e);
            }
        }
    }

    void stop() {
        running = false;
    }
}
