package dev.outbox.relay;

import dev.outbox.core.internal.Checks;
import dev.outbox.core.retry.Backoff;
import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.relay.internal.ProducerSettings;
import dev.outbox.relay.internal.RelayConfig;
import dev.outbox.relay.internal.RelayEngine;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import javax.sql.DataSource;

/**
 * Publishes the rows of the transactional outbox to Kafka, at least once and in commit order per
 * key (guarantees G1 and G3), and deletes each row once Kafka acknowledged it.
 *
 * <p>Any number of relays may run against one outbox: they lease shards in {@code
 * outbox_shard_lease} instead of electing a leader, each converges to a fair share ({@code
 * ceil(shards / live relays)}), and a relay that dies loses its shards when their leases expire.
 * Every delete or park is fenced by the lease's epoch, so a relay that paused past its lease cannot
 * touch rows another relay now publishes. See {@code ENGINE.md} next to this module's README for
 * the operator's view: leases, the batch loop, failure handling and metrics.
 *
 * <pre>{@code
 * try (Relay relay = Relay.builder()
 *     .dataSource(pool)
 *     .producerProperties(Map.of("bootstrap.servers", "kafka:9092"))
 *     .build()) {
 *   relay.start();
 *   ... // until SIGTERM
 * }
 * }</pre>
 *
 * <p>Thread-safe. A relay is started once and closed once; it cannot be restarted.
 */
public interface Relay extends AutoCloseable {

  /** @return a builder with the defaults documented on each setter */
  static Builder builder() {
    return new Builder();
  }

  /**
   * Reads the shard count, joins the membership, runs the first lease round (claiming a fair share
   * of the free or expired shards) and starts the publishing loops. Publishing continues in the
   * background. The first lease round is waited for at most one lease duration; when it takes longer
   * (a slow or locked lease table), {@code start} logs a warning and returns, and the round, like
   * every later one, completes in the background.
   *
   * @throws IllegalStateException when the relay was already started or closed, or the lease table
   *     is empty (the migrations were not applied to this schema)
   * @throws dev.outbox.core.RetriableOutboxException when PostgreSQL did not answer; the cause is
   *     the {@link java.sql.SQLException} with its SQLState
   */
  void start();

  /**
   * Stops gracefully: stops claiming shards, lets the batches in flight finish (acknowledged rows
   * are deleted) within the shutdown timeout, hands every lease back so that other relays take the
   * shards at once instead of after expiry, leaves the membership and closes the Kafka producer and
   * the database connections it opened. Idempotent; safe to call from a shutdown hook.
   */
  @Override
  void close();

  /** @return this relay's identity in the lease and membership tables */
  String instanceId();

  /** @return the shards this relay currently leases, a snapshot */
  Set<Integer> ownedShards();

  /**
   * @return whether the relay's loops are running (started, not closed, not crashed) and a lease
   *     round succeeded within the last lease duration
   */
  boolean isLive();

  /**
   * @return whether both PostgreSQL and Kafka answered within the last readiness window (the lease
   *     duration): a relay that is live but not ready is waiting for one of them
   */
  boolean isReady();

  /**
   * Builds a {@link Relay}. Not thread-safe; {@link #build()} validates every setting and names it
   * in the error.
   */
  final class Builder {
    /** Default {@link #batchSize(int)}. */
    public static final int DEFAULT_BATCH_SIZE = 500;

    /** Largest {@link #batchSize(int)}. */
    public static final int MAX_BATCH_SIZE = 10_000;

    /** Default {@link #leaseDuration(Duration)}. */
    public static final Duration DEFAULT_LEASE_DURATION = Duration.ofSeconds(30);

    /** Default {@link #idlePollInterval(Duration)}. */
    public static final Duration DEFAULT_IDLE_POLL_INTERVAL = Duration.ofSeconds(1);

    /** Default {@link #probeInterval(Duration)}. */
    public static final Duration DEFAULT_PROBE_INTERVAL = Duration.ofMillis(5);

    /** Default {@link #backoff(Backoff)}. */
    public static final Backoff DEFAULT_BACKOFF = Backoff.of(Duration.ofMillis(100), Duration.ofSeconds(30));

    /** Default {@link #shutdownTimeout(Duration)}. */
    public static final Duration DEFAULT_SHUTDOWN_TIMEOUT = Duration.ofSeconds(20);

