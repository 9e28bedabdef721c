package dev.outbox.relay.process;

import static dev.outbox.relay.process.RelaySettings.ALL;
import static dev.outbox.relay.process.RelaySettings.BACKOFF_BASE;
import static dev.outbox.relay.process.RelaySettings.BACKOFF_CAP;
import static dev.outbox.relay.process.RelaySettings.DB_POOL_SIZE;
import static dev.outbox.relay.process.RelaySettings.ENV_PREFIX;
import static dev.outbox.relay.process.RelaySettings.IDLE_POLL_INTERVAL;
import static dev.outbox.relay.process.RelaySettings.KAFKA_ENV_PREFIX;
import static dev.outbox.relay.process.RelaySettings.KAFKA_PREFIX;
import static dev.outbox.relay.process.RelaySettings.LEASE_DURATION;
import static dev.outbox.relay.process.RelaySettings.PUBLISH_MODE;
import static dev.outbox.relay.process.RelaySettings.TRANSACTIONAL_ID_PREFIX;
import static dev.outbox.relay.process.RelaySettings.WORKER_THREADS;

import dev.outbox.core.internal.Durations;
import dev.outbox.relay.PublishMode;
import dev.outbox.relay.process.RelaySettings.Values;
import dev.outbox.relay.process.Setting.Group;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Reads the settings from their three sources with their precedence (flag, then environment, then
 * file, then the default), validates each value with its setting's {@link Validator}, checks the
 * Kafka pass-through properties and the rules that tie two settings together.
 *
 * <p>Every value is trimmed of leading and trailing whitespace, whatever its source, so that a value
 * means the same as a flag, in the environment and in the file (a trailing space from a script, a
 * trailing newline in a Secret). No setting keeps surrounding whitespace: a {@code db-password} cannot
 * begin or end with a space.
 */
final class SettingsResolver {

    /**
     * Producer properties the relay sets itself and that may not pass through: the bootstrap servers
     * have their own setting, the serializers are the relay's, and idempotence with {@code acks=all}
     * is what keeps G1 and G3 across producer retries.
     */
    private static final Map<String, String> FIXED_PRODUCER_PROPERTIES = Map.of(
            ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "use the setting bootstrap-servers instead",
            ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, "the relay sends raw bytes with its own serializer; remove it",
            ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG,
                    "the relay sends raw bytes with its own serializer; remove it",
            ProducerConfig.TRANSACTIONAL_ID_CONFIG,
                    "the relay names one transactional id per shard itself; set publish-mode="
                            + "transactional (and transactional-id-prefix for the prefix) instead");

    private SettingsResolver() {}

    /** Where a raw value came from, for error messages. */
    record Source(String description, String raw) {}

