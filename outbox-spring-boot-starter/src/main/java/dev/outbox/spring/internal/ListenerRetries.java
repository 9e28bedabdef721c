package dev.outbox.spring.internal;

import dev.outbox.core.internal.Durations;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.kafka.KafkaException;
import org.springframework.kafka.listener.AbstractMessageListenerContainer;
import org.springframework.kafka.listener.AfterRollbackProcessor;
import org.springframework.kafka.listener.BatchListenerFailedException;
import org.springframework.kafka.listener.CommonErrorHandler;
import org.springframework.kafka.listener.ConsumerRecordRecoverer;
import org.springframework.kafka.listener.ContainerProperties;
import org.springframework.kafka.listener.DefaultAfterRollbackProcessor;
import org.springframework.kafka.listener.DefaultErrorHandler;
import org.springframework.kafka.listener.MessageListenerContainer;
import org.springframework.kafka.listener.RetryListener;
import org.springframework.kafka.transaction.KafkaAwareTransactionManager;
import org.springframework.util.backoff.BackOff;
import org.springframework.util.backoff.ExponentialBackOff;
import org.springframework.util.backoff.FixedBackOff;

/**
 * The error handler of Spring Kafka's listener containers that never skips a record: a record whose
 * {@code @KafkaListener} method threw is delivered again and again, the waits doubling from {@code
 * initial} up to {@code max}, whatever the exception (none is classified as not retryable). With the
 * dedup claim and the business write in the listener's transaction, each failed attempt rolled both
 * back, so the attempt that finally commits applies the message once (G4); the offset moves past the
 * record only then.
 *
 * <p>A record that can never succeed holds its partition: each failed attempt is logged at WARN with
 * the record's position and the attempt's number, and the consumer group's lag grows, so an operator
 * sees it and fixes the cause (or the application defines its own {@link CommonErrorHandler}, with a
 * dead-letter topic, and this one backs off).
 *
 * <p>A batch listener's failure is always the whole batch's: the batch is delivered again from its
 * first record, also when the listener threw Spring Kafka's {@code BatchListenerFailedException},
 * after which a plain {@link DefaultErrorHandler} commits the offsets of the records before the one it
 * names. Those records' claims and writes may have been rolled back with the failing one (one
 * transaction for the batch), and then they would never be delivered again; the records that did
 * commit are skipped by their claims when delivered again (the starter's README, "Batch listeners").
 *
 * <p>In containers that run Kafka transactions (a {@code KafkaAwareTransactionManager} on their
 * properties) and hand their rolled-back deliveries to {@link #afterRollbackProcessor} (the
 * starter's default; with an after-rollback processor of the application's the handler waits as it
 * does elsewhere, inside the transaction, since nothing else would) Spring Kafka calls the error handler inside the delivery's Kafka transaction, before it
 * rolls the transaction back. A wait there would hold the transaction open, and one longer than the
 * producer's {@code transaction.timeout.ms} (a minute by default) lets the broker abort it and bump
 * the producer's epoch; with Kafka 3's transaction protocol ({@code transaction.version} 1) the
 * rollback then fails with the producer fenced. And a batch that {@link DefaultErrorHandler} delivers
 * again itself stays in the same transaction, which then commits what the failed attempts sent with
 * what the last one sent. So in those containers the handler does not wait, and does not deliver a
 * batch again itself: it fails the delivery at once,
 * recovering nothing, the transaction rolls back, and the container hands the records to its {@link
 * AfterRollbackProcessor}, {@link #afterRollbackProcessor}, which seeks back to them, logs the failed
 * attempt and waits, outside the transaction. Spring Kafka's default processor counts failures of
 * its own and, at every tenth, "recovers" the record: it logs an ERROR that its back-off is exhausted,
 * and one given a recoverer would dead-letter it, or commit past it; the starter's never recovers.
 *
 * <p>Either way each failed delivery waits once, on the same back-off, and is logged once at WARN
 * with its position and attempt number. The wait is spent in the consumer's poll loop, inside a
 * transaction or not, hence the bound of {@code max} by the poll interval; it is never spent inside a
 * Kafka transaction, so {@code transaction.timeout.ms} does not bound it.
 */
public final class ListenerRetries {
    private static final Logger LOG = LoggerFactory.getLogger(ListenerRetries.class);
    /** The consumer's default {@code max.poll.interval.ms}. */
    static final Duration DEFAULT_POLL_INTERVAL = Duration.ofMinutes(5);
    /** The longest wait under the default poll interval: four fifths of it ({@link #longest}). */
    static final Duration LONGEST = longest(DEFAULT_POLL_INTERVAL);
    /** The shortest first wait: the backoff counts whole milliseconds. */
    static final Duration SHORTEST = Duration.ofMillis(1);

