package dev.outbox.relay;

import dev.outbox.core.internal.Checks;
import dev.outbox.core.internal.Durations;
import dev.outbox.core.retry.Backoff;
import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.relay.internal.ProducerSettings;
import dev.outbox.relay.internal.RelayConfig;
import dev.outbox.relay.internal.RelayDefaults;
import dev.outbox.relay.internal.RelayEngine;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.micrometer.core.instrument.Metrics;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import javax.sql.DataSource;

/**
 * Publishes the rows of the transactional outbox to Kafka, at least once and in commit order per
 * key (guarantees G1 and G3), and deletes each row once Kafka acknowledged it.
 *
 * <p>Any number of relays may run against one outbox: they lease shards in {@code outbox_shard_lease}
 * instead of electing a leader, each converges to a fair share ({@code ceil(shards / live relays)}),
 * and a relay that dies loses its shards when their leases expire. Every delete or park is fenced by
 * the lease's epoch, so a relay paused past its lease cannot touch rows another relay now publishes.
 * {@code ENGINE.md} next to this module's README gives the operator's view.
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
     * @return whether the relay's loops are running (started, not closed, not crashed) and its lease
     *     rounds make progress: none has been running for longer than two lease durations and 5 s, nor has
     *     a delete of published rows or a record of failed ones (the shards waiting for it publish
     *     nothing meanwhile), nor a shard's own work on a worker thread, such as a read of its rows (the
     *     shard publishes nothing meanwhile, while its lease is renewed). A round
     *     that fails because PostgreSQL does not answer is progress: such a relay is live and not {@link
     *     #isReady() ready}, since a restart would not bring the database back. A round or a write stuck
     *     for good (a statement on a connection without a socket timeout) is not; give the data source a connection
     *     timeout of at most the lease, a socket timeout and a {@code statement_timeout} below the lease, as the
     *     relay process does. Without a statement timeout, a delete waiting that long behind a lock on the
     *     outbox table (a {@code create index} without {@code concurrently}, a migration) also makes the
     *     relay not live, although a restart would not release the lock
     */
    boolean isLive();

    /**
     * @return whether both PostgreSQL and Kafka answered within the last readiness window (the lease
     *     duration) and the sends work: their circuit breaker is closed, or half-open and last opened
     *     longer than a lease duration ago (Kafka may answer while every send fails, e.g. with fewer
     *     in-sync replicas than a topic's {@code min.insync.replicas}). A relay that is live but not
     *     ready is waiting for one of them
     */
    boolean isReady();

    /**
     * Builds a {@link Relay}. Not thread-safe. Each setter checks its own argument (null: {@link
     * NullPointerException}; out of range: {@link IllegalArgumentException}); {@link #build()} checks
     * what involves several settings or a missing one ({@link IllegalStateException}). Defaults and
     * bounds are the public constants below; every message names the setting, the value and the fix.
     */
    final class Builder extends RelayBuilderBase {
        /** Default {@link #schema(String)}: {@value}. */
        public static final String DEFAULT_SCHEMA = OutboxMigrations.DEFAULT_SCHEMA;

        /** Default {@link #batchSize(int)}: {@value}. */
        public static final int DEFAULT_BATCH_SIZE = 500;
        /** Smallest {@link #batchSize(int)}: {@value}. */
        public static final int MIN_BATCH_SIZE = 1;
        /** Largest {@link #batchSize(int)}: {@value}. */
        public static final int MAX_BATCH_SIZE = 10_000;
        /** Default {@link #batchBytes(int)}: {@value} (4 MiB). */
        public static final int DEFAULT_BATCH_BYTES = 4 << 20;
        /** Smallest {@link #batchBytes(int)}: {@value} (1 KiB). */
        public static final int MIN_BATCH_BYTES = 1 << 10;
        /** Largest {@link #batchBytes(int)}: {@value} (1 GiB). */
        public static final int MAX_BATCH_BYTES = 1 << 30;

        /** Default {@link #leaseDuration(Duration)}: 30 s. */
        public static final Duration DEFAULT_LEASE_DURATION = Duration.ofSeconds(30);
        /** Shortest {@link #leaseDuration(Duration)}: 1 s. */
        public static final Duration MIN_LEASE_DURATION = Duration.ofSeconds(1);
        /** Longest {@link #leaseDuration(Duration)}: 1 h. */
        public static final Duration MAX_LEASE_DURATION = Duration.ofHours(1);

        /** Default {@link #idlePollInterval(Duration)}: 1 s. */
        public static final Duration DEFAULT_IDLE_POLL_INTERVAL = Duration.ofSeconds(1);
        /** Shortest {@link #idlePollInterval(Duration)}: 10 ms. */
        public static final Duration MIN_IDLE_POLL_INTERVAL = Duration.ofMillis(10);
        /** Longest {@link #idlePollInterval(Duration)}: 1 min. */
        public static final Duration MAX_IDLE_POLL_INTERVAL = Duration.ofMinutes(1);

        /** Default {@link #probeInterval(Duration)}: 5 ms. */
        public static final Duration DEFAULT_PROBE_INTERVAL = Duration.ofMillis(5);
        /** Shortest {@link #probeInterval(Duration)}: 1 ms. */
        public static final Duration MIN_PROBE_INTERVAL = Duration.ofMillis(1);
        /** Longest {@link #probeInterval(Duration)}: 1 s. */
        public static final Duration MAX_PROBE_INTERVAL = Duration.ofSeconds(1);

        /** Default {@link #probeIntervalUnderLoad(Duration)}: 10 ms. */
        public static final Duration DEFAULT_PROBE_INTERVAL_UNDER_LOAD = Duration.ofMillis(10);

        /** Default {@link #backoff(Backoff)}: 100 ms doubling up to 30 s. */
        public static final Backoff DEFAULT_BACKOFF = Backoff.of(Duration.ofMillis(100), Duration.ofSeconds(30));

        /** Shortest base of {@link #backoff(Duration, Duration)}: 1 ms. */
        public static final Duration MIN_BACKOFF_BASE = Duration.ofMillis(1);
        /** Shortest cap of {@link #backoff(Duration, Duration)}: 1 ms. */
        public static final Duration MIN_BACKOFF_CAP = Duration.ofMillis(1);
        /** Longest base of {@link #backoff(Duration, Duration)}: 1 min. */
        public static final Duration MAX_BACKOFF_BASE = Duration.ofMinutes(1);
        /** Longest cap of {@link #backoff(Duration, Duration)}: 10 min. */
        public static final Duration MAX_BACKOFF_CAP = Duration.ofMinutes(10);

        /** Consecutive failed batches that open the default {@link #circuitBreaker(CircuitBreakerConfig)}: {@value}. */
        public static final int DEFAULT_BREAKER_FAILURE_THRESHOLD = 5;
        /** How long the default {@link #circuitBreaker(CircuitBreakerConfig)} stays open: 10 s. */
        public static final Duration DEFAULT_BREAKER_OPEN_DURATION = Duration.ofSeconds(10);
        /** Fewest failed batches of {@link #circuitBreaker(int, Duration)}: {@value}. */
        public static final int MIN_BREAKER_FAILURE_THRESHOLD = 1;
        /** Most failed batches of {@link #circuitBreaker(int, Duration)}: {@value}. */
        public static final int MAX_BREAKER_FAILURE_THRESHOLD = 1000;
        /** Shortest open state of {@link #circuitBreaker(int, Duration)}: 100 ms. */
        public static final Duration MIN_BREAKER_OPEN_DURATION = Duration.ofMillis(100);
        /** Longest open state of {@link #circuitBreaker(int, Duration)}: 1 h. */
        public static final Duration MAX_BREAKER_OPEN_DURATION = Duration.ofHours(1);

        /** Default {@link #parkPolicy(ParkPolicy)}: {@link ParkPolicy#PARK_AND_CONTINUE}. */
        public static final ParkPolicy DEFAULT_PARK_POLICY = ParkPolicy.PARK_AND_CONTINUE;

        /** Default {@link #publishMode(PublishMode)}: one shared idempotent producer. */
        public static final PublishMode DEFAULT_PUBLISH_MODE = PublishMode.IDEMPOTENT;

        /** Default {@link #shutdownTimeout(Duration)}: 20 s. */
        public static final Duration DEFAULT_SHUTDOWN_TIMEOUT = Duration.ofSeconds(20);
        /** Shortest {@link #shutdownTimeout(Duration)}: 0, hand the leases back at once. */
        public static final Duration MIN_SHUTDOWN_TIMEOUT = Duration.ZERO;
        /** Longest {@link #shutdownTimeout(Duration)}: 10 min. */
        public static final Duration MAX_SHUTDOWN_TIMEOUT = Duration.ofMinutes(10);

        /** Default {@link #workerThreads(int)}: {@value}. */
        public static final int DEFAULT_WORKER_THREADS = 4;
        /** Fewest {@link #workerThreads(int)}: {@value}. */
        public static final int MIN_WORKER_THREADS = 1;
        /** Most {@link #workerThreads(int)}: {@value}. */
        public static final int MAX_WORKER_THREADS = 256;

        /** Default {@link #maxAttempts(int)}: {@value}. */
        public static final int DEFAULT_MAX_ATTEMPTS = 10;
        /** Smallest {@link #maxAttempts(int)}: {@value}. */
        public static final int MIN_MAX_ATTEMPTS = 1;
        /** Largest {@link #maxAttempts(int)}: {@value}. */
        public static final int MAX_MAX_ATTEMPTS = 1_000;

        /** Longest {@link #instanceId(String)}, in characters: {@value}. */
        public static final int MAX_INSTANCE_ID_LENGTH = 200;

        /** Default {@link #vacuumAfterRows(int)}: {@value}. */
        public static final int DEFAULT_VACUUM_AFTER_ROWS = 10_000;

        /** Largest {@link #vacuumAfterRows(int)}: {@value}. */
        public static final int MAX_VACUUM_AFTER_ROWS = 100_000_000;

        private static final String USE_DEFAULT = ": use e.g. the default ";

        private int batchSize = DEFAULT_BATCH_SIZE;
        private int batchBytes = DEFAULT_BATCH_BYTES;
        private Duration leaseDuration = DEFAULT_LEASE_DURATION;
        private Duration idlePollInterval = DEFAULT_IDLE_POLL_INTERVAL;
        private Duration shutdownTimeout = DEFAULT_SHUTDOWN_TIMEOUT;
        private int workerThreads = DEFAULT_WORKER_THREADS;
        private int maxAttempts = DEFAULT_MAX_ATTEMPTS;
        private Backoff backoff = DEFAULT_BACKOFF;
        private CircuitBreakerConfig circuitBreaker;
        private ParkPolicy parkPolicy = DEFAULT_PARK_POLICY;
        private PublishMode publishMode = DEFAULT_PUBLISH_MODE;
        private String transactionalIdPrefix;
        private Duration probeInterval = DEFAULT_PROBE_INTERVAL;
        private Duration probeIntervalUnderLoad = DEFAULT_PROBE_INTERVAL_UNDER_LOAD;
        private DataSource listenDataSource;

        private Builder() {}

        /**
         * @param batchSize rows read, published and deleted together per shard, {@link #MIN_BATCH_SIZE}
         *     to {@link #MAX_BATCH_SIZE}; default {@link #DEFAULT_BATCH_SIZE}. Larger batches amortize the
         *     database round trips; smaller ones republish less after a crash.
         * @return this builder
         * @throws IllegalArgumentException when out of range
         */
        public Builder batchSize(int batchSize) {
            this.batchSize = between(batchSize, MIN_BATCH_SIZE, MAX_BATCH_SIZE, "batchSize", DEFAULT_BATCH_SIZE);
            return this;
        }

        /**
         * The payload bytes after which a shard's batch takes no more rows: its last row may take it
         * past this, however large that row (so no row is too large to be read). A relay holds about twice
         * this per owned shard (a batch in flight and the next one read ahead) plus one row each, however
         * large the payloads. Payloads above {@code batchBytes / batchSize} (less when a read goes past rows
         * the shard holds) are fetched in a second statement once the rows of the batch are known. {@link
         * #MIN_BATCH_BYTES} to {@link #MAX_BATCH_BYTES}; default {@link #DEFAULT_BATCH_BYTES}.
         *
         * @param batchBytes payload bytes per read
         * @return this builder
         * @throws IllegalArgumentException when out of range
         */
        public Builder batchBytes(int batchBytes) {
            this.batchBytes = between(batchBytes, MIN_BATCH_BYTES, MAX_BATCH_BYTES, "batchBytes", DEFAULT_BATCH_BYTES);
            return this;
        }

        /**
         * How long a lease and a membership heartbeat last; both are renewed every third of it. A
         * crashed relay's shards are taken over after at most this long, and a relay that cannot reach
         * PostgreSQL for this long loses its shards. {@link #MIN_LEASE_DURATION} to {@link
         * #MAX_LEASE_DURATION}; default {@link #DEFAULT_LEASE_DURATION}.
         *
         * @param leaseDuration the duration
         * @return this builder
         * @throws NullPointerException when null
         * @throws IllegalArgumentException when out of range
         */
        public Builder leaseDuration(Duration leaseDuration) {
            this.leaseDuration = between(
                    leaseDuration, MIN_LEASE_DURATION, MAX_LEASE_DURATION, "leaseDuration", DEFAULT_LEASE_DURATION);
            return this;
        }

        /**
         * How often the relay asks PostgreSQL which of its idle shards hold new rows: one statement per
         * interval (one index descent per idle shard), which wakes only those shards. This is how new
         * rows are found without any notification from the producers, including rows that commit late
         * with a lower id than rows already published. The interval bounds the wait of a row on an idle
         * outbox; shorter intervals cost the database more (see ENGINE.md, "Wake-up"). {@link
         * #MIN_PROBE_INTERVAL} to {@link #MAX_PROBE_INTERVAL}; default {@link #DEFAULT_PROBE_INTERVAL}.
         *
         * @param probeInterval the interval
         * @return this builder
         * @throws NullPointerException when null
         * @throws IllegalArgumentException when out of range
         */
        public Builder probeInterval(Duration probeInterval) {
            this.probeInterval = between(
                    probeInterval, MIN_PROBE_INTERVAL, MAX_PROBE_INTERVAL, "probeInterval", DEFAULT_PROBE_INTERVAL);
            return this;
        }

        /**
         * The longest pause of the probe after a read that found rows. The read's cost is mostly one
         * index descent per shard it reads for, so under a steady load, when each read finds only a row
         * or two per few shards, the probe pauses until about one row per shard should have arrived at
         * the rate the read saw, at most this long: each read, each shard's batch and each delete then
         * take more rows, for less of the relay's CPU and of PostgreSQL's per message and a few
         * milliseconds more latency. At a rate where reads find that many rows at the probe interval,
         * the pause stays at the probe interval; a read that found nothing is followed after the probe
         * interval too, so a row on an otherwise idle outbox is not delayed. The probe interval, or
         * anything shorter, gives a probe that reads at one pace (benchmarks/RELAY.md, "The probe's
         * pause under load", has the measured costs). {@link #MIN_PROBE_INTERVAL} to {@link
         * #MAX_PROBE_INTERVAL}; default {@link #DEFAULT_PROBE_INTERVAL_UNDER_LOAD}.
         *
         * @param probeIntervalUnderLoad the longest pause after a read that found rows
         * @return this builder
         * @throws NullPointerException when null
         * @throws IllegalArgumentException when out of range
         */
        public Builder probeIntervalUnderLoad(Duration probeIntervalUnderLoad) {
            this.probeIntervalUnderLoad = between(
                    probeIntervalUnderLoad,
                    MIN_PROBE_INTERVAL,
                    MAX_PROBE_INTERVAL,
                    "probeIntervalUnderLoad",
                    DEFAULT_PROBE_INTERVAL_UNDER_LOAD);
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
         * once per lease renewal interval, or this interval if longer. {@link #MIN_IDLE_POLL_INTERVAL} to
         * {@link #MAX_IDLE_POLL_INTERVAL}; default {@link #DEFAULT_IDLE_POLL_INTERVAL}. It may not exceed
         * the lease duration, which {@link #build()} checks.
         *
         * @param idlePollInterval the interval
         * @return this builder
         * @throws NullPointerException when null
         * @throws IllegalArgumentException when out of range
         */
        public Builder idlePollInterval(Duration idlePollInterval) {
            this.idlePollInterval = between(
                    idlePollInterval,
                    MIN_IDLE_POLL_INTERVAL,
                    MAX_IDLE_POLL_INTERVAL,
                    "idlePollInterval",
                    DEFAULT_IDLE_POLL_INTERVAL);
            return this;
        }

        /**
         * @param backoff the wait before retrying a shard's batch after a retriable Kafka or database
         *     error, exponential with full jitter per shard; default {@link #DEFAULT_BACKOFF}
         * @return this builder
         * @throws NullPointerException when null
         */
        public Builder backoff(Backoff backoff) {
            this.backoff = Objects.requireNonNull(backoff, "backoff may not be null");
            return this;
        }

        /**
         * {@link #backoff(Backoff)} from its two durations, within the bounds the relay process and the Spring
         * Boot starter take them.
         *
         * @param base the ceiling of the first retry delay, {@link #MIN_BACKOFF_BASE} to {@link #MAX_BACKOFF_BASE}
         * @param cap the largest ceiling, at least {@code base}, {@link #MIN_BACKOFF_CAP} to {@link
         *     #MAX_BACKOFF_CAP}
         * @return this builder
         * @throws NullPointerException when either is null
         * @throws IllegalArgumentException when out of range, or {@code cap} is below {@code base}
         */
        public Builder backoff(Duration base, Duration cap) {
            between(base, MIN_BACKOFF_BASE, MAX_BACKOFF_BASE, "backoffBase", DEFAULT_BACKOFF.base());
            between(cap, MIN_BACKOFF_CAP, MAX_BACKOFF_CAP, "backoffCap", DEFAULT_BACKOFF.cap());
            return backoff(Backoff.of(base, cap));
        }

        /**
         * The circuit breaker shared by all shards in front of Kafka: when it is open no shard sends,
         * each waits with its backoff; half-open lets trial batches through. Default: a count-based
         * window of {@link #DEFAULT_BREAKER_FAILURE_THRESHOLD} batches that opens when all of them
         * failed, stays open {@link #DEFAULT_BREAKER_OPEN_DURATION}, then allows 1 trial batch.
         *
         * <p>The relay uses the given configuration with {@code
         * automaticTransitionFromOpenToHalfOpenEnabled(true)}, whatever it says: while the breaker is
         * open no shard asks it for a permit, so only its own timer moves it to half-open after {@code
         * waitDurationInOpenState} (without it the breaker would stay open and the relay publish nothing
         * any more).
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
         * The default breaker's shape (see {@link #circuitBreaker(CircuitBreakerConfig)}) with other figures: it
         * opens after {@code failureThreshold} consecutive failed batches and stays open {@code openDuration}
         * before one trial batch. The relay process's and the Spring Boot starter's breaker settings.
         *
         * @param failureThreshold {@link #MIN_BREAKER_FAILURE_THRESHOLD} to {@link #MAX_BREAKER_FAILURE_THRESHOLD}
         * @param openDuration {@link #MIN_BREAKER_OPEN_DURATION} to {@link #MAX_BREAKER_OPEN_DURATION}
         * @return this builder
         * @throws NullPointerException when {@code openDuration} is null
         * @throws IllegalArgumentException when out of range
         */
        public Builder circuitBreaker(int failureThreshold, Duration openDuration) {
            between(
                    failureThreshold,
                    MIN_BREAKER_FAILURE_THRESHOLD,
                    MAX_BREAKER_FAILURE_THRESHOLD,
                    "breakerFailureThreshold",
                    DEFAULT_BREAKER_FAILURE_THRESHOLD);
            between(
                    openDuration,
                    MIN_BREAKER_OPEN_DURATION,
                    MAX_BREAKER_OPEN_DURATION,
                    "breakerOpenDuration",
                    DEFAULT_BREAKER_OPEN_DURATION);
            return circuitBreaker(RelayDefaults.circuitBreaker(failureThreshold, openDuration));
        }

        /**
         * @param parkPolicy what happens to a key's later messages when one of its messages is parked;
         *     default {@link #DEFAULT_PARK_POLICY}
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
         * @param publishMode the mode; default {@link #DEFAULT_PUBLISH_MODE}
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
         * @param transactionalIdPrefix 1 to 200 non-blank characters
         * @return this builder
         * @throws NullPointerException when null
         * @throws IllegalArgumentException when blank or longer than 200 characters
         */
        public Builder transactionalIdPrefix(String transactionalIdPrefix) {
            Objects.requireNonNull(transactionalIdPrefix, "transactionalIdPrefix may not be null");
            if (transactionalIdPrefix.isBlank() || transactionalIdPrefix.length() > 200) {
                throw new IllegalArgumentException("transactionalIdPrefix must be 1 to 200"
                        + " non-blank characters, got '" + transactionalIdPrefix
                        + "': use the same prefix on every relay of this outbox, or leave the default");
            }
            this.transactionalIdPrefix = transactionalIdPrefix;
            return this;
        }

        /**
         * @param shutdownTimeout how long {@link Relay#close()} waits for batches in flight before it
         *     hands the leases back anyway (their rows are then published again by the next owner);
         *     {@link #MIN_SHUTDOWN_TIMEOUT} to {@link #MAX_SHUTDOWN_TIMEOUT}; default {@link
         *     #DEFAULT_SHUTDOWN_TIMEOUT}
         * @return this builder
         * @throws NullPointerException when null
         * @throws IllegalArgumentException when out of range
         */
        public Builder shutdownTimeout(Duration shutdownTimeout) {
            this.shutdownTimeout = between(
                    shutdownTimeout,
                    MIN_SHUTDOWN_TIMEOUT,
                    MAX_SHUTDOWN_TIMEOUT,
                    "shutdownTimeout",
                    DEFAULT_SHUTDOWN_TIMEOUT);
            return this;
        }

        /**
         * @param workerThreads threads that read, send and delete for all owned shards (a shard is
         *     never worked on by two threads at once; waiting for acks holds no thread), {@link
         *     #MIN_WORKER_THREADS} to {@link #MAX_WORKER_THREADS}; default {@link #DEFAULT_WORKER_THREADS}
         * @return this builder
         * @throws IllegalArgumentException when out of range
         */
        public Builder workerThreads(int workerThreads) {
            this.workerThreads = between(
                    workerThreads, MIN_WORKER_THREADS, MAX_WORKER_THREADS, "workerThreads", DEFAULT_WORKER_THREADS);
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
         * @param maxAttempts {@link #MIN_MAX_ATTEMPTS} to {@link #MAX_MAX_ATTEMPTS}; default {@link
         *     #DEFAULT_MAX_ATTEMPTS}
         * @return this builder
         * @throws IllegalArgumentException when out of range
         */
        public Builder maxAttempts(int maxAttempts) {
            this.maxAttempts =
                    between(maxAttempts, MIN_MAX_ATTEMPTS, MAX_MAX_ATTEMPTS, "maxAttempts", DEFAULT_MAX_ATTEMPTS);
            return this;
        }

        /**
         * Checks what no single setter can, then builds the relay, which does nothing until {@link
         * Relay#start()}. Each setter has already checked its own argument.
         *
         * @return the relay
         * @throws IllegalStateException when {@code dataSource} or {@code producerProperties} was not
         *     given, or two settings conflict (an idle poll interval longer than the lease, a producer
         *     timeout that does not fit in the lease); the message names both and the fix
         */
        public Relay build() {
            if (dataSource == null) {
                throw new IllegalStateException("dataSource is required: call Relay.builder().dataSource(pool)");
            }
            if (producerProperties == null) {
                throw new IllegalStateException(
                        "producerProperties is required: call Relay.builder().producerProperties(Map.of(\"bootstrap.servers\", \"host:9092\"))");
            }
            if (idlePollInterval.compareTo(leaseDuration) > 0) {
                throw new IllegalStateException(
                        "idlePollInterval (" + Durations.format(idlePollInterval) + ") may not exceed leaseDuration ("
                                + Durations.format(leaseDuration)
                                + "): an idle shard would not be looked at once per lease; shorten idlePollInterval or lengthen leaseDuration");
            }
            if (transactionalIdPrefix != null && publishMode != PublishMode.TRANSACTIONAL) {
                throw new IllegalStateException("transactionalIdPrefix ('" + transactionalIdPrefix + "') is only used"
                        + " with publishMode(TRANSACTIONAL), but the mode is " + publishMode
                        + "; set it or drop the prefix");
            }
            String id = instanceId != null ? instanceId : RelayDefaults.instanceId();
            Map<String, Object> producer;
            try {
                boolean transactional = publishMode == PublishMode.TRANSACTIONAL;
                producer = ProducerSettings.forPublishMode(
                        ProducerSettings.boundSendWait(
                                ProducerSettings.boundByLease(
                                        ProducerSettings.validate(producerProperties, id), leaseDuration),
                                leaseDuration,
                                transactional),
                        producerProperties,
                        transactional);
            } catch (IllegalArgumentException e) {
                throw new IllegalStateException(e.getMessage(), e);
            }
            CircuitBreakerConfig breaker = circuitBreaker != null
                    ? circuitBreaker
                    : RelayDefaults.circuitBreaker(DEFAULT_BREAKER_FAILURE_THRESHOLD, DEFAULT_BREAKER_OPEN_DURATION);
            RelayConfig config = new RelayConfig(
                    dataSource,
                    schema,
                    id,
                    producer,
                    batchSize,
                    batchBytes,
                    leaseDuration,
                    idlePollInterval,
                    shutdownTimeout,
                    workerThreads,
                    backoff,
                    breaker,
                    parkPolicy,
                    meterRegistry != null ? meterRegistry : Metrics.globalRegistry,
                    maxAttempts,
                    probeInterval,
                    probeIntervalUnderLoad.compareTo(probeInterval) < 0 ? probeInterval : probeIntervalUnderLoad,
                    listenDataSource,
                    publishMode,
                    transactionalIdPrefix,
                    vacuumAfterRows);
            return new RelayEngine(config);
        }

        private static int between(int value, int min, int max, String name, int fallback) {
            return Checks.requireBetween(value, min, max, name, USE_DEFAULT + fallback);
        }

        private static Duration between(Duration value, Duration min, Duration max, String name, Duration fallback) {
            return Checks.requireBetween(value, min, max, name, USE_DEFAULT + Durations.format(fallback));
        }
    }
}
