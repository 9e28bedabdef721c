package dev.outbox.relay.internal;

import dev.outbox.core.internal.PrefixedLog;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.kafka.common.PartitionInfo;

/**
 * Tells, once per topic the relay publishes to, whether a record Kafka acknowledged survives the loss of a
 * broker ({@link TopicReplication}): the relay deletes a row once its record is acknowledged, so a topic
 * that can lose acknowledged records loses messages (G1). A topic where it can is logged at WARN and
 * counted in the gauge {@code outbox.relay.unsafe.topics}; one copy only, or as many in sync as replicas,
 * is logged at INFO. Asked when a topic's metadata first arrives, without waiting: the configuration
 * comes from the readiness probe's admin client. Thread-safe.
 */
final class TopicDurability {
    private final KafkaReadiness kafka;
    private final PrefixedLog log;
    private final Set<String> asked = ConcurrentHashMap.newKeySet();
    private final Set<String> unsafe = ConcurrentHashMap.newKeySet();

    TopicDurability(KafkaReadiness kafka, PrefixedLog log) {
        this.kafka = kafka;
        this.log = log;
    }

    /** @return how many of the topics met so far can lose an acknowledged record */
    int unsafeTopics() {
        return unsafe.size();
    }

    /**
     * @param topic a topic whose metadata just arrived
     * @param partitions its partitions, with their replicas
     */
    void met(String topic, List<PartitionInfo> partitions) {
        if (partitions == null || partitions.isEmpty() || !asked.add(topic)) {
            return;
        }
        int replicas = partitions.stream()
                .mapToInt(p -> p.replicas() == null ? 0 : p.replicas().length)
                .min()
                .orElse(0);
        kafka.topicConfig(topic).whenComplete((config, failure) -> {
            if (failure != null) {
                log.info(
                        "topic {}: could not read its configuration to check its replication ({}); the doctor's"
                                + " delivery-durability check reads it too",
                        topic,
                        failure.toString());
                return;
            }
            TopicReplication.Finding f = TopicReplication.of(replicas, config);
            String settings = f.settings();
            switch (f.risk()) {
                case LOSS -> {
                    unsafe.add(topic);
                    log.warn(
                            "topic {}: {}: {}. A record acknowledged to the relay, whose outbox row is then deleted,"
                                    + " can be lost with a broker. Set min.insync.replicas=2 (with replication factor"
                                    + " 3) and keep unclean.leader.election.enable false",
                            topic,
                            settings,
                            f.reason());
                }
                case SINGLE_COPY, WRITES_STOP -> log.info("topic {}: {}: {}", topic, settings, f.reason());
                case NONE -> log.debug("topic {}: {}", topic, settings);
            }
        });
    }
}