    /**
     * The first record of the delivery whose failure this thread's error handler last waited for and
     * threw on, so that the after-rollback processor that follows does not wait a second time.
     */
    private static final ThreadLocal<Position> WAITED = new ThreadLocal<>();

    /**
     * The failed deliveries of this thread's batch, in a container that runs Kafka transactions, since the
     * last one that succeeded: the attempt number the after-rollback processor logs.
     */
    private static final ThreadLocal<Integer> BATCH_ATTEMPTS = new ThreadLocal<>();

    private ListenerRetries() {}

    /**
     * @param initial the first wait, at least 1 ms
     * @param max the longest wait, at least {@code initial} and at most 4 minutes
     * @return the error handler, for consumers with the default {@code max.poll.interval.ms}
     * @throws IllegalArgumentException naming the bound a wait breaks
     */
    public static CommonErrorHandler errorHandler(Duration initial, Duration max) {
        return errorHandler(initial, max, DEFAULT_POLL_INTERVAL);
    }

    /**
     * @param initial the first wait, at least 1 ms
     * @param max the longest wait, at least {@code initial} and at most four fifths of {@code
     *     pollInterval}
     * @param pollInterval the listener consumers' {@code max.poll.interval.ms} ({@link #pollInterval})
     * @return the error handler
     * @throws IllegalArgumentException naming the bound a wait breaks
     */
    public static CommonErrorHandler errorHandler(Duration initial, Duration max, Duration pollInterval) {
        DefaultErrorHandler handler =
                new WholeBatches(ListenerRetries::neverRecover, backOff(initial, max, pollInterval));
        // Spring Kafka skips some exceptions at once (a conversion failure, a ClassCastException): retried too
        handler.setClassifications(Map.of(), true);
        handler.setRetryListeners(new Logging());
        return handler;
    }

    /**
     * The after-rollback processor of listener containers that run transactions, beside {@link
     * #errorHandler}: it never recovers a record (no dead letter, no commit past it, no "exhausted"
     * ERROR), but seeks back to the records of the rolled-back delivery so that they are delivered
     * again. In containers that run Kafka transactions {@link #errorHandler} failed the delivery without
     * waiting, and the processor waits on the back-off, after the rollback, logging the attempt at
     * WARN as the handler does elsewhere. In other containers (a transaction manager of the
     * application's on the container) the handler has already waited, and the processor does not wait
     * again. After any other rollback (the transaction's commit failed) it waits on the same back-off.
     * So each failed delivery waits once and no wait is longer than {@code max}.
     *
     * @param initial the first wait, at least 1 ms
     * @param max the longest wait, at least {@code initial} and at most four fifths of {@code
     *     pollInterval}
     * @param pollInterval the listener consumers' {@code max.poll.interval.ms} ({@link #pollInterval})
     * @return the after-rollback processor
     * @throws IllegalArgumentException naming the bound a wait breaks
     */
    public static AfterRollbackProcessor<Object, Object> afterRollbackProcessor(
            Duration initial, Duration max, Duration pollInterval) {
        return new NeverRecoverAfterRollback(backOff(initial, max, pollInterval));
    }

    /** @return waits doubling from {@code initial} up to {@code max}, without end */
    private static BackOff backOff(Duration initial, Duration max, Duration pollInterval) {
        requireInitial(initial);
        requireMax(initial, max, pollInterval);
        ExponentialBackOff backOff = new ExponentialBackOff(initial.toMillis(), 2.0);
        backOff.setMaxInterval(max.toMillis());
        backOff.setMaxElapsedTime(Long.MAX_VALUE);
        backOff.setMaxAttempts(Long.MAX_VALUE);
        return backOff;
    }

    /** The recoverer of a back-off without end: never called; it throws so that no path commits past a record. */
    private static void neverRecover(ConsumerRecord<?, ?> record, Exception failure) {
        throw new IllegalStateException(
                "the outbox starter's listener error handler never skips a record; " + position(record)
                        + " is delivered again",
                failure);
    }

    /**
     * @throws IllegalArgumentException when {@code initial} is below 1 ms (the waits are whole
     *     milliseconds: a shorter one would be no wait at all, every one after it too)
     */
    public static void requireInitial(Duration initial) {
        if (initial == null || initial.compareTo(SHORTEST) < 0) {
            throw new IllegalArgumentException("the initial interval must be at least "
                    + Durations.format(SHORTEST) + " (the waits are whole milliseconds; a shorter one would retry"
                    + " without any wait), got " + format(initial));
        }
    }

