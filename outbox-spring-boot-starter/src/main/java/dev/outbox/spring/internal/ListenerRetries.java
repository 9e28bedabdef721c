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
import org.springframework.kafka.listener.AfterRollbackProcessor;
import org.springframework.kafka.listener.BatchListenerFailedException;
import org.springframework.kafka.listener.CommonErrorHandler;
import org.springframework.kafka.listener.ConsumerRecordRecoverer;
import org.springframework.kafka.listener.ContainerProperties;
import org.springframework.kafka.listener.DefaultAfterRollbackProcessor;
import org.springframework.kafka.listener.DefaultErrorHandler;
import org.springframework.kafka.listener.MessageListenerContainer;
import org.springframework.kafka.listener.RetryListener;
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
 * <p>In containers that run Kafka transactions the handler's failure rolls the transaction back, and
 * the container then hands the records to its {@link AfterRollbackProcessor}. Spring Kafka's default
 * one counts failures of its own and, at every tenth, "recovers" the record: it logs an ERROR that
 * its back-off is exhausted (the record is delivered again all the same, the handler having sought
 * back to it), and one given a recoverer would dead-letter it, or commit past it. {@link
 * #afterRollbackProcessor} never recovers: it seeks back to the records and, unless this handler
 * already waited for the failure, waits on the same back-off.
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
     * The after-rollback processor of listener containers that run Kafka transactions, beside {@link
     * #errorHandler}: it never recovers a record (no dead letter, no commit past it, no "exhausted"
     * ERROR), but seeks back to the records of the rolled-back delivery so that they are delivered
     * again. When {@link #errorHandler} threw on that delivery it has already waited, and the
     * processor does not wait again; else (the transaction's commit failed) it waits on the same
     * back-off, so each failed delivery waits once and no wait is longer than {@code max}.
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
     * and that notes the delivery it waited for and threw on ({@link #WAITED}).
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
            try {
                return super.handleBatchAndReturnRemaining(
                        wholeBatch(thrown), data, consumer, container, invokeListener);
            } catch (RuntimeException e) {
                WAITED.set(Position.first(data));
                throw e;
            }
        }
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
     * every exception retried; one that does not wait after the error handler's failure, which has
     * waited, and one that waits on the handler's back-off after any other rollback.
     */
    private static final class NeverRecoverAfterRollback implements AfterRollbackProcessor<Object, Object> {
        private final DefaultAfterRollbackProcessor<Object, Object> seekOnly;
        private final DefaultAfterRollbackProcessor<Object, Object> seekAndWait;

        NeverRecoverAfterRollback(BackOff backOff) {
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
            forDelivery(recordList)
                    .processBatch(records, recordList, consumer, container, exception, recoverable, eosMode);
        }

        @Override
        public void clearThreadState() {
            WAITED.remove();
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