    /** Default {@link #workerThreads(int)}. */
    public static final int DEFAULT_WORKER_THREADS = 4;

    /** Default {@link #maxAttempts(int)}. */
    public static final int DEFAULT_MAX_ATTEMPTS = 10;

    /** Largest {@link #maxAttempts(int)}. */
    public static final int MAX_MAX_ATTEMPTS = 1_000;

    private static final String USE_DEFAULT = ": use e.g. the default ";

    private DataSource dataSource;
    private String schema = OutboxMigrations.DEFAULT_SCHEMA;
    private String instanceId;
    private Map<String, ?> producerProperties;
    private int batchSize = DEFAULT_BATCH_SIZE;
    private Duration leaseDuration = DEFAULT_LEASE_DURATION;
    private Duration idlePollInterval = DEFAULT_IDLE_POLL_INTERVAL;
    private Duration shutdownTimeout = DEFAULT_SHUTDOWN_TIMEOUT;
    private int workerThreads = DEFAULT_WORKER_THREADS;
    private int maxAttempts = DEFAULT_MAX_ATTEMPTS;
    private Backoff backoff = DEFAULT_BACKOFF;
    private CircuitBreakerConfig circuitBreaker;
    private ParkPolicy parkPolicy = ParkPolicy.PARK_AND_CONTINUE;
    private PublishMode publishMode = PublishMode.IDEMPOTENT;
    private String transactionalIdPrefix;
    private MeterRegistry meterRegistry;
    private Duration probeInterval = DEFAULT_PROBE_INTERVAL;
    private DataSource listenDataSource;

    private Builder() {}

    /**
     * The database that holds the outbox. Required. The relay uses up to {@link
     * #workerThreads(int)} + 3 connections at a time (the shard loops, the lease round, the sampler
     * and the probe); size a pool accordingly. Every statement is a single autocommit statement, so
     * a transaction-pooling PgBouncer works.
     *
     * @param dataSource a pooled data source
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder dataSource(DataSource dataSource) {
      this.dataSource = Objects.requireNonNull(dataSource, "dataSource may not be null");
      return this;
    }

    /**
     * @param schema the schema the migrations were applied to; default {@code outbox}
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder schema(String schema) {
      this.schema = Objects.requireNonNull(schema, "schema may not be null");
      return this;
    }

    /**
     * The owner name written into the lease and membership tables. It must be unique among the
     * relays of one outbox: two relays with one id would share leases without fencing each other.
     *
     * @param instanceId 1 to 200 characters; default {@code <host>-<pid>-<random hex>}
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder instanceId(String instanceId) {
      this.instanceId = Objects.requireNonNull(instanceId, "instanceId may not be null");
      return this;
    }

    /**
     * Kafka producer properties, passed through to the {@code KafkaProducer} (TLS, SASL,
     * compression, linger, ...). Must contain {@code bootstrap.servers}. The relay enforces {@code
     * enable.idempotence=true} and {@code acks=all} and supplies its own byte-array serializers: a
     * conflicting value is refused, never silently replaced. Where not given, the relay uses {@code
     * linger.ms=0}, {@code batch.size=65536}, {@code max.block.ms=10000}, {@code
     * delivery.timeout.ms} = a sixth of the lease and {@code request.timeout.ms} = {@code
     * delivery.timeout.ms - linger.ms} (at most 10000), so that an unreachable broker fails a batch
     * (and trips the circuit breaker) in seconds rather than after Kafka's two-minute default, and
     * no record reaches Kafka after the lease it was sent under could have passed to another relay;
     * a {@code delivery.timeout.ms} above a third of the lease is refused, as are {@code
     * partitioner.class}, {@code partitioner.ignore.keys} and {@code interceptor.classes}. {@code linger.ms} is 0 rather than Kafka's 5 because the relay hands a
     * whole batch to the producer at once, which fills the producer's batches without waiting; a
     * linger would only add its delay to every message of an idle outbox (see {@code
     * benchmarks/RELAY.md}).
     *
     * @param producerProperties the properties; values are strings or the types Kafka accepts
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder producerProperties(Map<String, ?> producerProperties) {
      Objects.requireNonNull(producerProperties, "producerProperties may not be null");
      this.producerProperties = new LinkedHashMap<>(producerProperties);
      return this;
    }

    /**
     * @param batchSize rows read, published and deleted together per shard, 1 to 10,000; default
     *     500. Larger batches amortize the database round trips; smaller ones republish less after
     *     a crash.
     * @return this builder
     */
    public Builder batchSize(int batchSize) {
      this.batchSize = batchSize;
      return this;
    }

