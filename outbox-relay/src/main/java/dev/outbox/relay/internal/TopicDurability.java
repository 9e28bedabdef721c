package dev.outbox.relay.internal;

import dev.outbox.core.internal.PrefixedLog;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

/**
 * Tells whether a record Kafka acknowledged survives the loss of a broker, for each topic the relay
 * publishes to ({@link TopicReplication}): the relay deletes a row once its record is acknowledged, so a
 * topic that can lose acknowledged records loses messages (G1). A topic where it can is logged at WARN and
 * counted in the gauge {@code outbox.relay.unsafe.topics}; one copy only, or as many in sync as replicas,
 * is logged at INFO. Asked when a topic's metadata first arrives (or arrives with another replica count),
 * without waiting: the configuration comes from the readiness probe's admin client. {@link #recheck} asks
 * again for every topic met, its replicas and its configuration, so that a topic whose configuration was
 * fixed leaves the gauge (logged at INFO), one changed for the worse enters it (logged at WARN), and one
 * deleted is forgotten until its metadata arrives again. Each state is logged when the topic enters it,
 * not at every read; so is a configuration that cannot be read (a missing {@code DescribeConfigs}
 * permission, say), once until a read succeeds. An answer older than one already applied for the same
 * topic is ignored. Thread-safe.
 */
final class TopicDurability {
    /** How often the relay reads the replicas and configuration of the topics it met again ({@link #recheck}). */
    static final Duration RECHECK_INTERVAL = Duration.ofMinutes(5);

    /** Where a topic's replicas and configuration are read: the readiness probe's admin client. */
    interface Topics {
        /** @return the topic's configuration, or a failure; not waited for */
        CompletionStage<Config> topicConfig(String topic);

        /** @return the fewest replicas of any of the topic's partitions, or a failure; not waited for */
        CompletionStage<Integer> fewestReplicas(String topic);
    }

    private final Topics kafka;
    private final PrefixedLog log;
    // guarded by this: per topic met, its fewest replicas of a partition, the number of its latest read
    // asked and of its latest read applied, and whether a read of it failed since the last that succeeded
    private final Map<String, Topic> topics = new HashMap<>();
    private final Set<String> unsafe = new HashSet<>();
    private long reads;

    private static final class Topic {
        int replicas;
        long asked;
        long applied;
        boolean read;
        boolean unreadable;

        Topic(int replicas) {
            this.replicas = replicas;
        }
    }

    TopicDurability(Topics kafka, PrefixedLog log) {
        this.kafka = kafka;
        this.log = log;
    }

    /** @return how many of the topics met so far can lose an acknowledged record, as last read */
    synchronized int unsafeTopics() {
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
        long read;
        synchronized (this) {
            Topic t = topics.get(topic);
            if (t != null && t.replicas == fewest) {
                return;
            }
            if (t == null) {
                t = new Topic(fewest);
                topics.put(topic, t);
            }
            t.replicas = fewest;
            read = t.asked = ++reads;
        }
        int replicas = fewest;
        kafka.topicConfig(topic).whenComplete((config, failure) -> answered(topic, read, replicas, config, failure));
    }

    /** Reads the replicas and the configuration of every topic met again, without waiting. */
    void recheck() {
        Map<String, Long> asked = new HashMap<>();
        synchronized (this) {
            topics.forEach((topic, t) -> asked.put(topic, t.asked = ++reads));
        }
        asked.forEach((topic, read) -> {
            CompletionStage<Integer> replicas = kafka.fewestReplicas(topic);
            CompletionStage<Config> config = kafka.topicConfig(topic);
            replicas.thenCombine(config, Answer::new)
                    .whenComplete((a, failure) ->
                            answered(topic, read, a == null ? 0 : a.replicas, a == null ? null : a.config, failure));
        });
    }

    private record Answer(int replicas, Config config) {}

    private synchronized void answered(String topic, long read, int replicas, Config config, Throwable failure) {
        Topic t = topics.get(topic);
        if (t == null || read <= t.applied) {
            return; // forgotten meanwhile, or a later read was applied already
        }
        t.applied = read;
        Throwable cause = cause(failure);
        if (cause instanceof UnknownTopicOrPartitionException) {
            topics.remove(topic);
            if (unsafe.remove(topic)) {
                log.info("topic {}: it no longer exists; not counted as unsafe until it is met again", topic);
            }
            return;
        }
        if (failure != null) {
            if (!t.unreadable) {
                t.unreadable = true;
                log.info(
                        "topic {}: could not read its configuration to check its replication ({}); the"
                                + " doctor's delivery-durability check reads it too",
                        topic,
                        cause.toString());
            }
            return; // counted as last read
        }
        t.unreadable = false;
        t.replicas = replicas;
        boolean first = !t.read;
        t.read = true;
        TopicReplication.Finding f = TopicReplication.of(replicas, config);
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
    }

    private static Throwable cause(Throwable failure) {
        Throwable t = failure;
        while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }
}
