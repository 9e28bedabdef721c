package dev.outbox.spring.internal;

import dev.outbox.core.internal.NearestName;
import dev.outbox.relay.ParkPolicy;
import dev.outbox.relay.PublishMode;
import dev.outbox.relay.Relay;
import dev.outbox.spring.OutboxProperties;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Duration;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import javax.sql.DataSource;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.context.properties.bind.Bindable;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.core.env.Environment;
import org.springframework.util.unit.DataSize;

/**
 * Builds the embedded relay from the {@code outbox.relay.*} settings. Every value goes to the
 * {@link Relay.Builder} setter of the same name; a value the builder refuses is reported as an
 * {@link IllegalArgumentException} whose message starts with the property and the value as given
 * ({@code outbox.relay.batch-size=0: batchSize must be between 1 and 10000, ...}). The settings the
 * builder takes as two values (the backoff, the circuit breaker) are refused naming the property
 * that is out of range; the Kafka producer properties and the rules between two settings are checked
 * here as the relay process checks them.
 *
 * <p>The relay's brokers are {@code outbox.relay.bootstrap-servers}, else the producer bootstrap
 * servers of the application's {@code KafkaConnectionDetails} bean (a service connection), else
 * {@code spring.kafka.bootstrap-servers}. When the relay publishes to the brokers of Spring's Kafka
 * producer, it takes that producer's connection security from {@code spring.kafka.*} and the
 * connection details ({@link SpringKafkaConnection}): {@code security.protocol}, the {@code ssl.*}
 * settings and the {@code sasl.*} settings, each of these three as a whole and only when {@code
 * outbox.relay.producer.*} sets none of it, so that one TLS configuration or SASL login is never made
 * of two configurations' parts. Nothing else of Spring's producer is taken: the relay sets acks,
 * idempotence, retries, batching, serializers and transactional ids itself. An SSL bundle cannot be
 * taken; it fails the start, naming the properties that give the relay the same material.
 */
public final class EmbeddedRelayBuilder {
    private static final Logger LOG = LoggerFactory.getLogger(EmbeddedRelayBuilder.class);
    private static final String PREFIX = "outbox.relay.";
    private static final String PRODUCER_PREFIX = PREFIX + "producer.";
    private static final String SCHEMA = "outbox.schema";
    private static final String USE_DEFAULT = ": use e.g. the default ";
    private static final Pattern SECRET_NAME = Pattern.compile("(?i)pas+w|pwd|secret|jaas|token|credential");

    private final OutboxProperties properties;
    private final OutboxProperties.Relay settings;
    private final Binder binder;
    private final NamedSettings named;
    private final SpringKafkaConnection springKafka;
    private final Relay.Builder builder = Relay.builder();

    private EmbeddedRelayBuilder(
            OutboxProperties properties, Environment environment, SpringKafkaConnection springKafka) {
        this.properties = properties;
        this.settings = properties.getRelay();
        this.binder = Binder.get(environment);
        this.named = new NamedSettings(environment);
        this.springKafka = springKafka;
    }

    /**
     * @param dataSource the application's data source
     * @param properties the bound {@code outbox.*} settings
     * @param environment where the settings were given, for the values as written and for {@code
     *     spring.kafka.bootstrap-servers}
     * @param registry where the relay registers its meters
     * @param springKafka the connection settings of Spring's Kafka producer ({@link
     *     SpringKafkaConnection#read}), or {@link SpringKafkaConnection#NONE}
     * @return the relay, not started
     * @throws IllegalArgumentException when a setting is refused; the message starts with {@code
     *     <property>=<value>: }
     * @throws IllegalStateException when no Kafka is configured, two settings conflict or Spring's
     *     producer uses an SSL bundle the relay cannot take; the message names the properties
     */
    public static Relay build(
            DataSource dataSource,
            OutboxProperties properties,
            Environment environment,
            MeterRegistry registry,
            SpringKafkaConnection springKafka) {
        return build(dataSource, properties, environment, registry, springKafka, null);
    }

    /**
     * Like {@link #build(DataSource, OutboxProperties, Environment, MeterRegistry, SpringKafkaConnection)},
     * with the instance id of a relay built before from the same settings.
     *
     * @param instanceId the relay's instance id, or null for {@code outbox.relay.instance-id} (else one
     *     of the relay's own)
     */
    public static Relay build(
            DataSource dataSource,
            OutboxProperties properties,
            Environment environment,
            MeterRegistry registry,
            SpringKafkaConnection springKafka,
            String instanceId) {
        return new EmbeddedRelayBuilder(properties, environment, springKafka).build(dataSource, registry, instanceId);
    }

