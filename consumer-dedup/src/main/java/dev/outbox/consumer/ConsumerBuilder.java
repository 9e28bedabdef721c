package dev.outbox.consumer;

import dev.outbox.consumer.internal.DedupConsumer;
import dev.outbox.consumer.internal.Hooks;
import dev.outbox.consumer.internal.KafkaConfigChecks;
import dev.outbox.consumer.internal.OptionalTracing;
import dev.outbox.consumer.internal.Settings;
import dev.outbox.core.internal.Checks;
import dev.outbox.core.internal.Durations;
import dev.outbox.core.retry.Backoff;
import dev.outbox.schemas.AvroCodec;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Metrics;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;

/**
 * The body of {@link IdempotentConsumer.Builder}, the only class that extends it, with {@link
 * ConsumerBuilderBase}: the settings of processing (retries, dead letters, batches, retention,
 * threads), their defaults and checks, and {@link #build()}.
 */
abstract sealed class ConsumerBuilder extends ConsumerBuilderBase permits IdempotentConsumer.Builder {
    /**
     * Default {@link #maxTransientRetry(Duration)}: 1 hour of {@code TRANSIENT} failures of one record
     * before it is dead-lettered.
     */
    public static final Duration DEFAULT_MAX_TRANSIENT_RETRY = Duration.ofHours(1);

    /**
     * Longest {@link #maxTransientRetry(Duration)}: 7 days. The records behind the failing one on its
     * partition wait as long, and Kafka deletes records older than the topic's {@code retention.ms} (7
     * days by default) whether they were consumed or not.
     */
    public static final Duration MAX_TRANSIENT_RETRY = Duration.ofDays(7);

    /**
     * Default {@link #maxAttempts(int)}: with {@link #DEFAULT_BACKOFF}, 7 retries whose delays are
     * drawn from [0, 1 s], [0, 2 s], [0, 4 s], [0, 8 s], [0, 16 s], [0, 30 s], [0, 30 s]: about 45 s
     * expected and at most 91 s before a record is dead-lettered, enough to ride out a downstream
     * service restarting.
     */
    public static final int DEFAULT_MAX_ATTEMPTS = 8;

    /** Default {@link #maxRecordsPerTransaction(int)}. */
    public static final int DEFAULT_MAX_RECORDS_PER_TRANSACTION = 50;

    /** Largest {@link #maxRecordsPerTransaction(int)}. */
    public static final int MAX_RECORDS_PER_TRANSACTION = 1000;

    /**
     * Default {@link #maxBufferedBytes(long)}: 64 MiB, thousands of records of a few KiB to keep the
     * workers busy (with few partitions, their bound of 1,000 records each comes first), and a small
     * part of a service's heap.
     */
    public static final long DEFAULT_MAX_BUFFERED_BYTES = 64L * 1024 * 1024;

    /** Default {@link #retention(Duration)}. */
    public static final Duration DEFAULT_RETENTION = Duration.ofDays(7);

    /** Shortest {@link #retention(Duration)}. */
    public static final Duration MIN_RETENTION = Duration.ofHours(1);

    /**
     * Longest {@link #retention(Duration)}, 100 years: keeping processed ids for ever. Ages are
     * computed in milliseconds and nanoseconds, which hold up to 292 years.
     */
    public static final Duration MAX_RETENTION = Duration.ofDays(36_525);

    /** Default {@link #purgeInterval(Duration)}. */
    public static final Duration DEFAULT_PURGE_INTERVAL = Duration.ofHours(1);

    /** Default {@link #backoff(Backoff)}: 1 s doubling up to 30 s, full jitter. */
    public static final Backoff DEFAULT_BACKOFF = Backoff.of(Duration.ofSeconds(1), Duration.ofSeconds(30));

    /** Default {@link #deadLetterTopicSuffix(String)}. */
    public static final String DEFAULT_DEAD_LETTER_SUFFIX = ".dlt";

    /** The suffix of Spring Kafka's {@code DeadLetterPublishingRecoverer}, for {@link #deadLetterTopicSuffix(String)}. */
    public static final String SPRING_DEAD_LETTER_SUFFIX = ".DLT";

