package dev.outbox.relay.internal;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The ids of published rows whose delete a shard submitted without waiting for it ({@link
 * DeferredDeletes}), relay-wide. Until that delete commits the rows are still in the table, so the
 * probe's read leaves these ids out: it never hands a shard a row the shard already published. An id
 * is registered before its delete is submitted and removed only once the delete committed, or once its
 * shard stopped without deleting it (the rows are then the next owner's to publish again).
 *
 * <p>Each id is registered by the shard worker's {@link DeferredDeletes} that submitted it, and only
 * that one removes it: a shard dropped and claimed again by the same relay has two workers for a while,
 * and the old one releasing its ids must not unregister the same rows that the new one published
 * again and whose delete is in flight (the probe would hand them to the new worker, which would publish
 * them once more, after later rows of their keys).
 */
final class PendingDeletes {
    private static final long[] NONE = new long[0];

    private final Map<Long, Object> ids = new ConcurrentHashMap<>();
    // ids were removed without being deleted: the probe's next read must not be skipped
    private volatile boolean released;

    /** {@code owner} submits a delete of {@code rows}: from now on they are its to remove. */
    void add(long[] rows, Object owner) {
        for (long id : rows) {
            ids.put(id, owner);
        }
    }

    /** The rows' delete committed; ids another owner registered since stay. */
    void deleted(long[] rows, Object owner) {
        for (long id : rows) {
            ids.remove(id, owner);
        }
    }

    /**
     * The rows' shard stopped without deleting them: they are publishable again. No transaction
     * needs to end for that, so the probe's next read runs whatever the snapshot ({@link
     * #takeReleased()}). Ids another owner registered since stay.
     */
    void released(long[] rows, Object owner) {
        deleted(rows, owner);
        released = true;
    }

    /** @return whether rows were released since the last call */
    boolean takeReleased() {
        if (!released) {
            return false;
        }
        released = false;
        return true;
    }

    /** @return the ids registered now, in no particular order */
    long[] ids() {
        if (ids.isEmpty()) {
            return NONE;
        }
        return ids.keySet().stream().mapToLong(Long::longValue).toArray();
    }
}
