package dev.outbox.relay.process;

import dev.outbox.core.OutboxHeaders;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;

/**
 * Reads every partition of a topic from the beginning on a background thread (no consumer group),
 * keeping each record's partition, offset, key and message id in the order Kafka returns them.
 */
final class Records implements AutoCloseable {
    /** One consumed record. */
    record Received(int partition, long offset, String key, UUID messageId, int payloadBytes) {}

    private final List<Received> received = new ArrayList<>();
    private final AtomicBoolean running = new AtomicBoolean(true);
    private final Thread thread;
    private volatile Throwable failure;

    Records(Properties consumerProperties, String topic, int partitions) {
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(consumerProperties);
        List<TopicPartition> all = new ArrayList<>();
        for (int p = 0; p < partitions; p++) {
            all.add(new TopicPartition(topic, p));
        }
        consumer.assign(all);
        consumer.seekToBeginning(all);
        thread = new Thread(
                () -> {
                    try (consumer) {
                        while (running.get()) {
                            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                                Header id = r.headers().lastHeader(OutboxHeaders.MESSAGE_ID);
                                Received rec = new Received(
                                        r.partition(),
                                        r.offset(),
                                        r.key() == null ? null : new String(r.key(), StandardCharsets.UTF_8),
                                        id == null
                                                ? null
                                                : UUID.fromString(new String(id.value(), StandardCharsets.UTF_8)),
                                        r.value() == null ? 0 : r.value().length);
                                synchronized (received) {
                                    received.add(rec);
                                }
                            }
                        }
                    } catch (Throwable t) {
                        failure = t;
                    }
                },
                "test-records-" + topic);
        thread.setDaemon(true);
        thread.start();
    }

    /** @return a snapshot of everything consumed so far */
    List<Received> all() {
        if (failure != null) {
            throw new AssertionError("the test consumer failed", failure);
        }
        synchronized (received) {
            return List.copyOf(received);
        }
    }

    /**
     * @return how many of {@code ids} have not been read yet: a number to assert on while waiting, since a
     *     failed assertion on the sets themselves formats thousands of ids on every poll, in the JVM that
     *     also runs the broker and this reader
     */
    long missing(Collection<UUID> ids) {
        Set<UUID> seen = seenIds();
        return ids.stream().filter(id -> !seen.contains(id)).count();
    }

    /** @return how many distinct message ids have been read */
    int distinctIds() {
        return seenIds().size();
    }

    private Set<UUID> seenIds() {
        Set<UUID> seen = new HashSet<>();
        for (Received r : all()) {
            seen.add(r.messageId());
        }
        return seen;
    }

    int size() {
        synchronized (received) {
            return received.size();
        }
    }

    @Override
    public void close() throws InterruptedException {
        running.set(false);
        thread.join(10_000);
    }
}
