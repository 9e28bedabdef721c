package dev.outbox.relay.internal;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The transactional producer of one owned shard ({@code transactional.id} = prefix + shard), one
 * Kafka transaction per batch. The producer is created, and {@code initTransactions()} called, at
 * the shard's first batch after the claim: the broker then aborts whatever the shard's previous
 * owner left open and refuses that owner's producer from then on ({@code ProducerFencedException}),
 * so a relay that lost its lease can no longer make a record visible to {@code read_committed}
 * consumers. A producer that failed (fenced, a commit or abort that did not go through) is closed
 * and the next batch starts with a new one, whose {@code initTransactions()} settles the open
 * transaction.
 */
final class TransactionalPublisher implements ShardPublisher {
    private static final Logger LOG = LoggerFactory.getLogger(TransactionalPublisher.class);

    private final Map<String, Object> properties;
    private final String transactionalId;
    private final String prefix;
    private final Runnable onClose;
    // guarded by this
    private Publisher.Generation current;
    private long generations;
    private boolean closed;

    /**
     * @param shared the relay's validated producer properties
     * @param transactionalId this shard's transactional id
     * @param transactionTimeout what the broker waits before it aborts a transaction left open by a
     *     relay that died, unless {@code transaction.timeout.ms} is given
     * @param onClose called once, when the publisher is closed
     */
    TransactionalPublisher(
            Map<String, Object> shared,
            String transactionalId,
            Duration transactionTimeout,
            String prefix,
            Runnable onClose) {
        this.properties = properties(shared, transactionalId, transactionTimeout);
        this.transactionalId = transactionalId;
        this.prefix = prefix;
        this.onClose = onClose;
    }

    /** @return the shard producer's configuration: the shared one plus its transactional id and client id */
    static Map<String, Object> properties(
            Map<String, Object> shared, String transactionalId, Duration transactionTimeout) {
        Map<String, Object> p = new LinkedHashMap<>(shared);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
        // one client id per producer: Kafka registers its metrics and MBeans under it
        p.put(ProducerConfig.CLIENT_ID_CONFIG, shared.get(ProducerConfig.CLIENT_ID_CONFIG) + "-" + transactionalId);
        p.putIfAbsent(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, String.valueOf(transactionTimeout.toMillis()));
        return p;
    }

    @Override
    public void init() {
        current();
    }

    /** @return the current producer, created and its transactions initialised if there is none */
    private Publisher.Generation current() {
        Publisher.Generation g;
        synchronized (this) {
            if (closed) {
                throw new IllegalStateException(prefix + " producer of " + transactionalId + " is closed");
            }
            g = current;
        }
        if (g != null) {
            return g;
        }
        Producer<byte[], byte[]> producer;
        try {
            producer = new KafkaProducer<>(properties);
        } catch (RuntimeException e) {
            // nothing to close, and current stays null: the shard's next round tries again after its backoff
            throw new Publisher.Unavailable(
                    prefix + " " + Publisher.cannotCreate("the transactional producer " + transactionalId, e), e);
        }
        try {
            producer.initTransactions();
        } catch (RuntimeException e) {
            Publisher.closeQuietly(producer, Duration.ZERO, prefix);
            throw e;
        }
        synchronized (this) {
            if (closed) {
                Publisher.closeQuietly(producer, Duration.ZERO, prefix);
                throw new IllegalStateException(prefix + " producer of " + transactionalId + " is closed");
            }
            g = new Publisher.Generation(producer, ++generations);
            current = g;
        }
        if (g.number() > 1) {
            LOG.info(
                    "{} transactional producer {} initialised again (generation {})",
                    prefix,
                    transactionalId,
                    g.number());
        } else {
            LOG.debug(
                    "{} transactional producer {} initialised: earlier producers of this id are fenced",
                    prefix,
                    transactionalId);
        }
        return g;
    }

    @Override
    public Publisher.Generation begin() {
        Publisher.Generation g = current();
        try {
            g.producer().beginTransaction();
        } catch (RuntimeException e) {
            replace(g, e);
            throw e;
        }
        return g;
    }

    @Override
    public boolean atomic() {
        return true;
    }

    @Override
    public void commit(Publisher.Generation generation) {
        generation.producer().commitTransaction();
    }

    @Override
    public void abort(Publisher.Generation generation, Throwable why) {
        try {
            generation.producer().abortTransaction();
        } catch (RuntimeException e) {
            // fenced, or the producer's state does not allow an abort (a commit that timed out): a new
            // producer's initTransactions() settles the open transaction
            replace(generation, e);
        }
    }

    @Override
    public synchronized boolean isCurrent(Publisher.Generation generation) {
        return generation == current;
    }

    @Override
    public void replace(Publisher.Generation generation, Throwable why) {
        synchronized (this) {
            if (current != generation) {
                return;
            }
            current = null;
        }
        LOG.warn(
                "{} closing transactional producer {} (generation {}) after {}",
                prefix,
                transactionalId,
                generation.number(),
                Errors.describe(why));
        Publisher.closeQuietly(generation.producer(), Duration.ZERO, prefix);
    }

    @Override
    public void close() {
        Publisher.Generation g;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            g = current;
            current = null;
        }
        if (g != null) {
            Publisher.closeQuietly(g.producer(), Duration.ZERO, prefix);
        }
        onClose.run();
    }
}
