package dev.outbox.relay.internal;

import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.config.TopicConfig;

/**
 * What a topic's replication settings mean for a record Kafka acknowledged to the relay ({@code acks=all}),
 * whose outbox row the relay then deletes: whether the record survives the loss of a broker (G1). Used by
 * the relay, which says so for each topic it publishes to when the topic's state changes, and by the doctor's {@code delivery-durability}
 * check.
 */
public final class TopicReplication {

    /**
     * @param topic a topic as the cluster describes it
     * @return the fewest replicas of any of its partitions, 0 for none: what a record acknowledged on that
     *     partition can count on
     */
    public static int fewestReplicas(TopicDescription topic) {
        return topic.partitions().stream()
                .mapToInt(p -> p.replicas().size())
                .min()
                .orElse(0);
    }

    /** What can happen to an acknowledged record. */
    public enum Risk {
        /** It is on two replicas or more before it is acknowledged, and only an in-sync replica can lead. */
        NONE,
        /** It can be lost with a broker after its row was deleted: a failure of G1's premise. */
        LOSS,
        /** One copy only: lost with its broker's disk. A development cluster. */
        SINGLE_COPY,
        /** Safe, but one broker down stops every write to the topic (nothing is lost; nothing is published). */
        WRITES_STOP
    }

    /**
     * @param replicas the topic's replication factor
     * @param minInsync its {@code min.insync.replicas}
     * @param unclean its {@code unclean.leader.election.enable}
     * @param risk what can happen
     * @param reason why, in words; empty for {@link Risk#NONE}
     */
    public record Finding(int replicas, int minInsync, boolean unclean, Risk risk, String reason) {
        /** @return the three settings, as the relay's log and the doctor's evidence show them */
        public String settings() {
            return "replication factor " + replicas + ", min.insync.replicas " + minInsync
                    + ", unclean.leader.election.enable " + unclean;
        }
    }

    private TopicReplication() {}

    /**
     * @param replicas the topic's replication factor (the fewest replicas of any partition)
     * @param config the topic's configuration as the broker describes it, or null (Kafka's defaults then)
     * @return what can happen to a record acknowledged with {@code acks=all}
     */
    public static Finding of(int replicas, Config config) {
        return of(
                replicas,
                Integer.parseInt(value(config, TopicConfig.MIN_IN_SYNC_REPLICAS_CONFIG, "1")),
                Boolean.parseBoolean(value(config, TopicConfig.UNCLEAN_LEADER_ELECTION_ENABLE_CONFIG, "false")));
    }

    /**
     * @param replicas the topic's replication factor (the fewest replicas of any partition)
     * @param minInsync its {@code min.insync.replicas}
     * @param unclean its {@code unclean.leader.election.enable}
     * @return what can happen to a record acknowledged with {@code acks=all}
     */
    public static Finding of(int replicas, int minInsync, boolean unclean) {
        if (unclean && replicas > 1) {
            return new Finding(
                    replicas,
                    minInsync,
                    unclean,
                    Risk.LOSS,
                    "an out-of-sync replica may become leader and drop acknowledged records");
        }
        if (replicas > 1 && minInsync < 2) {
            return new Finding(
                    replicas,
                    minInsync,
                    unclean,
                    Risk.LOSS,
                    "acks=all is satisfied by the leader alone once the other replicas fall behind; losing that"
                            + " leader loses the records");
        }
        if (replicas <= 1) {
            return new Finding(
                    replicas,
                    minInsync,
                    unclean,
                    Risk.SINGLE_COPY,
                    "one copy of each record: a broker's lost disk loses acknowledged records (development only)");
        }
        if (minInsync >= replicas) {
            return new Finding(
                    replicas,
                    minInsync,
                    unclean,
                    Risk.WRITES_STOP,
                    "one broker down stops every write to the topic: the relay keeps the rows (nothing is lost) but"
                            + " publishes nothing until the replica is back; min.insync.replicas is usually the"
                            + " replication factor minus one");
        }
        return new Finding(replicas, minInsync, unclean, Risk.NONE, "");
    }

    private static String value(Config config, String name, String defaultValue) {
        ConfigEntry entry = config == null ? null : config.get(name);
        return entry == null || entry.value() == null ? defaultValue : entry.value();
    }
}