    /**
     * @param pollInterval the listener consumers' {@code max.poll.interval.ms} ({@link #pollInterval})
     * @throws IllegalArgumentException when {@code max} is below {@code initial} or above four fifths of
     *     {@code pollInterval}
     */
    public static void requireMax(Duration initial, Duration max, Duration pollInterval) {
        Duration longest = longest(pollInterval);
        if (max == null || max.compareTo(initial) < 0 || max.compareTo(longest) > 0) {
            throw new IllegalArgumentException("the max interval must be between the initial interval ("
                    + Durations.format(initial) + ") and " + Durations.format(longest)
                    + " (four fifths of the listener consumers' max.poll.interval.ms, "
                    + Durations.format(pollInterval)
                    + (pollInterval.equals(DEFAULT_POLL_INTERVAL) ? ", Kafka's default" : "")
                    + ": the wait is spent in the consumer's poll loop, and a longer one puts the consumer out of"
                    + " its group, a rebalance at every retry), got " + format(max)
                    + "; lower it, or raise max.poll.interval.ms");
        }
    }

    /**
     * @param consumerProperties the configuration of the listener containers' consumer factory, or null
     *     when there is no single one
     * @return its {@code max.poll.interval.ms}, else Kafka's default, 5 minutes
     * @throws IllegalArgumentException when the value is not a positive number of milliseconds
     */
    public static Duration pollInterval(Map<String, Object> consumerProperties) {
        Object value =
                consumerProperties == null ? null : consumerProperties.get(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG);
        if (value == null) {
            return DEFAULT_POLL_INTERVAL;
        }
        long millis;
        try {
            millis = value instanceof Number n
                    ? n.longValue()
                    : Long.parseLong(value.toString().strip());
        } catch (NumberFormatException e) {
            millis = -1;
        }
        if (millis < 1) {
            throw new IllegalArgumentException("the consumers' " + ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG
                    + " must be" + " a positive number of milliseconds, got " + value);
        }
        return Duration.ofMillis(millis);
    }

    private static Duration longest(Duration pollInterval) {
        return pollInterval.multipliedBy(4).dividedBy(5);
    }

    private static String format(Duration d) {
        return d == null ? "null" : Durations.format(d);
    }

    private static String position(ConsumerRecord<?, ?> record) {
        return record.topic() + "-" + record.partition() + "@" + record.offset();
    }

    /**
     * @param container the container whose delivery failed, or null when unknown
     * @return whether it runs each delivery in a Kafka transaction, as Spring Kafka's container decides
     *     it: a {@code KafkaAwareTransactionManager} on its properties, under either setter
     */
    static boolean runsKafkaTransactions(MessageListenerContainer container) {
        if (container == null) {
            return false;
        }
        ContainerProperties properties;
        try {
            properties = container.getContainerProperties();
        } catch (UnsupportedOperationException e) {
            return false;
        }
        return properties.getKafkaAwareTransactionManager() != null
                || properties.getTransactionManager() instanceof KafkaAwareTransactionManager<?, ?>;
    }

    /**
     * @return whether the error handler leaves the wait to the after-rollback processor: the container
     *     runs Kafka transactions and hands its rolled-back deliveries to {@link #afterRollbackProcessor}.
     *     With an after-rollback processor of the application's (or Spring Kafka's default one) the
     *     handler waits as it does elsewhere, since nothing else would
     */
    static boolean retriesAfterRollback(MessageListenerContainer container) {
        return runsKafkaTransactions(container)
                && container instanceof AbstractMessageListenerContainer<?, ?> c
                && c.getAfterRollbackProcessor() instanceof NeverRecoverAfterRollback;
    }

    /**
     * The error handler's failure of a delivery in a container that runs Kafka transactions: thrown at
     * once, without waiting, so that the transaction rolls back now; the after-rollback processor that
     * follows recognises it and waits. The container logs it at DEBUG as the handler's exception (and
     * at ERROR as the cause of the rollback, as it does any exception of the handler); the
     * after-rollback processor logs the failed attempt at WARN.
     */
    static final class RetryAfterRollback extends KafkaException {
        private static final long serialVersionUID = 1L;

        RetryAfterRollback(String message, Exception thrown) {
            super(message, Level.DEBUG, thrown);
        }

