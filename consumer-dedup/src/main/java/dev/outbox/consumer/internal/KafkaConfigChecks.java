package dev.outbox.consumer.internal;

import dev.outbox.core.internal.Durations;
import dev.outbox.core.internal.TopicNames;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/** The builder's checks of the Kafka clients' properties and topic names. */
public final class KafkaConfigChecks {
    /** Kafka's default {@code max.poll.interval.ms}. */
    private static final long DEFAULT_MAX_POLL_INTERVAL_MS = 300_000;
    /**
     * The longest gap between two polls, in close timeouts: a revocation's wait for the transactions in
     * flight and its offset commit, inside a poll, then the poll loop's own offset commit.
     */
    static final int POLL_GAP_IN_CLOSE_TIMEOUTS = 3;

    private KafkaConfigChecks() {}

    /**
     * @param producerProperties the dead-letter producer's properties as set
     * @param closeTimeout the consumer's close timeout, the longest {@code max.block.ms}
     * @throws IllegalArgumentException when {@code acks} is not {@code all}, {@code max.block.ms} is
     *     not a number of milliseconds within the close timeout, or {@code transactional.id} is set (the
     *     dead-letter producer never calls {@code initTransactions()}, so every send would fail)
     */
    public static void checkProducerProperties(Map<String, Object> producerProperties, Duration closeTimeout) {
        if (producerProperties.containsKey(ProducerConfig.TRANSACTIONAL_ID_CONFIG)) {
            throw new IllegalArgumentException("Invalid configuration " + ProducerConfig.TRANSACTIONAL_ID_CONFIG + "="
                    + producerProperties.get(ProducerConfig.TRANSACTIONAL_ID_CONFIG) + " in producerProperties: the"
                    + " dead-letter producer sends each dead letter on its own, outside any Kafka transaction, and never"
                    + " calls initTransactions(), so with a transactional.id every send would fail (IllegalStateException)"
                    + " and the record's partition would be retried for ever; remove it (the producer is already"
                    + " idempotent, with acks=all)");
        }
        Object acks = producerProperties.get(ProducerConfig.ACKS_CONFIG);
        if (acks != null
                && !"all".equalsIgnoreCase(acks.toString().strip())
                && !"-1".equals(acks.toString().strip())) {
            throw new IllegalArgumentException(
                    "Invalid value " + acks + " for configuration acks in producerProperties:"
                            + " a dead-lettered record's offset moves on once the broker acknowledged it, so the dead-letter producer"
                            + " needs acks=all; remove it or set it to all");
        }
        Object maxBlock = producerProperties.get(ProducerConfig.MAX_BLOCK_MS_CONFIG);
        if (maxBlock != null) {
            long ms = millis(maxBlock, ProducerConfig.MAX_BLOCK_MS_CONFIG, "producerProperties");
            if (ms < 0 || ms > closeTimeout.toMillis()) {
                throw new IllegalArgumentException("Invalid value " + maxBlock + " for configuration max.block.ms in"
                        + " producerProperties: a dead-letter publish holds a worker thread at most closeTimeout ("
                        + Durations.format(closeTimeout) + "); set it between 0 and that, or raise closeTimeout(...)");
            }
        }
    }

