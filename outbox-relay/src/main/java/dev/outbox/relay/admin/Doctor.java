package dev.outbox.relay.admin;

import dev.outbox.core.OutboxException;
import dev.outbox.core.internal.Checks;
import dev.outbox.core.internal.Durations;
import dev.outbox.migrations.OutboxMigrations;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import javax.sql.DataSource;
import org.apache.kafka.clients.admin.AdminClientConfig;

/**
 * Inspects a live deployment for the known failure modes of idempotency implementations and gives
 * a verdict per check, with the evidence it read: the unique constraints that decide races, key and
 * processed-id expiry and whether the purges keep up, stored responses, keys stuck in flight,
 * processed-id retention against the retention of the topics each consumer reads (asked of Kafka),
 * parked or long-unpublished outbox rows, oversized outbox indexes, the later migrations' objects in
 * place, and whether what the guarantees assume of the servers holds: PostgreSQL's commits durable
 * before the relay can read them and not left waiting forever for a synchronous standby that cannot
 * confirm them, and Kafka's topics replicated so that an acknowledged record
 * survives a broker (see {@link Builder#topics}). Failure modes a live system cannot show (a client
 * retrying without a budget, a key minted per attempt, a listener writing without dedup, a
 * select-then-insert check, an endpoint without the filter) are listed with the build-time rule or
 * start-up gate that catches them.
 *
 * <p>The relay process's {@code doctor} command is a text and JSON face of this class. It reads
 * only (catalog views, {@code pg_stat_activity}, {@code pg_locks}, {@code pg_prepared_xacts}, {@code
 * pg_stat_replication}, {@code pg_replication_slots}, the outbox tables, Kafka topic descriptions and
 * configurations and consumer-group offsets) and needs no running relay. Thread-safe.
 *
 * <pre>{@code
 * Doctor.Report report = Doctor.builder()
 *     .dataSource(dataSource)
 *     .consumer("payments", "orders")                  // consumer name -> topics it reads
 *     .kafkaProperties(Map.of("bootstrap.servers", "kafka:9092"))
 *     .build()
 *     .run();
 * if (report.failed()) { ... }
 * }</pre>
 *
 * <p>Which consumer reads which topic: given with {@link Builder#consumer}; for consumers that are
 * in {@code processed_message} but not given, the doctor looks up the Kafka consumer group of the
 * same name (the usual setup: consumer name = {@code group.id}) and takes the topics it has
 * committed offsets for.
 */
public final class Doctor {

    /** A check's outcome. */
    public enum Verdict {
        /** Checked, healthy. */
        PASS,
        /** Checked, not a failure by itself but worth a look. */
        WARN,
        /** Checked, the failure mode is present. */
        FAIL,
        /** Not checked: a prerequisite (e.g. Kafka's address) was not given. */
        SKIP,
        /** Cannot be seen in a live system; the named build-time rule or start-up gate checks it. */
        BUILD_TIME
    }

    /**
     * One check.
     *
     * @param id a stable name, e.g. {@code unique-constraints}
     * @param title what is checked
     * @param verdict the outcome
     * @param summary one line on what was found
     * @param evidence what was read, one item per line
     * @param fix what to do when it did not pass, or {@code null}
     */
    public record Check(String id, String title, Verdict verdict, String summary, List<String> evidence, String fix) {
        /** Copies the evidence. */
        public Check {
            evidence = List.copyOf(evidence);
        }
    }

    /**
     * The doctor's findings.
     *
     * @param schema the schema inspected
     * @param at the database clock when the run started
     * @param checks every check, in a fixed order
     */
    public record Report(String schema, Instant at, List<Check> checks) {
        /** Copies the checks. */
        public Report {
            checks = List.copyOf(checks);
        }

        /** @return whether any check failed */
        public boolean failed() {
            return checks.stream().anyMatch(c -> c.verdict() == Verdict.FAIL);
        }

        /**
         * @param id a check's id
         * @return that check
         * @throws IllegalArgumentException when there is none with that id
         */
        public Check check(String id) {
            return checks.stream()
                    .filter(c -> c.id().equals(id))
                    .findFirst()
                    .orElseThrow(() -> new IllegalArgumentException("no check '" + id + "'"));
        }
    }