    /**
     * How long a lease and a membership heartbeat last; both are renewed every third of it. A
     * crashed relay's shards are taken over after at most this long, and a relay that cannot reach
     * PostgreSQL for this long loses its shards. At least 1 s, at most 1 hour; default 30 s.
     *
     * @param leaseDuration the duration
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder leaseDuration(Duration leaseDuration) {
      this.leaseDuration = Objects.requireNonNull(leaseDuration, "leaseDuration may not be null");
      return this;
    }

    /**
     * How often the relay asks PostgreSQL which of its idle shards hold new rows: one statement per
     * interval (one index descent per idle shard), which wakes only those shards. This is how new
     * rows are found without any notification from the producers, including rows that commit late
     * with a lower id than rows already published. The interval bounds the wait of a row on an idle
     * outbox; shorter intervals cost the database more (see ENGINE.md, "Wake-up"). 1 ms to 1 s;
     * default 5 ms.
     *
     * @param probeInterval the interval
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder probeInterval(Duration probeInterval) {
      this.probeInterval = Objects.requireNonNull(probeInterval, "probeInterval may not be null");
      return this;
    }

    /**
     * Opt-in LISTEN wake-up, for producers built with {@code Outbox.builder().notifyInTransaction(true)}:
     * the relay holds one connection from this data source for its lifetime and LISTENs on {@code
     * Outbox.channel(schema)}, which wakes a shard at the producer's commit instead of at the next
     * probe. Give a data source that opens session-level connections straight to PostgreSQL (for
     * example a {@code PGSimpleDataSource}), never a transaction-pooling PgBouncer and not the
     * workers' pool: LISTEN lives in the session. Default: none (no LISTEN; the probe alone).
     *
     * @param listenDataSource the data source of the LISTEN connection
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder listenDataSource(DataSource listenDataSource) {
      this.listenDataSource = Objects.requireNonNull(listenDataSource, "listenDataSource may not be null");
      return this;
    }

    /**
     * The longest wait between two reads of an idle shard. The probe ({@link
     * #probeInterval(Duration)}) wakes the shard when rows arrive, so this bounds the latency only
     * while the probe fails; then the wait doubles from 10 ms up to this value after each empty
     * read and resets when rows are found. While the probe works, an idle shard reads on its own
     * once per lease renewal interval, or this interval if longer. 10 ms to 1 min; default 1 s.
     *
     * @param idlePollInterval the interval
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder idlePollInterval(Duration idlePollInterval) {
      this.idlePollInterval = Objects.requireNonNull(idlePollInterval, "idlePollInterval may not be null");
      return this;
    }

    /**
     * @param backoff the wait before retrying a shard's batch after a retriable Kafka or database
     *     error, exponential with full jitter per shard; default 100 ms up to 30 s
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder backoff(Backoff backoff) {
      this.backoff = Objects.requireNonNull(backoff, "backoff may not be null");
      return this;
    }

    /**
     * The circuit breaker shared by all shards in front of Kafka: when it is open no shard sends,
     * each waits with its backoff; half-open lets trial batches through. Default: a count-based
     * window of 5 batches that opens when all 5 failed, stays open 10 s, then allows 1 trial batch.
     *
     * @param circuitBreaker the configuration
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder circuitBreaker(CircuitBreakerConfig circuitBreaker) {
      this.circuitBreaker = Objects.requireNonNull(circuitBreaker, "circuitBreaker may not be null");
      return this;
    }

    /**
     * @param parkPolicy what happens to a key's later messages when one of its messages is parked;
     *     default {@link ParkPolicy#PARK_AND_CONTINUE}
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder parkPolicy(ParkPolicy parkPolicy) {
      this.parkPolicy = Objects.requireNonNull(parkPolicy, "parkPolicy may not be null");
      return this;
    }

    /**
     * How a shard's batch is published: {@link PublishMode#IDEMPOTENT} (default, one shared
     * idempotent producer, a local lease deadline) or {@link PublishMode#TRANSACTIONAL} (a
     * transactional producer per shard and one Kafka transaction per batch, so that the broker fences
     * a relay that lost its lease; consumers must read {@code read_committed}). See {@link
     * PublishMode} for the trade-off.
     *
     * @param publishMode the mode; default {@link PublishMode#IDEMPOTENT}
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder publishMode(PublishMode publishMode) {
      this.publishMode = Objects.requireNonNull(publishMode, "publishMode may not be null");
      return this;
    }

    /**
     * The start of every {@code transactional.id} in {@link PublishMode#TRANSACTIONAL} mode; shard N
     * publishes with {@code prefix + N}. It must be the same on every relay of one outbox (the new
     * owner of shard N fences the old one only through the same id) and differ between outboxes that
     * share a Kafka cluster (else their relays fence each other). Default: {@code
     * outbox-relay.<database>.<schema>.}, with the database name read from PostgreSQL at start.
     *
     * @param transactionalIdPrefix 1 to 200 characters
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder transactionalIdPrefix(String transactionalIdPrefix) {
      this.transactionalIdPrefix = Objects.requireNonNull(transactionalIdPrefix, "transactionalIdPrefix may not be null");
      return this;
    }

    /**
     * @param meterRegistry where the relay registers its {@code outbox.relay.*} meters; default a
     *     private {@link SimpleMeterRegistry}. Give each relay of one JVM its own registry: the
     *     meters carry no instance tag.
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder meterRegistry(MeterRegistry meterRegistry) {
      this.meterRegistry = Objects.requireNonNull(meterRegistry, "meterRegistry may not be null");
      return this;
    }

    /**
     * @param shutdownTimeout how long {@link Relay#close()} waits for batches in flight before it
     *     hands the leases back anyway (their rows are then published again by the next owner);
     *     0 to 10 min; default 20 s
     * @return this builder
     * @throws NullPointerException when null
     */
    public Builder shutdownTimeout(Duration shutdownTimeout) {
      this.shutdownTimeout = Objects.requireNonNull(shutdownTimeout, "shutdownTimeout may not be null");
      return this;
    }

