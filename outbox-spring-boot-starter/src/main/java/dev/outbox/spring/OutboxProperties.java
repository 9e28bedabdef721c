package dev.outbox.spring;

import dev.outbox.migrations.OutboxMigrations;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.util.unit.DataSize;

/**
 * The {@code outbox.*} settings of the Spring Boot starter. Every setting has a default that works
 * for one service with the outbox tables in schema {@code outbox}.
 */
@ConfigurationProperties(prefix = "outbox")
public class OutboxProperties {

    /** Schema the outbox migrations are (or were) applied to; a plain lower-case SQL identifier. */
    private String schema = OutboxMigrations.DEFAULT_SCHEMA;

    /** Shard count the outbox was installed with; fixed at install, every producer must use the same. */
    private int shards = OutboxMigrations.DEFAULT_SHARDS;

    /**
     * Whether every append also runs pg_notify in the appending transaction, for a relay that LISTENs.
     * Best left off: PostgreSQL serialises the commits of all notifying transactions, and the relay's
     * probe finds new rows within milliseconds without it.
     */
    private boolean notifyInTransaction = false;

    private final Migrations migrations = new Migrations();
    private final Idempotency idempotency = new Idempotency();
    private final Processed processed = new Processed();
    private final Relay relay = new Relay();
    private final ListenerRetries listenerRetries = new ListenerRetries();

    public String getSchema() {
        return schema;
    }

    public void setSchema(String schema) {
        this.schema = schema;
    }

    public int getShards() {
        return shards;
    }

    public void setShards(int shards) {
        this.shards = shards;
    }

    public boolean isNotifyInTransaction() {
        return notifyInTransaction;
    }

    public void setNotifyInTransaction(boolean notifyInTransaction) {
        this.notifyInTransaction = notifyInTransaction;
    }

    public Migrations getMigrations() {
        return migrations;
    }

    public Idempotency getIdempotency() {
        return idempotency;
    }

    public Processed getProcessed() {
        return processed;
    }

    public Relay getRelay() {
        return relay;
    }

    public ListenerRetries getListenerRetries() {
        return listenerRetries;
    }

    /** The outbox migrations. */
    public static class Migrations {
        /**
         * Whether the starter applies the outbox migrations at start, with a Flyway instance of its own
         * (history table outbox_schema_history in the outbox schema, so the application's own V1, V2...
         * never clash with the outbox's). Turn off when the migrations are installed another way.
         */
        private boolean enabled = true;

        public boolean isEnabled() {
            return enabled;
        }

        public void setEnabled(boolean enabled) {
            this.enabled = enabled;
        }
    }

    /** The Idempotency-Key servlet filter; registered only when paths are given. */
    public static class Idempotency {
        /**
         * Paths the Idempotency-Key filter protects: exact paths ("/orders") or prefixes ending in
         * "/*" ("/orders/*"). Empty: no filter is registered.
         */
        private List<String> paths = new ArrayList<>();

        /** HTTP methods the filter protects on those paths. */
        private List<String> methods = new ArrayList<>(List.of("POST", "PATCH"));

        /**
         * How long a key and its stored response are kept: a key reused later runs anew. Expired keys
         * are deleted by the scheduled purge (purge-interval), or when their key is reused. Positive.
         */
        private Duration ttl = Duration.ofHours(24);

        /**
         * How often expired keys are deleted, on the starter's purge thread, while the application has
         * an IdempotencyStore bean; 0 turns the scheduled purge off; else at least 1s.
         */
        private Duration purgeInterval = Duration.ofMinutes(5);

        /** Expired keys deleted per statement (each in its own short transaction) by a purge; 1 to 100000. */
        private int purgeBatchSize = 1000;

        /**
         * How long a request waits for the row of a key held by a request in flight before it gets 409;
         * 1ms to 10m.
         */
        private Duration lockTimeout = Duration.ofSeconds(2);

        /** The Retry-After sent with 409 while the first request with a key is in flight; 0 to 1h. */
        private Duration retryAfter = Duration.ofSeconds(1);

        /**
         * The longest one statement of the key's transaction, or one wait between two of them, may
         * take: PostgreSQL ends the transaction after this (statement_timeout and
         * idle_in_transaction_session_timeout), so a hung request releases its key for a retry; a
         * handler that keeps issuing statements holds it while it runs; 1s to 24h.
         */
        private Duration holdTimeout = Duration.ofSeconds(60);

        /**
         * Largest request body the filter buffers to fingerprint and replay, in bytes; larger bodies
         * get 413; 0 to 67108864 (64 MiB).
         */
        private int maxBodyBytes = 1024 * 1024;