    private Relay build(DataSource dataSource, MeterRegistry registry, String instanceId) {
        OutboxProperties.Relay p = settings;
        String bootstrap = bootstrapServers();
        Map<String, Object> producer = producerProperties();
        producer.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        takeConnectionSecurity(producer, bootstrap);
        builder.dataSource(dataSource).meterRegistry(registry);
        set(SCHEMA, properties.getSchema(), builder::schema);
        setProducerProperties(producer);
        if (instanceId != null) {
            builder.instanceId(instanceId);
        } else if (p.getInstanceId() != null && !p.getInstanceId().isEmpty()) {
            set("instance-id", p.getInstanceId(), builder::instanceId);
        }
        set("batch-size", p.getBatchSize(), builder::batchSize);
        setBatchBytes();
        set("lease-duration", p.getLeaseDuration(), builder::leaseDuration);
        set("idle-poll-interval", p.getIdlePollInterval(), builder::idlePollInterval);
        set("probe-interval", p.getProbeInterval(), builder::probeInterval);
        set("probe-interval-under-load", p.getProbeIntervalUnderLoad(), builder::probeIntervalUnderLoad);
        set("worker-threads", p.getWorkerThreads(), builder::workerThreads);
        set("vacuum-after-rows", p.getVacuumAfterRows(), builder::vacuumAfterRows);
        set("max-attempts", p.getMaxAttempts(), builder::maxAttempts);
        set("park-policy", p.getParkPolicy(), v -> builder.parkPolicy(v == null ? null : ParkPolicy.valueOf(v.name())));
        set(
                "publish-mode",
                p.getPublishMode(),
                v -> builder.publishMode(v == null ? null : PublishMode.valueOf(v.name())));
        if (p.getTransactionalIdPrefix() != null
                && !p.getTransactionalIdPrefix().isEmpty()) {
            set("transactional-id-prefix", p.getTransactionalIdPrefix(), builder::transactionalIdPrefix);
        }
        set("shutdown-timeout", p.getShutdownTimeout(), builder::shutdownTimeout);
        setBackoff();
        setCircuitBreaker();
        checkCombinations();
        try {
            return builder.build();
        } catch (IllegalStateException e) {
            String key = producerPropertyNamedIn(e.getMessage());
            if (key == null) {
                throw e;
            }
            throw new IllegalStateException(producerProperty(key) + ": " + e.getMessage());
        }
    }

    /**
     * @return {@code outbox.relay.bootstrap-servers}, else the producer bootstrap servers of the
     *     application's {@code KafkaConnectionDetails} bean (a service connection; not Spring Boot's
     *     own built from {@code spring.kafka.*}), else {@code spring.kafka.producer.bootstrap-servers},
     *     else {@code spring.kafka.bootstrap-servers}, as Spring's producer takes them; a property given
     *     as a comma-separated text or as a list
     * @throws IllegalStateException when none of them gives a broker
     */
    private String bootstrapServers() {
        String own = settings.getBootstrapServers();
        if (own != null && !own.isBlank()) {
            return own;
        }
        String servers = boundServers(PREFIX + "bootstrap-servers");
        if (!servers.isEmpty()) {
            return servers;
        }
        String details = springKafka.connectionDetails();
        if (details != null) {
            servers = joined(springKafka.brokers());
            if (servers.isEmpty()) {
                throw new IllegalStateException("outbox.relay.enabled=true, but the " + details
                        + " gives no producer bootstrap servers and outbox.relay.bootstrap-servers is not set; set it"
                        + " to the Kafka brokers the relay publishes to, or fix the connection details");
            }
            LOG.info(
                    "embedded relay: publishes to {}, the producer bootstrap servers of the {}"
                            + " (outbox.relay.bootstrap-servers is not set)",
                    servers,
                    details);
            return servers;
        }
        // as Spring's producer: its own brokers first
        for (String name : List.of("spring.kafka.producer.bootstrap-servers", "spring.kafka.bootstrap-servers")) {
            servers = boundServers(name);
            if (!servers.isEmpty()) {
                return servers;
            }
        }
        throw new IllegalStateException("outbox.relay.enabled=true, but none of outbox.relay.bootstrap-servers,"
                + " spring.kafka.producer.bootstrap-servers and spring.kafka.bootstrap-servers is set, and no"
                + " KafkaConnectionDetails bean (a service connection) gives the brokers; set"
                + " outbox.relay.bootstrap-servers or spring.kafka.bootstrap-servers to the Kafka brokers the relay"
                + " publishes to");
    }

