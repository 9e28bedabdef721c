package dev.outbox.consumer;

import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.internal.TopicNames;
import dev.outbox.migrations.OutboxMigrations;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.function.Function;
import javax.sql.DataSource;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.jooq.ConnectionProvider;
import org.jooq.DSLContext;
import org.jooq.impl.DefaultConnectionProvider;
import org.jooq.impl.NoConnectionProvider;

/**
 * The first part of {@link IdempotentConsumer.Builder}: where messages come from (Kafka, topics),
 * where they are recorded (the database, the dedup scope) and who handles them.
 */
abstract sealed class ConsumerBuilderBase permits ConsumerBuilder {
    /** Longest consumer name, so that the name stays a readable dedup scope and metric tag. */
    public static final int MAX_CONSUMER_NAME_LENGTH = 200;

    final Map<String, Object> kafkaProperties = new LinkedHashMap<>();
    final Map<String, Object> producerProperties = new LinkedHashMap<>();
    final List<String> topics = new ArrayList<>();
    String consumerName;
    DataSource dataSource;
    DSLContext dsl;
    String schema = OutboxMigrations.DEFAULT_SCHEMA;
    MessageHandler handler;
    Function<ConsumerRecord<byte[], byte[]>, Optional<UUID>> messageIdExtractor;

    ConsumerBuilderBase() {}

    IdempotentConsumer.Builder self() {
        return (IdempotentConsumer.Builder) this;
    }

    /**
     * The Kafka consumer configuration. {@code bootstrap.servers} and {@code group.id} are
     * required. {@code enable.auto.commit} is always false (offsets are committed after the
     * database commit); setting it to true is an error. Keys and values are read as {@code byte[]}
     * by the consumer's own deserializers; setting others is an error. {@code auto.offset.reset}
     * defaults to {@code earliest} (Kafka's default, {@code latest}, would skip what a new group
     * has not seen). {@code isolation.level} defaults to {@code read_committed}, so records of
     * aborted Kafka transactions (the relay's transactional mode rolls back a batch that failed, or
     * that a relay which lost its lease tried to publish) never reach the handler; Kafka's default,
     * {@code read_uncommitted}, would deliver them, out of the relay's order, and {@link
     * ConsumerBuilder#build()} logs a WARN when it is given. Everything else (TLS, SASL, {@code
     * max.poll.records}, {@code group.instance.id}) passes through; with a {@code group.instance.id}
     * (a static member), {@link IdempotentConsumer#close()} does not leave the group, and the
     * partitions wait for {@code session.timeout.ms} before other members get them. Calls add to what
     * earlier calls set.
     *
     * @param properties consumer properties
     * @return this builder
     * @throws NullPointerException when {@code properties} or a key or value in it is null
     */
    public IdempotentConsumer.Builder kafkaProperties(Map<String, ?> properties) {
        Objects.requireNonNull(properties, "kafkaProperties may not be null");
        properties.forEach((k, v) -> kafkaProperties.put(
                Objects.requireNonNull(k, "kafkaProperties may not contain a null key"),
                Objects.requireNonNull(v, "kafkaProperties value of " + k + " may not be null")));
        return self();
    }

    /**
     * Properties of the dead-letter producer. Default: {@code bootstrap.servers} and every {@code
     * security.*}, {@code ssl.*}, {@code sasl.*} and {@code client.dns.lookup} property of the
     * consumer, with {@code acks=all}, idempotence on and {@code max.block.ms} equal to {@link
     * ConsumerBuilder#closeTimeout(Duration)} (so that one publish holds a worker at most that long); these
     * properties override those. {@code acks} other than {@code all} (a record could be lost after
     * its offset moved on), a {@code max.block.ms} longer than the close timeout and a {@code
     * transactional.id} (the producer sends outside Kafka transactions and never calls {@code
     * initTransactions()}, so every send would fail) are refused by {@link ConsumerBuilder#build()}.
     * Calls add to what earlier calls set.
     *
     * @param properties producer properties
     * @return this builder
     * @throws NullPointerException when {@code properties} or a key or value in it is null
     */
    public IdempotentConsumer.Builder producerProperties(Map<String, ?> properties) {
        Objects.requireNonNull(properties, "producerProperties may not be null");
        properties.forEach((k, v) -> producerProperties.put(
                Objects.requireNonNull(k, "producerProperties may not contain a null key"),
                Objects.requireNonNull(v, "producerProperties value of " + k + " may not be null")));
        return self();
    }

