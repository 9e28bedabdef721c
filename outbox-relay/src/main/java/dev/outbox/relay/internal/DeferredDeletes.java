package dev.outbox.relay.internal;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
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
 * flight.
 *
 * <p>What a deferred delete may find:
 *
 * <ul>
 *   <li>committed with the lease held: its ids leave the registry;
 *   <li>the lease lost: the ids stay registered and the shard is dropped at its next round, which
 *       releases them;
 *   <li>a failed statement: the ids stay registered, and the shard's next round deletes them again,
 *       waiting for it, before it reads or sends anything. So a live shard never publishes a row
 *       again after later rows of its key;
 *   <li>the queue stopped (the relay is closing), or the shard already stopped: the ids are released,
 *       and the rows are published again by the shard's next owner, as after a crash.
 * </ul>
 */
final class DeferredDeletes {
    private final PendingDeletes registry;
    // guarded by this
    private int inFlight;
    private CompletableFuture<Void> settled = CompletableFuture.completedFuture(null);
    // ids of deferred deletes that did not delete them (a failed statement or a lost lease)
    private final List<long[]> undeleted = new ArrayList<>();
    private boolean lost;
    private boolean stopped;

    DeferredDeletes(PendingDeletes registry) {
        this.registry = registry;
    }

    /** Registers the ids before their delete is submitted. */
    void started(long[] ids) {
        registry.add(ids);
        synchronized (this) {
            inFlight++;
            if (settled.isDone()) {
                settled = new CompletableFuture<>();
            }
        }
    }

    /**
     * Takes the outcome of a deferred delete of {@code ids}.
     *
     * @param result what the statement found for the shard, or null when it failed
     * @param error why the statement failed, or null
     * @return whether the shard must act on it at its next round ({@link #lost()}, {@link #undeleted()})
     */
    boolean finished(long[] ids, Db.Fenced result, Throwable error) {
        boolean deleted = error == null && result != null && result.leaseHeld();
        boolean release = false;
        boolean attention = false;
        CompletableFuture<Void> done = null;
        synchronized (this) {
            inFlight--;
            if (!deleted) {
                if (stopped || error instanceof RejectedExecutionException) {
                    release = true;
                } else {
                    undeleted.add(ids);
                    lost |= error == null;
                    attention = true;
                }
            }
            if (inFlight == 0) {
                done = settled;
            }
        }
        if (deleted) {
            registry.deleted(ids);
        } else if (release) {
            registry.released(ids);
        }
        if (done != null) {
            done.complete(null);
        }
        return attention;
    }

    synchronized boolean inFlight() {
        return inFlight > 0;
    }

    /** @return completes once no deferred delete of the shard is in flight */
    synchronized CompletableFuture<Void> settled() {
        return settled;
    }

    /** @return whether a deferred delete found the shard's lease lost */
    synchronized boolean lost() {
        return lost;
    }

    /** @return the ids of deferred deletes that did not delete them, or null; they stay registered */
    synchronized long[] undeleted() {
        if (undeleted.isEmpty()) {
            return null;
        }
        return undeleted.stream().flatMapToLong(Arrays::stream).toArray();
    }

    /** The ids {@link #undeleted()} returned were deleted (by a delete the shard waited for). */
    void retried(long[] ids) {
        synchronized (this) {
            undeleted.clear();
        }
        registry.deleted(ids);
    }

    /** The shard stopped: what it did not delete is publishable again; a delete still in flight releases its ids when it ends. */
    void stop() {
        long[] left;
        synchronized (this) {
            stopped = true;
            left = undeleted();
            undeleted.clear();
        }
        if (left != null) {
            registry.released(left);
        }
    }
}