    /** @return the property {@code name} bound as a list and joined with commas, or "" when it is not set */
    private String boundServers(String name) {
        return binder.bind(name, Bindable.listOf(String.class))
                .map(EmbeddedRelayBuilder::joined)
                .orElse("");
    }

    /** @return the servers without blanks, trimmed and joined with commas */
    private static String joined(List<String> servers) {
        return String.join(
                ",",
                servers.stream()
                        .filter(s -> s != null && !s.isBlank())
                        .map(String::trim)
                        .toList());
    }

    /**
     * The names the relay process accepts: Kafka producer properties only, and not {@code
     * bootstrap.servers}, which has a setting of its own; each value as Kafka's own definitions
     * parse it.
     */
    private Map<String, Object> producerProperties() {
        Map<String, Object> producer = new LinkedHashMap<>();
        for (var e : settings.getProducer().entrySet()) {
            String key = e.getKey();
            String value = e.getValue();
            if (key.equals(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG)) {
                throw new IllegalArgumentException(producerProperty(key)
                        + ": the Kafka brokers are set with outbox.relay.bootstrap-servers (or"
                        + " spring.kafka.bootstrap-servers), not as a producer property; move the value there");
            }
            if (!ProducerConfig.configNames().contains(key)) {
                throw new IllegalArgumentException(producerProperty(key)
                        + ": unknown Kafka producer property " + key + suggestion(key)
                        + " Only producer properties (see the Kafka producer documentation) pass through.");
            }
            String refused = refusal(key, value);
            if (refused != null) {
                throw new IllegalArgumentException(producerProperty(key) + ": " + refused
                        + "; fix the value or remove the property (see the Kafka producer documentation)");
            }
            producer.put(key, value);
        }
        return producer;
    }