        /**
         * Largest response body the filter holds until the commit and stores for replay, in bytes; a
         * handler that writes more has its writes rolled back, its key released and the request fails
         * (500); 0 to 268435456 (256 MiB).
         */
        private int maxResponseBytes = 8 * 1024 * 1024;

        /**
         * Response headers stored with a response and sent on its replays (the first response carries
         * every header the handler set); cookies and hop-by-hop headers are refused.
         */
        private List<String> storedHeaders = new ArrayList<>(
                List.of("Content-Type", "Location", "Content-Location", "ETag", "Last-Modified", "Content-Language"));

        /** Names the store and the filter in log lines and in the store tag of their meters. */
        private String name = "default";

        /**
         * The application whose keys these are, put before every key's scope: services that share one
         * idempotency_key table (one schema) must each set their own, or they replay each other's
         * stored responses. 1 to 64 ASCII letters, digits, '.', '_' or '-', e.g.
         * ${spring.application.name}. Empty (the default): no application, the scopes of earlier
         * versions. Setting, changing or removing it changes every key's scope: retries of requests
         * stored before run again, so do it as a change of key format (drain first, or accept that).
         */
        private String application = "";

        /**
         * Order of the filter's registration among the application's servlet filters: after Spring
         * Security (-100), whose principal scopes the keys. Boot's form filter (-9900) runs ahead and
         * parses PUT, PATCH and DELETE forms; the filter fingerprints their fields.
         */
        private int filterOrder = 0;

        public List<String> getPaths() {
            return paths;
        }

        public void setPaths(List<String> paths) {
            this.paths = paths;
        }

        public List<String> getMethods() {
            return methods;
        }

        public void setMethods(List<String> methods) {
            this.methods = methods;
        }

        public Duration getTtl() {
            return ttl;
        }

        public void setTtl(Duration ttl) {
            this.ttl = ttl;
        }

        public Duration getPurgeInterval() {
            return purgeInterval;
        }

        public void setPurgeInterval(Duration purgeInterval) {
            this.purgeInterval = purgeInterval;
        }

        public int getPurgeBatchSize() {
            return purgeBatchSize;
        }

        public void setPurgeBatchSize(int purgeBatchSize) {
            this.purgeBatchSize = purgeBatchSize;
        }

        public Duration getHoldTimeout() {
            return holdTimeout;
        }

        public void setHoldTimeout(Duration holdTimeout) {
            this.holdTimeout = holdTimeout;
        }

        public List<String> getStoredHeaders() {
            return storedHeaders;
        }

        public void setStoredHeaders(List<String> storedHeaders) {
            this.storedHeaders = storedHeaders;
        }

        public String getName() {
            return name;
        }

        public void setName(String name) {
            this.name = name;
        }

        public String getApplication() {
            return application;
        }

        public void setApplication(String application) {
            this.application = application;
        }

        public Duration getLockTimeout() {
            return lockTimeout;
        }

        public void setLockTimeout(Duration lockTimeout) {
            this.lockTimeout = lockTimeout;
        }

        public Duration getRetryAfter() {
            return retryAfter;
        }

        public void setRetryAfter(Duration retryAfter) {
            this.retryAfter = retryAfter;
        }

        public int getMaxBodyBytes() {
            return maxBodyBytes;
        }

        public void setMaxBodyBytes(int maxBodyBytes) {
            this.maxBodyBytes = maxBodyBytes;
        }

        public int getMaxResponseBytes() {
            return maxResponseBytes;
        }

        public void setMaxResponseBytes(int maxResponseBytes) {
            this.maxResponseBytes = maxResponseBytes;
        }

        public int getFilterOrder() {
            return filterOrder;
        }

        public void setFilterOrder(int filterOrder) {
            this.filterOrder = filterOrder;
        }

        /** The start-up gate over the application's Spring MVC endpoints. */
        private final Gate gate = new Gate();

        public Gate getGate() {
            return gate;
        }
    }

    /**
     * The start-up gate: once the singletons are created, before the web server listens, every Spring
     * MVC endpoint (annotated controllers and functional routes) with method POST or PATCH, or one of
     * {@link #getMethods() methods}, must be covered by the Idempotency-Key filter or exempted with a
     * reason ({@code @NotIdempotent(reason = "...")} on the handler, or an entry of {@link
     * #getExemptions() exemptions}); otherwise the start fails with a message naming each uncovered
     * endpoint and the properties that fix it. It runs whether or not {@code outbox.idempotency.paths}
     * is set: without it no filter runs and every such endpoint is uncovered.
     */
    public static class Gate {
        /**
         * Whether the gate runs at start, whether or not outbox.idempotency.paths is set; false turns it
         * off.
         */
        private boolean enabled = true;