    /**
     * Resolves every setting from flags, environment and file, validates it, and returns the typed
     * values.
     *
     * @param flags setting flags without the leading {@code --}, e.g. {@code batch-size -> 500} or
     *     {@code kafka.linger.ms -> 5}
     * @param env the environment; only variables starting with {@value RelaySettings#ENV_PREFIX} are read
     * @param file the properties file's content, or an empty map
     * @param fileName the file's name, for messages
     * @param requireAll whether the settings marked required must be present (running the relay);
     *     otherwise only the database settings are required (the admin commands)
     * @return the values
     * @throws CliException (exit code 2) naming the first unknown, bad or missing setting
     */
    static Values resolve(
            Map<String, String> flags,
            Map<String, String> env,
            Map<String, String> file,
            String fileName,
            boolean requireAll) {
        Map<Setting<?>, Source> raw = new LinkedHashMap<>();
        Map<String, Source> kafka = new TreeMap<>();

        // lowest precedence first, so later sources overwrite
        for (var e : new TreeMap<>(file).entrySet()) {
            String key = e.getKey().trim();
            String where = key + " in " + fileName;
            if (key.startsWith(KAFKA_PREFIX)) {
                kafka.put(
                        SettingNames.producerProperty(
                                key.substring(KAFKA_PREFIX.length()), key, "file key", SettingNames.fileKafkaNames()),
                        new Source(where, e.getValue().trim()));
            } else {
                Setting<?> s = ALL.stream()
                        .filter(x -> x.fileKey().equals(key))
                        .findFirst()
                        .orElse(null);
                if (s == null) {
                    throw SettingNames.unknown("file key", key + " in " + fileName, key, SettingNames.fileKeys());
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
                kafka.put(
                        SettingNames.producerPropertyFromEnv(var),
                        new Source(where, e.getValue().trim()));
            } else {
                Setting<?> s = ALL.stream()
                        .filter(x -> x.envVar().equals(var))
                        .findFirst()
                        .orElse(null);
                if (s == null && KubernetesServiceEnv.matches(var)) {
                    continue; // injected by Kubernetes for a Service named outbox-relay, not a setting
                }
                if (s == null) {
                    throw SettingNames.unknown("environment variable", var, var, SettingNames.envVars());
                }
                raw.put(s, new Source(where, e.getValue().trim()));
            }
        }
        for (var e : flags.entrySet()) {
            String name = e.getKey();
            String where = "flag --" + name;
            // trimmed as the environment's and the file's values are: a stray space from a script means nothing
            String value = e.getValue().trim();
            if (name.startsWith(KAFKA_PREFIX)) {
                kafka.put(
                        SettingNames.producerProperty(
                                name.substring(KAFKA_PREFIX.length()),
                                "--" + name,
                                "flag",
                                SettingNames.flagKafkaNames()),
                        new Source(where, value));
            } else {
                Setting<?> s = RelaySettings.byName(name).orElse(null);
                if (s == null) {
                    throw SettingNames.unknown("flag", "--" + name, "--" + name, SettingNames.flagNames());
                }
                raw.put(s, new Source(where, value));
            }
        }

        Map<Setting<?>, Object> values = new LinkedHashMap<>();
        for (Setting<?> s : ALL) {
            Source src = raw.get(s);
            String text = src != null ? src.raw() : s.defaultValue();
            if (text == null || (src != null && text.isEmpty() && s.defaultValue() == null)) {
                boolean needed = requireAll ? s.required() : s.required() && s.group() == Group.DATABASE;
                if (needed) {
                    throw CliException.usage("Missing setting " + s.name() + " (" + s.envVar()
                            + "), which the relay needs: set flag " + s.flag() + "=<value>, environment variable "
                            + s.envVar() + " or file key " + s.fileKey() + ". See --help.");
                }
                continue;
            }
            try {
                values.put(s, Objects.requireNonNull(s.validator().parse(text)));
            } catch (IllegalArgumentException e) {
                throw CliException.usage("Invalid value " + s.shown(text) + " for setting " + s.name() + " ("
                        + s.envVar() + (src != null ? ", given by " + src.description() : ", the default") + "): "
                        + e.getMessage());
            }
        }

        Values result = new Values(values, producerProperties(kafka), raw.keySet());
        checkCombinations(result);
        return result;
    }

    /** The pass-through properties, refused where they would undo what the relay enforces. */
    private static Map<String, String> producerProperties(Map<String, Source> kafka) {
        Map<String, String> producer = new LinkedHashMap<>();
        for (var e : kafka.entrySet()) {
            String prop = e.getKey();
            String value = e.getValue().raw();
            String fixed = FIXED_PRODUCER_PROPERTIES.get(prop);
            if (fixed != null) {
                throw CliException.usage("Kafka producer property " + prop + " (given by "
                        + e.getValue().description() + ") cannot be set: " + fixed + ".");
            }
            if (prop.equals(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG) && !value.equalsIgnoreCase("true")) {
                throw CliException.usage(
                        "Invalid value " + value + " for Kafka producer property " + prop + " (given by "
                                + e.getValue().description()
                                + "): the relay needs the idempotent producer to keep per-key order across retries; remove the setting or set it to true.");
            }
            if (prop.equals(ProducerConfig.ACKS_CONFIG) && !(value.equalsIgnoreCase("all") || value.equals("-1"))) {
                throw CliException.usage(
                        "Invalid value " + value + " for Kafka producer property " + prop + " (given by "
                                + e.getValue().description()
                                + "): the relay deletes a row only after every in-sync replica has it; remove the setting or set it to all.");
            }
            producer.put(prop, value);
        }
        checkProducerValues(producer, kafka);
        return producer;
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
            String culprit = sources.keySet().stream()
                    .filter(k -> String.valueOf(e.getMessage()).contains(" " + k))
                    .findFirst()
                    .orElse(null);
            String source =
                    culprit == null ? "" : " (given by " + sources.get(culprit).description() + ")";
            throw CliException.usage("Invalid Kafka producer setting" + source + ": " + e.getMessage()
                    + ". Fix the value or remove the property; see the Kafka producer documentation.");
        }
    }

    /** The rules that tie two settings together; each names both and the way out. */
    private static void checkCombinations(Values result) {
        int pool = result.integer(DB_POOL_SIZE);
        int workers = result.integer(WORKER_THREADS);
        if (pool < workers + 4) {
            throw conflict(
                    DB_POOL_SIZE,
                    String.valueOf(pool),
                    WORKER_THREADS,
                    String.valueOf(workers),
                    "db-pool-size must be at least worker-threads + 4 (" + (workers + 4)
                            + ": one per worker, the lease round, the sampler, the probe and the delete queue);"
                            + " raise db-pool-size or lower worker-threads.");
        }
        Duration lease = result.duration(LEASE_DURATION);
        Duration idle = result.duration(IDLE_POLL_INTERVAL);
        if (idle.compareTo(lease) > 0) {
            throw conflict(
                    IDLE_POLL_INTERVAL,
                    Durations.format(idle),
                    LEASE_DURATION,
                    Durations.format(lease),
                    "idle-poll-interval may not exceed lease-duration, or an idle shard would not be looked at once per lease;"
                            + " shorten idle-poll-interval or lengthen lease-duration.");
        }
        String prefix = result.string(TRANSACTIONAL_ID_PREFIX);
        if (!prefix.isEmpty() && result.get(PUBLISH_MODE) != PublishMode.TRANSACTIONAL) {
            throw conflict(
                    TRANSACTIONAL_ID_PREFIX,
                    prefix,
                    PUBLISH_MODE,
                    result.get(PUBLISH_MODE).name().toLowerCase(Locale.ROOT),
                    "transactional-id-prefix is only used with publish-mode=transactional; set publish-mode=transactional or"
                            + " remove transactional-id-prefix.");
        }
        Duration base = result.duration(BACKOFF_BASE);
        Duration cap = result.duration(BACKOFF_CAP);
        if (cap.compareTo(base) < 0) {
            throw conflict(
                    BACKOFF_CAP,
                    Durations.format(cap),
                    BACKOFF_BASE,
                    Durations.format(base),
                    "backoff-cap must be at least backoff-base; raise backoff-cap or lower backoff-base.");
        }
    }

    private static CliException conflict(Setting<?> a, String va, Setting<?> b, String vb, String why) {
        return CliException.usage("Conflicting settings " + a.name() + " (" + a.envVar() + ") = " + va + " and "
                + b.name() + " (" + b.envVar() + ") = " + vb + ": " + why);
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
