package dev.outbox.relay.internal;

import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * Keeps a later record of a key from reaching Kafka ahead of an earlier one of the same batch that
 * failed.
 *
 * <p>The producer holds several batches per partition. A batch that expires in the producer's
 * accumulator before it was ever sent (its partition had no leader for {@code delivery.timeout.ms})
 * never received a sequence number, so idempotence does not stop the next batch of that partition,
 * created a little later, from being written once the leader is back. Its records would then appear
 * before the expired ones, which the shard re-sends only afterwards. So on the first failure of a
 * record while a record of the same key is still unanswered, the producer is replaced and the old one
 * closed without waiting: everything it still holds fails and is re-sent in order by the next round,
 * which can only add duplicates. A key with a failed record sends nothing more in the batch. The old
 * producer is closed even when its successor cannot be created ({@link Publisher#replace}).
 *
 * <p>Callbacks run on the producer's I/O thread, the send loop on a worker: the state is guarded by
 * this object.
 */
final class KeyOrder {
    private final Publisher publisher;
    private final Publisher.Generation producer;
    private final Map<String, Integer> unanswered = new HashMap<>();
    private final Set<String> failed = new HashSet<>();
    private volatile boolean stoppedProducer;

    KeyOrder(Publisher publisher, Publisher.Generation producer) {
        this.publisher = publisher;
        this.producer = producer;
    }

    /**
     * Registers a record of {@code key} as handed to the producer, unless an earlier record of the key
     * failed in this batch. One step, so that a failure arriving meanwhile sees this record unanswered.
     *
     * @return whether the record may be handed to the producer
     */
    synchronized boolean hand(String key) {
        if (key == null) {
            return true;
        }
        if (failed.contains(key)) {
            return false;
        }
        unanswered.merge(key, 1, Integer::sum);
        return true;
    }

    /**
     * A record of {@code key} that was {@link #hand handed} is answered; on a failure while a later record of
     * the key is still with the producer, the producer is replaced.
     *
     * <p>The producer answers the records of a partition in the order they were sent, so when a record's
     * failure arrives from the producer's I/O thread, every record of its key still unanswered was sent
     * after it. A failure reported inside {@code send()} itself (a record larger than {@code
     * max.request.size}, a full buffer) arrives before the answers of the key's earlier records, and no
     * later record of the key has been handed yet (none is after a failure): the records still unanswered
     * are earlier ones, which nothing can overtake, and the producer is kept.
     *
     * @param error null when it was acknowledged
     * @param inSend whether the answer came from inside the {@code send()} of this record, on the sending
     *     thread
     */
    void answered(String key, Throwable error, boolean inSend) {
        if (key == null) {
            return;
        }
        boolean stop;
        synchronized (this) {
            int left = unanswered.merge(key, -1, Integer::sum);
            if (error == null) {
                return;
            }
            stop = failed.add(key) && left > 0 && !inSend;
        }
        if (stop) {
            stoppedProducer = true;
            stopProducer(publisher, producer, error);
        }
    }

    /** @return whether this batch's failure replaced the producer (its failure is news about Kafka) */
    boolean stoppedProducer() {
        return stoppedProducer;
    }

    /**
     * Replaces {@code producer}; when the relay is closing and it is not replaced, closes it without
     * waiting anyway, so that nothing it holds is written after the failed record. Never creates a
     * producer itself nor throws for want of one: it runs in a callback on the producer's I/O thread,
     * and the batch's answer is recorded after it.
     */
    static void stopProducer(Publisher publisher, Publisher.Generation producer, Throwable why) {
        publisher.replace(producer, why);
        if (publisher.isCurrent(producer)) {
            try {
                producer.producer().close(Duration.ZERO);
            } catch (RuntimeException e) {
                // already closing
            }
        }
    }
}
