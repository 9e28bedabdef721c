package dev.outbox.consumer;

import dev.outbox.consumer.internal.DedupConsumer;
import dev.outbox.consumer.internal.Hooks;
import dev.outbox.consumer.internal.Settings;
import dev.outbox.consumer.internal.OptionalTracing;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.internal.Checks;
import dev.outbox.core.retry.Backoff;
import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.schemas.AvroCodec;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.function.Function;
import javax.sql.DataSource;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.jooq.DSLContext;

/**
 * A Kafka consumer that applies each message id's business write exactly once (guarantee G4).
 *
 * <p>For every record it opens a database transaction, inserts {@code (consumer name, message
 * id)} into {@code processed_message} with {@code ON CONFLICT DO NOTHING}, and calls the {@link
 * MessageHandler} with that same transaction only when the insert added a row. The dedup row and
 * the business write commit together; a redelivered message finds its row and is skipped. Kafka
 * offsets are committed only for records whose transaction committed, so an offset is never ahead
 * of the database; a crash anywhere costs at most a redelivery, which the dedup row absorbs.
 *
 * <pre>{@code
 * IdempotentConsumer consumer = IdempotentConsumer.builder()
 *     .kafkaProperties(Map.of("bootstrap.servers", "kafka:9092", "group.id", "payments"))
 *     .topics("orders")
 *     .consumerName("payments")
 *     .dataSource(dataSource)
 *     .handler((message, tx) -> {
 *       OrderPlaced order = message.payload(OrderPlaced.class);
 *       tx.insertInto(PAYMENTS).set(PAYMENTS.ORDER_ID, order.getOrderId().toString()).execute();
 *     })
 *     .build();
 * consumer.start();
 * ...
 * consumer.close();
 * }</pre>
 *
 * <p>Partitions are processed in parallel on {@link Builder#concurrency(int) worker threads},
 * each partition strictly in offset order. A failing handler is retried with full-jitter backoff
 * and, after {@link Builder#maxAttempts(int)} attempts, the record is published to a dead-letter
 * topic, recorded as {@code DEAD_LETTERED} and skipped (G7); meanwhile its partition is paused, so
 * other partitions go on. Database outages are retried without consuming attempts, with backoff
 * under a circuit breaker (G6). Thread-safe.
 */
public interface IdempotentConsumer extends AutoCloseable {

  /** @return a builder with the defaults documented on each setter */
  static Builder builder() {
    return new Builder();
  }

  /**
   * Subscribes and starts polling on a thread of its own.
   *
   * @throws IllegalStateException when already started or closed
   */
  void start();

  /**
   * Deletes this consumer's {@code processed_message} rows older than {@code olderThan}, 1,000 rows
   * per statement (each its own short transaction) until none is left. The consumer also does this
   * by itself every {@link Builder#purgeInterval(Duration) purge interval} with its {@link
   * Builder#retention(Duration) retention}. Callable before {@link #start()} and after {@link
   * #close()}.
   *
   * @param olderThan the age past which rows go; at least 1 hour. It must exceed the longest time a
   *     message can be redelivered after it was first processed, or a late redelivery is applied a
   *     second time.
   * @return how many rows were deleted
   * @throws NullPointerException when {@code olderThan} is null
   * @throws IllegalArgumentException when {@code olderThan} is shorter than 1 hour
   * @throws org.jooq.exception.DataAccessException when a statement fails (rows deleted before it
   *     stay deleted)
   */
  long purgeProcessed(Duration olderThan);

  /** @return the consumer name, the dedup scope in {@code processed_message} */
  String name();

  /** @return whether the poll loop is running: started, not closed, not failed */
  boolean isRunning();

  /**
   * Whether this consumer can do its work now, for a service's readiness endpoint: the poll loop
   * is running, the consumer has joined its group and received an assignment (possibly empty, when
   * the group has more members than partitions), and neither the database nor the dead-letter
   * circuit breaker is open or half-open. Cheap (no I/O); callable from any thread.
   *
   * @return the readiness and what it is made of
   */
  default Readiness readiness() {
    throw new UnsupportedOperationException(getClass().getName() + " does not report readiness");
  }