        /** @return what the listener threw, as the error handler was given it */
        Exception thrown() {
            return (Exception) getCause();
        }
    }

    private static RetryAfterRollback retryAfterRollback(String delivery, Exception thrown) {
        return new RetryAfterRollback(
                "@KafkaListener failed on " + delivery + " in a Kafka transaction; it is rolled back, and delivered"
                        + " again after a backoff outside the transaction, never skipped",
                thrown);
    }

    /**
     * @return {@code thrown}, or, when a {@code BatchListenerFailedException} is in its causes, an
     *     exception without it (its cause kept), so that the handler retries the whole batch
     */
    static Exception wholeBatch(Exception thrown) {
        for (Throwable t = thrown; t != null; t = t.getCause()) {
            if (t instanceof BatchListenerFailedException named) {
                return new WholeBatchFailed(
                        "a batch listener failed"
                                + (named.getRecord() != null
                                        ? " at " + position(named.getRecord())
                                        : named.getIndex() >= 0 ? " at the batch's record " + named.getIndex() : "")
                                + "; the whole batch is delivered again, since the records before that one may have"
                                + " been rolled back with it: " + named.getMessage(),
                        named.getCause());
            }
        }
        return thrown;
    }

    /** A batch listener's failure, handled as the whole batch's ({@link #wholeBatch}). */
    static final class WholeBatchFailed extends RuntimeException {
        private static final long serialVersionUID = 1L;