        /** Log the uncovered endpoints at WARN instead of failing the start (for a gradual rollout). */
        private boolean warnOnly = false;

        /**
         * Methods the gate checks besides POST and PATCH, which it always checks: PUT, DELETE. They
         * are checked, not protected: the filter protects outbox.idempotency.methods.
         */
        private List<String> methods = new ArrayList<>();

        /**
         * Exempted endpoints, "METHOD path" as the gate's report names them, each with its reason. The
         * key holds a space: in a .properties file escape it,
         * outbox.idempotency.gate.exemptions[POST\ /webhooks/stripe]=deduplicated by the Stripe event id
         * (unescaped, the key ends at the space); in YAML quote the bracketed key under exemptions,
         * "[POST /webhooks/stripe]": deduplicated by the Stripe event id.
         */
        private Map<String, String> exemptions = new LinkedHashMap<>();

        public boolean isEnabled() {
            return enabled;
        }

        public void setEnabled(boolean enabled) {
            this.enabled = enabled;
        }

        public boolean isWarnOnly() {
            return warnOnly;
        }

        public void setWarnOnly(boolean warnOnly) {
            this.warnOnly = warnOnly;
        }

        public List<String> getMethods() {
            return methods;
        }

        public void setMethods(List<String> methods) {
            this.methods = methods;
        }

        public Map<String, String> getExemptions() {
            return exemptions;
        }

        public void setExemptions(Map<String, String> exemptions) {
            this.exemptions = exemptions;
        }
    }

    /**
     * The scheduled purge of the dedup claims of {@link ProcessedMessagesTemplate}: every consumer name
     * the application's template claimed for since the start, on the starter's purge thread.
     * Consumers built as IdempotentConsumer purge their own claims.
     */
    public static class Processed {
        /**
         * How long claimed message ids are kept; longer than any redelivery window (relay republishing
         * after a crash, a consumer group reset, a replay), as a redelivery after it is applied again;
         * at least 1h.
         */
        private Duration retention = Duration.ofDays(7);

        /** How often claims older than the retention are deleted; 0 turns the scheduled purge off; else at least 1s. */
        private Duration purgeInterval = Duration.ofHours(1);

        public Duration getRetention() {
            return retention;
        }

        public void setRetention(Duration retention) {
            this.retention = retention;
        }

        public Duration getPurgeInterval() {
            return purgeInterval;
        }

        public void setPurgeInterval(Duration purgeInterval) {
            this.purgeInterval = purgeInterval;
        }
    }

    /**
     * How Spring Kafka's listener containers retry a record whose {@code @KafkaListener} method threw,
     * when the application defines no {@code CommonErrorHandler} of its own: again and again, with an
     * exponential backoff, never skipping it. Spring Kafka's own default gives up after ten attempts
     * without delay, logs the record and commits past it, so a listener whose claim and business write
     * rolled back (a database failing fast, an outage longer than the attempts) would lose the message.
     * In containers that run Kafka transactions the wait comes after the rollback, not inside the
     * transaction, where it could outlast the producer's transaction.timeout.ms.
     */
    public static class ListenerRetries {
        /**
         * Whether the starter defines that error handler and, for containers that run Kafka
         * transactions, an after-rollback processor that never skips the record either; false leaves
         * Spring Kafka's defaults, which skip a record after ten failed attempts.
         */
        private boolean enabled = true;

        /** The first wait after a failed attempt; at least 1ms (the waits are whole milliseconds). */
        private Duration initialInterval = Duration.ofMillis(500);

        /**
         * The longest wait between two attempts, which double up to it; at least the initial interval and
         * at most four fifths of the listener consumers' max.poll.interval.ms (4m with Kafka's default of
         * 5m): the wait is spent in the poll loop. With Kafka transactions it is spent after the rollback,
         * so the producer's transaction.timeout.ms does not bound it.
         */
        private Duration maxInterval = Duration.ofSeconds(30);

        public boolean isEnabled() {
            return enabled;
        }

        public void setEnabled(boolean enabled) {
            this.enabled = enabled;
        }

        public Duration getInitialInterval() {
            return initialInterval;
        }

        public void setInitialInterval(Duration initialInterval) {
            this.initialInterval = initialInterval;
        }

        public Duration getMaxInterval() {
            return maxInterval;
        }

        public void setMaxInterval(Duration maxInterval) {
            this.maxInterval = maxInterval;
        }
    }