    /** Default {@link #closeTimeout(Duration)}. */
    public static final Duration DEFAULT_CLOSE_TIMEOUT = Duration.ofSeconds(30);

    /**
     * Shortest {@link #closeTimeout(Duration)}: 1 second. Its waits are counted in whole milliseconds,
     * and 0 ms is no bound at all for the wait for the poll thread at close, and no wait at all for
     * the dead-letter producer's {@code max.block.ms}.
     */
    public static final Duration MIN_CLOSE_TIMEOUT = Duration.ofSeconds(1);

    /**
     * Longest {@link #closeTimeout(Duration)}: 1 day. {@code close()} may take 6 times as long, and
     * Kafka's {@code max.poll.interval.ms}, which must exceed 3 times it, is at most 24.8 days.
     */
    public static final Duration MAX_CLOSE_TIMEOUT = Duration.ofDays(1);

    private int maxAttempts = DEFAULT_MAX_ATTEMPTS;
    private Duration maxTransientRetry = DEFAULT_MAX_TRANSIENT_RETRY;
    private Backoff backoff = DEFAULT_BACKOFF;
    private String deadLetterTopic;
    private String deadLetterTopicSuffix = DEFAULT_DEAD_LETTER_SUFFIX;
    private Function<Throwable, FailureKind> failureClassifier;
    private int maxRecordsPerTransaction = DEFAULT_MAX_RECORDS_PER_TRANSACTION;
    private long maxBufferedBytes = DEFAULT_MAX_BUFFERED_BYTES;
    private boolean savepointPerRecord;
    private int concurrency = Math.min(4, Math.max(1, Runtime.getRuntime().availableProcessors()));
    private Duration retention = DEFAULT_RETENTION;
    private Duration purgeInterval = DEFAULT_PURGE_INTERVAL;
    private Duration closeTimeout = DEFAULT_CLOSE_TIMEOUT;
    private MeterRegistry meterRegistry;
    private AvroCodec codec;
    private Hooks hooks = Hooks.NONE;

    ConsumerBuilder() {}

    /**
     * @param maxAttempts how many times the handler is called for one record before it is
     *     dead-lettered, counting the first call; default {@value #DEFAULT_MAX_ATTEMPTS} (see {@link
     *     #DEFAULT_MAX_ATTEMPTS} for the total time). Database outages, lock contention in the
     *     handler and {@link FailureKind#TRANSIENT} failures do not count.
     * @return this builder
     * @throws IllegalArgumentException when less than 1
     */
    public IdempotentConsumer.Builder maxAttempts(int maxAttempts) {
        if (maxAttempts < 1) {
            throw new IllegalArgumentException("maxAttempts must be at least 1 (1 = no retry), got " + maxAttempts);
        }
        this.maxAttempts = maxAttempts;
        return self();
    }

    /**
     * @param maxTransientRetry how long a record's {@link FailureKind#TRANSIENT TRANSIENT} failures
     *     are retried (with the backoff, without using attempts) before the record is dead-lettered
     *     like one that used up its attempts; default {@link #DEFAULT_MAX_TRANSIENT_RETRY}, so that no
     *     record holds its partition for ever (G6); at most {@link #MAX_TRANSIENT_RETRY}
     * @return this builder
     * @throws NullPointerException when {@code maxTransientRetry} is null
     * @throws IllegalArgumentException when it is not positive or longer than {@link
     *     #MAX_TRANSIENT_RETRY}
     */
    public IdempotentConsumer.Builder maxTransientRetry(Duration maxTransientRetry) {
        Checks.requirePositive(maxTransientRetry, "maxTransientRetry", "");
        if (maxTransientRetry.compareTo(MAX_TRANSIENT_RETRY) > 0) {
            throw new IllegalArgumentException("maxTransientRetry must be at most "
                    + Durations.format(MAX_TRANSIENT_RETRY)
                    + ", got " + Durations.format(maxTransientRetry) + ": the records behind the failing one on its"
                    + " partition wait as long, and Kafka deletes records older than the topic's retention.ms (7 days by"
                    + " default) whether they were consumed or not; a record dead-lettered once it has passed can be"
                    + " replayed when the cause is fixed (see the README's runbook)");
        }
        this.maxTransientRetry = maxTransientRetry;
        return self();
    }

