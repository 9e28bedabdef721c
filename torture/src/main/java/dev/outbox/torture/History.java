package dev.outbox.torture;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.UUID;

/**
 * Everything a run recorded, gathered after it drained: what the writers committed and rolled
 * back, every record on the topics, the consumers' effects, what is left in the outbox, the HTTP
 * operations and the faults injected. {@link Checker} judges it and touches nothing else.
 *
 * @param committed messages whose transaction committed (read back from the database)
 * @param aborted message ids whose transaction did not commit (rolled back on purpose, or a
 *     commit that failed and left no row)
 * @param records every record of the message topic, partition by partition in offset order
 * @param effects charge rows per message id, as the consumers wrote them
 * @param totals each key's running total as the consumers kept it
 * @param unpublishedRows outbox rows neither published nor parked
 * @param parkedRows outbox rows parked by the relay
 * @param http the HTTP operations sent through the orders service
 * @param publishedOrderIds order ids found as record keys on the orders topic
 * @param faults faults injected, by kind (in the order they are printed)
 */
public record History(
        List<Committed> committed,
        Set<UUID> aborted,
        List<TopicRecord> records,
        Map<UUID, Integer> effects,
        Map<String, Total> totals,
        long unpublishedRows,
        long parkedRows,
        List<HttpOperation> http,
        Set<String> publishedOrderIds,
        Map<String, Long> faults) {

    /** Copies every collection, so a history cannot change under the checker. */
    public History {
        committed = List.copyOf(committed);
        aborted = Set.copyOf(aborted);
        records = List.copyOf(records);
        effects = Map.copyOf(effects);
        totals = Map.copyOf(totals);
        http = List.copyOf(http);
        publishedOrderIds = Set.copyOf(publishedOrderIds);
        faults = Collections.unmodifiableMap(new LinkedHashMap<>(faults));
    }

    /**
     * A committed message.
     *
     * @param id its message id
     * @param key its key
     * @param seq its key's sequence number, taken under the key's row lock in the committing
     *     transaction: commit order within the key
     * @param amount the amount the consumers add to the key's running total
     */
    public record Committed(UUID id, String key, long seq, long amount) {
        public Committed {
            Objects.requireNonNull(id, "id");
            Objects.requireNonNull(key, "key");
        }
    }

    /**
     * One record read back from the message topic.
     *
     * @param partition its partition
     * @param offset its offset
     * @param key its key
     * @param id the message id in its headers
     * @param injected whether the run's duplicator wrote it (a duplicate delivered on purpose)
     * @param timestamp its timestamp (the producer's send time), in epoch milliseconds
     */
    public record TopicRecord(int partition, long offset, String key, UUID id, boolean injected, long timestamp) {}

    /**
     * A key's running total as kept by the consumers.
     *
     * @param applied how many messages were added to it
     * @param total the sum of their amounts
     */
    public record Total(long applied, long total) {}

    /**
     * One logical HTTP operation (one Idempotency-Key, retried as needed).
     *
     * @param clientRef the operation's reference, stored on the order it creates
     * @param orderIds orders created under this reference
     * @param answered whether the client got a final 201 in the end
     */
    public record HttpOperation(String clientRef, List<String> orderIds, boolean answered) {
        public HttpOperation {
            orderIds = List.copyOf(orderIds);
        }
    }
}