    private final DataSource dataSource;
    private final String schema;
    private final ConstraintCheck constraints;
    private final KeyChecks keys;
    private final ProcessedIdChecks processedIds;
    private final TopicRetentionCheck topicRetention;
    // the Kafka admin client's properties, or null when Kafka was not given
    private final Map<String, Object> adminProperties;
    private final OutboxChecks outbox;
    private final DurabilityChecks durability;
    private final CommitWaitCheck commitWaits;
    private final SchemaCheck schemaCheck;

    private Doctor(Builder b) {
        this.dataSource = b.dataSource;
        this.schema = b.schema;
        DoctorSettings settings = new DoctorSettings(
                b.schema,
                b.keyTtl,
                b.lockTimeout,
                b.processedRetention,
                Map.copyOf(b.consumerRetention),
                new TreeMap<>(b.consumerTopics),
                List.copyOf(b.topics),
                b.kafkaProperties == null ? null : Map.copyOf(b.kafkaProperties),
                b.purgeGrace,
                b.maxUnpublishedAge,
                b.kafkaTimeout);
        this.constraints = new ConstraintCheck(settings);
        this.keys = new KeyChecks(settings);
        this.processedIds = new ProcessedIdChecks(settings);
        this.topicRetention = new TopicRetentionCheck(settings);
        this.adminProperties =
                settings.kafkaProperties() == null ? null : TopicRetentionCheck.adminProperties(settings);
        this.outbox = new OutboxChecks(settings);
        this.durability = new DurabilityChecks(settings);
        this.commitWaits = new CommitWaitCheck();
        this.schemaCheck = new SchemaCheck(settings);
    }