    /**
     * @param backoff the delay before each retry, full jitter; default 1 s doubling up to 30 s.
     *     Also spaces retries after transient, database or dead-letter publishing failures.
     * @return this builder
     * @throws NullPointerException when null
     */
    public IdempotentConsumer.Builder backoff(Backoff backoff) {
        this.backoff = Objects.requireNonNull(backoff, "backoff may not be null");
        return self();
    }

    /**
     * @param topic the dead-letter topic for every source topic; default {@code <source
     *     topic><suffix>} per source topic (see {@link #deadLetterTopicSuffix(String)}). It must
     *     exist unless the brokers auto-create topics, and may not be one of the {@link
     *     #topics(String...) topics}: a record without a usable message id would be dead-lettered
     *     onto the topic it came from, read again and dead-lettered again, for ever. {@link #build()}
     *     refuses it then, and when it is not a valid Kafka topic name.
     * @return this builder
     * @throws NullPointerException when null
     * @throws IllegalArgumentException when blank
     */
    public IdempotentConsumer.Builder deadLetterTopic(String topic) {
        this.deadLetterTopic = Checks.requireNonBlank(topic, "deadLetterTopic");
        return self();
    }

    /**
     * The suffix that names each source topic's dead-letter topic when {@link
     * #deadLetterTopic(String)} is not set. Default {@value #DEFAULT_DEAD_LETTER_SUFFIX}; {@value
     * #SPRING_DEAD_LETTER_SUFFIX} gives Spring Kafka's names, for fleets that mix both.
     *
     * @param suffix appended to the source topic's name
     * @return this builder
     * @throws NullPointerException when null
     * @throws IllegalArgumentException when empty or not made of the characters Kafka allows in
     *     topic names ({@code a-z A-Z 0-9 . _ -})
     */
    public IdempotentConsumer.Builder deadLetterTopicSuffix(String suffix) {
        Objects.requireNonNull(suffix, "deadLetterTopicSuffix may not be null");
        if (!suffix.matches("[a-zA-Z0-9._-]+")) {
            throw new IllegalArgumentException(
                    "deadLetterTopicSuffix must be 1 or more of the characters a-z A-Z 0-9 . _ -," + " got \"" + suffix
                            + "\"; e.g. " + DEFAULT_DEAD_LETTER_SUFFIX + " or " + SPRING_DEAD_LETTER_SUFFIX);
        }
        this.deadLetterTopicSuffix = suffix;
        return self();
    }

    /**
     * Decides what a handler failure means. Called for each exception the handler throws (and for
     * an aborted transaction the handler left behind), except database failures, which the consumer
     * classifies itself: a lost connection or a server shutting down is retried under the database
     * circuit breaker when the consumer's own connection no longer answers, lock contention raised by
     * the handler's statements (55P03, 40001, 40P01) is {@link FailureKind#TRANSIENT}. Returning null
     * applies the default rule: a {@link PermanentHandlerException} or {@link
     * TransientHandlerException} anywhere in the cause chain (the first one found) decides, else a
     * transient database failure while the consumer's connection answers, which another database or
     * pool the handler uses raised, is {@code TRANSIENT} (a {@code SQLTransientException} or {@code
     * SQLRecoverableException}, such as a pool's connection timeout, or SQLState class 08, 40 or 53,
     * 55P03 or 57P01..57P03), and anything else
     * is {@link FailureKind#RETRY}. A classifier that throws counts as {@code RETRY}.
     *
     * @param classifier the failure's kind, or null for the default rule
     * @return this builder
     * @throws NullPointerException when null
     */
    public IdempotentConsumer.Builder failureClassifier(Function<Throwable, FailureKind> classifier) {
        this.failureClassifier = Objects.requireNonNull(classifier, "failureClassifier may not be null");
        return self();
    }