        WholeBatchFailed(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /**
     * A {@link DefaultErrorHandler} for which every failure of a batch listener is the whole batch's,
     * and that notes the delivery it waited for and threw on ({@link #WAITED}); in containers that run
     * Kafka transactions it throws {@link RetryAfterRollback} at once instead, and leaves the seeks and
     * the wait to the after-rollback processor.
     */
    private static final class WholeBatches extends DefaultErrorHandler {
        WholeBatches(ConsumerRecordRecoverer recoverer, BackOff backOff) {
            super(recoverer, backOff);
        }

        @Override
        public void handleRemaining(
                Exception thrown,
                List<ConsumerRecord<?, ?>> records,
                Consumer<?, ?> consumer,
                MessageListenerContainer container) {
            if (retriesAfterRollback(container)) {
                throw retryAfterRollback(records.isEmpty() ? "no record" : position(records.get(0)), thrown);
            }
            try {
                super.handleRemaining(thrown, records, consumer, container);
            } catch (RuntimeException e) {
                WAITED.set(Position.first(records));
                throw e;
            }
        }

        @Override
        public void handleBatch(
                Exception thrown,
                ConsumerRecords<?, ?> data,
                Consumer<?, ?> consumer,
                MessageListenerContainer container,
                Runnable invokeListener) {
            if (retriesAfterRollback(container)) {
                throw retryAfterRollback(batch(data), wholeBatch(thrown));
            }
            try {
                super.handleBatch(wholeBatch(thrown), data, consumer, container, invokeListener);
            } catch (RuntimeException e) {
                WAITED.set(Position.first(data));
                throw e;
            }
        }

        @Override
        public <K, V> ConsumerRecords<K, V> handleBatchAndReturnRemaining(
                Exception thrown,
                ConsumerRecords<?, ?> data,
                Consumer<?, ?> consumer,
                MessageListenerContainer container,
                Runnable invokeListener) {
            if (retriesAfterRollback(container)) {
                throw retryAfterRollback(batch(data), wholeBatch(thrown));
            }
            try {
                return super.handleBatchAndReturnRemaining(
                        wholeBatch(thrown), data, consumer, container, invokeListener);
            } catch (RuntimeException e) {
                WAITED.set(Position.first(data));
                throw e;
            }
        }
    }

    private static String batch(ConsumerRecords<?, ?> records) {
        return "a batch of " + records.count() + " records";
    }

    /** A record's place in its partition; {@code null} from {@link #first} for no record. */
    private record Position(String topic, int partition, long offset) {
        static Position first(Iterable<? extends ConsumerRecord<?, ?>> records) {
            Iterator<? extends ConsumerRecord<?, ?>> it = records.iterator();
            if (!it.hasNext()) {
                return null;
            }
            ConsumerRecord<?, ?> r = it.next();
            return new Position(r.topic(), r.partition(), r.offset());
        }
    }

    /**
     * Never recovers a record after a rollback: Spring Kafka's {@link DefaultAfterRollbackProcessor}
     * seeks back to the records, given a back-off without end and a recoverer that is never called,
     * every exception retried; one that waits on the handler's back-off and logs the attempt after the
     * error handler's failure in a Kafka transaction ({@link RetryAfterRollback}), one that does not
     * wait after the error handler's failure elsewhere, which has waited, and one that waits on the
     * handler's back-off after any other rollback.
     */
    private static final class NeverRecoverAfterRollback implements AfterRollbackProcessor<Object, Object> {
        private final DefaultAfterRollbackProcessor<Object, Object> waitForHandler;
        private final DefaultAfterRollbackProcessor<Object, Object> seekOnly;
        private final DefaultAfterRollbackProcessor<Object, Object> seekAndWait;
        private final Logging logging = new Logging();

        NeverRecoverAfterRollback(BackOff backOff) {
            this.waitForHandler = neverRecovering(backOff);
            // a record's failures counted per position, as the handler counts them elsewhere
            this.waitForHandler.setRetryListeners(logging);
            this.seekOnly = neverRecovering(new FixedBackOff(0, FixedBackOff.UNLIMITED_ATTEMPTS));
            this.seekAndWait = neverRecovering(backOff);
        }

        private static DefaultAfterRollbackProcessor<Object, Object> neverRecovering(BackOff backOff) {
            DefaultAfterRollbackProcessor<Object, Object> processor =
                    new DefaultAfterRollbackProcessor<>(ListenerRetries::neverRecover, backOff);
            processor.setClassifications(Map.of(), true);
            return processor;
        }

        /** @return the processor for the rolled-back delivery that begins with {@code records} */
        private DefaultAfterRollbackProcessor<Object, Object> forDelivery(
                Iterable<? extends ConsumerRecord<?, ?>> records) {
            Position waited = WAITED.get();
            WAITED.remove();
            return waited != null && waited.equals(Position.first(records)) ? seekOnly : seekAndWait;
        }

        @Override
        public void process(
                List<ConsumerRecord<Object, Object>> records,
                Consumer<Object, Object> consumer,
                MessageListenerContainer container,
                Exception exception,
                boolean recoverable,
                ContainerProperties.EOSMode eosMode) {
            if (exception instanceof RetryAfterRollback failed) {
                WAITED.remove();
                waitForHandler.process(records, consumer, container, failed.thrown(), recoverable, eosMode);
                return;
            }
            forDelivery(records).process(records, consumer, container, exception, recoverable, eosMode);
        }

        @Override
        public void processBatch(
                ConsumerRecords<Object, Object> records,
                List<ConsumerRecord<Object, Object>> recordList,
                Consumer<Object, Object> consumer,
                MessageListenerContainer container,
                Exception exception,
                boolean recoverable,
                ContainerProperties.EOSMode eosMode) {
            if (exception instanceof RetryAfterRollback failed) {
                WAITED.remove();
                // a batch's wait is not counted per record: the container clears this thread's count and
                // back-off once a batch succeeds after a failure
                Integer before = BATCH_ATTEMPTS.get();
                int attempt = before == null ? 1 : before + 1;
                BATCH_ATTEMPTS.set(attempt);
                logging.failedDelivery(records, failed.thrown(), attempt);
                waitForHandler.processBatch(
                        records, recordList, consumer, container, failed.thrown(), recoverable, eosMode);
                return;
            }
            forDelivery(recordList)
                    .processBatch(records, recordList, consumer, container, exception, recoverable, eosMode);
        }

        @Override
        public void clearThreadState() {
            WAITED.remove();
            BATCH_ATTEMPTS.remove();
            waitForHandler.clearThreadState();
            seekOnly.clearThreadState();
            seekAndWait.clearThreadState();
        }
    }

    private static final class Logging implements RetryListener {
        @Override
        public void failedDelivery(ConsumerRecord<?, ?> record, Exception failure, int attempt) {
            Throwable cause = failure.getCause() != null ? failure.getCause() : failure;
            LOG.warn(
                    "[outbox] @KafkaListener failed on {} (attempt {}); it is delivered again after a backoff, never"
                            + " skipped: {}",
                    position(record),
                    attempt,
                    cause.toString());
        }

        @Override
        public void failedDelivery(ConsumerRecords<?, ?> records, Exception failure, int attempt) {
            Throwable cause = failure.getCause() != null ? failure.getCause() : failure;
            LOG.warn(
                    "[outbox] batch @KafkaListener failed on a batch of {} records (attempt {}); the whole batch is"
                            + " delivered again after a backoff, never skipped: {}",
                    records.count(),
                    attempt,
                    cause.toString());
        }
    }
}