  /**
   * Re-admits dead-lettered message ids: deletes this consumer's {@code DEAD_LETTERED} rows of
   * {@code processed_message} for these ids, so that a copy of the message published again to the
   * source topic is handled instead of skipped as a duplicate. Ids that were handled (or are
   * unknown) are left alone. Use it when the copy cannot carry the {@link DeadLetterHeaders#REPLAY}
   * header; see the README's runbook. Callable before {@link #start()} and after {@link #close()}.
   *
   * @param messageIds the dead-lettered ids, from the {@code outbox-message-id} headers of the
   *     dead-letter records
   * @return how many ids were re-admitted
   * @throws NullPointerException when {@code messageIds} or an id in it is null
   * @throws org.jooq.exception.DataAccessException when the statement fails
   */
  default int readmitDeadLettered(Collection<UUID> messageIds) {
    throw new UnsupportedOperationException(getClass().getName() + " does not re-admit dead-lettered ids");
  }

  /**
   * A consumer's readiness.
   *
   * @param ready {@code running && assigned && databaseBreakerClosed && deadLetterBreakerClosed}
   * @param running the poll loop runs (started, not closing, closed or failed)
   * @param assigned the consumer has joined its group and holds its assignment (false before the
   *     first assignment and after partitions were lost)
   * @param partitions how many partitions are assigned
   * @param databaseBreakerClosed the database circuit breaker is closed
   * @param deadLetterBreakerClosed the dead-letter producer's circuit breaker is closed
   * @param reason what is not ready, in words; empty when ready
   */
  record Readiness(boolean ready, boolean running, boolean assigned, int partitions, boolean databaseBreakerClosed,
      boolean deadLetterBreakerClosed, String reason) {}

  /**
   * Stops consuming: finishes the transactions in flight, commits their offsets, closes the Kafka
   * consumer and the dead-letter producer. Records fetched but not yet handled are left for
   * redelivery. Idempotent; waits at most {@link Builder#closeTimeout(Duration)} for in-flight
   * work.
   */
  @Override
  void close();

  /**
   * Builds an {@link IdempotentConsumer}. Setters check their argument at once; {@link #build()}
   * checks the combination. Not thread-safe; the built consumer is.
   */
  final class Builder {
    /** Longest consumer name, so that the name stays a readable dedup scope and metric tag. */
    public static final int MAX_CONSUMER_NAME_LENGTH = 200;

    /**
     * Default {@link #maxTransientRetry(Duration)}: 1 hour of {@code TRANSIENT} failures of one record
     * before it is dead-lettered.
     */
    public static final Duration DEFAULT_MAX_TRANSIENT_RETRY = Duration.ofHours(1);

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

    /** Default {@link #retention(Duration)}. */
    public static final Duration DEFAULT_RETENTION = Duration.ofDays(7);

    /** Shortest {@link #retention(Duration)}. */
    public static final Duration MIN_RETENTION = Duration.ofHours(1);

    /** Default {@link #purgeInterval(Duration)}. */
    public static final Duration DEFAULT_PURGE_INTERVAL = Duration.ofHours(1);

    /** Default {@link #backoff(Backoff)}: 1 s doubling up to 30 s, full jitter. */
    public static final Backoff DEFAULT_BACKOFF = Backoff.of(Duration.ofSeconds(1), Duration.ofSeconds(30));

    /** Default {@link #deadLetterTopicSuffix(String)}. */
    public static final String DEFAULT_DEAD_LETTER_SUFFIX = ".dlt";

    /** The suffix of Spring Kafka's {@code DeadLetterPublishingRecoverer}, for {@link #deadLetterTopicSuffix(String)}. */
    public static final String SPRING_DEAD_LETTER_SUFFIX = ".DLT";

    /** Kafka's longest topic name. */
    private static final int MAX_TOPIC_NAME_LENGTH = 249;