    /**
     * How many records of one partition may share a database transaction. Larger batches save
     * commits (one WAL flush each) and round trips. Default {@value
     * #DEFAULT_MAX_RECORDS_PER_TRANSACTION}; 1 means one transaction per record.
     *
     * <p>By default a batch inserts all its dedup rows in one statement and runs the handlers
     * without savepoints; when a handler fails, the whole transaction rolls back, the records before
     * the failing one are redone in a new transaction (their handlers are called again; their
     * first writes were rolled back, so nothing is applied twice), and the failing record is retried
     * on its own. See {@link #savepointPerRecord(boolean)} for the alternative.
     *
     * @param max records per transaction
     * @return this builder
     * @throws IllegalArgumentException when outside 1..{@value #MAX_RECORDS_PER_TRANSACTION}
     */
    public IdempotentConsumer.Builder maxRecordsPerTransaction(int max) {
        this.maxRecordsPerTransaction =
                Checks.requireBetween(max, 1, MAX_RECORDS_PER_TRANSACTION, "maxRecordsPerTransaction", "");
        return self();
    }

    /**
     * The most bytes of records fetched and not yet processed that the consumer holds, all its
     * partitions together: their keys, values and headers, from the poll that fetched them until their
     * transaction commits (or they are dead-lettered, or their partition is revoked). It is kept by
     * pausing partitions, which stops fetching them and skips nothing: from half of it on, the
     * partitions that have records queued are paused, and the other half stays for partitions with none
     * queued, so that records that do not move (a retry wait, a slow handler) hold up the other
     * partitions only once they hold all of it; from the whole of it on, every partition is paused.
     * Fetching resumes as the workers take records off.
     *
     * <p>One poll can go past it: the records queued stay below this plus one poll's records, at most
     * {@code max.poll.records} of them and one fetch of each partition ({@code
     * max.partition.fetch.bytes}, or the partition's first record batch when larger). Outside this
     * bound, the Kafka client keeps up to one fetch per partition that it fetched ahead, paused or not.
     * Each partition also holds at most 1,000 records (or 4 × {@link #maxRecordsPerTransaction(int)},
     * if more), whatever their size. Default {@link #DEFAULT_MAX_BUFFERED_BYTES} (64 MiB).
     *
     * @param bytes the most bytes of records to hold queued
     * @return this builder
     * @throws IllegalArgumentException when not positive
     */
    public IdempotentConsumer.Builder maxBufferedBytes(long bytes) {
        if (bytes < 1) {
            throw new IllegalArgumentException("maxBufferedBytes must be positive, got " + bytes + "; it bounds the"
                    + " bytes of the records fetched and not yet processed over all partitions (default "
                    + DEFAULT_MAX_BUFFERED_BYTES + ", 64 MiB): give the part of the heap they may take, e.g."
                    + " 32L * 1024 * 1024, or leave it unset");
        }
        this.maxBufferedBytes = bytes;
        return self();
    }

    /**
     * Runs each record of a batch inside its own savepoint, so that a failing handler rolls back
     * only its record and the records before it commit without their handlers being called again.
     * Choose it when handlers have side effects outside the transaction that you would rather not
     * repeat; it costs one more round trip per record (see benchmarks/CONSUMER.md). Keep {@link
     * #maxRecordsPerTransaction(int)} at most 64 with it: PostgreSQL tracks up to 64
     * subtransactions per transaction cheaply, more slow down every session's snapshots. Default
     * false.
     *
     * @param savepointPerRecord whether to use a savepoint per record
     * @return this builder
     */
    public IdempotentConsumer.Builder savepointPerRecord(boolean savepointPerRecord) {
        this.savepointPerRecord = savepointPerRecord;
        return self();
    }

