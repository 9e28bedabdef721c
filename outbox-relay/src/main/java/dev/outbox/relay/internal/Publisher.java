package dev.outbox.relay.internal;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.common.KafkaException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The relay's one idempotent producer, shared by all shards, replaced after an error that leaves it
 * unusable. Each batch remembers the generation it was sent with, so that many shards failing on the
 * same broken producer replace it once.
 *
 * <p>A replacement closes the failed producer without waiting first, then creates its successor. When
 * creating it fails (no host of {@code bootstrap.servers} resolves, an unreadable keystore, a metric
 * reporter that fails to start), the publisher has no producer: {@link #current()} throws {@link
 * Unavailable} at once, and creates one again at its first call after a backoff, so that a transient
 * failure heals by itself. Nothing of the failed producer can reach Kafka meanwhile: it is closed.
 */
final class Publisher {
    private static final Logger LOG = LoggerFactory.getLogger(Publisher.class);

    /** The wait after the first failed creation; it doubles with each failure after it, up to the cap. */
    static final Duration FIRST_RETRY = Duration.ofMillis(100);

    static final Duration MAX_RETRY = Duration.ofSeconds(5);

    /** A producer and its generation. */
    record Generation(Producer<byte[], byte[]> producer, long number) {}

    /**
     * There is no producer to send with: creating one failed (the cause), and it is tried again after a
     * backoff. Transient: the rows are sent again by a later round, no attempt is counted.
     */
    static final class Unavailable extends KafkaException {
        Unavailable(String message, Throwable cause) {
            super(message, cause);
        }
    }

    private final Supplier<Producer<byte[], byte[]>> factory;
    private final String prefix;
    private final LongSupplier nanoTime;
    // null while there is no producer: the next current() creates one, unless it waits for its backoff
    private volatile Generation current;
    // guarded by this
    private long generations;
    private boolean closed;
    private int failedCreations;
    private long nextCreationNanos;
    private RuntimeException creationFailure;
    // told of each replacement (the relay's counter); nothing until set
    private volatile Runnable onReplaced = () -> {};

    Publisher(Map<String, Object> properties, String prefix) {
        this(() -> new KafkaProducer<>(properties), prefix);
    }

    /** @param factory makes each producer generation (tests pass Kafka's {@code MockProducer}) */
    Publisher(Supplier<Producer<byte[], byte[]>> factory, String prefix) {
        this(factory, prefix, System::nanoTime);
    }

    /**
     * @param nanoTime the clock of the backoff between failed creations
     * @throws RuntimeException what creating the first producer threw: the relay does not start
     */
    Publisher(Supplier<Producer<byte[], byte[]>> factory, String prefix, LongSupplier nanoTime) {
        this.factory = factory;
        this.prefix = prefix;
        this.nanoTime = nanoTime;
        this.current = new Generation(factory.get(), 1);
        this.generations = 1;
    }

    /**
     * @return the producer to send with; created now if the last one was replaced and its successor
     *     could not be created
     * @throws Unavailable when there is no producer: creating one failed now, or failed lately and its
     *     backoff has not passed, or the publisher is closed
     */
    Generation current() {
        Generation g = current;
        return g != null ? g : create();
    }

    /**
     * @return whether {@code generation} is the producer in use; never creates one (a callback on a
     *     producer's I/O thread may ask)
     */
    boolean isCurrent(Generation generation) {
        return current == generation;
    }