    /** Default {@link #closeTimeout(Duration)}. */
    public static final Duration DEFAULT_CLOSE_TIMEOUT = Duration.ofSeconds(30);

    private final Map<String, Object> kafkaProperties = new LinkedHashMap<>();
    private final Map<String, Object> producerProperties = new LinkedHashMap<>();
    private final List<String> topics = new ArrayList<>();
    private String consumerName;
    private DataSource dataSource;
    private DSLContext dsl;
    private String schema = OutboxMigrations.DEFAULT_SCHEMA;
    private MessageHandler handler;
    private Function<ConsumerRecord<byte[], byte[]>, Optional<UUID>> messageIdExtractor;
    private int maxAttempts = DEFAULT_MAX_ATTEMPTS;
    private Duration maxTransientRetry = DEFAULT_MAX_TRANSIENT_RETRY;
    private Backoff backoff = DEFAULT_BACKOFF;
    private String deadLetterTopic;
    private String deadLetterTopicSuffix = DEFAULT_DEAD_LETTER_SUFFIX;
    private Function<Throwable, FailureKind> failureClassifier;
    private int maxRecordsPerTransaction = DEFAULT_MAX_RECORDS_PER_TRANSACTION;
    private boolean savepointPerRecord;
    private int concurrency = Math.min(4, Math.max(1, Runtime.getRuntime().availableProcessors()));
    private Duration retention = DEFAULT_RETENTION;
    private Duration purgeInterval = DEFAULT_PURGE_INTERVAL;
    private Duration closeTimeout = DEFAULT_CLOSE_TIMEOUT;
    private MeterRegistry meterRegistry;
    private AvroCodec codec;
    private Hooks hooks = Hooks.NONE;

    private Builder() {}

    /**
     * The Kafka consumer configuration. {@code bootstrap.servers} and {@code group.id} are
     * required. {@code enable.auto.commit} is always false (offsets are committed after the
     * database commit); setting it to true is an error. Keys and values are read as {@code byte[]}
     * by the consumer's own deserializers; setting others is an error. {@code auto.offset.reset}
     * defaults to {@code earliest} (Kafka's default, {@code latest}, would skip what a new group
     * has not seen). {@code isolation.level} defaults to {@code read_committed}, so records of
     * aborted Kafka transactions (the relay's transactional mode rolls back a batch that failed, or
     * that a relay which lost its lease tried to publish) never reach the handler; Kafka's default,
     * {@code read_uncommitted}, would deliver them. Everything else (TLS, SASL, {@code max.poll.records}, {@code
     * group.instance.id}) passes through. Calls add to what earlier calls set.
     *
     * @param properties consumer properties
     * @return this builder
     * @throws NullPointerException when {@code properties} or a key or value in it is null
     */
    public Builder kafkaProperties(Map<String, ?> properties) {
      Objects.requireNonNull(properties, "kafkaProperties may not be null");
      properties.forEach((k, v) -> kafkaProperties.put(
          Objects.requireNonNull(k, "kafkaProperties may not contain a null key"),
          Objects.requireNonNull(v, "kafkaProperties value of " + k + " may not be null")));
      return this;
    }

    /**
     * Properties of the dead-letter producer. Default: {@code bootstrap.servers} and every {@code
     * security.*}, {@code ssl.*}, {@code sasl.*} and {@code client.dns.lookup} property of the
     * consumer, with {@code acks=all}, idempotence on and {@code max.block.ms} equal to {@link
     * #closeTimeout(Duration)} (so that one publish holds a worker at most that long); these
     * properties override those. {@code acks} other than {@code all} (a record could be lost after
     * its offset moved on) and a {@code max.block.ms} longer than the close timeout are refused by
     * {@link #build()}. Calls add to what earlier calls set.
     *
     * @param properties producer properties
     * @return this builder
     * @throws NullPointerException when {@code properties} or a key or value in it is null
     */
    public Builder producerProperties(Map<String, ?> properties) {
      Objects.requireNonNull(properties, "producerProperties may not be null");
      properties.forEach((k, v) -> producerProperties.put(
          Objects.requireNonNull(k, "producerProperties may not contain a null key"),
          Objects.requireNonNull(v, "producerProperties value of " + k + " may not be null")));
      return this;
    }