    /**
     * @param concurrency worker threads; partitions run in parallel on them, each partition in
     *     order, so more threads than assigned partitions do not help. Default: the number of
     *     processors, at most 4.
     * @return this builder
     * @throws IllegalArgumentException when outside 1..256
     */
    public IdempotentConsumer.Builder concurrency(int concurrency) {
        this.concurrency = Checks.requireBetween(concurrency, 1, 256, "concurrency", "");
        return self();
    }

    /**
     * How long processed message ids are kept. It must exceed the longest window in which a
     * message can be redelivered after it was processed (relay republishing after a crash,
     * consumer group reset, replays); a redelivery later than that is applied again. Default 7
     * days. To keep processed ids for ever, give {@link #MAX_RETENTION} (100 years), the longest.
     *
     * @param retention the retention
     * @return this builder
     * @throws NullPointerException when null
     * @throws IllegalArgumentException when shorter than 1 hour or longer than {@link
     *     #MAX_RETENTION}
     */
    public IdempotentConsumer.Builder retention(Duration retention) {
        Objects.requireNonNull(retention, "retention may not be null");
        if (retention.compareTo(MIN_RETENTION) < 0) {
            throw new IllegalArgumentException(
                    "retention must be at least " + Durations.format(MIN_RETENTION) + ", got "
                            + Durations.format(retention) + "; it must exceed the longest redelivery window (default "
                            + Durations.format(DEFAULT_RETENTION) + ")");
        }
        if (retention.compareTo(MAX_RETENTION) > 0) {
            throw new IllegalArgumentException("retention must be at most " + Durations.format(MAX_RETENTION)
                    + " (100 years), got " + Durations.format(retention) + "; a longer one is keeping processed ids"
                    + " for ever, which 100 years already is: to keep them for ever, give"
                    + " IdempotentConsumer.Builder.MAX_RETENTION (or turn the scheduled purge off with"
                    + " purgeInterval(Duration.ZERO))");
        }
        this.retention = retention;
        return self();
    }

    /**
     * @param interval how often the consumer purges ids older than the retention; default 1 hour;
     *     {@link Duration#ZERO} turns the scheduled purge off (call {@link
     *     IdempotentConsumer#purgeProcessed(Duration)} yourself, e.g. from one instance only)
     * @return this builder
     * @throws NullPointerException when null
     * @throws IllegalArgumentException when negative or between zero and 1 second
     */
    public IdempotentConsumer.Builder purgeInterval(Duration interval) {
        Objects.requireNonNull(interval, "purgeInterval may not be null");
        if (interval.isNegative() || (!interval.isZero() && interval.compareTo(Duration.ofSeconds(1)) < 0)) {
            throw new IllegalArgumentException(
                    "purgeInterval must be zero (off) or at least 1s, got " + Durations.format(interval));
        }
        this.purgeInterval = interval;
        return self();
    }

    /**
     * @param timeout how long {@link IdempotentConsumer#close()} and a partition revocation wait for
     *     transactions in flight, and then for the offset commit; default 30 s. Three times this must
     *     stay below the consumer's {@code max.poll.interval.ms} (5 minutes by default, so below 100 s),
     *     which {@link #build()} checks: a revocation runs inside a poll (two waits), and the poll
     *     loop's own offset commit, up to this long too, can follow it before the next poll. At least
     *     {@link #MIN_CLOSE_TIMEOUT} (1 s), at most {@link #MAX_CLOSE_TIMEOUT} (1 day)
     * @return this builder
     * @throws NullPointerException when null
     * @throws IllegalArgumentException when shorter than {@link #MIN_CLOSE_TIMEOUT} or longer than
     *     {@link #MAX_CLOSE_TIMEOUT}
     */
    public IdempotentConsumer.Builder closeTimeout(Duration timeout) {
        this.closeTimeout = Checks.requireBetween(
                timeout,
                MIN_CLOSE_TIMEOUT,
                MAX_CLOSE_TIMEOUT,
                "closeTimeout",
                "; it bounds each wait of close() and of a revocation, and the dead-letter producer's"
                        + " max.block.ms, counted in whole milliseconds (default "
                        + Durations.format(DEFAULT_CLOSE_TIMEOUT) + ")");
        return self();
    }

