package dev.outbox.relay.internal;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The ids of published rows whose delete a shard submitted without waiting for it ({@link
 * DeferredDeletes}), relay-wide. Until that delete commits the rows are still in the table, so the
 * probe's read leaves these ids out: it never hands a shard a row the shard already published. An id
 * is registered before its delete is submitted and removed only once the delete committed, or once its
 * shard stopped without deleting it (the rows are then the next owner's to publish again).
 */
final class PendingDeletes {
    private static final long[] NONE = new long[0];

    private final Set<Long> ids = ConcurrentHashMap.newKeySet();
    // ids were removed without being deleted: the probe's next read must not be skipped
    private volatile boolean released;

    void add(long[] rows) {
        for (long id : rows) {
            ids.add(id);
        }
    }

    /** The rows' delete committed. */
    void deleted(long[] rows) {
        for (long id : rows) {
            ids.remove(id);
        }
    }

    /**
     * The rows' shard stopped without deleting them: they are publishable again. No transaction
     * needs to end for that, so the probe's next read runs whatever the snapshot ({@link
     * #takeReleased()}).
     */
    void released(long[] rows) {
        deleted(rows);
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
        return ids.stream().mapToLong(Long::longValue).toArray();
    }
}