    private synchronized Generation create() {
        Generation g = current;
        if (g != null) {
            return g;
        }
        if (closed) {
            throw new Unavailable(prefix + " the Kafka producer is closed: the relay is closing", null);
        }
        long now = nanoTime.getAsLong();
        if (failedCreations > 0 && now - nextCreationNanos < 0) {
            throw new Unavailable(
                    prefix + " no Kafka producer: creating one failed (" + causes(creationFailure) + "); next try in "
                            + TimeUnit.NANOSECONDS.toMillis(nextCreationNanos - now) + " ms",
                    creationFailure);
        }
        Producer<byte[], byte[]> p;
        try {
            p = factory.get();
        } catch (RuntimeException | LinkageError e) {
            RuntimeException failure = e instanceof RuntimeException r ? r : new KafkaException(e);
            failedCreations++;
            long delay = retryDelay(failedCreations).toNanos();
            nextCreationNanos = nanoTime.getAsLong() + delay;
            creationFailure = failure;
            String message = cannotCreate("the Kafka producer (generation " + (generations + 1) + ")", failure);
            if (failedCreations == 1) {
                LOG.warn(
                        "{} {}; nothing is published until it can be created, tried again in {} ms",
                        prefix,
                        message,
                        TimeUnit.NANOSECONDS.toMillis(delay),
                        failure);
            } else {
                LOG.warn(
                        "{} {}; nothing is published until it can be created, tried again in {} ms (failure {} in a row)",
                        prefix,
                        message,
                        TimeUnit.NANOSECONDS.toMillis(delay),
                        failedCreations);
            }
            throw new Unavailable(prefix + " " + message, failure);
        }
        g = new Generation(p, ++generations);
        current = g;
        if (failedCreations > 0) {
            LOG.info(
                    "{} created the Kafka producer (generation {}) after {} failed tries; publishing again",
                    prefix,
                    g.number(),
                    failedCreations);
        }
        failedCreations = 0;
        creationFailure = null;
        return g;
    }

    /** @return the wait after the {@code failures}-th failed creation in a row */
    static Duration retryDelay(int failures) {
        int doublings = Math.min(failures - 1, 16);
        Duration d = FIRST_RETRY.multipliedBy(1L << doublings);
        return d.compareTo(MAX_RETRY) > 0 ? MAX_RETRY : d;
    }

    /**
     * Replaces {@code failed} if it is still the current producer: closes it without waiting, which fails
     * its pending sends (their batches are retried), then creates its successor. Never throws: a
     * successor that cannot be created is created again by a later {@link #current()}.
     */
    void replace(Generation failed, Throwable why) {
        synchronized (this) {
            if (closed || current != failed) {
                return;
            }
            current = null;
        }
        onReplaced.run();
        LOG.warn(
                "{} replacing the Kafka producer (generation {}) after {}",
                prefix,
                failed.number(),
                Errors.describe(why));
        // closed first: whatever happens to its successor, nothing it still holds reaches Kafka
        closeQuietly(failed.producer(), Duration.ZERO, prefix);
        try {
            create();
        } catch (Unavailable e) {
            // logged; the next current() after the backoff tries again
        }
    }

    /** @param counter runs once for each producer replaced from now on */
    void onReplaced(Runnable counter) {
        this.onReplaced = counter;
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
        if (g != null) {
            closeQuietly(g.producer(), timeout, prefix);
        }
    }

    static void closeQuietly(Producer<byte[], byte[]> p, Duration timeout, String prefix) {
        try {
            p.close(timeout);
        } catch (RuntimeException e) {
            LOG.warn("{} Kafka producer did not close cleanly: {}", prefix, e.toString());
        }
    }

    /**
     * @param what the producer that could not be created
     * @return what failed, with its causes, and what to check
     */
    static String cannotCreate(String what, Throwable failure) {
        return "could not create " + what + ": " + causes(failure)
                + ". Check that the hosts in bootstrap.servers resolve from this host, that the SSL keystore and"
                + " truststore files are readable (and their passwords right), and that the classes named in"
                + " metric.reporters start";
    }

    /** @return the exception and its causes, outermost first */
    static String causes(Throwable t) {
        StringBuilder s = new StringBuilder(Errors.describe(t));
        Throwable c = t.getCause();
        for (int depth = 0; c != null && c != t && depth < 5; depth++, c = c.getCause()) {
            s.append(", caused by ").append(Errors.describe(c));
        }
        return s.toString();
    }
}
