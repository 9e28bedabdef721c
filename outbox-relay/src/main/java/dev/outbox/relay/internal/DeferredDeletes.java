package dev.outbox.relay.internal;

import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;

/**
 * The deletes of one shard that its loop does not wait for. Under a steady trickle a shard publishes
 * a few rows a round, and waiting for each round's delete made the relay run a delete statement per
 * probe round. A round that published every row it took cleanly ({@link ShardWorker}) submits its
 * delete deferred ({@link WriteQueue#submitDeferred}, which may wait for others to share the
 * statement) and the shard goes on. Until the delete commits, its ids stay in {@link
 * PendingDeletes}, which the probe's read leaves out. The shard's own reads do not, so the shard
 * waits for its deferred deletes before it reads for itself, and reads ahead only while none is in
 * flight and none left rows behind ({@link #clear()}). It also waits for them before it publishes
 * more once a batch of its published rows is outstanding ({@link #outstanding()}): deletes that do
 * not answer stop the shard with fewer than two batches published and not deleted, and each delete
 * carries fewer than two batches of ids.
 *
 * <p>The ids the shard published whose delete is not known to have committed (in a deferred delete
 * in flight, or left by one that did not delete them) are <em>outstanding</em>, and every later
 * delete of the shard, deferred or waited for, carries them along ({@link #started}, {@link
 * #carrying}): one statement deletes them with the later rows or deletes nothing. So a row the
 * shard published is never deleted while a row it published before is still in the table after a
 * delete that failed (G3): the probe may hand the shard a later row of a key while the delete of its
 * earlier row is in flight, and that delete may still fail after the later one was queued. Without
 * the carried ids the later delete could commit alone, and a crash, hand-back or lost lease before
 * the retry would leave the earlier row to be published again after the later one, the last record
 * of its key. A carried id deleted already is not found again (one index descent, nothing counted).
 *
 * <p>What a deferred delete may find:
 *
 * <ul>
 *   <li>committed with the lease held: its ids (the carried ones included) are no longer outstanding
 *       and leave the registry;
 *   <li>the lease lost: the ids stay outstanding and the shard is dropped at its next round, which
 *       releases them;
 *   <li>a failed statement: the ids stay outstanding, and the shard's next round deletes them again,
 *       waiting for it, before it reads or sends anything. So a live shard never publishes a row
 *       again after later rows of its key;
 *   <li>the queue stopped (the relay is closing), or the shard already stopped: once no deferred
 *       delete of the shard is in flight, what is outstanding is released, and the rows are published
 *       again by the shard's next owner, as after a crash. No later row of the shard was deleted
 *       without them.
 * </ul>
 */
final class DeferredDeletes {
    private final PendingDeletes registry;
    // guarded by this
    private int inFlight;
    private CompletableFuture<Void> settled = CompletableFuture.completedFuture(null);
    // ids published by the shard whose delete is not known to have committed, in the order published
    private final Set<Long> outstanding = new LinkedHashSet<>();
    // the outstanding ids a deferred delete did not delete: the shard deletes them again before it goes on
    private final Set<Long> failed = new HashSet<>();
    private boolean lost;
    private boolean stopped;

    DeferredDeletes(PendingDeletes registry) {
        this.registry = registry;
    }

    /**
     * Registers the ids of a deferred delete before it is submitted.
     *
     * @return the ids the delete must name: {@code ids} and every id still outstanding
     */
    synchronized long[] started(long[] ids) {
        registry.add(ids, this);
        for (long id : ids) {
            outstanding.add(id);
        }
        // decided on the count, not on the future: a delete that finished just before has set the count to 0
        // and completes its future outside this lock, so that future may not be done yet; kept, it would
        // complete with this delete in flight and let the shard stop or read while it still runs
        if (inFlight == 0) {
            settled = new CompletableFuture<>();
        }
        inFlight++;
        return outstandingIds();
    }

