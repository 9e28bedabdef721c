package dev.outbox.relay.admin;

import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * What a built {@link Doctor} was told: the settings its checks compare the database and Kafka
 * against. Immutable.
 *
 * @param schema the schema of the outbox tables
 * @param keyTtl the key store's ttl
 * @param lockTimeout the key store's lock timeout
 * @param processedRetention the retention of consumers without their own
 * @param consumerRetention each named consumer's retention
 * @param consumerTopics the topics of each named consumer, by consumer name in order
 * @param topics the topics named as the relay's, in order
 * @param kafkaProperties the admin client's properties, or null when Kafka was not given
 * @param purgeGrace how late a purge may be
 * @param maxUnpublishedAge how old the oldest unpublished row may be
 * @param kafkaTimeout how long each Kafka request may take
 */
record DoctorSettings(
        String schema,
        Duration keyTtl,
        Duration lockTimeout,
        Duration processedRetention,
        Map<String, Duration> consumerRetention,
        Map<String, List<String>> consumerTopics,
        List<String> topics,
        Map<String, Object> kafkaProperties,
        Duration purgeGrace,
        Duration maxUnpublishedAge,
        Duration kafkaTimeout) {

    /**
     * @param consumer a consumer name
     * @return its processed-id retention: its own, else {@link #processedRetention}
     */
    Duration retention(String consumer) {
        return consumerRetention.getOrDefault(consumer, processedRetention);
    }
}
