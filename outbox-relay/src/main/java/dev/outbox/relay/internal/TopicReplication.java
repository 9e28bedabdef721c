package dev.outbox.relay.internal;

/**
 * What a topic's replication settings mean for a record Kafka acknowledged to the relay ({@code acks=all}),
 * whose outbox row the relay then deletes: whether the record survives the loss of a broker (G1). Used by
 * the relay, which says so once per topic it publishes to, and by the doctor's {@code delivery-durability}
 * check.
 */
public final class TopicReplication {

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
     * @param risk what can happen
     * @param reason why, in words; empty for {@link Risk#NONE}
     */
    public record Finding(Risk risk, String reason) {}

    private TopicReplication() {}

    /**
     * @param replicas the topic's replication factor (the fewest replicas of any partition)
     * @param minInsync its {@code min.insync.replicas}
     * @param unclean its {@code unclean.leader.election.enable}
     * @return what can happen to a record acknowledged with {@code acks=all}
     */
    public static Finding of(int replicas, int minInsync, boolean unclean) {
        if (unclean && replicas > 1) {
            return new Finding(Risk.LOSS, "an out-of-sync replica may become leader and drop acknowledged records");
        }
        if (replicas > 1 && minInsync < 2) {
            return new Finding(
                    Risk.LOSS,
                    "acks=all is satisfied by the leader alone once the other replicas fall behind; losing that"
                            + " leader loses the records");
        }
        if (replicas <= 1) {
            return new Finding(
                    Risk.SINGLE_COPY,
                    "one copy of each record: a broker's lost disk loses acknowledged records (development only)");
        }
        if (minInsync >= replicas) {
            return new Finding(
                    Risk.WRITES_STOP,
                    "one broker down stops every write to the topic: the relay keeps the rows (nothing is lost) but"
                            + " publishes nothing until the replica is back; min.insync.replicas is usually the"
                            + " replication factor minus one");
        }
        return new Finding(Risk.NONE, "");
    }
}