    /** @return the ids a delete the shard waits for must name: {@code ids} and every id still outstanding */
    synchronized long[] carrying(long[] ids) {
        if (outstanding.isEmpty()) {
            return ids;
        }
        Set<Long> all = new LinkedHashSet<>(outstanding);
        for (long id : ids) {
            all.add(id);
        }
        return all.stream().mapToLong(Long::longValue).toArray();
    }

    /**
     * Takes the outcome of a deferred delete of {@code ids} (what {@link #started} returned).
     *
     * @param result what the statement found for the shard, or null when it failed
     * @param error why the statement failed, or null
     * @return whether the shard must act on it at its next round ({@link #lost()}, {@link #undeleted()})
     */
    boolean finished(long[] ids, Db.Fenced result, Throwable error) {
        boolean deleted = error == null && result != null && result.leaseHeld();
        boolean attention = false;
        long[] release = null;
        CompletableFuture<Void> done = null;
        synchronized (this) {
            inFlight--;
            if (deleted) {
                forget(ids);
            } else {
                if (error instanceof RejectedExecutionException) {
                    stopped = true; // the relay is closing: no delete of the shard can run any more
                }
                if (!stopped) {
                    for (long id : ids) {
                        if (outstanding.contains(id)) {
                            failed.add(id);
                        }
                    }
                    lost |= error == null;
                    attention = true;
                }
            }
            if (inFlight == 0) {
                if (stopped) {
                    release = releaseAll();
                }
                done = settled;
            }
        }
        if (deleted) {
            registry.deleted(ids, this);
        }
        if (release != null) {
            registry.released(release, this);
        }
        if (done != null) {
            done.complete(null);
        }
        return attention;
    }

    /** @return how many published rows of the shard are not known deleted */
    synchronized int outstanding() {
        return outstanding.size();
    }

    synchronized boolean inFlight() {
        return inFlight > 0;
    }

    /**
     * @return whether every row the shard published is known deleted or in a delete the shard will wait for: no
     *     deferred delete in flight, none that left rows in the table or found the lease lost. Only then may the
     *     shard read ahead, since its reads do not leave out the rows of its deferred deletes
     */
    synchronized boolean clear() {
        return inFlight == 0 && failed.isEmpty() && !lost;
    }

    /** @return completes once no deferred delete of the shard is in flight */
    synchronized CompletableFuture<Void> settled() {
        return settled;
    }

    /** @return whether a deferred delete found the shard's lease lost */
    synchronized boolean lost() {
        return lost;
    }

    /**
     * @return null unless ids a deferred delete did not delete are still outstanding; else every id
     *     outstanding (with those of deferred deletes in flight, if any), which stay registered
     */
    synchronized long[] undeleted() {
        return failed.isEmpty() ? null : outstandingIds();
    }

    /** A delete the shard waited for committed {@code ids} (what {@link #carrying} returned) with the lease held. */
    void committed(long[] ids) {
        synchronized (this) {
            forget(ids);
        }
        registry.deleted(ids, this);
    }

    /**
     * The shard stopped: what it did not delete is publishable again, once no deferred delete of it is
     * in flight (the last one to end releases it).
     */
    void stop() {
        long[] left;
        synchronized (this) {
            stopped = true;
            if (inFlight > 0) {
                return;
            }
            left = releaseAll();
        }
        if (left != null) {
            registry.released(left, this);
        }
    }

    // guarded by this
    private void forget(long[] ids) {
        for (long id : ids) {
            outstanding.remove(id);
            failed.remove(id);
        }
    }

    // guarded by this
    private long[] releaseAll() {
        if (outstanding.isEmpty()) {
            return null;
        }
        long[] left = outstandingIds();
        outstanding.clear();
        failed.clear();
        return left;
    }

    // guarded by this
    private long[] outstandingIds() {
        return outstanding.stream().mapToLong(Long::longValue).toArray();
    }
}
