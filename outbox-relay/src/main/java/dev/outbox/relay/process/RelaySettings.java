package dev.outbox.relay.process;

import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.relay.ParkPolicy;
import dev.outbox.relay.PublishMode;
import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.serialization.ByteArraySerializer;

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
 * <p>Every value is validated when the settings are resolved; a bad, missing or unknown setting
 * is an error whose one-line message names the setting, the value and the fix.
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

  /** What a setting is about; orders {@code --help} and the README. */
  public enum Group {
    /** The PostgreSQL database that holds the outbox. */
    DATABASE,
    /** The Kafka cluster the relay publishes to. */
    KAFKA,
    /** How the relay publishes. */
    RELAY,
    /** The process around the relay: HTTP, logging, shutdown. */
    PROCESS
  }

  /**
   * One setting.
   *
   * @param name the canonical name, lower-case words joined by {@code -}
   * @param group what it is about
   * @param type a short description of the accepted values, for the reference
   * @param defaultValue the default in the accepted syntax, or {@code null} when there is none
   * @param required whether the relay cannot start without it
   * @param secret whether its value is never printed
   * @param doc what it does, why one would change it
   * @param parser turns the text into the typed value, or throws {@link IllegalArgumentException}
   *     whose message says what the value must be
   */
  public record Setting(
      String name,
      Group group,
      String type,
      String defaultValue,
      boolean required,
      boolean secret,
      String doc,
      Function<String, ?> parser) {

    /** @return the command-line flag, e.g. {@code --batch-size} */
    public String flag() {
      return "--" + name;
    }

    /** @return the environment variable, e.g. {@code OUTBOX_RELAY_BATCH_SIZE} */
    public String envVar() {
      return ENV_PREFIX + name.toUpperCase(Locale.ROOT).replace('-', '_');
    }

    /** @return the properties-file key, e.g. {@code relay.batch.size} */
    public String fileKey() {
      return FILE_PREFIX + name.replace('-', '.');
    }

    @Override
    public String toString() {
      return name;
    }
  }

  /** The JDBC URL of the outbox database. */
  public static final Setting JDBC_URL =
      new Setting(
          "jdbc-url",
          Group.DATABASE,
          "JDBC URL",
          null,
          true,
          false,
          "JDBC URL of the PostgreSQL database that holds the outbox tables, e.g."
              + " `jdbc:postgresql://db:5432/orders`. Put credentials in db-user and db-password, not here.",
          RelaySettings::jdbcUrl);

  /** The database user. */
  public static final Setting DB_USER =
      new Setting(
          "db-user",
          Group.DATABASE,
          "text",
          "",
          false,
          false,
          "Database user. Empty: the driver's default (the JDBC URL's `user` parameter or the OS user).",
          v -> v);

  /** The database password. */
  public static final Setting DB_PASSWORD =
      new Setting(
          "db-password",
          Group.DATABASE,
          "text (secret)",
          "",
          false,
          true,
          "Database password. Never printed. Prefer the environment variable or a file readable only by the"
              + " relay's user over a flag, which other users can see in the process list.",
          v -> v);

  /** The connection pool size. */
  public static final Setting DB_POOL_SIZE =
      new Setting(
          "db-pool-size",
          Group.DATABASE,
          "integer 4..200",
          "10",
          false,
          false,
          "Maximum connections in the relay's pool (HikariCP). Raise it when the relay owns many shards and"
              + " `outbox_relay_errors_total{kind=\"database\"}` shows connection timeouts.",
          v -> intBetween(v, 4, 200));

  /** The JDBC URL of the opt-in LISTEN connection. */
  public static final Setting LISTEN_JDBC_URL =
      new Setting(
          "listen-jdbc-url",
          Group.DATABASE,
          "JDBC URL or empty",
          "",
          false,
          false,
          "Opt-in LISTEN wake-up for producers built with `Outbox.builder().notifyInTransaction(true)`: the relay"
              + " opens one connection of its own to this URL (with db-user and db-password) and LISTENs, so that a"
              + " commit wakes its shard at once instead of at the next probe. It must reach PostgreSQL in a session"
              + " (directly, or a session-pooling PgBouncer), not through transaction pooling. Empty: no LISTEN;"
              + " the probe alone finds new rows.",
          v -> v.isEmpty() ? v : jdbcUrl(v));

  /** The schema of the outbox tables. */
  public static final Setting SCHEMA =
      new Setting(
          "schema",
          Group.DATABASE,
          "SQL identifier",
          OutboxMigrations.DEFAULT_SCHEMA,
          false,
          false,
          "Schema that holds the outbox tables; the same name the producing services and the migrations use.",
          RelaySettings::schema);

  /** Shard count for --migrate. */
  public static final Setting MIGRATE_SHARDS =
      new Setting(
          "migrate-shards",
          Group.DATABASE,
          "integer 1..4096",
          String.valueOf(OutboxMigrations.DEFAULT_SHARDS),
          false,
          false,
          "Shard count that `--migrate` installs when it creates the tables; ignored once they exist. It must"
              + " match the producers' `Outbox.builder().shards(..)`.",
          v -> intBetween(v, OutboxMigrations.MIN_SHARDS, OutboxMigrations.MAX_SHARDS));

  /** The Kafka bootstrap servers. */
  public static final Setting BOOTSTRAP_SERVERS =
      new Setting(
          "bootstrap-servers",
          Group.KAFKA,
          "host:port list",
          null,
          true,
          false,
          "Kafka bootstrap servers, comma-separated `host:port`. Every other producer property passes through"
              + " as `kafka.<property>` (see below).",
          RelaySettings::hostPorts);

  /** The instance id. */
  public static final Setting INSTANCE_ID =
      new Setting(
          "instance-id",
          Group.RELAY,
          "text",
          "",
          false,
          false,
          "This relay's name in the lease table, the logs and the metrics. Empty: host-pid-random, new at every"
              + " start. Two live relays must never share a name.",
          RelaySettings::instanceId);

  /** Rows per batch. */
  public static final Setting BATCH_SIZE =
      new Setting(
          "batch-size",
          Group.RELAY,
          "integer 1..10000",
          "500",
          false,
          false,
          "Most rows of one shard read, published and deleted as one batch. Larger batches raise throughput and"
              + " the number of messages published again after a crash.",
          v -> intBetween(v, 1, 10_000));

  /** Lease duration. */
  public static final Setting LEASE_DURATION =
      new Setting(
          "lease-duration",
          Group.RELAY,
          "duration 1s..1h",
          "30s",
          false,
          false,
          "How long a shard lease and a membership heartbeat last; both are renewed every third of it. Also how long"
              + " the shards of a relay that died without handing them back stay unpublished before another relay"
              + " takes them over, and how long a relay cut off from PostgreSQL keeps its shards.",
          v -> durationBetween(v, Duration.ofSeconds(1), Duration.ofHours(1)));

  /** Idle poll interval. */
  public static final Setting IDLE_POLL_INTERVAL =
      new Setting(
          "idle-poll-interval",
          Group.RELAY,
          "duration 10ms..1m",
          "1s",
          false,
          false,
          "Longest wait between two reads of an idle shard while the probe (probe-interval) fails; while it works,"
              + " the probe wakes the shard when rows arrive.",
          v -> durationBetween(v, Duration.ofMillis(10), Duration.ofMinutes(1)));

  /** Probe interval. */
  public static final Setting PROBE_INTERVAL =
      new Setting(
          "probe-interval",
          Group.RELAY,
          "duration 1ms..1s",
          "5ms",
          false,
          false,
          "How often the relay asks PostgreSQL which of its idle shards hold new rows (one statement, one index"
              + " descent per idle shard) and wakes those. It bounds how long a row waits on an idle outbox; shorter"
              + " costs the database more (ENGINE.md, \"Wake-up\").",
          v -> durationBetween(v, Duration.ofMillis(1), Duration.ofSeconds(1)));

  /** Worker threads. */
  public static final Setting WORKER_THREADS =
      new Setting(
          "worker-threads",
          Group.RELAY,
          "integer 1..256",
          "4",
          false,
          false,
          "Threads that read, send and delete for all owned shards; a shard is never worked on by two threads at"
              + " once and waiting for Kafka's acks holds no thread. Each can hold a database connection:"
              + " db-pool-size must be at least worker-threads + 3.",
          v -> intBetween(v, 1, 256));

  /** Backoff base. */
  public static final Setting BACKOFF_BASE =
      new Setting(
          "backoff-base",
          Group.RELAY,
          "duration 1ms..1m",
          "100ms",
          false,
          false,
          "Ceiling of the first retry delay after a retriable Kafka or database error; it doubles per retry up to"
              + " backoff-cap, and each delay is drawn at random below its ceiling (full jitter).",
          v -> durationBetween(v, Duration.ofMillis(1), Duration.ofMinutes(1)));

  /** Backoff cap. */
  public static final Setting BACKOFF_CAP =
      new Setting(
          "backoff-cap",
          Group.RELAY,
          "duration 1ms..10m",
          "30s",
          false,
          false,
          "Largest retry delay ceiling. Must be at least backoff-base.",
          v -> durationBetween(v, Duration.ofMillis(1), Duration.ofMinutes(10)));

  /** Breaker threshold. */
  public static final Setting BREAKER_FAILURE_THRESHOLD =
      new Setting(
          "breaker-failure-threshold",
          Group.RELAY,
          "integer 1..1000",
          "5",
          false,
          false,
          "Consecutive failed batches after which the circuit breaker opens and publishing pauses.",
          v -> intBetween(v, 1, 1000));

  /** Breaker open duration. */
  public static final Setting BREAKER_OPEN_DURATION =
      new Setting(
          "breaker-open-duration",
          Group.RELAY,
          "duration 100ms..1h",
          "10s",
          false,
          false,
          "How long the open breaker pauses publishing before one trial batch (half-open) decides whether to close"
              + " it again.",
          v -> durationBetween(v, Duration.ofMillis(100), Duration.ofHours(1)));

  /** Attempts before a retriably failing message is parked. */
  public static final Setting MAX_ATTEMPTS =
      new Setting(
          "max-attempts",
          Group.RELAY,
          "integer 1..1000",
          String.valueOf(dev.outbox.relay.Relay.Builder.DEFAULT_MAX_ATTEMPTS),
          false,
          false,
          "Attempts after which a message that keeps failing with a retriable error while Kafka accepts other"
              + " records (for example a topic that does not exist and is not auto-created) is parked, so that it"
              + " does not block its shard. Failures during a broker outage are not counted.",
          v -> intBetween(v, 1, 1_000));

  /** Park policy. */
  public static final Setting PARK_POLICY =
      new Setting(
          "park-policy",
          Group.RELAY,
          "PARK_AND_CONTINUE or HOLD_KEY",
          ParkPolicy.PARK_AND_CONTINUE.name(),
          false,
          false,
          "What follows a message that can never be published (too large, invalid or unauthorized topic):"
              + " PARK_AND_CONTINUE parks it and publishes the key's later messages; HOLD_KEY parks it and holds"
              + " back the key's later messages until it is requeued or purged, keeping the key's order.",
          RelaySettings::parkPolicy);

  /** Publish mode. */
  public static final Setting PUBLISH_MODE =
      new Setting(
          "publish-mode",
          Group.RELAY,
          "idempotent or transactional",
          "idempotent",
          false,
          false,
          "How a shard's batch is published. `idempotent`: one shared idempotent producer; a relay that lost its"
              + " lease stops at a local deadline, but a process frozen between that check and the broker can add"
              + " stale copies of its batch in flight after the new owner's records (ENGINE.md, \"Fencing on the Kafka"
              + " side\"). `transactional`: a transactional producer per owned shard (`transactional.id` ="
              + " transactional-id-prefix + shard) and one Kafka transaction per batch, so the broker fences the old"
              + " owner and a batch that failed in part is invisible; consumers must read with"
              + " `isolation.level=read_committed` (consumer-dedup's default). Costs throughput (benchmarks/RELAY.md)"
              + " and one producer per shard.",
          RelaySettings::publishMode);

  /** Transactional id prefix. */
  public static final Setting TRANSACTIONAL_ID_PREFIX =
      new Setting(
          "transactional-id-prefix",
          Group.RELAY,
          "text",
          "",
          false,
          false,
          "With publish-mode=transactional, shard N publishes with `transactional.id` = this prefix + N. Every relay of"
              + " one outbox must use the same prefix (the new owner of a shard fences the old one through it), and"
              + " outboxes that share a Kafka cluster must use different ones. Empty: `outbox-relay.<database>.<schema>.`,"
              + " the database name read from PostgreSQL at start. Refused with publish-mode=idempotent.",
          RelaySettings::transactionalIdPrefix);

  /** HTTP port. */
  public static final Setting HTTP_PORT =
      new Setting(
          "http-port",
          Group.PROCESS,
          "integer 0..65535",
          "8080",
          false,
          false,
          "Port of `/health`, `/health/ready` and `/metrics`. 0 turns the HTTP server off.",
          v -> intBetween(v, 0, 65_535));

  /** HTTP bind address. */
  public static final Setting HTTP_HOST =
      new Setting(
          "http-host",
          Group.PROCESS,
          "host or address",
          "0.0.0.0",
          false,
          false,
          "Address the HTTP server binds to; 127.0.0.1 keeps it local.",
          RelaySettings::nonBlank);

  /** Start-up check timeout. */
  public static final Setting STARTUP_TIMEOUT =
      new Setting(
          "startup-timeout",
          Group.PROCESS,
          "duration 250ms..10m",
          "30s",
          false,
          false,
          "How long the start waits for PostgreSQL and for Kafka to answer before it gives up with exit code 3.",
          v -> durationBetween(v, Duration.ofMillis(250), Duration.ofMinutes(10)));

  /** Shutdown timeout. */
  public static final Setting SHUTDOWN_TIMEOUT =
      new Setting(
          "shutdown-timeout",
          Group.PROCESS,
          "duration 1s..10m",
          "10s",
          false,
          false,
          "After SIGTERM, how long the relay waits for its batches in flight before it hands its leases back"
              + " anyway (their rows are then published again by the next owner). Closing the producer and the"
              + " connections follows; if the whole shutdown takes 15s longer than this, the process exits with"
              + " code 1. Keep it 15s or more below the orchestrator's grace period (Kubernetes: 30s).",
          v -> durationBetween(v, Duration.ofSeconds(1), Duration.ofMinutes(10)));

  /** Log level. */
  public static final Setting LOG_LEVEL =
      new Setting(
          "log-level",
          Group.PROCESS,
          "ERROR, WARN, INFO, DEBUG or TRACE",
          "INFO",
          false,
          false,
          "Level of the relay's own log lines (on standard output). Kafka's and the pool's loggers stay at WARN"
              + " unless this is DEBUG or TRACE. A `logback.xml` given with `-Dlogback.configurationFile` replaces"
              + " this.",
          RelaySettings::logLevel);

  public static final Setting LOG_FORMAT =
      new Setting(
          "log-format",
          Group.PROCESS,
          "text or json",
          "text",
          false,
          false,
          "Format of the log lines on standard output: `text`, one readable line per event, or `json`, one JSON"
              + " object per line (Logback's `JsonEncoder`: timestamp, level, thread, logger, message, MDC,"
              + " exception) for log collectors.",
          RelaySettings::logFormat);

  /** Every setting, in reference order. */
  public static final List<Setting> ALL =
      List.of(
          JDBC_URL,
          DB_USER,
          DB_PASSWORD,
          DB_POOL_SIZE,
          LISTEN_JDBC_URL,
          SCHEMA,
          MIGRATE_SHARDS,
          BOOTSTRAP_SERVERS,
          INSTANCE_ID,
          BATCH_SIZE,
          WORKER_THREADS,
          LEASE_DURATION,
          IDLE_POLL_INTERVAL,
          PROBE_INTERVAL,
          BACKOFF_BASE,
          BACKOFF_CAP,
          BREAKER_FAILURE_THRESHOLD,
          BREAKER_OPEN_DURATION,
          MAX_ATTEMPTS,
          PARK_POLICY,
          PUBLISH_MODE,
          TRANSACTIONAL_ID_PREFIX,
          HTTP_PORT,
          HTTP_HOST,
          STARTUP_TIMEOUT,
          SHUTDOWN_TIMEOUT,
          LOG_LEVEL,
          LOG_FORMAT);

  /**
   * Producer properties the relay sets itself and that may not pass through: the bootstrap servers
   * have their own setting, the serializers are the relay's, and idempotence with {@code acks=all}
   * is what keeps G1 and G3 across producer retries.
   */
  private static final Map<String, String> FIXED_PRODUCER_PROPERTIES =
      Map.of(
          ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "use the setting bootstrap-servers instead",
          ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, "the relay sends raw bytes with its own serializer; remove it",
          ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, "the relay sends raw bytes with its own serializer; remove it",
          ProducerConfig.TRANSACTIONAL_ID_CONFIG, "the relay names one transactional id per shard itself; set publish-mode="
              + "transactional (and transactional-id-prefix for the prefix) instead");

  private static final Map<String, Setting> BY_NAME =
      ALL.stream().collect(Collectors.toUnmodifiableMap(Setting::name, s -> s));

  private RelaySettings() {}

  /**
   * @param name a setting name such as {@code batch-size}
   * @return the setting, if there is one of that name
   */
  public static Optional<Setting> byName(String name) {
    return Optional.ofNullable(BY_NAME.get(name));
  }

  /** Where a raw value came from, for error messages. */
  record Source(String description, String raw) {}

  /**
   * Resolves every setting from flags, environment and file, validates it, and returns the typed
   * values.
   *
   * @param flags setting flags without the leading {@code --}, e.g. {@code batch-size -> 500} or
   *     {@code kafka.linger.ms -> 5}
   * @param env the environment; only variables starting with {@value #ENV_PREFIX} are read
   * @param file the properties file's content, or an empty map
   * @param fileName the file's name, for messages
   * @param requireAll whether the settings marked required must be present (running the relay);
   *     otherwise only the database settings are required (the admin commands)
   * @return the values
   * @throws CliException (exit code 2) naming the first unknown, bad or missing setting
   */
  static Values resolve(
      Map<String, String> flags, Map<String, String> env, Map<String, String> file, String fileName, boolean requireAll) {
    Map<Setting, Source> raw = new LinkedHashMap<>();
    Map<String, Source> kafka = new TreeMap<>();

    // lowest precedence first, so later sources overwrite
    for (var e : new TreeMap<>(file).entrySet()) {
      String key = e.getKey().trim();
      String where = key + " in " + fileName;
      if (key.startsWith(KAFKA_PREFIX)) {
        kafka.put(producerProperty(key.substring(KAFKA_PREFIX.length()), key, "file key", fileKafkaNames()), new Source(where, e.getValue().trim()));
      } else {
        Setting s = ALL.stream().filter(x -> x.fileKey().equals(key)).findFirst().orElse(null);
        if (s == null) {
          throw unknown("file key", key + " in " + fileName, key, fileKeys());
        }
        raw.put(s, new Source(where, e.getValue().trim()));
      }
    }
    for (var e : new TreeMap<>(env).entrySet()) {
      String var = e.getKey();
      if (!var.startsWith(ENV_PREFIX) || var.equals(Main.CONFIG_ENV)) {
        continue;
      }
      String where = "environment variable " + var;
      if (var.startsWith(KAFKA_ENV_PREFIX)) {
        kafka.put(producerPropertyFromEnv(var), new Source(where, e.getValue().trim()));
      } else {
        Setting s = ALL.stream().filter(x -> x.envVar().equals(var)).findFirst().orElse(null);
        if (s == null && KubernetesServiceEnv.matches(var)) {
          continue; // injected by Kubernetes for a Service named outbox-relay, not a setting
        }
        if (s == null) {
          throw unknown("environment variable", var, var, envVars());
        }
        raw.put(s, new Source(where, e.getValue().trim()));
      }
    }
    for (var e : flags.entrySet()) {
      String name = e.getKey();
      String where = "flag --" + name;
      if (name.startsWith(KAFKA_PREFIX)) {
        kafka.put(producerProperty(name.substring(KAFKA_PREFIX.length()), "--" + name, "flag", flagKafkaNames()), new Source(where, e.getValue()));
      } else {
        Setting s = BY_NAME.get(name);
        if (s == null) {
          throw unknown("flag", "--" + name, "--" + name, flagNames());
        }
        raw.put(s, new Source(where, e.getValue()));
      }
    }

    Map<Setting, Object> values = new LinkedHashMap<>();
    for (Setting s : ALL) {
      Source src = raw.get(s);
      String text = src != null ? src.raw() : s.defaultValue();
      if (text == null || (src != null && text.isEmpty() && s.defaultValue() == null)) {
        boolean needed = requireAll ? s.required() : s.required() && s.group() == Group.DATABASE;
        if (needed) {
          throw CliException.usage(
              "Missing setting " + s.name() + " (" + s.envVar() + "), which the relay needs: set flag " + s.flag()
                  + "=<value>, environment variable " + s.envVar() + " or file key " + s.fileKey() + ". See --help.");
        }
        continue;
      }
      try {
        values.put(s, Objects.requireNonNull(s.parser().apply(text)));
      } catch (IllegalArgumentException e) {
        String shown = s.secret() ? "****" : (text.isEmpty() ? "\"\"" : s == JDBC_URL ? maskUrl(text) : text);
        throw CliException.usage(
            "Invalid value "
                + shown
                + " for setting "
                + s.name()
                + " ("
                + s.envVar()
                + (src != null ? ", given by " + src.description() : ", the default")
                + "): "
                + e.getMessage());
      }
    }

    Map<String, String> producer = new LinkedHashMap<>();
    for (var e : kafka.entrySet()) {
      String prop = e.getKey();
      String value = e.getValue().raw();
      String fixed = FIXED_PRODUCER_PROPERTIES.get(prop);
      if (fixed != null) {
        throw CliException.usage(
            "Kafka producer property " + prop + " (given by " + e.getValue().description() + ") cannot be set: " + fixed + ".");
      }
      if (prop.equals(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG) && !value.equalsIgnoreCase("true")) {
        throw CliException.usage(
            "Invalid value " + value + " for Kafka producer property " + prop + " (given by " + e.getValue().description()
                + "): the relay needs the idempotent producer to keep per-key order across retries; remove the setting or set it to true.");
      }
      if (prop.equals(ProducerConfig.ACKS_CONFIG) && !(value.equalsIgnoreCase("all") || value.equals("-1"))) {
        throw CliException.usage(
            "Invalid value " + value + " for Kafka producer property " + prop + " (given by " + e.getValue().description()
                + "): the relay deletes a row only after every in-sync replica has it; remove the setting or set it to all.");
      }
      producer.put(prop, value);
    }

    checkProducerValues(producer, kafka);
    Values result = new Values(values, producer, raw.keySet());
    int pool = result.integer(DB_POOL_SIZE);
    int workers = result.integer(WORKER_THREADS);
    if (pool < workers + 3) {
      throw conflict(DB_POOL_SIZE, String.valueOf(pool), WORKER_THREADS, String.valueOf(workers),
          "db-pool-size must be at least worker-threads + 3 (" + (workers + 3) + ": the LISTEN connection, lease renewal and"
              + " one per worker); raise db-pool-size or lower worker-threads.");
    }
    Duration lease = result.duration(LEASE_DURATION);
    Duration idle = result.duration(IDLE_POLL_INTERVAL);
    if (idle.compareTo(lease) > 0) {
      throw conflict(IDLE_POLL_INTERVAL, format(idle), LEASE_DURATION, format(lease),
          "idle-poll-interval may not exceed lease-duration, or an idle shard would not be looked at once per lease;"
              + " shorten idle-poll-interval or lengthen lease-duration.");
    }
    Duration base = result.duration(BACKOFF_BASE);
    Duration cap = result.duration(BACKOFF_CAP);
    if (cap.compareTo(base) < 0) {
      throw conflict(BACKOFF_CAP, format(cap), BACKOFF_BASE, format(base),
          "backoff-cap must be at least backoff-base; raise backoff-cap or lower backoff-base.");
    }
    if (!result.string(TRANSACTIONAL_ID_PREFIX).isEmpty() && result.publishMode() != PublishMode.TRANSACTIONAL) {
      throw conflict(TRANSACTIONAL_ID_PREFIX, result.string(TRANSACTIONAL_ID_PREFIX), PUBLISH_MODE, "idempotent",
          "transactional-id-prefix is only used with publish-mode=transactional; set publish-mode=transactional or"
              + " remove transactional-id-prefix.");
    }
    return result;
  }

  /** Lets Kafka's own config definitions check the pass-through values (types, ranges), without connecting. */
  private static void checkProducerValues(Map<String, String> producer, Map<String, Source> sources) {
    Map<String, Object> props = new LinkedHashMap<>(producer);
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "localhost:9092");
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    try {
      new ProducerConfig(props);
    } catch (ConfigException e) {
      String culprit = sources.keySet().stream().filter(k -> String.valueOf(e.getMessage()).contains(" " + k)).findFirst().orElse(null);
      String source = culprit == null ? "" : " (given by " + sources.get(culprit).description() + ")";
      throw CliException.usage(
          "Invalid Kafka producer setting" + source + ": " + e.getMessage()
              + ". Fix the value or remove the property; see the Kafka producer documentation.");
    }
  }

  private static CliException conflict(Setting a, String va, Setting b, String vb, String why) {
    return CliException.usage(
        "Conflicting settings " + a.name() + " (" + a.envVar() + ") = " + va + " and " + b.name() + " (" + b.envVar() + ") = "
            + vb + ": " + why);
  }

  /** The resolved, validated settings. */
  static final class Values {
    private final Map<Setting, Object> values;
    private final Map<String, String> producerProperties;
    private final Set<Setting> explicit;

    Values(Map<Setting, Object> values, Map<String, String> producerProperties, Set<Setting> explicit) {
      this.values = Map.copyOf(values);
      this.producerProperties = Map.copyOf(producerProperties);
      this.explicit = Set.copyOf(explicit);
    }

    String string(Setting s) {
      Object v = values.get(s);
      return v == null ? null : v.toString();
    }

    int integer(Setting s) {
      return (Integer) values.get(s);
    }

    Duration duration(Setting s) {
      return (Duration) values.get(s);
    }

    ParkPolicy parkPolicy() {
      return (ParkPolicy) values.get(PARK_POLICY);
    }

    PublishMode publishMode() {
      return (PublishMode) values.get(PUBLISH_MODE);
    }

    boolean isExplicit(Setting s) {
      return explicit.contains(s);
    }

    /** @return the pass-through producer properties, without bootstrap.servers */
    Map<String, String> producerProperties() {
      return producerProperties;
    }

    /** @return every setting and its effective value, secrets masked, for the start-up log line */
    String describe() {
      StringBuilder b = new StringBuilder();
      for (Setting s : ALL) {
        if (!values.containsKey(s)) {
          continue;
        }
        Object v = values.get(s);
        String text = s.secret() ? (v.toString().isEmpty() ? "" : "****")
            : (v instanceof Duration d ? format(d) : s == JDBC_URL ? maskUrl(v.toString()) : v.toString());
        b.append(b.isEmpty() ? "" : ", ").append(s.name()).append('=').append(text);
      }
      producerProperties.forEach((k, v) -> b.append(", kafka.").append(k).append('=').append(isSecretProperty(k) ? "****" : v));
      return b.toString();
    }
  }

  /** Properties whose values must never appear in logs. */
  static boolean isSecretProperty(String prop) {
    String p = prop.toLowerCase(java.util.Locale.ROOT);
    if (p.contains("password") || p.contains("passphrase") || p.contains("jaas") || p.endsWith(".key") || p.contains("secret")
        || p.contains("credential") || p.contains("token")) {
      return true;
    }
    var key = ProducerConfig.configDef().configKeys().get(prop);
    return key != null && key.type == org.apache.kafka.common.config.ConfigDef.Type.PASSWORD;
  }

  private static final java.util.regex.Pattern URL_SECRET =
      java.util.regex.Pattern.compile("(?i)([?&;][^=&;]*(password|passphrase|secret|token|key)[^=&;]*=)[^&;]*");

  /**
   * @param url a JDBC URL
   * @return the URL with the value of every parameter that looks like a secret ({@code password},
   *     {@code sslpassword}, {@code *secret*}, ...) replaced by {@code ****}
   */
  static String maskUrl(String url) {
    return URL_SECRET.matcher(url).replaceAll("$1****");
  }

  // ---------------------------------------------------------------- help and reference

  /** @return the {@code --help} text for the settings, grouped */
  static String helpText() {
    StringBuilder b = new StringBuilder();
    for (Group g : Group.values()) {
      b.append('\n').append(groupTitle(g)).append(":\n");
      for (Setting s : ALL) {
        if (s.group() != g) {
          continue;
        }
        b.append("  ").append(s.flag()).append("=<value>   ").append(s.type());
        b.append(s.required() ? ", required" : ", default " + (s.defaultValue().isEmpty() ? "(empty)" : s.defaultValue()));
        b.append("\n      env ").append(s.envVar()).append(", file ").append(s.fileKey()).append('\n');
        for (String line : wrap(s.doc().replace("`", ""), 86)) {
          b.append("      ").append(line).append('\n');
        }
      }
      if (g == Group.KAFKA) {
        b.append("  --kafka.<property>=<value>\n      env OUTBOX_RELAY_KAFKA_<PROPERTY>, file kafka.<property>\n");
        for (String line : wrap(KAFKA_PASS_THROUGH_DOC.replace("`", ""), 86)) {
          b.append("      ").append(line).append('\n');
        }
      }
    }
    return b.toString();
  }

  private static final String KAFKA_PASS_THROUGH_DOC =
      "Any Kafka producer property, passed to the producer as it is, e.g. `security.protocol`, `sasl.*`, `ssl.*`,"
          + " `compression.type`, `linger.ms`, `max.request.size`. In the environment, write the property in"
          + " upper case with `_` for `.`: `OUTBOX_RELAY_KAFKA_LINGER_MS=5`. Unknown property names are refused."
          + " `enable.idempotence=true` and `acks=all` are enforced; the serializers are the relay's own;"
          + " `transactional.id` is refused (see publish-mode).";

  /**
   * The README's settings reference, in Markdown; {@code README.md} carries a copy between the
   * markers {@code <!-- settings:start -->} and {@code <!-- settings:end -->}, kept equal by a test.
   *
   * @return the Markdown table and its notes
   */
  public static String markdownReference() {
    StringBuilder b = new StringBuilder();
    b.append("| flag | environment variable | file key | values | default | description |\n");
    b.append("|---|---|---|---|---|---|\n");
    for (Setting s : ALL) {
      String def = s.required() ? "**required**" : s.defaultValue().isEmpty() ? "(empty)" : "`" + s.defaultValue() + "`";
      b.append("| `")
          .append(s.flag())
          .append("` | `")
          .append(s.envVar())
          .append("` | `")
          .append(s.fileKey())
          .append("` | ")
          .append(s.type())
          .append(" | ")
          .append(def)
          .append(" | ")
          .append(s.doc().replace("|", "\\|"))
          .append(" |\n");
    }
    b.append("| `--kafka.<property>` | `OUTBOX_RELAY_KAFKA_<PROPERTY>` | `kafka.<property>` | Kafka producer property | | ")
        .append(KAFKA_PASS_THROUGH_DOC)
        .append(" |\n");
    return b.toString();
  }

  /** Prints {@link #markdownReference()}, to refresh the README. */
  public static void main(String[] args) {
    System.out.print(markdownReference());
  }

  private static String groupTitle(Group g) {
    return switch (g) {
      case DATABASE -> "PostgreSQL";
      case KAFKA -> "Kafka";
      case RELAY -> "Relay";
      case PROCESS -> "Process";
    };
  }

  static List<String> wrap(String text, int width) {
    List<String> lines = new ArrayList<>();
    StringBuilder line = new StringBuilder();
    for (String word : text.split(" ")) {
      if (line.length() > 0 && line.length() + 1 + word.length() > width) {
        lines.add(line.toString());
        line.setLength(0);
      }
      line.append(line.isEmpty() ? "" : " ").append(word);
    }
    if (!line.isEmpty()) {
      lines.add(line.toString());
    }
    return lines;
  }

  // ---------------------------------------------------------------- unknown names

  /** @return the error for an unknown flag {@code --name}, suggesting the nearest option or setting */
  static CliException unknownFlag(String name) {
    Set<String> known = new TreeSet<>(flagNames());
    for (String option : List.of("help", "config", "migrate", "json", "limit", "id", "all", "yes")) {
      known.add("--" + option);
    }
    return unknown("flag", "--" + name, "--" + name, known);
  }

  private static CliException unknown(String kind, String shown, String name, Set<String> known) {
    String nearest = nearest(name, known);
    return CliException.usage(
        "Unknown setting "
            + shown
            + " ("
            + kind
            + ")"
            + (nearest != null ? ": did you mean " + nearest + "?" : ".")
            + " See --help for every setting.");
  }

  private static String producerProperty(String prop, String shown, String kind, Set<String> knownShown) {
    if (ProducerConfig.configNames().contains(prop)) {
      return prop;
    }
    String nearest = nearest(shown, knownShown);
    throw CliException.usage(
        "Unknown Kafka producer property "
            + shown
            + " ("
            + kind
            + ")"
            + (nearest != null ? ": did you mean " + nearest + "?" : ".")
            + " Only producer properties (see the Kafka documentation) pass through.");
  }

  private static String producerPropertyFromEnv(String var) {
    String suffix = var.substring(KAFKA_ENV_PREFIX.length());
    for (String prop : ProducerConfig.configNames()) {
      if (envSuffix(prop).equals(suffix)) {
        return prop;
      }
    }
    String nearest = nearest(var, envKafkaNames());
    throw CliException.usage(
        "Unknown Kafka producer property in environment variable "
            + var
            + (nearest != null ? ": did you mean " + nearest + "?" : ".")
            + " Only producer properties pass through, written in upper case with _ for . (OUTBOX_RELAY_KAFKA_LINGER_MS).");
  }

  private static String envSuffix(String prop) {
    return prop.toUpperCase(Locale.ROOT).replace('.', '_').replace('-', '_');
  }

  private static Set<String> flagNames() {
    return ALL.stream().map(Setting::flag).collect(Collectors.toCollection(TreeSet::new));
  }

  private static Set<String> envVars() {
    return ALL.stream().map(Setting::envVar).collect(Collectors.toCollection(TreeSet::new));
  }

  private static Set<String> fileKeys() {
    return ALL.stream().map(Setting::fileKey).collect(Collectors.toCollection(TreeSet::new));
  }

  private static Set<String> flagKafkaNames() {
    return ProducerConfig.configNames().stream().map(p -> "--" + KAFKA_PREFIX + p).collect(Collectors.toCollection(TreeSet::new));
  }

  private static Set<String> fileKafkaNames() {
    return ProducerConfig.configNames().stream().map(p -> KAFKA_PREFIX + p).collect(Collectors.toCollection(TreeSet::new));
  }

  private static Set<String> envKafkaNames() {
    return ProducerConfig.configNames().stream().map(p -> KAFKA_ENV_PREFIX + envSuffix(p)).collect(Collectors.toCollection(TreeSet::new));
  }

  /** @return the known name closest to {@code name}, if it is close enough to be a likely typo */
  static String nearest(String name, Set<String> known) {
    String lower = name.toLowerCase(Locale.ROOT);
    // a truncated name (OUTBOX_RELAY_BOOTSTRAP) most likely means the shortest name it begins
    String extended = known.stream()
        .filter(k -> k.toLowerCase(Locale.ROOT).startsWith(lower) && lower.length() >= 3)
        .min(Comparator.comparingInt(String::length).thenComparing(k -> k))
        .orElse(null);
    if (extended != null) {
      return extended;
    }
    return known.stream()
        .min(Comparator.comparingInt((String k) -> distance(lower, k.toLowerCase(Locale.ROOT))).thenComparing(k -> k))
        .filter(k -> distance(lower, k.toLowerCase(Locale.ROOT)) <= Math.max(2, k.length() / 4))
        .orElse(null);
  }

  /** Levenshtein distance. */
  static int distance(String a, String b) {
    int[] prev = new int[b.length() + 1];
    int[] cur = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) {
      prev[j] = j;
    }
    for (int i = 1; i <= a.length(); i++) {
      cur[0] = i;
      for (int j = 1; j <= b.length(); j++) {
        int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
        cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
      }
      int[] t = prev;
      prev = cur;
      cur = t;
    }
    return prev[b.length()];
  }

  // ---------------------------------------------------------------- parsers

  private static final Pattern DURATION = Pattern.compile("(\\d{1,9})(ms|s|m|h)");
  private static final Pattern HOST_PORT = Pattern.compile("(\\[[0-9a-fA-F:.]+]|[A-Za-z0-9._-]+):(\\d{1,5})");
  private static final Pattern INSTANCE = Pattern.compile("[A-Za-z0-9._:@-]{1,200}");

  static Integer intBetween(String v, int min, int max) {
    int n;
    try {
      n = Integer.parseInt(v.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("must be a whole number between " + min + " and " + max);
    }
    if (n < min || n > max) {
      throw new IllegalArgumentException("must be between " + min + " and " + max);
    }
    return n;
  }

  static Duration durationBetween(String v, Duration min, Duration max) {
    Duration d = parseDuration(v.trim());
    if (d.compareTo(min) < 0 || d.compareTo(max) > 0) {
      throw new IllegalArgumentException("must be between " + format(min) + " and " + format(max));
    }
    return d;
  }

  private static Duration parseDuration(String v) {
    Matcher m = DURATION.matcher(v);
    if (m.matches()) {
      long n = Long.parseLong(m.group(1));
      return switch (m.group(2)) {
        case "ms" -> Duration.ofMillis(n);
        case "s" -> Duration.ofSeconds(n);
        case "m" -> Duration.ofMinutes(n);
        default -> Duration.ofHours(n);
      };
    }
    if (v.startsWith("P") || v.startsWith("p")) {
      try {
        return Duration.parse(v);
      } catch (DateTimeParseException e) {
        // fall through to the common message
      }
    }
    throw new IllegalArgumentException("must be a duration with a unit, e.g. 500ms, 30s, 5m or 1h (or ISO-8601 such as PT30S)");
  }

  /** @return the duration in the settings' own syntax, e.g. {@code 30s} or {@code 100ms} */
  static String format(Duration d) {
    long ms = d.toMillis();
    if (ms % 3_600_000 == 0 && ms > 0) {
      return ms / 3_600_000 + "h";
    }
    if (ms % 60_000 == 0 && ms > 0) {
      return ms / 60_000 + "m";
    }
    if (ms % 1000 == 0) {
      return ms / 1000 + "s";
    }
    return ms + "ms";
  }

  private static String jdbcUrl(String v) {
    if (!v.startsWith("jdbc:postgresql:")) {
      throw new IllegalArgumentException("must be a PostgreSQL JDBC URL starting with jdbc:postgresql:, e.g. jdbc:postgresql://db:5432/orders");
    }
    return v;
  }

  private static String schema(String v) {
    try {
      return OutboxMigrations.requireValidSchema(v);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("must be a plain lower-case SQL identifier ([a-z_][a-z0-9_]*, not reserved, not pg_*), the schema the migrations were applied to");
    }
  }

  private static String hostPorts(String v) {
    List<String> parts = new ArrayList<>();
    for (String p : v.split(",")) {
      String t = p.trim();
      Matcher m = HOST_PORT.matcher(t);
      if (!m.matches() || Integer.parseInt(m.group(2)) < 1 || Integer.parseInt(m.group(2)) > 65_535) {
        throw new IllegalArgumentException("must be a comma-separated list of host:port with a port between 1 and 65535, e.g. kafka-1:9092,kafka-2:9092");
      }
      parts.add(t);
    }
    return String.join(",", parts);
  }

  private static String instanceId(String v) {
    if (v.isEmpty()) {
      return v;
    }
    if (!INSTANCE.matcher(v).matches()) {
      throw new IllegalArgumentException("must be 1 to 200 characters from A-Z a-z 0-9 . _ : @ -, or empty for host-pid-random");
    }
    return v;
  }

  private static ParkPolicy parkPolicy(String v) {
    String norm = v.trim().toUpperCase(Locale.ROOT).replace('-', '_');
    for (ParkPolicy p : ParkPolicy.values()) {
      if (p.name().equals(norm)) {
        return p;
      }
    }
    throw new IllegalArgumentException("must be one of PARK_AND_CONTINUE, HOLD_KEY");
  }

  private static PublishMode publishMode(String v) {
    String norm = v.trim().toUpperCase(Locale.ROOT);
    for (PublishMode m : PublishMode.values()) {
      if (m.name().equals(norm)) {
        return m;
      }
    }
    throw new IllegalArgumentException("must be idempotent or transactional");
  }

  private static String transactionalIdPrefix(String v) {
    if (v.isEmpty() || INSTANCE.matcher(v).matches()) {
      return v;
    }
    throw new IllegalArgumentException("must be 1 to 200 characters from A-Z a-z 0-9 . _ : @ -, or empty for"
        + " outbox-relay.<database>.<schema>.");
  }

  private static String logLevel(String v) {
    String norm = v.trim().toUpperCase(Locale.ROOT);
    if (!Set.of("ERROR", "WARN", "INFO", "DEBUG", "TRACE").contains(norm)) {
      throw new IllegalArgumentException("must be one of ERROR, WARN, INFO, DEBUG, TRACE");
    }
    return norm;
  }

  private static String logFormat(String v) {
    String norm = v.trim().toLowerCase(Locale.ROOT);
    if (!Set.of("text", "json").contains(norm)) {
      throw new IllegalArgumentException("must be text or json");
    }
    return norm;
  }

  private static String nonBlank(String v) {
    if (v.isBlank()) {
      throw new IllegalArgumentException("must not be empty");
    }
    return v.trim();
  }

  /**
   * Reads a properties file.
   *
   * @param props loaded properties
   * @return them as a map
   */
  static Map<String, String> toMap(Properties props) {
    Map<String, String> m = new LinkedHashMap<>();
    for (String k : props.stringPropertyNames()) {
      m.put(k, props.getProperty(k));
    }
    return m;
  }
}