    /**
     * A relay inside the application, for small deployments. The standalone relay process (its own
     * deployment, scaled and restarted on its own) remains the recommended way.
     */
    public static class Relay {
        /** Whether to run a relay inside this application (needs outbox-relay on the classpath). */
        private boolean enabled = false;

        /**
         * Kafka bootstrap servers of the embedded relay, comma-separated host:port; empty or unset: the
         * producer bootstrap servers of a KafkaConnectionDetails bean (a service connection), else
         * spring.kafka.producer.bootstrap-servers, else spring.kafka.bootstrap-servers.
         */
        private String bootstrapServers;

        /**
         * Owner name in the lease tables, unique among relays, 1 to 200 characters; empty or unset:
         * host, pid and a random suffix, new at every start.
         */
        private String instanceId;

        /** Rows of one shard read, published and deleted per batch; 1 to 10000. */
        private int batchSize = 500;

        /**
         * Payload bytes after which a shard's batch takes no more rows (its last row may go past it);
         * the relay holds about twice this per owned shard; 1KB to 1GB.
         */
        private DataSize batchBytes = DataSize.ofMegabytes(4);

        /** How long a shard lease lasts without renewal; a crashed relay's shards move after it; 1s to 1h. */
        private Duration leaseDuration = Duration.ofSeconds(30);

        /**
         * Longest wait between two reads of an idle shard while the relay's probe fails; 10ms to 1m,
         * at most the lease duration.
         */
        private Duration idlePollInterval = Duration.ofSeconds(1);

        /**
         * How often the relay's probe asks which idle shards hold new rows: the wait of a row on an idle
         * outbox; 1ms to 1s.
         */
        private Duration probeInterval = Duration.ofMillis(5);

        /**
         * The probe's longest pause after a read that found fewer rows than shards: more is less CPU
         * per message under a steady load, and more latency; the probe interval for one pace; 1ms to 1s.
         */
        private Duration probeIntervalUnderLoad = Duration.ofMillis(10);

        /** Worker threads publishing shards; 1 to 256. */
        private int workerThreads = 4;

        /**
         * The relay vacuums the outbox table after every this many rows it deleted, up to 100000000; 0
         * leaves it to autovacuum.
         */
        private int vacuumAfterRows = 10_000;

        /**
         * Retriable failures of one message, counted only while Kafka accepts other records (a topic
         * that does not exist and is not auto-created), after which it is parked; 1 to 1000.
         */
        private int maxAttempts = 10;

        /**
         * What follows a parked message: PARK_AND_CONTINUE publishes its key's later messages,
         * HOLD_KEY holds them back until it is requeued or purged, keeping the key's order.
         */
        private ParkPolicy parkPolicy = ParkPolicy.PARK_AND_CONTINUE;

        /**
         * How a shard's batch is published: IDEMPOTENT, one shared idempotent producer; TRANSACTIONAL,
         * a transactional producer per shard and one Kafka transaction per batch, so the broker fences
         * a relay that lost its lease (consumers must read read_committed).
         */
        private PublishMode publishMode = PublishMode.IDEMPOTENT;

        /**
         * With publish-mode=transactional, shard N publishes with transactional.id = this prefix + N;
         * the same on every relay of one outbox, different between outboxes sharing a Kafka cluster.
         * Empty: outbox-relay.<database>.<schema>. Refused with publish-mode=idempotent.
         */
        private String transactionalIdPrefix;

        /**
         * How long closing the relay waits for its batches in flight before it hands its leases back
         * anyway (their rows are then published again by the next owner); 0 to 10m.
         */
        private Duration shutdownTimeout = Duration.ofSeconds(20);

        /**
         * Ceiling of the first retry delay after a retriable Kafka or database error; it doubles per
         * retry up to backoff-cap, each delay drawn at random below its ceiling; 1ms to 1m.
         */
        private Duration backoffBase = Duration.ofMillis(100);

        /** Largest retry delay ceiling, at least backoff-base; 1ms to 10m. */
        private Duration backoffCap = Duration.ofSeconds(30);

        /** Consecutive failed batches after which the Kafka circuit breaker opens and publishing pauses; 1 to 1000. */
        private int breakerFailureThreshold = 5;

        /** How long the open circuit breaker pauses publishing before one trial batch; 100ms to 1h. */
        private Duration breakerOpenDuration = Duration.ofSeconds(10);

        /**
         * Further Kafka producer properties (TLS, SASL, compression), by their Kafka names; unknown
         * names and bootstrap.servers are refused, idempotence and acks=all are enforced.
         */
        private Map<String, String> producer = new LinkedHashMap<>();

        public boolean isEnabled() {
            return enabled;
        }

        public void setEnabled(boolean enabled) {
            this.enabled = enabled;
        }

