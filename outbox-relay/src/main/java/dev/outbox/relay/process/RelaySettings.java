package dev.outbox.relay.process;

import dev.outbox.core.internal.Durations;
import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.relay.ParkPolicy;
import dev.outbox.relay.PublishMode;
import dev.outbox.relay.Relay;
import dev.outbox.relay.process.Setting.Group;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * The relay process's settings: one table from which the environment variables, the properties
 * file keys, the command-line flags, {@code --help} and the README's reference section are all
 * derived, so that they cannot drift apart.
 *
 * <p>Every setting has a name such as {@code batch-size}, from which the three ways of giving it
 * follow mechanically:
 *
 * <ul>
 *   <li>flag {@code --batch-size=500} (or {@code --batch-size 500});
 *   <li>environment variable {@code OUTBOX_RELAY_BATCH_SIZE};
 *   <li>properties-file key {@code relay.batch.size} (file given with {@code --config}).
 * </ul>
 *
 * Precedence: flag, then environment, then file, then the default. Kafka producer properties pass
 * through under the prefix {@code kafka.}: flag {@code --kafka.linger.ms=5}, environment {@code
 * OUTBOX_RELAY_KAFKA_LINGER_MS=5}, file key {@code kafka.linger.ms=5}.
 *
 * <p>Every value is trimmed of leading and trailing whitespace, whatever its source, and validated
 * when the settings are resolved; a bad, missing or unknown setting is an error whose one-line
 * message names the setting, the value and the fix.
 *
 * <p>A setting that the library's {@link Relay.Builder} also has takes its default and bounds from
 * the builder's {@code DEFAULT_}, {@code MIN_} and {@code MAX_} constants and names the setter
 * that receives its value ({@link Setting#appliedBy}); a test holds the two together. This class
 * is the table; {@link SettingsResolver} reads the sources, {@link SettingsText} renders {@code
 * --help} and the README, {@link SettingNames} suggests names for typos.
 */
public final class RelaySettings {

    /** Prefix of every environment variable the process reads. */
    public static final String ENV_PREFIX = "OUTBOX_RELAY_";

    /** Prefix of Kafka producer properties in flags and the properties file. */
    public static final String KAFKA_PREFIX = "kafka.";

    /** Prefix of Kafka producer properties in the environment. */
    public static final String KAFKA_ENV_PREFIX = ENV_PREFIX + "KAFKA_";

    /** Prefix of the relay's own keys in the properties file. */
    public static final String FILE_PREFIX = "relay.";

    /** Filled by {@link #add} as the entries below are initialised, in declaration order. */
    private static final List<Setting<?>> TABLE = new ArrayList<>();

    /** The JDBC URL of the outbox database. */
    public static final Setting<String> JDBC_URL = add(
            Setting.of("jdbc-url", Group.DATABASE, Validators.relayJdbcUrl())
                    .doc(
                            "JDBC URL of the PostgreSQL database that holds the outbox tables, e.g."
                                    + " `jdbc:postgresql://db:5432/orders`. Put credentials in db-user and db-password, not here."
                                    + " The `options` and `socketTimeout` parameters are refused: the relay sets them from lease-duration."));

    /** The database user. */
    public static final Setting<String> DB_USER = add(Setting.of("db-user", Group.DATABASE, Validators.text())
            .defaultValue("")
            .doc("Database user. Empty: the driver's default (the JDBC URL's `user` parameter or the OS user)."));

    /** The database password. */
    public static final Setting<String> DB_PASSWORD = add(Setting.of("db-password", Group.DATABASE, Validators.text())
            .defaultValue("")
            .neverPrinted()
            .doc("Database password. Never printed. Prefer the environment variable or a file readable only by the"
                    + " relay's user over a flag, which other users can see in the process list. Leading and trailing"
                    + " whitespace is dropped, as from every value."));

    /** The connection pool size. */
    public static final Setting<Integer> DB_POOL_SIZE = add(Setting.of(
                    "db-pool-size", Group.DATABASE, Validators.integer(4, 200))
            .defaultValue(10)
            .doc("Maximum connections in the relay's pool (HikariCP). Raise it when the relay owns many shards and"
                    + " `outbox_relay_errors_total{kind=\"database\"}` shows connection timeouts."));

    /** The JDBC URL of the opt-in LISTEN connection. */
    public static final Setting<String> LISTEN_JDBC_URL =
            add(Setting.of("listen-jdbc-url", Group.DATABASE, Validators.orEmpty(Validators.jdbcUrl()))
                    .defaultValue("")
                    .doc(
                            "Opt-in LISTEN wake-up for producers built with `Outbox.builder().notifyInTransaction(true)`: the relay"
                                    + " opens one connection of its own to this URL (with db-user and db-password) and LISTENs, so that a"
                                    + " commit wakes its shard at once instead of at the next probe. It must reach PostgreSQL in a session"
                                    + " (directly, or a session-pooling PgBouncer), not through transaction pooling. Empty: no LISTEN;"
                                    + " the probe alone finds new rows."));

    /** The schema of the outbox tables. */
    public static final Setting<String> SCHEMA = add(Setting.of("schema", Group.DATABASE, Validators.schema())
            .defaultValue(Relay.Builder.DEFAULT_SCHEMA)
            .appliedBy(Relay.Builder::schema)
            .doc("Schema that holds the outbox tables; the same name the producing services and the migrations use."));

    /** Shard count for --migrate. */
    public static final Setting<Integer> MIGRATE_SHARDS = add(Setting.of(
                    "migrate-shards",
                    Group.DATABASE,
                    Validators.integer(OutboxMigrations.MIN_SHARDS, OutboxMigrations.MAX_SHARDS))
            .defaultValue(OutboxMigrations.DEFAULT_SHARDS)
            .doc("Shard count that `--migrate` installs when it creates the tables; ignored once they exist. It must"
                    + " match the producers' `Outbox.builder().shards(..)`."));

    /** The Kafka bootstrap servers. */
    public static final Setting<String> BOOTSTRAP_SERVERS = add(Setting.of(
                    "bootstrap-servers", Group.KAFKA, Validators.hostPorts())
            .doc("Kafka bootstrap servers, comma-separated `host:port`. Every other producer property passes through"
                    + " as `kafka.<property>` (see below)."));

    /** The instance id; empty leaves the builder's default. */
    public static final Setting<String> INSTANCE_ID = add(Setting.of(
                    "instance-id", Group.RELAY, Validators.instanceId())
            .defaultValue("")
            .appliedBy((b, v) -> {
                if (!v.isEmpty()) {
                    b.instanceId(v);
                }
            })
            .doc("This relay's name in the lease table, the logs and the metrics. Empty: host-pid-random, new at every"
                    + " start. Two live relays must never share a name."));

    /** Rows per batch. */
    public static final Setting<Integer> BATCH_SIZE = add(Setting.of(
                    "batch-size",
                    Group.RELAY,
                    Validators.integer(Relay.Builder.MIN_BATCH_SIZE, Relay.Builder.MAX_BATCH_SIZE))
            .defaultValue(Relay.Builder.DEFAULT_BATCH_SIZE)
            .appliedBy(Relay.Builder::batchSize)
            .doc("Most rows of one shard read, published and deleted as one batch. Larger batches raise throughput and"
                    + " the number of messages published again after a crash."));

    /** Payload bytes per read of a shard. */
    public static final Setting<Integer> BATCH_BYTES = add(Setting.of(
                    "batch-bytes",
                    Group.RELAY,
                    Validators.size(Relay.Builder.MIN_BATCH_BYTES, Relay.Builder.MAX_BATCH_BYTES))
            .defaultValue(Relay.Builder.DEFAULT_BATCH_BYTES)
            .appliedBy(Relay.Builder::batchBytes)
            .doc("Payload bytes after which one shard's batch takes no more rows (its last row may take it past this,"
                    + " however large the row). A relay holds about twice this per owned shard, plus a row each."
                    + " Payloads above batch-bytes / batch-size (less when a read goes past held rows) are read in a second"
                    + " statement."));

    /** Worker threads. */
    public static final Setting<Integer> WORKER_THREADS = add(Setting.of(
                    "worker-threads",
                    Group.RELAY,
                    Validators.integer(Relay.Builder.MIN_WORKER_THREADS, Relay.Builder.MAX_WORKER_THREADS))
            .defaultValue(Relay.Builder.DEFAULT_WORKER_THREADS)
            .appliedBy(Relay.Builder::workerThreads)
            .doc("Threads that read, send and delete for all owned shards; a shard is never worked on by two threads at"
                    + " once and waiting for Kafka's acks holds no thread. Each can hold a database connection:"
                    + " db-pool-size must be at least worker-threads + 4."));

    /** Lease duration. */
    public static final Setting<Duration> LEASE_DURATION = add(Setting.of(
                    "lease-duration",
                    Group.RELAY,
                    Validators.duration(Relay.Builder.MIN_LEASE_DURATION, Relay.Builder.MAX_LEASE_DURATION))
            .defaultValue(Relay.Builder.DEFAULT_LEASE_DURATION)
            .appliedBy(Relay.Builder::leaseDuration)
            .doc(
                    "How long a shard lease and a membership heartbeat last; both are renewed every third of it. Also how long"
                            + " the shards of a relay that died without handing them back stay unpublished before another relay"
                            + " takes them over, and how long a relay cut off from PostgreSQL keeps its shards."));

    /** Idle poll interval. */
    public static final Setting<Duration> IDLE_POLL_INTERVAL = add(Setting.of(
                    "idle-poll-interval",
                    Group.RELAY,
                    Validators.duration(Relay.Builder.MIN_IDLE_POLL_INTERVAL, Relay.Builder.MAX_IDLE_POLL_INTERVAL))
            .defaultValue(Relay.Builder.DEFAULT_IDLE_POLL_INTERVAL)
            .appliedBy(Relay.Builder::idlePollInterval)
            .doc(
                    "Longest wait between two reads of an idle shard while the probe (probe-interval) fails; while it works,"
                            + " the probe wakes the shard when rows arrive."));

    /** Probe interval. */
    public static final Setting<Duration> PROBE_INTERVAL = add(Setting.of(
                    "probe-interval",
                    Group.RELAY,
                    Validators.duration(Relay.Builder.MIN_PROBE_INTERVAL, Relay.Builder.MAX_PROBE_INTERVAL))
            .defaultValue(Relay.Builder.DEFAULT_PROBE_INTERVAL)
            .appliedBy(Relay.Builder::probeInterval)
            .doc("How often the relay asks PostgreSQL which of its idle shards hold new rows (one statement, one index"
                    + " descent per idle shard) and wakes those. It bounds how long a row waits on an idle outbox; shorter"
                    + " costs the database more (ENGINE.md, \"Wake-up\")."));

    /** Probe interval under load. */
    public static final Setting<Duration> PROBE_INTERVAL_UNDER_LOAD = add(Setting.of(
                    "probe-interval-under-load",
                    Group.RELAY,
                    Validators.duration(Relay.Builder.MIN_PROBE_INTERVAL, Relay.Builder.MAX_PROBE_INTERVAL))
            .defaultValue(Relay.Builder.DEFAULT_PROBE_INTERVAL_UNDER_LOAD)
            .appliedBy(Relay.Builder::probeIntervalUnderLoad)
            .doc("The probe's longest pause after a read that found rows. Under a steady load, when reads find fewer"
                    + " rows than the shards they read for, the probe pauses until about one row per shard should have"
                    + " arrived, at most this long: less CPU in the relay and PostgreSQL per message, a few ms more"
                    + " latency. At the probe-interval it reads at one pace (benchmarks/RELAY.md, \"The probe's pause"
                    + " under load\")."));

    /** Vacuum after rows. */
    public static final Setting<Integer> VACUUM_AFTER_ROWS =
            add(Setting.of("vacuum-after-rows", Group.RELAY, Validators.integer(0, Relay.Builder.MAX_VACUUM_AFTER_ROWS))
                    .defaultValue(Relay.Builder.DEFAULT_VACUUM_AFTER_ROWS)
                    .appliedBy(Relay.Builder::vacuumAfterRows)
                    .doc("The relay vacuums the outbox table after every this many rows it deleted or rewrote (a failed"
                            + " row's attempt recorded; VACUUM (SKIP_LOCKED),"
                            + " checked once a second); 0 leaves the table to autovacuum. Reads step over the index entries"
                            + " of the rows deleted since the last vacuum, and autovacuum comes by at most once per"
                            + " autovacuum_naptime (a minute by default). While the relay drains a backlog larger than this,"
                            + " it vacuums once the backlog is drained (at the latest after 64 times this many rows); a"
                            + " backlog that has not shrunk for 15 s (rows held for a missing topic) is not waited for."
                            + " Needs the table's owner: for another role"
                            + " PostgreSQL skips the vacuum with a warning, logged once (ENGINE.md, \"Keeping the table"
                            + " small\")."));

    /** Backoff base; with backoff-cap, the builder's backoff (RelayProcess). */
    public static final Setting<Duration> BACKOFF_BASE = add(Setting.of(
                    "backoff-base",
                    Group.RELAY,
                    Validators.duration(Relay.Builder.MIN_BACKOFF_BASE, Relay.Builder.MAX_BACKOFF_BASE))
            .defaultValue(Relay.Builder.DEFAULT_BACKOFF.base())
            .doc(
                    "Ceiling of the first retry delay after a retriable Kafka or database error; it doubles per retry up to"
                            + " backoff-cap, and each delay is drawn at random below its ceiling (full jitter)."));

    /** Backoff cap. */
    public static final Setting<Duration> BACKOFF_CAP = add(Setting.of(
                    "backoff-cap",
                    Group.RELAY,
                    Validators.duration(Relay.Builder.MIN_BACKOFF_CAP, Relay.Builder.MAX_BACKOFF_CAP))
            .defaultValue(Relay.Builder.DEFAULT_BACKOFF.cap())
            .doc("Largest retry delay ceiling. Must be at least backoff-base."));

    /** Breaker threshold; with breaker-open-duration, the builder's circuit breaker (RelayProcess). */
    public static final Setting<Integer> BREAKER_FAILURE_THRESHOLD = add(Setting.of(
                    "breaker-failure-threshold",
                    Group.RELAY,
                    Validators.integer(
                            Relay.Builder.MIN_BREAKER_FAILURE_THRESHOLD, Relay.Builder.MAX_BREAKER_FAILURE_THRESHOLD))
            .defaultValue(Relay.Builder.DEFAULT_BREAKER_FAILURE_THRESHOLD)
            .doc("Consecutive failed batches after which the circuit breaker opens and publishing pauses. A batch"
                    + " that was in flight while the process stood still for more than a second (a long GC, a"
                    + " throttled or suspended container; logged at WARN as \"the process stood still\") and then"
                    + " failed does not count."));

    /** Breaker open duration. */
    public static final Setting<Duration> BREAKER_OPEN_DURATION = add(Setting.of(
                    "breaker-open-duration",
                    Group.RELAY,
                    Validators.duration(
                            Relay.Builder.MIN_BREAKER_OPEN_DURATION, Relay.Builder.MAX_BREAKER_OPEN_DURATION))
            .defaultValue(Relay.Builder.DEFAULT_BREAKER_OPEN_DURATION)
            .doc(
                    "How long the open breaker pauses publishing before one trial batch (half-open) decides whether to close"
                            + " it again."));

    /** Attempts before a retriably failing message is parked. */
    public static final Setting<Integer> MAX_ATTEMPTS = add(Setting.of(
                    "max-attempts",
                    Group.RELAY,
                    Validators.integer(Relay.Builder.MIN_MAX_ATTEMPTS, Relay.Builder.MAX_MAX_ATTEMPTS))
            .defaultValue(Relay.Builder.DEFAULT_MAX_ATTEMPTS)
            .appliedBy(Relay.Builder::maxAttempts)
            .doc("Attempts after which a message that keeps failing with a retriable error while Kafka accepts other"
                    + " records (for example a topic that does not exist and is not auto-created) is parked, so that it"
                    + " does not block its shard. Failures during a broker outage are not counted."));

    /** Park policy. */
    public static final Setting<ParkPolicy> PARK_POLICY = add(Setting.of(
                    "park-policy", Group.RELAY, Validators.oneOf(ParkPolicy.class))
            .defaultValue(Relay.Builder.DEFAULT_PARK_POLICY)
            .appliedBy(Relay.Builder::parkPolicy)
            .doc("What follows a message that can never be published (too large, invalid or unauthorized topic):"
                    + " PARK_AND_CONTINUE parks it and publishes the key's later messages; HOLD_KEY parks it and holds"
                    + " back the key's later messages until it is requeued or purged, keeping the key's order."));

    /** Publish mode. */
    public static final Setting<PublishMode> PUBLISH_MODE = add(Setting.of(
                    "publish-mode", Group.RELAY, Validators.oneOf(PublishMode.class))
            .defaultValue(Relay.Builder.DEFAULT_PUBLISH_MODE)
            .appliedBy(Relay.Builder::publishMode)
            .doc("How a shard's batch is published. IDEMPOTENT: one shared idempotent producer; a relay that lost its"
                    + " lease stops at a local deadline, but a process frozen between that check and the broker can add"
                    + " stale copies of its batch in flight after the new owner's records (ENGINE.md, \"Fencing on the Kafka"
                    + " side\"). TRANSACTIONAL: a transactional producer per owned shard (`transactional.id` ="
                    + " transactional-id-prefix + shard) and one Kafka transaction per batch, so the broker fences the old"
                    + " owner and a batch that failed in part is invisible; consumers must read with"
                    + " `isolation.level=read_committed` (consumer-dedup's default). Costs throughput (benchmarks/RELAY.md)"
                    + " and one producer per shard."));

    /** Transactional id prefix. */
    public static final Setting<String> TRANSACTIONAL_ID_PREFIX = add(Setting.of(
                    "transactional-id-prefix", Group.RELAY, Validators.transactionalIdPrefix())
            .defaultValue("")
            .appliedBy((b, v) -> {
                if (!v.isEmpty()) {
                    b.transactionalIdPrefix(v);
                }
            })
            .doc("With publish-mode=TRANSACTIONAL, shard N publishes with `transactional.id` = this prefix + N. Every"
                    + " relay of one outbox must use the same prefix (the new owner of a shard fences the old one through"
                    + " it), and outboxes that share a Kafka cluster must use different ones. Empty:"
                    + " `outbox-relay.<database>.<schema>.`, the database name read from PostgreSQL at start. Refused with"
                    + " publish-mode=IDEMPOTENT."));

    /** HTTP port. */
    public static final Setting<Integer> HTTP_PORT =
            add(Setting.of("http-port", Group.PROCESS, Validators.integer(0, 65_535))
                    .defaultValue(8080)
                    .doc("Port of `/health`, `/health/ready` and `/metrics`. 0 turns the HTTP server off."));

    /** HTTP bind address. */
    public static final Setting<String> HTTP_HOST = add(Setting.of("http-host", Group.PROCESS, Validators.host())
            .defaultValue("0.0.0.0")
            .doc("Address the HTTP server binds to; 127.0.0.1 keeps it local."));

    /** Start-up check timeout. */
    public static final Setting<Duration> STARTUP_TIMEOUT = add(Setting.of(
                    "startup-timeout",
                    Group.PROCESS,
                    Validators.duration(Duration.ofMillis(250), Duration.ofMinutes(10)))
            .defaultValue(Duration.ofSeconds(30))
            .doc("How long the start waits in all for PostgreSQL (its check, the pool's first connection, the schema"
                    + " check) and Kafka to answer, and an admin command for PostgreSQL, before it gives up with exit"
                    + " code 3; a refused login is not waited for."));

    /** Bound of an admin command's statements. */
    public static final Setting<Duration> ADMIN_TIMEOUT = add(
            Setting.of("admin-timeout", Group.PROCESS, Validators.duration(Duration.ofSeconds(1), Duration.ofHours(1)))
                    .defaultValue(Duration.ofMinutes(2))
                    .doc("How long one statement of `status`, `parked` or `doctor` may run, and how long such a command"
                            + " waits for PostgreSQL to answer at all, before it gives up with exit code 3: a count over a very"
                            + " large backlog, a lock held by someone else or a database that does not answer ends there"
                            + " instead of hanging the command (and holding back vacuum with its snapshot)."));

    /** Shutdown timeout. */
    public static final Setting<Duration> SHUTDOWN_TIMEOUT = add(Setting.of(
                    "shutdown-timeout",
                    Group.PROCESS,
                    Validators.duration(Relay.Builder.MIN_SHUTDOWN_TIMEOUT, Relay.Builder.MAX_SHUTDOWN_TIMEOUT))
            .processDefault(
                    Duration.ofSeconds(10),
                    "with the process's 15s close margin it fits in Kubernetes' default 30s grace period")
            .appliedBy(Relay.Builder::shutdownTimeout)
            .doc("After SIGTERM, how long the relay waits for its batches in flight; it hands back the leases of the"
                    + " shards that finished and leaves those of the shards whose batch did not to expire (their rows"
                    + " are then published again by the next owner, after the lease duration). Closing the producer"
                    + " and the"
                    + " connections follows; if the whole shutdown takes 15s longer than this, the process exits with"
                    + " code 1. Keep it 15s or more below the orchestrator's grace period (Kubernetes: 30s)."));

    /** Log level. */
    public static final Setting<String> LOG_LEVEL = add(Setting.of(
                    "log-level",
                    Group.PROCESS,
                    Validators.oneOf(v -> v.toUpperCase(Locale.ROOT), "ERROR", "WARN", "INFO", "DEBUG", "TRACE"))
            .defaultValue("INFO")
            .doc("Level of the relay's own log lines (on standard output). Kafka's and the pool's loggers stay at WARN"
                    + " unless this is DEBUG or TRACE. A `logback.xml` given with `-Dlogback.configurationFile` replaces"
                    + " this."));

    /** Log format. */
    public static final Setting<String> LOG_FORMAT = add(Setting.of(
                    "log-format", Group.PROCESS, Validators.oneOf(v -> v.toLowerCase(Locale.ROOT), "text", "json"))
            .defaultValue("text")
            .doc("Format of the log lines on standard output: `text`, one readable line per event, or `json`, one JSON"
                    + " object per line (Logback's `JsonEncoder`: timestamp, level, thread, logger, message, MDC,"
                    + " exception) for log collectors."));

    /** Every setting, in the order of declaration, which is the order of {@code --help} and the README. */
    public static final List<Setting<?>> ALL = List.copyOf(TABLE);

    private static final Map<String, Setting<?>> BY_NAME =
            ALL.stream().collect(Collectors.toUnmodifiableMap(Setting::name, s -> s));

    private RelaySettings() {}

    private static <T> Setting<T> add(Setting<T> setting) {
        TABLE.add(setting);
        return setting;
    }

    /**
     * @param name a setting name such as {@code batch-size}
     * @return the setting, if there is one of that name
     */
    public static Optional<Setting<?>> byName(String name) {
        return Optional.ofNullable(BY_NAME.get(name));
    }

    /**
     * Resolves every setting from flags, environment and file; see {@link SettingsResolver#resolve}.
     *
     * @throws CliException (exit code 2) naming the first unknown, bad or missing setting
     */
    static Values resolve(
            Map<String, String> flags,
            Map<String, String> env,
            Map<String, String> file,
            String fileName,
            boolean requireAll) {
        return SettingsResolver.resolve(flags, env, file, fileName, requireAll);
    }

    /** @return the README's settings reference; see {@link SettingsText#markdownReference()} */
    public static String markdownReference() {
        return SettingsText.markdownReference();
    }

    /** Prints {@link #markdownReference()}, to refresh the README. */
    public static void main(String[] args) {
        System.out.print(markdownReference());
    }

    static Duration durationBetween(String v, Duration min, Duration max) {
        return Validators.durationBetween(v, min, max);
    }

    /** @return the duration in the settings' own syntax, e.g. {@code 30s} or {@code 100ms} */
    static String format(Duration d) {
        return Durations.format(d);
    }

    /** The resolved, validated settings. */
    static final class Values {
        private final Map<Setting<?>, Object> values;
        private final Map<String, String> producerProperties;
        private final Set<Setting<?>> explicit;

        Values(Map<Setting<?>, Object> values, Map<String, String> producerProperties, Set<Setting<?>> explicit) {
            this.values = Map.copyOf(values);
            this.producerProperties = Map.copyOf(producerProperties);
            this.explicit = Set.copyOf(explicit);
        }

        /** @return the value, or {@code null} when the setting has none (a required one the admin commands skip) */
        @SuppressWarnings("unchecked")
        <T> T get(Setting<T> s) {
            return (T) values.get(s);
        }

        String string(Setting<?> s) {
            Object v = values.get(s);
            return v == null ? null : v.toString();
        }

        int integer(Setting<Integer> s) {
            return get(s);
        }

        Duration duration(Setting<Duration> s) {
            return get(s);
        }

        ParkPolicy parkPolicy() {
            return get(PARK_POLICY);
        }

        PublishMode publishMode() {
            return get(PUBLISH_MODE);
        }

        boolean isExplicit(Setting<?> s) {
            return explicit.contains(s);
        }

        /** @return the pass-through producer properties, without bootstrap.servers */
        Map<String, String> producerProperties() {
            return producerProperties;
        }

        /** Hands every setting that the library's builder also has to its setter. */
        void applyTo(Relay.Builder builder) {
            for (Setting<?> s : ALL) {
                if (values.containsKey(s)) {
                    s.applyTo(builder, values.get(s));
                }
            }
        }

        /** @return every setting and its effective value, secrets masked, for the start-up log line */
        String describe() {
            return SettingsText.describe(values, producerProperties);
        }
    }
}