    /**
     * @param registry where the {@code outbox.consumer.*} meters go; default Micrometer's global
     *     registry ({@link io.micrometer.core.instrument.Metrics#globalRegistry}), where frameworks
     *     such as Spring Boot add the application's registry
     * @return this builder
     * @throws NullPointerException when null
     */
    public IdempotentConsumer.Builder meterRegistry(MeterRegistry registry) {
        this.meterRegistry = Objects.requireNonNull(registry, "meterRegistry may not be null");
        return self();
    }

    /**
     * @param codec decodes {@link Message#payload(Class)}; default {@link AvroCodec#create()}
     * @return this builder
     * @throws NullPointerException when null
     */
    public IdempotentConsumer.Builder codec(AvroCodec codec) {
        this.codec = Objects.requireNonNull(codec, "codec may not be null");
        return self();
    }

    /** Test hooks into the processing steps; see {@link Hooks}. */
    IdempotentConsumer.Builder hooks(Hooks hooks) {
        this.hooks = Objects.requireNonNull(hooks, "hooks may not be null");
        return self();
    }

    /**
     * Checks the settings and creates the consumer (and its Kafka clients, which do not connect
     * before {@link IdempotentConsumer#start()}).
     *
     * @return the consumer, not started
     * @throws IllegalStateException when a required setting is missing or two settings conflict
     * @throws IllegalArgumentException when a Kafka property has a value the consumer cannot work
     *     with
     */
    public IdempotentConsumer build() {
        if (consumerName == null) {
            throw new IllegalStateException("consumerName is required: call consumerName(...) with the dedup scope,"
                    + " e.g. the service name");
        }
        if (topics.isEmpty()) {
            throw new IllegalStateException("topics are required: call topics(...) with at least one topic");
        }
        if (handler == null) {
            throw new IllegalStateException("handler is required: call handler((message, tx) -> ...)");
        }
        if (dataSource == null && dsl == null) {
            throw new IllegalStateException("a database is required: call dataSource(...) or dsl(...)");
        }
        if (dataSource != null && dsl != null) {
            throw new IllegalStateException("dataSource(...) and dsl(...) were both called; give only one");
        }
        if (deadLetterTopic != null && topics.contains(deadLetterTopic)) {
            throw new IllegalStateException("deadLetterTopic \"" + deadLetterTopic + "\" is also one of topics "
                    + topics + ": a record without a usable message id would be dead-lettered onto the topic it came"
                    + " from, read again and dead-lettered again, for ever; set deadLetterTopic(...) to another topic,"
                    + " e.g. \"" + deadLetterTopic + DEFAULT_DEAD_LETTER_SUFFIX + "\", or leave it unset for <topic>"
                    + deadLetterTopicSuffix + " per topic");
        }
        Map<String, Object> consumerProps = KafkaConfigChecks.consumerProperties(kafkaProperties);
        KafkaConfigChecks.checkProducerProperties(producerProperties, closeTimeout);
        KafkaConfigChecks.checkRevocationFits(consumerProps, closeTimeout);
        KafkaConfigChecks.checkDeadLetterTopics(
                deadLetterTopic != null
                        ? List.of(deadLetterTopic)
                        : topics.stream().map(t -> t + deadLetterTopicSuffix).toList());
        return new DedupConsumer(new Settings(
                consumerProps,
                Map.copyOf(producerProperties),
                List.copyOf(new LinkedHashSet<>(topics)),
                consumerName,
                dataSource,
                dsl,
                schema,
                OptionalTracing.wrapIfAvailable(handler, consumerName),
                messageIdExtractor,
                maxAttempts,
                backoff,
                deadLetterTopic,
                maxRecordsPerTransaction,
                savepointPerRecord,
                concurrency,
                retention,
                purgeInterval,
                closeTimeout,
                meterRegistry == null ? Metrics.globalRegistry : meterRegistry,
                codec == null ? AvroCodec.create() : codec,
                hooks,
                deadLetterTopicSuffix,
                failureClassifier,
                maxTransientRetry,
                maxBufferedBytes));
    }
}
