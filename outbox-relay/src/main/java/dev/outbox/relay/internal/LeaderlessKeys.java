package dev.outbox.relay.internal;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.errors.InterruptException;

/**
 * The keys of one shard whose partition has no leader in the producer's metadata: their rows are not
 * handed to the producer and not read again until it has one. Rows of other partitions go on.
 *
 * <p>A record for a partition without a leader would wait in the producer until {@code
 * delivery.timeout.ms} and then fail; the shard's whole batch would wait for it, and its failure would
 * replace the producer ({@link KeyOrder}) when a later record of the key was queued behind it. Holding
 * the key costs no attempt (the row is not the cause) and keeps its rows in order, since none of them
 * is sent. The producer keeps refreshing the metadata of a partition without a leader by itself, so
 * the check reads only its cache. Keys are mapped to partitions as Kafka's built-in partitioner does;
 * the relay refuses any other partitioner.
 *
 * <p>Confined to the shard's running task.
 */
final class LeaderlessKeys {
    private final Map<String, String> topicOfKey = new HashMap<>();

    boolean isEmpty() {
        return topicOfKey.isEmpty();
    }

    boolean contains(String key) {
        return topicOfKey.containsKey(key);
    }

    /**
     * @return whether the partition of {@code key} in {@code topic} has no leader now; if so, the key is
     *     held from now on
     * @throws RuntimeException what the producer threw when it is unusable ({@link Errors#isFatal}): the
     *     caller replaces it (such a report, a failed sign-in among them, comes only once)
     */
    boolean hold(Producer<byte[], byte[]> producer, String topic, String key) {
        if (key == null || !leaderless(producer, topic, key)) {
            return false;
        }
        topicOfKey.put(key, topic);
        return true;
    }

    /** @return the keys held now */
    String[] keys() {
        return topicOfKey.keySet().toArray(String[]::new);
    }

    /**
     * Lets go of the keys whose partition has a leader again.
     *
     * @return the keys still held
     * @throws RuntimeException what the producer threw when it is unusable: the caller replaces it
     */
    String[] refresh(Producer<byte[], byte[]> producer) {
        for (Iterator<Map.Entry<String, String>> it = topicOfKey.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<String, String> e = it.next();
            if (!leaderless(producer, e.getValue(), e.getKey())) {
                it.remove();
            }
        }
        return keys();
    }

    /**
     * @return whether the producer's cached metadata knows the topic and shows no leader for the key's
     *     partition; false when it does not know (a send then waits for the metadata as usual)
     * @throws RuntimeException what the producer threw when it leaves it unusable: swallowed, a report
     *     that comes once (a failed sign-in) would leave the producer unreplaced, its sends only timing out
     */
    static boolean leaderless(Producer<byte[], byte[]> producer, String topic, String key) {
        List<PartitionInfo> partitions;
        try {
            partitions = producer.partitionsFor(topic);
        } catch (RuntimeException e) {
            if (Errors.isFatal(e) && !(e instanceof InterruptException)) {
                throw e;
            }
            return false;
        }
        if (partitions == null || partitions.isEmpty()) {
            return false;
        }
        int p = BuiltInPartitioner.partitionForKey(key.getBytes(StandardCharsets.UTF_8), partitions.size());
        for (PartitionInfo info : partitions) {
            if (info.partition() == p) {
                return info.leader() == null || info.leader().isEmpty();
            }
        }
        return false;
    }
}