    /**
     * @param topics the topics to subscribe to; required, at least one. Calls add to the list.
     * @return this builder
     * @throws NullPointerException when a topic is null
     * @throws IllegalArgumentException when a topic is not a valid Kafka topic name (1 to 249
     *     characters from {@code a-z A-Z 0-9 . _ -}, other than {@code .} and {@code ..})
     */
    public IdempotentConsumer.Builder topics(String... topics) {
        return topics(List.of(Objects.requireNonNull(topics, "topics may not be null")));
    }

    /**
     * @param topics the topics to subscribe to; required, at least one. Calls add to the list.
     * @return this builder
     * @throws NullPointerException when a topic is null
     * @throws IllegalArgumentException when a topic is not a valid Kafka topic name (1 to 249
     *     characters from {@code a-z A-Z 0-9 . _ -}, other than {@code .} and {@code ..})
     */
    public IdempotentConsumer.Builder topics(Collection<String> topics) {
        Objects.requireNonNull(topics, "topics may not be null");
        for (String topic : topics) {
            Objects.requireNonNull(topic, "topics may not contain null");
            if (!TopicNames.isValid(topic)) {
                throw new IllegalArgumentException("topics may contain only valid Kafka topic names ("
                        + TopicNames.RULE + "), got \"" + topic + "\"; give the topic's name as"
                        + " the brokers know it");
            }
            this.topics.add(topic);
        }
        return self();
    }

    /**
     * The dedup scope: message ids are recorded per consumer name, so two services (or two
     * independent handlers of one service) that consume the same topic need different names, and
     * every instance of one service must use the same name. Renaming a consumer forgets what it
     * processed. Required; 1 to {@value #MAX_CONSUMER_NAME_LENGTH} characters, without whitespace at
     * either end and without control characters: {@code "payments\n"} (a value read from a file or an
     * environment variable) would be a dedup scope apart from {@code "payments"}, and a message
     * processed under one would be applied again under the other.
     *
     * @param consumerName the name
     * @return this builder
     * @throws NullPointerException when null
     * @throws IllegalArgumentException when empty, blank, too long, starting or ending with
     *     whitespace, or holding a control character
     */
    public IdempotentConsumer.Builder consumerName(String consumerName) {
        this.consumerName = requireConsumerName(consumerName, "consumerName");
        return self();
    }

    /**
     * The checks of a consumer name, shared with {@link ProcessedMessages}.
     *
     * @param name the consumer name
     * @param setting what the messages call it
     * @return {@code name}
     * @throws NullPointerException when {@code name} is null
     * @throws IllegalArgumentException when empty, blank, longer than {@value
     *     #MAX_CONSUMER_NAME_LENGTH} characters, starting or ending with whitespace, or holding a
     *     control character
     */
    static String requireConsumerName(String name, String setting) {
        Objects.requireNonNull(name, setting + " may not be null");
        if (name.isBlank() || name.length() > MAX_CONSUMER_NAME_LENGTH) {
            throw new IllegalArgumentException(setting + " must be 1 to " + MAX_CONSUMER_NAME_LENGTH
                    + " characters and not blank, got \"" + visible(name) + "\" (" + name.length()
                    + " characters); use the service's name, the same on every instance");
        }
        if (!name.equals(name.strip())) {
            throw new IllegalArgumentException(setting + " may not start or end with whitespace, got \""
                    + visible(name) + "\": it would be a dedup scope apart from \"" + visible(name.strip())
                    + "\", and a message processed under one would be applied again under the other; remove the"
                    + " whitespace (a value read from a file or an environment variable often ends with a newline)");
        }
        for (int i = 0; i < name.length(); i++) {
            if (Character.isISOControl(name.charAt(i))) {
                throw new IllegalArgumentException(setting + " may not contain control characters, got \""
                        + visible(name) + "\" (" + String.format("U+%04X", (int) name.charAt(i)) + " at index " + i
                        + "): it would be a dedup scope apart from the name without it; remove it");
            }
        }
        return name;
    }