    /**
     * @param topics the topics to subscribe to; required, at least one. Calls add to the list.
     * @return this builder
     * @throws NullPointerException when a topic is null
     * @throws IllegalArgumentException when a topic is blank
     */
    public Builder topics(String... topics) {
      return topics(List.of(Objects.requireNonNull(topics, "topics may not be null")));
    }

    /**
     * @param topics the topics to subscribe to; required, at least one. Calls add to the list.
     * @return this builder
     * @throws NullPointerException when a topic is null
     * @throws IllegalArgumentException when a topic is blank
     */
    public Builder topics(Collection<String> topics) {
      Objects.requireNonNull(topics, "topics may not be null");
      for (String topic : topics) {
        Objects.requireNonNull(topic, "topics may not contain null");
        if (topic.isBlank()) {
          throw new IllegalArgumentException("topics may not contain a blank name, got \"" + topic + "\"");
        }
        this.topics.add(topic);
      }
      return this;
    }

    /**
     * The dedup scope: message ids are recorded per consumer name, so two services (or two
     * independent handlers of one service) that consume the same topic need different names, and
     * every instance of one service must use the same name. Renaming a consumer forgets what it
     * processed. Required; 1 to {@value #MAX_CONSUMER_NAME_LENGTH} characters.
     *
     * @param consumerName the name
     * @return this builder
     * @throws NullPointerException when null
     * @throws IllegalArgumentException when empty, blank or too long
     */
    public Builder consumerName(String consumerName) {
      Objects.requireNonNull(consumerName, "consumerName may not be null");
      if (consumerName.isBlank() || consumerName.length() > MAX_CONSUMER_NAME_LENGTH) {
        throw new IllegalArgumentException("consumerName must be 1 to " + MAX_CONSUMER_NAME_LENGTH
            + " characters and not blank, got \"" + consumerName + "\" (" + consumerName.length()
            + " characters); use the service's name, the same on every instance");
      }
      this.consumerName = consumerName;
      return this;
    }

    /**
     * Where {@code processed_message} and the business tables live. Either this or {@link
     * #dsl(DSLContext)} is required. Use a pool with at least {@link #concurrency(int)}
     * connections.
     *
     * @param dataSource the data source
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder dataSource(DataSource dataSource) {
      this.dataSource = Objects.requireNonNull(dataSource, "dataSource may not be null");
      return this;
    }

    /**
     * Like {@link #dataSource(DataSource)}, with the handler's {@code tx} derived from this
     * context's configuration (settings, listeners, converters) bound to the consumer's
     * transaction. Its connection provider must hand out a separate connection per acquire (a pool),
     * since workers run in parallel.
     *
     * @param dsl the jOOQ context
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder dsl(DSLContext dsl) {
      this.dsl = Objects.requireNonNull(dsl, "dsl may not be null");
      return this;
    }

    /**
     * @param schema the schema holding {@code processed_message}; default {@code outbox}
     * @return this builder
     * @throws NullPointerException when null
     * @throws IllegalArgumentException when not a plain lowercase SQL identifier
     */
    public Builder schema(String schema) {
      this.schema = OutboxMigrations.requireValidSchema(schema);
      return this;
    }