    /**
     * @param workerThreads threads that read, send and delete for all owned shards (a shard is
     *     never worked on by two threads at once; waiting for acks holds no thread), 1 to 256;
     *     default 4
     * @return this builder
     */
    public Builder workerThreads(int workerThreads) {
      this.workerThreads = workerThreads;
      return this;
    }

    /**
     * How many times a row may fail with a retriable error that is specific to it before it is
     * parked with its last error (guarantee G7): for example a record for a topic that does not
     * exist on a broker that does not create topics, which Kafka reports as retriable (unknown topic,
     * metadata timeout) and would otherwise hold its shard forever.
     *
     * <p>An attempt is counted only when Kafka demonstrably worked while the row failed: some record
     * was acknowledged, or the cluster answered the relay's readiness probe, after the row's batch
     * was sent. A broker outage, where nothing is acknowledged, therefore never counts attempts and
     * never parks anything: the shard backs off behind the circuit breaker instead. Errors that can
     * never succeed (record too large, invalid topic, ...) park the row at once, whatever this
     * setting. Each failed attempt records {@code attempts} and {@code last_error} on the row, so an
     * operator sees a row that is on its way to being parked. Only a failure that is the row's own
     * counts (its topic's metadata did not arrive): a partition without a leader, too few in-sync
     * replicas or a timeout on an existing topic is retried without limit and never parks a row.
     *
     * @param maxAttempts 1 to 1,000; default 10
     * @return this builder
     */
    public Builder maxAttempts(int maxAttempts) {
      this.maxAttempts = maxAttempts;
      return this;
    }