    /** @return {@code text} with its control characters escaped, so that an error message shows them */
    private static String visible(String text) {
        StringBuilder out = new StringBuilder(text.length());
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isISOControl(c)) {
                out.append(String.format("\\u%04X", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }

    /**
     * Where {@code processed_message} and the business tables live. Either this or {@link
     * #dsl(DSLContext)} is required. Use a pool with at least {@code concurrency(int)}
     * connections.
     *
     * @param dataSource the data source
     * @return this builder
     * @throws NullPointerException when null
     */
    public IdempotentConsumer.Builder dataSource(DataSource dataSource) {
        this.dataSource = Objects.requireNonNull(dataSource, "dataSource may not be null");
        return self();
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
     * @throws IllegalArgumentException when the context holds one connection ({@code
     *     DSL.using(connection, ...)}) or none ({@code DSL.using(dialect)})
     */
    public IdempotentConsumer.Builder dsl(DSLContext dsl) {
        Objects.requireNonNull(dsl, "dsl may not be null");
        ConnectionProvider provider = dsl.configuration().connectionProvider();
        if (provider instanceof DefaultConnectionProvider) {
            // one worker's rollback would undo another's writes and dedup rows, and its commit commit them
            throw new IllegalArgumentException("dsl(...) was given a context over one connection"
                    + " (DSL.using(connection, ...)), which the consumer's workers would share, each rolling back"
                    + " and committing the others' transactions; give one over a pool: DSL.using(dataSource,"
                    + " SQLDialect.POSTGRES), or dataSource(...)");
        }
        if (provider instanceof NoConnectionProvider) {
            throw new IllegalArgumentException("dsl(...) was given a context without a connection (DSL.using(dialect));"
                    + " give one over a pool: DSL.using(dataSource, SQLDialect.POSTGRES), or dataSource(...)");
        }
        this.dsl = dsl;
        return self();
    }

    /**
     * @param schema the schema holding {@code processed_message}; default {@code outbox}
     * @return this builder
     * @throws NullPointerException when null
     * @throws IllegalArgumentException when not a plain lowercase SQL identifier
     */
    public IdempotentConsumer.Builder schema(String schema) {
        this.schema = OutboxMigrations.requireValidSchema(schema);
        return self();
    }

    /**
     * @param handler applies one message in the consumer's transaction; required. When the
     *     OpenTelemetry API is on the class path, each call runs inside a CONSUMER span of {@code
     *     GlobalOpenTelemetry} whose parent is the producer's trace context (the record's {@code
     *     traceparent} and {@code tracestate}), current while the handler runs
     * @return this builder
     * @throws NullPointerException when null
     */
    public IdempotentConsumer.Builder handler(MessageHandler handler) {
        this.handler = Objects.requireNonNull(handler, "handler may not be null");
        return self();
    }

    /**
     * How to find a record's message id. Default: the {@link OutboxHeaders#MESSAGE_ID} header,
     * which must be a UUID in canonical text form. A record for which this gives no id goes to the
     * dead-letter topic unhandled: it is never processed without dedup. An extractor that throws
     * marks the id invalid: the record is dead-lettered with reason {@code invalid-message-id} and the
     * exception's class and message in its {@code dlt-exception-*} headers, and the WARN log line
     * carries the exception with its stack trace.
     *
     * @param extractor the record's message id, or empty
     * @return this builder
     * @throws NullPointerException when null
     */
    public IdempotentConsumer.Builder messageIdExtractor(
            Function<ConsumerRecord<byte[], byte[]>, Optional<UUID>> extractor) {
        this.messageIdExtractor = Objects.requireNonNull(extractor, "messageIdExtractor may not be null");
        return self();
    }
}