    /**
     * @param handler applies one message in the consumer's transaction; required. When the
     *     OpenTelemetry API is on the class path, each call runs inside a CONSUMER span of {@code
     *     GlobalOpenTelemetry} whose parent is the producer's trace context (the record's {@code
     *     traceparent} and {@code tracestate}), current while the handler runs
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder handler(MessageHandler handler) {
      this.handler = Objects.requireNonNull(handler, "handler may not be null");
      return this;
    }

    /**
     * How to find a record's message id. Default: the {@link OutboxHeaders#MESSAGE_ID} header,
     * which must be a UUID in canonical text form. A record for which this gives no id goes to the
     * dead-letter topic unhandled: it is never processed without dedup. An extractor that throws
     * marks the id invalid.
     *
     * @param extractor the record's message id, or empty
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder messageIdExtractor(Function<ConsumerRecord<byte[], byte[]>, Optional<UUID>> extractor) {
      this.messageIdExtractor = Objects.requireNonNull(extractor, "messageIdExtractor may not be null");
      return this;
    }

    /**
     * @param maxAttempts how many times the handler is called for one record before it is
     *     dead-lettered, counting the first call; default {@value #DEFAULT_MAX_ATTEMPTS} (see {@link
     *     #DEFAULT_MAX_ATTEMPTS} for the total time). Database outages, lock contention in the
     *     handler and {@link FailureKind#TRANSIENT} failures do not count.
     * @return this builder
     * @throws IllegalArgumentException when less than 1
     */
    public Builder maxAttempts(int maxAttempts) {
      if (maxAttempts < 1) {
        throw new IllegalArgumentException("maxAttempts must be at least 1 (1 = no retry), got " + maxAttempts);
      }
      this.maxAttempts = maxAttempts;
      return this;
    }

    /**
     * @param maxTransientRetry how long a record's {@link FailureKind#TRANSIENT TRANSIENT} failures
     *     are retried (with the backoff, without using attempts) before the record is dead-lettered
     *     like one that used up its attempts; default {@link #DEFAULT_MAX_TRANSIENT_RETRY}, so that no
     *     record holds its partition for ever (G6)
     * @return this builder
     * @throws NullPointerException when {@code maxTransientRetry} is null
     * @throws IllegalArgumentException when it is not positive
     */
    public Builder maxTransientRetry(Duration maxTransientRetry) {
      this.maxTransientRetry = Checks.requirePositive(maxTransientRetry, "maxTransientRetry", "");
      return this;
    }