    /** @return a builder with the defaults documented on each setter */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Runs every check.
     *
     * @return the report
     * @throws OutboxException when the database cannot be read at all; the cause keeps the SQLState.
     *     Kafka being unreachable is a {@link Verdict#FAIL} of its check, not an exception, and so is a
     *     table that is missing, lacks a column or may not be read by the role (SQLState class 42,
     *     3F000): the check names the table, the SQLState and the fix.
     */
    public Report run() {
        try (Connection c = dataSource.getConnection();
                // one admin client for every check that asks Kafka, made only if one does
                KafkaSession kafka = new KafkaSession(adminProperties)) {
            c.setReadOnly(true);
            c.setAutoCommit(true);
            Instant at;
            try (PreparedStatement st = c.prepareStatement("select clock_timestamp()");
                    ResultSet rs = st.executeQuery()) {
                rs.next();
                at = rs.getObject(1, OffsetDateTime.class).toInstant();
            }
            List<Check> checks = new ArrayList<>();
            String keyTable = "idempotency_key";
            // the first table it looks up; a role without USAGE on the schema is refused there
            checks.add(readOrFail(
                    "unique-constraints", ConstraintCheck.TITLE, keyTable, () -> constraints.uniqueConstraints(c)));
            checks.add(readOrFail("key-expiry", KeyChecks.KEY_EXPIRY_TITLE, keyTable, () -> keys.keyExpiry(c)));
            Map<String, Duration> oldestProcessed;
            try {
                oldestProcessed = processedIds.oldestProcessed(c);
                checks.add(processedIds.processedExpiry(oldestProcessed));
            } catch (SQLException e) {
                checks.add(cannotRead(
                        "processed-expiry", ProcessedIdChecks.PROCESSED_EXPIRY_TITLE, "processed_message", e));
                oldestProcessed = Map.of();
            }
            checks.add(readOrFail(
                    "stored-responses", KeyChecks.STORED_RESPONSES_TITLE, keyTable, () -> keys.storedResponses(c)));
            checks.add(readOrFail("in-flight", KeyChecks.IN_FLIGHT_TITLE, keyTable, () -> keys.inFlight(c)));
            checks.add(topicRetention.topicRetention(oldestProcessed.keySet(), kafka));
            String outboxTable = "outbox_message";
            checks.add(readOrFail("outbox-parked", OutboxChecks.PARKED_TITLE, outboxTable, () -> outbox.parked(c)));
            OutboxChecks.Rows outboxRows;
            try {
                outboxRows = outbox.rows(c);
            } catch (SQLException e) {
                checks.add(cannotRead("outbox-unpublished", OutboxChecks.UNPUBLISHED_TITLE, outboxTable, e));
                checks.add(cannotRead("outbox-index-size", OutboxChecks.INDEX_SIZE_TITLE, outboxTable, e));
                outboxRows = null;
            }
            if (outboxRows != null) {
                OutboxChecks.Rows counted = outboxRows;
                checks.add(outbox.unpublished(counted));
                checks.add(readOrFail(
                        "outbox-index-size",
                        OutboxChecks.INDEX_SIZE_TITLE,
                        outboxTable,
                        () -> outbox.indexSize(c, counted)));
            }
            checks.add(readOrFail("outbox-schema", SchemaCheck.TITLE, outboxTable, () -> schemaCheck.current(c)));
            checks.add(durability.database(c));
            checks.add(commitWaits.check(c));
            checks.add(durability.delivery(kafka));
            checks.addAll(BuildTimeRules.CHECKS);
            return new Report(schema, at, checks);
        } catch (SQLException e) {
            throw new OutboxException(
                    "Doctor[" + schema + "]: reading the database failed (SQLState " + e.getSQLState() + "): "
                            + e.getMessage(),
                    e);
        }
    }

    /** A check that reads a table. */
    @FunctionalInterface
    private interface TableRead {
        Check read() throws SQLException;
    }

    /**
     * @return the check {@code read} gives, or a {@link Verdict#FAIL} of it when its table cannot be read
     * @throws SQLException when the statement failed for another reason than the table or its columns
     *     (the connection was lost, say): the run stops
     */
    private Check readOrFail(String id, String title, String table, TableRead read) throws SQLException {
        try {
            return read.read();
        } catch (SQLException e) {
            return cannotRead(id, title, table, e);
        }
    }

    /**
     * @return a {@link Verdict#FAIL} of check {@code id}: {@code table} of the schema could not be read,
     *     with the SQLState and what to do about it
     * @throws SQLException {@code e} itself when it is not about the table (a lost connection, a timeout)
     */
    private Check cannotRead(String id, String title, String table, SQLException e) throws SQLException {
        String state = e.getSQLState() == null ? "" : e.getSQLState();
        // class 42: syntax error or access rule violation (undefined table 42P01, undefined column 42703,
        // insufficient privilege 42501); 3F000: invalid schema name
        if (!state.startsWith("42") && !state.equals("3F000")) {
            throw e;
        }
        String qualified = schema + "." + table;
        String fix;
        if (state.equals("42501")) {
            fix = "Grant the doctor's database role read access: GRANT USAGE ON SCHEMA " + schema
                    + " and GRANT SELECT ON " + qualified + " to it (or run the doctor as the tables' owner).";
        } else if (state.equals("42P01") || state.equals("3F000")) {
            fix = "Check the schema name (--schema, setting schema; now " + schema
                    + ") and that the outbox migrations ran on it (OutboxMigrations.migrate, or the relay's --migrate).";
        } else {
            fix = "Run the outbox migrations on schema " + schema
                    + " (the table lacks what this version reads), and check the schema name (--schema).";
        }
        return new Check(
                id,
                title,
                Verdict.FAIL,
                "cannot read " + qualified + " (SQLState " + state + ")",
                List.of(qualified + ": "
                        + String.valueOf(e.getMessage())
                                .replaceAll("\\s*[\\r\\n]+\\s*", " ")
                                .strip()),
                fix);
    }

    /**
     * Builds a {@link Doctor}. Setters check their own argument at once ({@link NullPointerException}
     * for null, {@link IllegalArgumentException} for a bad value); {@link #build()} checks that the
     * database was given ({@link IllegalStateException}). Not thread-safe.
     */
    public static final class Builder {
        /** Default {@link #keyTtl(Duration)}: 24 h, the {@code IdempotencyStore}'s default ttl. */
        public static final Duration DEFAULT_KEY_TTL = Duration.ofHours(24);

        /** Default {@link #lockTimeout(Duration)}: 2 s, the {@code IdempotencyStore}'s default. */
        public static final Duration DEFAULT_LOCK_TIMEOUT = Duration.ofSeconds(2);

        /** Default {@link #processedRetention(Duration)}: 7 days, {@code IdempotentConsumer}'s default. */
        public static final Duration DEFAULT_PROCESSED_RETENTION = Duration.ofDays(7);

        /** Default {@link #purgeGrace(Duration)}: 2 h, twice the purges' default interval of 1 h. */
        public static final Duration DEFAULT_PURGE_GRACE = Duration.ofHours(2);

        /** Default {@link #maxUnpublishedAge(Duration)}: 5 minutes. */
        public static final Duration DEFAULT_MAX_UNPUBLISHED_AGE = Duration.ofMinutes(5);

        /** Default {@link #kafkaTimeout(Duration)}: 15 s. */
        public static final Duration DEFAULT_KAFKA_TIMEOUT = Duration.ofSeconds(15);

        private DataSource dataSource;
        private String schema = OutboxMigrations.DEFAULT_SCHEMA;
        private Duration keyTtl = DEFAULT_KEY_TTL;
        private Duration lockTimeout = DEFAULT_LOCK_TIMEOUT;
        private Duration processedRetention = DEFAULT_PROCESSED_RETENTION;
        private final Map<String, Duration> consumerRetention = new LinkedHashMap<>();
        private final Map<String, List<String>> consumerTopics = new LinkedHashMap<>();
        private final Set<String> topics = new TreeSet<>();
        private Map<String, Object> kafkaProperties;
        private Duration purgeGrace = DEFAULT_PURGE_GRACE;
        private Duration maxUnpublishedAge = DEFAULT_MAX_UNPUBLISHED_AGE;
        private Duration kafkaTimeout = DEFAULT_KAFKA_TIMEOUT;

        private Builder() {}

        /**
         * @param dataSource the database with the outbox tables; read only
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder dataSource(DataSource dataSource) {
            this.dataSource = Objects.requireNonNull(dataSource, "dataSource may not be null");
            return this;
        }

        /**
         * @param schema the schema of the outbox tables; default {@value OutboxMigrations#DEFAULT_SCHEMA}
         * @return this builder
         * @throws NullPointerException when it is null
         * @throws IllegalArgumentException when it is not a plain SQL identifier
         */
        public Builder schema(String schema) {
            this.schema = OutboxMigrations.requireValidSchema(schema);
            return this;
        }

        /**
         * @param keyTtl the {@code IdempotencyStore}'s ttl; default {@link #DEFAULT_KEY_TTL} (24 h)
         * @return this builder
         * @throws NullPointerException when it is null
         * @throws IllegalArgumentException when it is not positive
         */
        public Builder keyTtl(Duration keyTtl) {
            this.keyTtl = positive(keyTtl, "keyTtl", DEFAULT_KEY_TTL);
            return this;
        }

        /**
         * @param lockTimeout the {@code IdempotencyStore}'s lock timeout; a key held longer is stuck;
         *     default {@link #DEFAULT_LOCK_TIMEOUT} (2 s)
         * @return this builder
         * @throws NullPointerException when it is null
         * @throws IllegalArgumentException when it is not positive
         */
        public Builder lockTimeout(Duration lockTimeout) {
            this.lockTimeout = positive(lockTimeout, "lockTimeout", DEFAULT_LOCK_TIMEOUT);
            return this;
        }

        /**
         * @param retention the processed-id retention of consumers not given one by {@link
         *     #consumerRetention}; default {@link #DEFAULT_PROCESSED_RETENTION} (7 days)
         * @return this builder
         * @throws NullPointerException when it is null
         * @throws IllegalArgumentException when it is not positive
         */
        public Builder processedRetention(Duration retention) {
            this.processedRetention = positive(retention, "processedRetention", DEFAULT_PROCESSED_RETENTION);
            return this;
        }

        /**
         * @param consumer a consumer name (the dedup scope)
         * @param retention its {@code IdempotentConsumer.Builder.retention}
         * @return this builder
         * @throws NullPointerException when an argument is null
         * @throws IllegalArgumentException when the name is blank or the retention not positive
         */
        public Builder consumerRetention(String consumer, Duration retention) {
            String name = requireName(consumer, "consumer");
            consumerRetention.put(name, positive(retention, "retention of consumer " + name, null));
            return this;
        }

        /**
         * @param consumer a consumer name (the dedup scope)
         * @param topics the topics it reads
         * @return this builder
         * @throws NullPointerException when the name, the array or a topic is null
         * @throws IllegalArgumentException when the name is blank, no topic is given or one is blank
         */
        public Builder consumer(String consumer, String... topics) {
            String name = requireName(consumer, "consumer");
            Objects.requireNonNull(topics, "topics may not be null");
            if (topics.length == 0) {
                throw new IllegalArgumentException("consumer " + name + " needs at least one topic");
            }
            List<String> list = new ArrayList<>();
            for (String t : topics) {
                list.add(requireName(t, "topic of consumer " + name));
            }
            consumerTopics.put(name, List.copyOf(list));
            return this;
        }

        /**
         * Names topics the relay publishes to, for the {@code delivery-durability} check (which also looks
         * at the topics given with {@link #consumer}). Repeatable; the topics add up.
         *
         * @param topics topic names
         * @return this builder
         * @throws NullPointerException when the array or a topic is null
         * @throws IllegalArgumentException when no topic is given or one is blank
         */
        public Builder topics(String... topics) {
            Objects.requireNonNull(topics, "topics may not be null");
            if (topics.length == 0) {
                throw new IllegalArgumentException("topics needs at least one topic");
            }
            for (String t : topics) {
                this.topics.add(requireName(t, "topic"));
            }
            return this;
        }

        /**
         * @param properties Kafka admin client properties, at least {@code bootstrap.servers}; without
         *     them the topic-retention and delivery-durability checks are skipped. Their {@code
         *     request.timeout.ms} and {@code default.api.timeout.ms} are replaced by {@link
         *     #kafkaTimeout(Duration)}: to give the doctor a client's request timeout, pass it there
         * @return this builder
         * @throws NullPointerException when it is null
         * @throws IllegalArgumentException when {@code bootstrap.servers} is missing
         */
        public Builder kafkaProperties(Map<String, ?> properties) {
            Objects.requireNonNull(properties, "properties may not be null");
            if (properties.get(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG) == null) {
                throw new IllegalArgumentException(
                        "kafkaProperties need bootstrap.servers, e.g. Map.of(\"bootstrap.servers\","
                                + " \"kafka:9092\")");
            }
            this.kafkaProperties = new LinkedHashMap<>(properties);
            return this;
        }

        /**
         * @param grace how far past its expiry or retention a row may be before the purge counts as not
         *     keeping up; default {@link #DEFAULT_PURGE_GRACE} (2 h; the purges run hourly by default)
         * @return this builder
         * @throws NullPointerException when it is null
         * @throws IllegalArgumentException when it is not positive
         */
        public Builder purgeGrace(Duration grace) {
            this.purgeGrace = positive(grace, "purgeGrace", DEFAULT_PURGE_GRACE);
            return this;
        }

        /**
         * @param age how old the oldest unpublished outbox row may be; default {@link
         *     #DEFAULT_MAX_UNPUBLISHED_AGE} (5 minutes)
         * @return this builder
         * @throws NullPointerException when it is null
         * @throws IllegalArgumentException when it is not positive
         */
        public Builder maxUnpublishedAge(Duration age) {
            this.maxUnpublishedAge = positive(age, "maxUnpublishedAge", DEFAULT_MAX_UNPUBLISHED_AGE);
            return this;
        }

        /**
         * @param timeout how long each Kafka request may take, and how long the doctor waits for each
         *     answer: the admin client's {@code request.timeout.ms} and {@code default.api.timeout.ms},
         *     whatever {@link #kafkaProperties} says; default {@link #DEFAULT_KAFKA_TIMEOUT} (15 s). The
         *     relay process's {@code doctor} command passes the configured {@code kafka.request.timeout.ms}
         *     here when one is given
         * @return this builder
         * @throws NullPointerException when it is null
         * @throws IllegalArgumentException when it is not positive
         */
        public Builder kafkaTimeout(Duration timeout) {
            this.kafkaTimeout = positive(timeout, "kafkaTimeout", DEFAULT_KAFKA_TIMEOUT);
            return this;
        }

        /**
         * @return the doctor
         * @throws IllegalStateException when no data source was given
         */
        public Doctor build() {
            if (dataSource == null) {
                throw new IllegalStateException("Doctor needs the database: call dataSource(dataSource)");
            }
            return new Doctor(this);
        }

        private static Duration positive(Duration d, String name, Duration defaultValue) {
            return Checks.requirePositive(
                    d, name, defaultValue == null ? "" : "; the default is " + Durations.format(defaultValue));
        }

        private static String requireName(String value, String name) {
            return Checks.requireNonBlank(value, name).strip();
        }
    }
}