    /**
     * @param consumerProperties the consumer's properties, as {@link #consumerProperties} returns them
     * @param closeTimeout the consumer's close timeout
     * @throws IllegalArgumentException when {@code max.poll.interval.ms} is not above three times the
     *     close timeout: a revocation waits up to {@code closeTimeout} for the transactions in flight,
     *     then up to as long for the offset commit, inside a poll; the poll loop's own offset commit of
     *     the partitions kept (a cooperative rebalance keeps some) can follow it, up to as long again,
     *     before the next poll; and a member whose poll loop stays away longer than {@code
     *     max.poll.interval.ms} is put out of its group, its partitions handed over while its
     *     transactions may still commit
     */
    public static void checkRevocationFits(Map<String, Object> consumerProperties, Duration closeTimeout) {
        Object value = consumerProperties.get(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG);
        long maxPollInterval = value == null
                ? DEFAULT_MAX_POLL_INTERVAL_MS
                : millis(value, ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, "kafkaProperties");
        if (maxPollInterval < 1) {
            throw new IllegalArgumentException("Invalid value " + value + " for configuration max.poll.interval.ms in"
                    + " kafkaProperties: Value must be at least 1");
        }
        if (maxPollInterval
                <= Math.multiplyExact(
                        Math.min(closeTimeout.toMillis(), Long.MAX_VALUE / POLL_GAP_IN_CLOSE_TIMEOUTS),
                        POLL_GAP_IN_CLOSE_TIMEOUTS)) {
            throw new IllegalArgumentException("max.poll.interval.ms ("
                    + Durations.format(Duration.ofMillis(maxPollInterval))
                    + (value == null ? ", Kafka's default" : "") + ") must be above three times closeTimeout ("
                    + Durations.format(closeTimeout) + ", so above "
                    + Durations.format(closeTimeout.multipliedBy(POLL_GAP_IN_CLOSE_TIMEOUTS))
                    + "): a partition revocation waits up to closeTimeout for the transactions in flight and as"
                    + " long again for the offset commit, inside a poll, the poll loop's own offset commit can follow"
                    + " it before the next poll, up to closeTimeout too, and a consumer away from its poll loop for"
                    + " max.poll.interval.ms leaves its group while its transactions may still commit; lower"
                    + " closeTimeout(...) or raise max.poll.interval.ms in kafkaProperties");
        }
    }

    /**
     * @return {@code value} of the client property {@code key}, set in {@code where}, as milliseconds
     * @throws IllegalArgumentException when it is not a whole number
     */
    private static long millis(Object value, String key, String where) {
        try {
            return Long.parseLong(value.toString().strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(
                    "Invalid value " + value + " for configuration " + key + " in " + where
                            + ": Value must be a number of milliseconds",
                    e);
        }
    }

    /** @throws IllegalStateException when a name is not a valid Kafka topic name */
    public static void checkDeadLetterTopics(List<String> names) {
        for (String name : names) {
            if (!TopicNames.isValid(name)) {
                throw new IllegalStateException("dead-letter topic \"" + name
                        + "\" is not a valid Kafka topic name (" + TopicNames.RULE
                        + "); set deadLetterTopic(...) to a valid name");
            }
        }
    }

    /**
     * @param kafkaProperties the consumer's properties as set
     * @return them with the consumer's fixed settings (no auto-commit, byte[] deserializers) and
     *     defaults ({@code auto.offset.reset=earliest})
     * @throws IllegalArgumentException when a required property is missing or one has a value the
     *     consumer cannot work with
     */
    public static Map<String, Object> consumerProperties(Map<String, Object> kafkaProperties) {
        Map<String, Object> props = new LinkedHashMap<>(kafkaProperties);
        requireText(props, ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, "the Kafka brokers, e.g. kafka:9092");
        requireText(props, ConsumerConfig.GROUP_ID_CONFIG, "the consumer group, usually the consumer name");
        Object autoCommit = props.get(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG);
        if (autoCommit != null
                && !"false".equalsIgnoreCase(autoCommit.toString().strip())) {
            throw new IllegalArgumentException("Invalid value " + autoCommit + " for configuration "
                    + ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG
                    + ": the idempotent consumer commits offsets itself, only after"
                    + " the database transaction committed; remove it or set it to false");
        }
        for (String key :
                List.of(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG)) {
            Object value = props.get(key);
            if (value != null
                    && !ByteArrayDeserializer.class.getName().equals(value.toString())
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
            throw new IllegalArgumentException(
                    "Missing required configuration " + key + " in kafkaProperties: set it to " + what);
        }
    }
}