    /**
     * @param backoff the delay before each retry, full jitter; default 1 s doubling up to 30 s.
     *     Also spaces retries after transient, database or dead-letter publishing failures.
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder backoff(Backoff backoff) {
      this.backoff = Objects.requireNonNull(backoff, "backoff may not be null");
      return this;
    }

    /**
     * @param topic the dead-letter topic for every source topic; default {@code <source
     *     topic><suffix>} per source topic (see {@link #deadLetterTopicSuffix(String)}). It must
     *     exist unless the brokers auto-create topics.
     * @return this builder
     * @throws NullPointerException when null
     * @throws IllegalArgumentException when blank
     */
    public Builder deadLetterTopic(String topic) {
      this.deadLetterTopic = Checks.requireNonBlank(topic, "deadLetterTopic");
      return this;
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
    public Builder deadLetterTopicSuffix(String suffix) {
      Objects.requireNonNull(suffix, "deadLetterTopicSuffix may not be null");
      if (!suffix.matches("[a-zA-Z0-9._-]+")) {
        throw new IllegalArgumentException("deadLetterTopicSuffix must be 1 or more of the characters a-z A-Z 0-9 . _ -,"
            + " got \"" + suffix + "\"; e.g. " + DEFAULT_DEAD_LETTER_SUFFIX + " or " + SPRING_DEAD_LETTER_SUFFIX);
      }
      this.deadLetterTopicSuffix = suffix;
      return this;
    }

    /**
     * Decides what a handler failure means. Called for each exception the handler throws (and for
     * an aborted transaction the handler left behind), except database failures, which the consumer
     * classifies itself: a lost connection or a server shutting down is retried under the database
     * circuit breaker, lock contention raised by the handler's statements (55P03, 40001, 40P01) is
     * {@link FailureKind#TRANSIENT}. Returning null applies the default rule: a {@link
     * PermanentHandlerException} or {@link TransientHandlerException} anywhere in the cause chain
     * (the first one found) decides, anything else is {@link FailureKind#RETRY}. A classifier that
     * throws counts as {@code RETRY}.
     *
     * @param classifier the failure's kind, or null for the default rule
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder failureClassifier(Function<Throwable, FailureKind> classifier) {
      this.failureClassifier = Objects.requireNonNull(classifier, "failureClassifier may not be null");
      return this;
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
    public Builder maxRecordsPerTransaction(int max) {
      this.maxRecordsPerTransaction = Checks.requireBetween(max, 1, MAX_RECORDS_PER_TRANSACTION, "maxRecordsPerTransaction", "");
      return this;
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
    public Builder savepointPerRecord(boolean savepointPerRecord) {
      this.savepointPerRecord = savepointPerRecord;
      return this;
    }

    /**
     * @param concurrency worker threads; partitions run in parallel on them, each partition in
     *     order, so more threads than assigned partitions do not help. Default: the number of
     *     processors, at most 4.
     * @return this builder
     * @throws IllegalArgumentException when outside 1..256
     */
    public Builder concurrency(int concurrency) {
      this.concurrency = Checks.requireBetween(concurrency, 1, 256, "concurrency", "");
      return this;
    }

    /**
     * How long processed message ids are kept. It must exceed the longest window in which a
     * message can be redelivered after it was processed (relay republishing after a crash,
     * consumer group reset, replays); a redelivery later than that is applied again. Default 7
     * days.
     *
     * @param retention the retention
     * @return this builder
     * @throws NullPointerException when null
     * @throws IllegalArgumentException when shorter than 1 hour
     */
    public Builder retention(Duration retention) {
      Objects.requireNonNull(retention, "retention may not be null");
      if (retention.compareTo(MIN_RETENTION) < 0) {
        throw new IllegalArgumentException("retention must be at least " + MIN_RETENTION + ", got " + retention
            + "; it must exceed the longest redelivery window (default " + DEFAULT_RETENTION + ")");
      }
      this.retention = retention;
      return this;
    }

    /**
     * @param interval how often the consumer purges ids older than the retention; default 1 hour;
     *     {@link Duration#ZERO} turns the scheduled purge off (call {@link
     *     IdempotentConsumer#purgeProcessed(Duration)} yourself, e.g. from one instance only)
     * @return this builder
     * @throws NullPointerException when null
     * @throws IllegalArgumentException when negative or between zero and 1 second
     */
    public Builder purgeInterval(Duration interval) {
      Objects.requireNonNull(interval, "purgeInterval may not be null");
      if (interval.isNegative() || (!interval.isZero() && interval.compareTo(Duration.ofSeconds(1)) < 0)) {
        throw new IllegalArgumentException("purgeInterval must be zero (off) or at least 1 s, got " + interval);
      }
      this.purgeInterval = interval;
      return this;
    }

    /**
     * @param timeout how long {@link IdempotentConsumer#close()} and a partition revocation wait for
     *     transactions in flight; default 30 s
     * @return this builder
     * @throws NullPointerException when null
     * @throws IllegalArgumentException when not positive
     */
    public Builder closeTimeout(Duration timeout) {
      this.closeTimeout = Checks.requirePositive(timeout, "closeTimeout", "");
      return this;
    }

    /**
     * @param registry where the {@code outbox.consumer.*} meters go; default Micrometer's global
     *     registry ({@link io.micrometer.core.instrument.Metrics#globalRegistry}), where frameworks
     *     such as Spring Boot add the application's registry
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder meterRegistry(MeterRegistry registry) {
      this.meterRegistry = Objects.requireNonNull(registry, "meterRegistry may not be null");
      return this;
    }

    /**
     * @param codec decodes {@link Message#payload(Class)}; default {@link AvroCodec#create()}
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder codec(AvroCodec codec) {
      this.codec = Objects.requireNonNull(codec, "codec may not be null");
      return this;
    }

    /** Test hooks into the processing steps; see {@link Hooks}. */
    Builder hooks(Hooks hooks) {
      this.hooks = Objects.requireNonNull(hooks, "hooks may not be null");
      return this;
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
      Map<String, Object> consumerProps = consumerProperties();
      checkProducerProperties();
      checkDeadLetterTopics();
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
          meterRegistry == null ? io.micrometer.core.instrument.Metrics.globalRegistry : meterRegistry,
          codec == null ? AvroCodec.create() : codec,
          hooks,
          deadLetterTopicSuffix,
          failureClassifier,
          maxTransientRetry));
    }