    /**
     * Validates every setting and builds the relay, which does nothing until {@link
     * Relay#start()}.
     *
     * @return the relay
     * @throws NullPointerException when {@code dataSource} or {@code producerProperties} was not
     *     given
     * @throws IllegalArgumentException when a value is out of range, {@code bootstrap.servers} is
     *     missing, or a producer property conflicts with what the relay enforces; the message names
     *     the setting, the value and the fix
     * @throws IllegalStateException when two settings conflict (a lease too short for the idle
     *     poll interval, a transactional id prefix without the transactional mode)
     */
    public Relay build() {
      Objects.requireNonNull(dataSource, "dataSource is required: call Relay.builder().dataSource(pool)");
      Objects.requireNonNull(
          producerProperties,
          "producerProperties is required: call Relay.builder().producerProperties(Map.of(\"bootstrap.servers\", \"host:9092\"))");
      OutboxMigrations.requireValidSchema(schema);
      String id = instanceId != null ? instanceId : defaultInstanceId();
      if (id.isBlank() || id.length() > 200) {
        throw new IllegalArgumentException(
            "instanceId must be 1 to 200 non-blank characters, got '" + id + "': choose a name unique among the relays");
      }
      Checks.requireBetween(batchSize, 1, MAX_BATCH_SIZE, "batchSize", USE_DEFAULT + DEFAULT_BATCH_SIZE);
      Checks.requireBetween(leaseDuration, Duration.ofSeconds(1), Duration.ofHours(1), "leaseDuration",
          USE_DEFAULT + DEFAULT_LEASE_DURATION);
      Checks.requireBetween(idlePollInterval, Duration.ofMillis(10), Duration.ofMinutes(1), "idlePollInterval",
          USE_DEFAULT + DEFAULT_IDLE_POLL_INTERVAL);
      Checks.requireBetween(probeInterval, Duration.ofMillis(1), Duration.ofSeconds(1), "probeInterval",
          USE_DEFAULT + DEFAULT_PROBE_INTERVAL);
      Checks.requireBetween(shutdownTimeout, Duration.ZERO, Duration.ofMinutes(10), "shutdownTimeout",
          USE_DEFAULT + DEFAULT_SHUTDOWN_TIMEOUT);
      Checks.requireBetween(workerThreads, 1, 256, "workerThreads", USE_DEFAULT + DEFAULT_WORKER_THREADS);
      Checks.requireBetween(maxAttempts, 1, MAX_MAX_ATTEMPTS, "maxAttempts", USE_DEFAULT + DEFAULT_MAX_ATTEMPTS);
      if (idlePollInterval.compareTo(leaseDuration) > 0) {
        throw new IllegalStateException(
            "idlePollInterval (" + idlePollInterval + ") may not exceed leaseDuration (" + leaseDuration
                + "): an idle shard would not be looked at once per lease; shorten idlePollInterval or lengthen leaseDuration");
      }
      if (transactionalIdPrefix != null) {
        if (publishMode != PublishMode.TRANSACTIONAL) {
          throw new IllegalStateException("transactionalIdPrefix ('" + transactionalIdPrefix + "') is only used with"
              + " publishMode(TRANSACTIONAL), but the mode is " + publishMode + "; set the mode or remove the prefix");
        }
        if (transactionalIdPrefix.isBlank() || transactionalIdPrefix.length() > 200) {
          throw new IllegalArgumentException("transactionalIdPrefix must be 1 to 200 non-blank characters, got '"
              + transactionalIdPrefix + "': use the same prefix on every relay of this outbox, or leave the default");
        }
      }
      Map<String, Object> producer = ProducerSettings.boundByLease(ProducerSettings.validate(producerProperties, id), leaseDuration);
      CircuitBreakerConfig breaker = circuitBreaker != null ? circuitBreaker : defaultCircuitBreaker();
      RelayConfig config = new RelayConfig(
          dataSource, schema, id, producer, batchSize, leaseDuration, idlePollInterval, shutdownTimeout,
          workerThreads, backoff, breaker, parkPolicy, meterRegistry != null ? meterRegistry : new SimpleMeterRegistry(),
          maxAttempts, probeInterval, listenDataSource, publishMode, transactionalIdPrefix);
      return new RelayEngine(config);
    }

    private static CircuitBreakerConfig defaultCircuitBreaker() {
      return CircuitBreakerConfig.custom()
          .slidingWindowType(CircuitBreakerConfig.SlidingWindowType.COUNT_BASED)
          .slidingWindowSize(5)
          .minimumNumberOfCalls(5)
          .failureRateThreshold(100)
          .waitDurationInOpenState(Duration.ofSeconds(10))
          .permittedNumberOfCallsInHalfOpenState(1)
          .automaticTransitionFromOpenToHalfOpenEnabled(true)
          .build();
    }

    private static String defaultInstanceId() {
      String host = System.getenv("HOSTNAME");
      if (host == null || host.isBlank()) {
        try {
          host = java.net.InetAddress.getLocalHost().getHostName();
        } catch (java.net.UnknownHostException e) {
          host = "relay";
        }
      }
      byte[] random = new byte[3];
      ThreadLocalRandom.current().nextBytes(random);
      return host + "-" + ProcessHandle.current().pid() + "-" + HexFormat.of().formatHex(random);
    }
  }
}
