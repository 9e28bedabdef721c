package dev.outbox.relay.internal;

import dev.outbox.core.internal.PrefixedLog;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.kafka.common.PartitionInfo;

/**
 * Tells whether a record Kafka acknowledged survives the loss of a broker, for each topic the relay
 * publishes to ({@link TopicReplication}): the relay deletes a row once its record is acknowledged, so a
 * topic that can lose acknowledged records loses messages (G1). A topic where it can is logged at WARN and
 * counted in the gauge {@code outbox.relay.unsafe.topics}; one copy only, or as many in sync as replicas,
 * is logged at INFO. Asked when a topic's metadata first arrives, without waiting: the configuration
 * comes from the readiness probe's admin client. {@link #recheck} asks again for every topic met, so
 * that a topic whose configuration was fixed leaves the gauge (logged at INFO) and one changed for the
 * worse enters it (logged at WARN); each state is logged once, when the topic enters it. Thread-safe.
 */
final class TopicDurability {
    /** How often the relay reads the configuration of the topics it met again ({@link #recheck}). */
    static final Duration RECHECK_INTERVAL = Duration.ofMinutes(5);

    private final KafkaReadiness kafka;
    private final PrefixedLog log;
    // the topics met, with their fewest replicas of a partition (from the metadata that arrived)
    private final Map<String, Integer> replicas = new ConcurrentHashMap<>();
    private final Set<String> unsafe = ConcurrentHashMap.newKeySet();
    // the topics whose configuration was read once: later reads log only what changed
    private final Set<String> read = ConcurrentHashMap.newKeySet();

    TopicDurability(KafkaReadiness kafka, PrefixedLog log) {
        this.kafka = kafka;
        this.log = log;
    }

    /** @return how many of the topics met so far can lose an acknowledged record, as last read */
    int unsafeTopics() {
        return unsafe.size();
    }

    /**
     * @param topic a topic whose metadata just arrived
     * @param partitions its partitions, with their replicas
     */
    void met(String topic, List<PartitionInfo> partitions) {
        if (partitions == null || partitions.isEmpty()) {
            return;
        }
        int fewest = partitions.stream()
                .mapToInt(p -> p.replicas() == null ? 0 : p.replicas().length)
                .min()
                .orElse(0);
        if (replicas.putIfAbsent(topic, fewest) == null) {
            check(topic, fewest);
        }
    }

    /** Reads the configuration of every topic met again, without waiting. */
    void recheck() {
        replicas.forEach(this::check);
    }

    private void check(String topic, int replicaCount) {
        kafka.topicConfig(topic).whenComplete((config, failure) -> {
            boolean first = read.add(topic);
            if (failure != null) {
                read.remove(topic);
                if (first) {
                    log.info(
                            "topic {}: could not read its configuration to check its replication ({}); the"
                                    + " doctor's delivery-durability check reads it too",
                            topic,
                            failure.toString());
                }
                return;
            }
            TopicReplication.Finding f = TopicReplication.of(replicaCount, config);
            String settings = f.settings();
            if (f.risk() == TopicReplication.Risk.LOSS) {
                if (unsafe.add(topic)) {
                    log.warn(
                            "topic {}: {}: {}. A record acknowledged to the relay, whose outbox row is then deleted,"
                                    + " can be lost with a broker. Set min.insync.replicas=2 (with replication"
                                    + " factor 3) and keep unclean.leader.election.enable false",
                            topic,
                            settings,
                            f.reason());
                }
                return;
            }
            if (unsafe.remove(topic)) {
                log.info("topic {}: {}: an acknowledged record survives the loss of a broker now", topic, settings);
            }
            if (first) {
                switch (f.risk()) {
                    case SINGLE_COPY, WRITES_STOP -> log.info("topic {}: {}: {}", topic, settings, f.reason());
                    default -> log.debug("topic {}: {}", topic, settings);
                }
            }
        });
    }
}