        public String getBootstrapServers() {
            return bootstrapServers;
        }

        public void setBootstrapServers(String bootstrapServers) {
            this.bootstrapServers = bootstrapServers;
        }

        public String getInstanceId() {
            return instanceId;
        }

        public void setInstanceId(String instanceId) {
            this.instanceId = instanceId;
        }

        public int getBatchSize() {
            return batchSize;
        }

        public void setBatchSize(int batchSize) {
            this.batchSize = batchSize;
        }

        public DataSize getBatchBytes() {
            return batchBytes;
        }

        public void setBatchBytes(DataSize batchBytes) {
            this.batchBytes = batchBytes;
        }

        public Duration getLeaseDuration() {
            return leaseDuration;
        }

        public void setLeaseDuration(Duration leaseDuration) {
            this.leaseDuration = leaseDuration;
        }

        public Duration getIdlePollInterval() {
            return idlePollInterval;
        }

        public void setIdlePollInterval(Duration idlePollInterval) {
            this.idlePollInterval = idlePollInterval;
        }

        public Duration getProbeInterval() {
            return probeInterval;
        }

        public void setProbeInterval(Duration probeInterval) {
            this.probeInterval = probeInterval;
        }

        public Duration getProbeIntervalUnderLoad() {
            return probeIntervalUnderLoad;
        }

        public void setProbeIntervalUnderLoad(Duration probeIntervalUnderLoad) {
            this.probeIntervalUnderLoad = probeIntervalUnderLoad;
        }

        public int getWorkerThreads() {
            return workerThreads;
        }

        public void setWorkerThreads(int workerThreads) {
            this.workerThreads = workerThreads;
        }

        public int getVacuumAfterRows() {
            return vacuumAfterRows;
        }

        public void setVacuumAfterRows(int vacuumAfterRows) {
            this.vacuumAfterRows = vacuumAfterRows;
        }

        public int getMaxAttempts() {
            return maxAttempts;
        }

        public void setMaxAttempts(int maxAttempts) {
            this.maxAttempts = maxAttempts;
        }

        public ParkPolicy getParkPolicy() {
            return parkPolicy;
        }

        public void setParkPolicy(ParkPolicy parkPolicy) {
            this.parkPolicy = parkPolicy;
        }

        public PublishMode getPublishMode() {
            return publishMode;
        }

        public void setPublishMode(PublishMode publishMode) {
            this.publishMode = publishMode;
        }

        public String getTransactionalIdPrefix() {
            return transactionalIdPrefix;
        }

        public void setTransactionalIdPrefix(String transactionalIdPrefix) {
            this.transactionalIdPrefix = transactionalIdPrefix;
        }

        public Duration getShutdownTimeout() {
            return shutdownTimeout;
        }

        public void setShutdownTimeout(Duration shutdownTimeout) {
            this.shutdownTimeout = shutdownTimeout;
        }

        public Duration getBackoffBase() {
            return backoffBase;
        }

        public void setBackoffBase(Duration backoffBase) {
            this.backoffBase = backoffBase;
        }

        public Duration getBackoffCap() {
            return backoffCap;
        }

        public void setBackoffCap(Duration backoffCap) {
            this.backoffCap = backoffCap;
        }

        public int getBreakerFailureThreshold() {
            return breakerFailureThreshold;
        }

        public void setBreakerFailureThreshold(int breakerFailureThreshold) {
            this.breakerFailureThreshold = breakerFailureThreshold;
        }

        public Duration getBreakerOpenDuration() {
            return breakerOpenDuration;
        }

        public void setBreakerOpenDuration(Duration breakerOpenDuration) {
            this.breakerOpenDuration = breakerOpenDuration;
        }

        public Map<String, String> getProducer() {
            return producer;
        }

        public void setProducer(Map<String, String> producer) {
            this.producer = producer;
        }

        /**
         * The relay's {@code ParkPolicy}, named here so that these settings bind without
         * outbox-relay on the class path; the embedded relay receives the constant of the same name.
         */
        public enum ParkPolicy {
            /** Park the message and keep publishing its key's later messages. */
            PARK_AND_CONTINUE,
            /** Park the message and hold back its key's later messages until it is requeued or purged. */
            HOLD_KEY
        }

        /**
         * The relay's {@code PublishMode}, named here so that these settings bind without
         * outbox-relay on the class path; the embedded relay receives the constant of the same name.
         */
        public enum PublishMode {
            /** One shared idempotent producer. */
            IDEMPOTENT,
            /** A transactional producer per shard and one Kafka transaction per batch. */
            TRANSACTIONAL
        }
    }
}