    private void checkProducerProperties() {
      Object acks = producerProperties.get(ProducerConfig.ACKS_CONFIG);
      if (acks != null && !"all".equalsIgnoreCase(acks.toString().strip()) && !"-1".equals(acks.toString().strip())) {
        throw new IllegalArgumentException("Invalid value " + acks + " for configuration acks in producerProperties:"
            + " a dead-lettered record's offset moves on once the broker acknowledged it, so the dead-letter producer"
            + " needs acks=all; remove it or set it to all");
      }
      Object maxBlock = producerProperties.get(ProducerConfig.MAX_BLOCK_MS_CONFIG);
      if (maxBlock != null) {
        long ms;
        try {
          ms = Long.parseLong(maxBlock.toString().strip());
        } catch (NumberFormatException e) {
          throw new IllegalArgumentException("Invalid value " + maxBlock + " for configuration max.block.ms in"
              + " producerProperties: Value must be a number of milliseconds", e);
        }
        if (ms < 0 || ms > closeTimeout.toMillis()) {
          throw new IllegalArgumentException("Invalid value " + maxBlock + " for configuration max.block.ms in"
              + " producerProperties: a dead-letter publish holds a worker thread at most closeTimeout ("
              + closeTimeout.toMillis() + " ms); set it between 0 and that, or raise closeTimeout(...)");
        }
      }
    }

    private void checkDeadLetterTopics() {
      List<String> names = deadLetterTopic != null ? List.of(deadLetterTopic)
          : topics.stream().map(t -> t + deadLetterTopicSuffix).toList();
      for (String name : names) {
        if (name.length() > MAX_TOPIC_NAME_LENGTH || !name.matches("[a-zA-Z0-9._-]+")) {
          throw new IllegalStateException("dead-letter topic \"" + name + "\" is not a valid Kafka topic name (at most "
              + MAX_TOPIC_NAME_LENGTH + " of a-z A-Z 0-9 . _ -); set deadLetterTopic(...) to a valid name");
        }
      }
    }

    private Map<String, Object> consumerProperties() {
      Map<String, Object> props = new LinkedHashMap<>(kafkaProperties);
      requireText(props, ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, "the Kafka brokers, e.g. kafka:9092");
      requireText(props, ConsumerConfig.GROUP_ID_CONFIG, "the consumer group, usually the consumer name");
      Object autoCommit = props.get(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG);
      if (autoCommit != null && !"false".equalsIgnoreCase(autoCommit.toString().strip())) {
        throw new IllegalArgumentException("Invalid value " + autoCommit + " for configuration "
            + ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG + ": the idempotent consumer commits offsets itself, only after"
            + " the database transaction committed; remove it or set it to false");
      }
      for (String key : List.of(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG,
          ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG)) {
        Object value = props.get(key);
        if (value != null && !ByteArrayDeserializer.class.getName().equals(value.toString())
            && value != ByteArrayDeserializer.class) {
          throw new IllegalArgumentException("Invalid value " + value + " for configuration " + key
              + ": the idempotent consumer reads raw bytes (decode in the handler, e.g. Message.payload(Class));"
              + " remove it");
        }
      }
      props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
      props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
      props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
      props.putIfAbsent(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
      // Kafka's default, read_uncommitted, would hand the handler records of aborted transactions,
      // among them a relay's transactional batch that was rolled back (and, in the relay's
      // transactional mode, a fenced zombie's)
      props.putIfAbsent(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
      return Map.copyOf(props);
    }

    private static void requireText(Map<String, Object> props, String key, String what) {
      Object value = props.get(key);
      if (value == null || value.toString().isBlank()) {
        throw new IllegalArgumentException("Missing required configuration " + key + " in kafkaProperties: set it to "
            + what);
      }
    }
  }
}