    /** @return Kafka's words when its definition of the producer property {@code key} refuses {@code value}, else null */
    private static String refusal(String key, String value) {
        Map<String, Object> one = new LinkedHashMap<>();
        one.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "localhost:9092");
        one.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        one.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        one.put(key, value);
        try {
            ProducerConfig.configDef().parse(one);
            return null;
        } catch (ConfigException e) {
            return e.getMessage();
        }
    }

    /**
     * Adds the connection security of Spring's Kafka producer to {@code producer} when the relay
     * publishes to the same brokers: each of {@code security.protocol}, {@code ssl.*} and {@code
     * sasl.*} that {@code outbox.relay.producer.*} leaves out entirely. Logs at INFO what it took.
     *
     * @throws IllegalStateException when Spring's producer uses an SSL bundle and {@code
     *     outbox.relay.producer.*} sets no {@code ssl.*}: the relay's Kafka clients cannot use a bundle
     * @throws IllegalArgumentException when Kafka refuses a value taken
     */
    private void takeConnectionSecurity(Map<String, Object> producer, String bootstrap) {
        Map<String, String> security = springKafka.security();
        String bundle = springKafka.sslBundle();
        if (security.isEmpty() && bundle == null) {
            return;
        }
        Set<String> relays = brokerSet(Arrays.asList(bootstrap.split(",")));
        Set<String> springs = brokerSet(springKafka.brokers());
        if (!relays.equals(springs)) {
            LOG.info(
                    "embedded relay: publishes to {}, Spring's Kafka producer to {}, so it takes none of"
                            + " the connection settings of {} ({}); give them with outbox.relay.producer.*"
                            + " if its brokers need any",
                    relays,
                    springs,
                    springKafka.origin(),
                    bundle == null ? String.join(", ", security.keySet()) : bundle);
            return;
        }
        Set<String> own = new TreeSet<>();
        for (String key : settings.getProducer().keySet()) {
            String family = SpringKafkaConnection.family(key);
            if (family != null) {
                own.add(family);
            }
        }
        if (bundle != null && !own.contains("ssl.")) {
            throw new IllegalStateException(bundle + ": the embedded relay cannot take an SSL bundle from Spring's"
                    + " Kafka configuration, as its Kafka clients read their trust and key material from settings;"
                    + " give it the bundle's material with " + PRODUCER_PREFIX + "ssl.truststore.location and "
                    + PRODUCER_PREFIX + "ssl.truststore.password (or " + PRODUCER_PREFIX
                    + "ssl.truststore.type=PEM and " + PRODUCER_PREFIX + "ssl.truststore.certificates), and for a"
                    + " client certificate " + PRODUCER_PREFIX + "ssl.keystore.location, " + PRODUCER_PREFIX
                    + "ssl.keystore.password and " + PRODUCER_PREFIX + "ssl.key.password (or " + PRODUCER_PREFIX
                    + "ssl.keystore.type=PEM, " + PRODUCER_PREFIX + "ssl.keystore.certificate.chain and "
                    + PRODUCER_PREFIX + "ssl.keystore.key); the relay then takes no ssl.* setting from "
                    + springKafka.origin());
        }
        Map<String, String> taken = new LinkedHashMap<>();
        security.forEach((key, value) -> {
            if (!own.contains(SpringKafkaConnection.family(key))) {
                taken.put(key, value);
            }
        });
        if (taken.isEmpty()) {
            return;
        }
        for (var e : taken.entrySet()) {
            String refused = refusal(e.getKey(), e.getValue());
            if (refused != null) {
                throw new IllegalArgumentException(e.getKey() + "=" + shown(e.getKey(), e.getValue())
                        + ", taken from " + springKafka.origin(e.getKey()) + " by the embedded relay: " + refused
                        + "; fix it there, or set "
                        + PRODUCER_PREFIX + e.getKey());
            }
        }
        producer.putAll(taken);
        StringBuilder names = new StringBuilder();
        Set<String> origins = new LinkedHashSet<>();
        taken.forEach((key, value) -> {
            names.append(names.isEmpty() ? "" : ", ").append(key).append('=').append(shown(key, value));
            origins.add(springKafka.origin(key));
        });
        LOG.info(
                "embedded relay: took the Kafka connection settings {} from {} (Spring's producer"
                        + " publishes to the same brokers){}",
                names,
                String.join(" and ", origins),
                own.isEmpty()
                        ? ""
                        : "; "
                                + String.join(
                                        ", ",
                                        own.stream()
                                                .map(f -> f.endsWith(".") ? f + "*" : f)
                                                .toList()) + " from " + PRODUCER_PREFIX + "*");
    }

    private static Set<String> brokerSet(List<String> servers) {
        Set<String> set = new TreeSet<>();
        for (String server : servers) {
            for (String one : server.split(",")) {
                if (!one.isBlank()) {
                    set.add(one.strip());
                }
            }
        }
        return set;
    }

    /** @return {@code ": did you mean <name>?"} for the producer property {@code key} most likely means, else "." */
    private static String suggestion(String key) {
        String nearest = NearestName.nearest(key, ProducerConfig.configNames());
        return nearest != null ? ": did you mean " + nearest + "?" : ".";
    }

    private void setProducerProperties(Map<String, Object> producer) {
        try {
            builder.producerProperties(producer);
        } catch (IllegalArgumentException | NullPointerException e) {
            String key = producerPropertyNamedIn(e.getMessage());
            String given = key != null
                    ? producerProperty(key)
                    : PREFIX + "bootstrap-servers=" + producer.get(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG);
            throw new IllegalArgumentException(given + ": " + e.getMessage());
        }
    }

    /**
     * @return {@code outbox.relay.producer.<key>=<value>}, the value hidden where it may be a secret:
     *     Kafka's password properties, and any name that reads like one
     */
    private String producerProperty(String key) {
        return PRODUCER_PREFIX + key + "=" + shown(key, settings.getProducer().get(key));
    }

    /** @return {@code value}, or {@code [hidden]} for Kafka's password properties and any name that reads like one */
    private static String shown(String key, String value) {
        ConfigDef.ConfigKey definition = ProducerConfig.configDef().configKeys().get(key);
        boolean secret = definition != null
                ? definition.type == ConfigDef.Type.PASSWORD
                : SECRET_NAME.matcher(key).find();
        return secret ? "[hidden]" : value;
    }

    /** @return the longest of the given producer properties that {@code message} names, else null */
    private String producerPropertyNamedIn(String message) {
        if (message == null) {
            return null;
        }
        return settings.getProducer().keySet().stream()
                .filter(key -> message.contains("producer property " + key + " ")
                        || message.contains("producer property " + key + ","))
                .max(Comparator.comparingInt(String::length))
                .orElse(null);
    }

    /** A size past the int range is refused here, as the builder refuses any other out of its range. */
    private void setBatchBytes() {
        DataSize size = settings.getBatchBytes();
        if (size == null) {
            throw refused("batch-bytes", null, "batchBytes may not be empty" + USE_DEFAULT + defaultBatchBytes());
        }
        long bytes = size.toBytes();
        if (bytes != (int) bytes) {
            throw refused(
                    "batch-bytes",
                    size,
                    "batchBytes must be between " + Relay.Builder.MIN_BATCH_BYTES + " and "
                            + Relay.Builder.MAX_BATCH_BYTES + ", got " + bytes + USE_DEFAULT + defaultBatchBytes());
        }
        set("batch-bytes", size, s -> builder.batchBytes((int) bytes));
    }

    private static String defaultBatchBytes() {
        return DataSize.ofBytes(Relay.Builder.DEFAULT_BATCH_BYTES).toMegabytes() + "MB";
    }

    /** {@code backoff-base} and {@code backoff-cap}, each checked alone first so that a refusal names its property. */
    private void setBackoff() {
        Duration base = settings.getBackoffBase();
        Duration cap = settings.getBackoffCap();
        set("backoff-base", base, v -> builder.backoff(v, Relay.Builder.MAX_BACKOFF_CAP));
        set("backoff-cap", cap, v -> builder.backoff(Relay.Builder.MIN_BACKOFF_BASE, v));
        try {
            builder.backoff(base, cap);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(PREFIX + "backoff-cap=" + given("backoff-cap", cap) + " (with "
                    + PREFIX + "backoff-base=" + given("backoff-base", base) + "): backoff " + e.getMessage()
                    + "; raise backoff-cap or lower backoff-base");
        }
    }

    /** {@code breaker-failure-threshold} and {@code breaker-open-duration}, each named when refused. */
    private void setCircuitBreaker() {
        int threshold = settings.getBreakerFailureThreshold();
        Duration open = settings.getBreakerOpenDuration();
        set(
                "breaker-failure-threshold",
                threshold,
                v -> builder.circuitBreaker(v, Relay.Builder.DEFAULT_BREAKER_OPEN_DURATION));
        set(
                "breaker-open-duration",
                open,
                v -> builder.circuitBreaker(Relay.Builder.DEFAULT_BREAKER_FAILURE_THRESHOLD, v));
        builder.circuitBreaker(threshold, open);
    }

    /** The rules between two settings that {@link Relay.Builder#build()} checks, named by their properties. */
    private void checkCombinations() {
        Duration idle = settings.getIdlePollInterval();
        Duration lease = settings.getLeaseDuration();
        if (idle.compareTo(lease) > 0) {
            throw new IllegalStateException(PREFIX + "idle-poll-interval=" + given("idle-poll-interval", idle)
                    + " may not exceed " + PREFIX + "lease-duration=" + given("lease-duration", lease)
                    + ": an idle shard would not be looked at once per lease; shorten idle-poll-interval or"
                    + " lengthen lease-duration");
        }
        String prefix = settings.getTransactionalIdPrefix();
        OutboxProperties.Relay.PublishMode mode = settings.getPublishMode();
        if (prefix != null && !prefix.isEmpty() && mode != OutboxProperties.Relay.PublishMode.TRANSACTIONAL) {
            throw new IllegalStateException(PREFIX + "transactional-id-prefix=" + prefix + " is only used with "
                    + PREFIX + "publish-mode=transactional, but the mode is "
                    + mode.name().toLowerCase(Locale.ROOT)
                    + "; set publish-mode=transactional or remove transactional-id-prefix");
        }
    }

    /**
     * Hands one value to its setter ({@link NamedSettings#set}).
     *
     * @param property the name under {@code outbox.relay.}, or a full name ({@code outbox.schema})
     * @throws IllegalArgumentException starting with {@code <property>=<value>: } and the setter's message
     *     when the setter refuses the value
     */
    private <T> void set(String property, T value, Consumer<T> setter) {
        named.set(name(property), value, setter);
    }

    private IllegalArgumentException refused(String property, Object value, String message) {
        return named.refused(name(property), value, message);
    }

    private static String name(String property) {
        return property.startsWith("outbox.") ? property : PREFIX + property;
    }

    /** @return the value as the application gave it ({@code 2s}, {@code 3GB}), else as bound */
    private String given(String property, Object value) {
        return named.given(name(property), value);
    }
}
