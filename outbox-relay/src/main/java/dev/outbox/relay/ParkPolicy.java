package dev.outbox.relay;

/**
 * What the relay does with the other messages of a key when one of its messages can never be
 * published (record too large, invalid or unauthorized topic, ...) or failed retriably {@link
 * Relay.Builder#maxAttempts(int) maxAttempts} times while Kafka worked for other records (a topic
 * that does not exist, ...). The failing row itself is always parked: {@code parked_at} set, {@code
 * last_error} kept, skipped by the read path until an operator requeues or purges it (guarantee
 * G7). While such a row is still being retried, the later rows of its key wait behind it under
 * either policy.
 */
public enum ParkPolicy {
    /**
     * Park the row and keep publishing everything else, later messages of the same key included.
     * The key's order is broken around the parked message (it is published after its successors if
     * it is ever requeued), but nothing waits for an operator. The default.
     */
    PARK_AND_CONTINUE,

    /**
     * Park the row and hold back the later messages of the same key (same shard, same key, greater
     * id) until the parked row is requeued or purged; other keys keep flowing. Keeps the key's order
     * (G3) at the price of a stalled key, visible in the backlog and parked metrics.
     *
     * <p>Holding is exact for errors the producer reports before a record leaves the relay (record
     * larger than {@code max.request.size}, topic invalid or unauthorized at the metadata lookup): the
     * rest of the key in that batch is not sent. A rejection that comes back from the broker
     * asynchronously arrives after the batch's later records of that key may already have been
     * written; those stay published.
     */
    HOLD_KEY
}
