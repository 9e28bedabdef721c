package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.sql.SQLException;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

/** Decision logic of {@link DeferredDeletes} and its relay-wide {@link PendingDeletes}. */
class DeferredDeletesTest {

    /**
     * G3 across a shard dropped and claimed again by the same relay: the old worker's deferred delete
     * of row 1 is fenced (its epoch is gone) while the new worker has published row 1 again, with a
     * later row 2 of its key, and deferred their delete. The old worker releasing row 1 must leave it
     * registered: otherwise the probe hands row 1 to the new worker, which publishes it once more,
     * after row 2, while the delete of both is still in flight (an older message of the key last).
     */
    @Test
    void anOldWorkersReleaseLeavesTheIdsANewWorkerRegistered() {
        PendingDeletes registry = new PendingDeletes();
        DeferredDeletes old = new DeferredDeletes(registry);
        DeferredDeletes next = new DeferredDeletes(registry);

        long[] oldDelete = old.started(new long[] {1});
        long[] nextDelete = next.started(new long[] {1, 2});
        assertThat(registry.ids()).containsExactlyInAnyOrder(1L, 2L);

        assertThat(old.finished(oldDelete, new Db.Fenced(false, 0), null))
                .as("the old worker's lease is lost")
                .isTrue();
        old.stop();
        assertThat(registry.takeReleased()).isTrue();
        assertThat(registry.ids())
                .as("row 1 is the new worker's, its delete in flight: still left out of the probe's reads")
                .containsExactlyInAnyOrder(1L, 2L);

        next.finished(nextDelete, new Db.Fenced(true, 2), null);
        assertThat(registry.ids()).isEmpty();
    }

    /** Without a second worker, a stopped shard's undeleted rows are released for the next owner. */
    @Test
    void aStoppedShardsUndeletedRowsAreReleased() {
        PendingDeletes registry = new PendingDeletes();
        DeferredDeletes deletes = new DeferredDeletes(registry);
        long[] ids = deletes.started(new long[] {7, 8});
        deletes.stop();
        assertThat(registry.ids()).as("in flight: still registered").containsExactlyInAnyOrder(7L, 8L);
        deletes.finished(ids, null, new SQLException("connection reset"));
        assertThat(registry.ids()).isEmpty();
        assertThat(registry.takeReleased()).isTrue();
    }

    /**
     * A deferred delete that starts while the previous one is finishing (its count already 0, its
     * future not yet completed: the registry's removal of its ids runs in between) must not be covered
     * by that future. Completed with the new delete in flight, the shard would stop and hand its lease
     * back, or read again, while the delete still runs: its rows published again by the next owner.
     * Many ids widen the window between the count and the completion to milliseconds; a run that
     * misses it passes with or without the fix, never fails with it.
     */
    @Test
    void aDeleteStartedWhileThePreviousOneCompletesKeepsTheShardUnsettled() throws Exception {
        PendingDeletes registry = new PendingDeletes();
        DeferredDeletes deletes = new DeferredDeletes(registry);
        long[] many = LongStream.range(0, 400_000).toArray();
        long[] first = deletes.started(many);
        Thread writer = new Thread(() -> deletes.finished(first, new Db.Fenced(true, many.length), null));
        writer.start();
        while (deletes.inFlight()) {
            Thread.onSpinWait();
        }
        long[] second = deletes.started(new long[] {400_000});
        writer.join();

        assertThat(deletes.inFlight()).isTrue();
        assertThat(deletes.settled())
                .as("the second delete is in flight: the shard is not settled")
                .isNotDone();
        deletes.finished(second, new Db.Fenced(true, 1), null);
        assertThat(deletes.settled()).isDone();
    }
}
