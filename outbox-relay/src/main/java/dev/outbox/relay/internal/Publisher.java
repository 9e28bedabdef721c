package dev.outbox.relay.internal;

import java.time.Duration;
import java.util.Map;
import java.util.function.Supplier;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The relay's one idempotent producer, shared by all shards, replaced after an error that leaves it
 * unusable. Each batch remembers the generation it was sent with, so that many shards failing on the
 * same broken producer replace it once.
 */
final class Publisher {
    private static final Logger LOG = LoggerFactory.getLogger(Publisher.class);

    /** A producer and its generation. */
    record Generation(Producer<byte[], byte[]> producer, long number) {}

    private final Supplier<Producer<byte[], byte[]>> factory;
    private final String prefix;
    private volatile Generation current;
    private boolean closed;

    Publisher(Map<String, Object> properties, String prefix) {
        this(() -> new KafkaProducer<>(properties), prefix);
    }

    /** @param factory makes each producer generation (tests pass Kafka's {@code MockProducer}) */
    Publisher(Supplier<Producer<byte[], byte[]>> factory, String prefix) {
        this.factory = factory;
        this.prefix = prefix;
        this.current = new Generation(factory.get(), 1);
    }

    Generation current() {
        return current;
    }

    /**
     * Replaces {@code failed} if it is still the current producer; the old one is closed without
     * waiting, which fails its pending sends (their batches are retried).
     */
    void replace(Generation failed, Throwable why) {
        Generation old;
        synchronized (this) {
            if (closed || current != failed) {
                return;
            }
            old = failed;
            current = new Generation(factory.get(), failed.number() + 1);
        }
        LOG.warn(
                "{} replacing the Kafka producer (generation {}) after {}", prefix, old.number(), Errors.describe(why));
        closeQuietly(old.producer(), Duration.ZERO, prefix);
    }

    void close(Duration timeout) {
        Generation g;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            g = current;
        }
        closeQuietly(g.producer(), timeout, prefix);
    }

    static void closeQuietly(Producer<byte[], byte[]> p, Duration timeout, String prefix) {
        try {
            p.close(timeout);
        } catch (RuntimeException e) {
            LOG.warn("{} Kafka producer did not close cleanly: {}", prefix, e.toString());
        }
    }
}
