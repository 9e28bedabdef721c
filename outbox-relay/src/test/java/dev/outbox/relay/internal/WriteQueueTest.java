package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.core.internal.TimeSource;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * The decisions of the relay's {@link WriteQueue}, without PostgreSQL: which requests share a
 * statement, and that every request is answered with its own shard's result or its statement's
 * failure, never left waiting (G1: a batch whose delete is lost would hold its shard for ever).
 */
class WriteQueueTest {
    private final RelayMetrics metrics =
            new RelayMetrics(new SimpleMeterRegistry(), "test", () -> 0, CircuitBreaker.ofDefaults("test"));
    private final FakeRows rows = new FakeRows();
    /** Tasks of the queue, run by the test. */
    private final List<Runnable> tasks = new ArrayList<>();

    @Test
    void requestsSubmittedWhileAStatementRunsGoOutTogetherInTheNextOne() throws Exception {
        ExecutorService thread = Executors.newSingleThreadExecutor();
        try {
            WriteQueue<ShardRows.Deletion, Db.Fenced> queue =
                    WriteQueue.deletes(rows, thread, metrics, WriteQueue.MAX_SHARDS, WriteQueue.MAX_IDS);
            rows.block = new CountDownLatch(1);
            CompletableFuture<Db.Fenced> first = queue.submit(new ShardRows.Deletion(4, 10, new long[] {100}));
            assertThat(rows.started.await(5, TimeUnit.SECONDS)).isTrue();
            List<CompletableFuture<Db.Fenced>> later = List.of(
                    queue.submit(new ShardRows.Deletion(2, 20, new long[] {200, 201})),
                    queue.submit(new ShardRows.Deletion(3, 30, new long[] {300})),
                    queue.submit(new ShardRows.Deletion(2, 21, new long[] {202})));
            rows.block.countDown();

            assertThat(first.get(5, TimeUnit.SECONDS)).isEqualTo(new Db.Fenced(true, 1));
            assertThat(later.get(0).get(5, TimeUnit.SECONDS)).isEqualTo(new Db.Fenced(true, 2));
            assertThat(later.get(1).get(5, TimeUnit.SECONDS))
                    .as("each request gets its own shard's result: an odd shard's lease is lost here")
                    .isEqualTo(new Db.Fenced(false, 0));
            assertThat(later.get(2).get(5, TimeUnit.SECONDS)).isEqualTo(new Db.Fenced(true, 1));
            assertThat(rows.statements)
                    .as("what came while a statement ran goes out together, one request per shard a statement")
                    .containsExactly(List.of(4), List.of(2, 3), List.of(2));
            assertThat(metrics.deleteShards.count()).isEqualTo(3);
            assertThat(metrics.deleteShards.totalAmount()).isEqualTo(4);
        } finally {
            thread.shutdownNow();
        }
    }

    /**
     * Each record of failed rows updates them, which leaves a dead row version per row as a delete does:
     * the rows are counted, and the relay's vacuum counts them with the deleted ones ({@link OutboxVacuum}).
     */
    @Test
    void theRowsARecordOfFailuresUpdatedAreCounted() {
        AtomicLong rewritten = new AtomicLong();
        WriteQueue<ShardRows.Failure, Db.Failed> queue =
                WriteQueue.failures(rows, tasks::add, 10, rewritten::addAndGet, TimeSource.SYSTEM);
        queue.submit(new ShardRows.Failure(1, 1, new long[] {10, 11, 12}, new String[3], new boolean[3]));
        queue.submit(new ShardRows.Failure(2, 1, new long[] {20}, new String[1], new boolean[1]));
        runTasks();
        assertThat(rewritten).hasValue(4);
    }

    @Test
    void theCapsSplitTheRequests() {
        WriteQueue<ShardRows.Deletion, Db.Fenced> queue = WriteQueue.deletes(rows, tasks::add, metrics, 3, 10);
        List<CompletableFuture<Db.Fenced>> all = new ArrayList<>();
        for (int shard = 0; shard < 5; shard++) {
            all.add(queue.submit(new ShardRows.Deletion(shard * 2, 1, new long[] {shard})));
        }
        all.add(queue.submit(new ShardRows.Deletion(20, 1, new long[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})));
        all.add(queue.submit(new ShardRows.Deletion(22, 1, new long[] {1, 2, 3, 4, 5, 6})));
        all.add(queue.submit(new ShardRows.Deletion(24, 1, new long[] {1, 2, 3, 4})));
        all.add(queue.submit(new ShardRows.Deletion(26, 1, new long[] {1})));
        runTasks();

        assertThat(rows.statements)
                .as("at most 3 requests and, unless one alone is larger, 10 ids a statement; a request that"
                        + " does not fit goes first in the next one")
                .containsExactly(List.of(0, 2, 4), List.of(6, 8, 22), List.of(20), List.of(24, 26));
        assertThat(all).allSatisfy(f -> assertThat(f).isCompleted());
    }

    @Test
    void aFailedStatementFailsExactlyItsOwnRequests() throws Exception {
        WriteQueue<ShardRows.Deletion, Db.Fenced> queue = WriteQueue.deletes(rows, tasks::add, metrics, 2, 100);
        rows.failures = 1;
        CompletableFuture<Db.Fenced> a = queue.submit(new ShardRows.Deletion(0, 1, new long[] {1}));
        CompletableFuture<Db.Fenced> b = queue.submit(new ShardRows.Deletion(2, 1, new long[] {2}));
        CompletableFuture<Db.Fenced> c = queue.submit(new ShardRows.Deletion(4, 1, new long[] {3}));
        runTasks();

        for (CompletableFuture<Db.Fenced> failed : List.of(a, b)) {
            assertThat(failed).isCompletedExceptionally();
            assertThat(cause(failed)).isInstanceOf(SQLException.class).hasMessage("connection lost");
        }
        assertThat(c.get())
                .as("the next statement's request is not failed with it")
                .isEqualTo(new Db.Fenced(true, 1));
    }

    /**
     * A statement that changed nothing because rows of some shards are locked by another transaction:
     * those shards' requests fail, each naming its own rows, and the statement runs again at once for
     * the others; a second locked shard found then is left out in turn.
     */
    @Test
    void rowsLockedElsewhereFailOnlyTheirShardsAndTheStatementRunsAgainForTheOthers() {
        WriteQueue<ShardRows.Deletion, Db.Fenced> queue =
                WriteQueue.deletes(rows, tasks::add, metrics, WriteQueue.MAX_SHARDS, WriteQueue.MAX_IDS);
        rows.locked.add(Map.of(2, List.of(21L), 6, List.of(61L, 62L)));
        rows.locked.add(Map.of(4, List.of(41L)));
        List<CompletableFuture<Db.Fenced>> all = new ArrayList<>();
        for (int shard = 0; shard <= 8; shard += 2) {
            all.add(queue.submit(new ShardRows.Deletion(shard, 1, new long[] {shard * 10L + 1})));
        }
        runTasks();

        assertThat(rows.statements)
                .as("the statement again without the locked shards, until none is locked")
                .containsExactly(List.of(0, 2, 4, 6, 8), List.of(0, 4, 8), List.of(0, 8));
        assertThat(all.get(0)).isCompletedWithValue(new Db.Fenced(true, 1));
        assertThat(all.get(4)).isCompletedWithValue(new Db.Fenced(true, 1));
        for (int i : new int[] {1, 2, 3}) {
            int shard = i * 2;
            assertThat(cause(all.get(i))).isInstanceOfSatisfying(RowsLockedException.class, e -> {
                assertThat(e.shards()).containsExactly(shard);
                assertThat(e.getSQLState()).isEqualTo("55P03");
                assertThat(e.getMessage()).contains("(shard " + shard + ")");
            });
        }
        assertThat(cause(all.get(3)).getMessage())
                .as("its own rows, not the other shard's")
                .contains("61 (shard 6), 62 (shard 6)")
                .doesNotContain("shard 2");
    }

    @Test
    void aRequestAfterStopFailsAndSoDoesOnePendingAtStop() {
        WriteQueue<ShardRows.Deletion, Db.Fenced> queue =
                WriteQueue.deletes(rows, tasks::add, metrics, WriteQueue.MAX_SHARDS, WriteQueue.MAX_IDS);
        CompletableFuture<Db.Fenced> pending = queue.submit(new ShardRows.Deletion(0, 1, new long[] {1}));
        queue.stop();
        CompletableFuture<Db.Fenced> late = queue.submit(new ShardRows.Deletion(2, 1, new long[] {2}));
        runTasks();

        assertThat(cause(pending)).isInstanceOf(RejectedExecutionException.class);
        assertThat(cause(late))
                .as("not silently lost: the shard's loop learns that the relay stopped")
                .isInstanceOf(RejectedExecutionException.class);
        assertThat(rows.statements).isEmpty();
    }

    /**
     * The relay's liveness: a statement that has been running for longer than the bound (a connection
     * without a socket timeout, a lock that is never released) makes the queue not progressing, and
     * only while it runs: every shard waiting for it publishes nothing meanwhile.
     */
    @Test
    void aStatementRunningPastTheBoundIsNotProgress() {
        FakeTime time = new FakeTime();
        long bound = Duration.ofSeconds(11).toNanos();
        List<Boolean> whileRunning = new ArrayList<>();
        AtomicReference<WriteQueue<ShardRows.Deletion, Db.Fenced>> queue = new AtomicReference<>();
        queue.set(new WriteQueue<ShardRows.Deletion, Db.Fenced>(
                "delete",
                requests -> {
                    whileRunning.add(queue.get().progressing(time.nanoTime(), bound));
                    time.advance(Duration.ofSeconds(12));
                    whileRunning.add(queue.get().progressing(time.nanoTime(), bound));
                    return rows.deleteAll(requests);
                },
                tasks::add,
                n -> {},
                WriteQueue.MAX_SHARDS,
                WriteQueue.MAX_IDS,
                null,
                0,
                time));

        assertThat(queue.get().progressing(time.nanoTime(), bound))
                .as("no statement ran yet")
                .isTrue();
        CompletableFuture<Db.Fenced> done = queue.get().submit(new ShardRows.Deletion(0, 1, new long[] {1}));
        runTasks();
        assertThat(whileRunning)
                .as("progressing when the statement starts, not once it has run for longer than the bound")
                .containsExactly(true, false);
        assertThat(done).isCompletedWithValue(new Db.Fenced(true, 1));
        time.advance(Duration.ofMinutes(5));
        assertThat(queue.get().progressing(time.nanoTime(), bound))
                .as("a queue with nothing to run, however long")
                .isTrue();
    }

    @Test
    void aRunnerThatRefusesTheTaskFailsTheRequest() {
        WriteQueue<ShardRows.Deletion, Db.Fenced> queue = WriteQueue.deletes(
                rows,
                r -> {
                    throw new RejectedExecutionException("shut down");
                },
                metrics,
                WriteQueue.MAX_SHARDS,
                WriteQueue.MAX_IDS);
        CompletableFuture<Db.Fenced> refused = queue.submit(new ShardRows.Deletion(0, 1, new long[] {1}));

        assertThat(cause(refused)).isInstanceOf(RejectedExecutionException.class);
    }

    /**
     * A deferred delete waits up to the linger for others (one statement for the deletes of a steady
     * trickle), and nothing longer: the linger's end, a delete submitted the usual way or {@link
     * WriteQueue#hurry()} starts the statement, with every request pending then.
     */
    @Test
    void deferredDeletesWaitForTheLingerUnlessSomethingHurriesThem() {
        FakeTime time = new FakeTime();
        ManualScheduler later = new ManualScheduler(time);
        WriteQueue<ShardRows.Deletion, Db.Fenced> queue = WriteQueue.deletes(
                rows, tasks::add, metrics, WriteQueue.MAX_SHARDS, WriteQueue.MAX_IDS, later, 20_000_000L, time);

        CompletableFuture<Db.Fenced> a = queue.submitDeferred(new ShardRows.Deletion(0, 1, new long[] {1}));
        later.advance(Duration.ofMillis(10));
        CompletableFuture<Db.Fenced> b = queue.submitDeferred(new ShardRows.Deletion(2, 1, new long[] {2}));
        runTasks();
        assertThat(rows.statements).as("within the linger nothing runs").isEmpty();
        later.advance(Duration.ofMillis(10));
        assertThat(rows.statements).as("at its end, one statement for both").containsExactly(List.of(0, 2));
        assertThat(a).isCompletedWithValue(new Db.Fenced(true, 1));
        assertThat(b).isCompletedWithValue(new Db.Fenced(true, 1));

        CompletableFuture<Db.Fenced> c = queue.submitDeferred(new ShardRows.Deletion(4, 1, new long[] {4}));
        CompletableFuture<Db.Fenced> d = queue.submit(new ShardRows.Deletion(6, 1, new long[] {6}));
        runTasks();
        assertThat(rows.statements)
                .as("a delete a shard waits for starts at once and takes the deferred one along")
                .containsExactly(List.of(0, 2), List.of(4, 6));
        assertThat(c).isDone();
        assertThat(d).isDone();

        CompletableFuture<Db.Fenced> e = queue.submitDeferred(new ShardRows.Deletion(8, 1, new long[] {8}));
        queue.hurry();
        runTasks();
        assertThat(e).as("hurried").isDone();
        later.advance(Duration.ofMillis(20));
        assertThat(rows.statements)
                .as("the linger's end finds nothing left")
                .containsExactly(List.of(0, 2), List.of(4, 6), List.of(8));
    }

    private void runTasks() {
        while (!tasks.isEmpty()) {
            tasks.remove(0).run();
        }
    }

    private static Throwable cause(CompletableFuture<?> f) {
        try {
            f.getNow(null);
            throw new AssertionError("not failed: " + f);
        } catch (CompletionException e) {
            return e.getCause();
        } catch (CancellationException e) {
            return e;
        }
    }

    /** Deletes everything asked of shards with an even number; odd shards' leases are lost. */
    private static final class FakeRows implements ShardRows {
        final List<List<Integer>> statements = new CopyOnWriteArrayList<>();
        final CountDownLatch started = new CountDownLatch(1);
        volatile CountDownLatch block = new CountDownLatch(0);
        volatile int failures;
        /** Per statement from the next on, the rows found locked by another transaction, by shard. */
        final Queue<Map<Integer, List<Long>>> locked = new ConcurrentLinkedQueue<>();

        @Override
        public List<Db.Fenced> deleteAll(List<Deletion> deletions) throws SQLException {
            statements.add(deletions.stream().map(Deletion::shard).toList());
            started.countDown();
            try {
                block.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            if (failures > 0) {
                failures--;
                throw new SQLException("connection lost", "08006");
            }
            Map<Integer, List<Long>> lockedNow = locked.poll();
            if (lockedNow != null) {
                throw new RowsLockedException(
                        "test.outbox_message", lockedNow, new SQLException("lock timeout", "55P03"));
            }
            return deletions.stream()
                    .map(d -> d.shard() % 2 == 0 ? new Db.Fenced(true, d.ids().length) : new Db.Fenced(false, 0))
                    .toList();
        }

        @Override
        public List<OutboxRow> read(int shard, int limit) {
            throw new UnsupportedOperationException();
        }

        @Override
        public List<OutboxRow> readFiltered(
                int shard, Collection<String> heldTopics, long[] heldIds, String[] waitingKeys, int limit) {
            throw new UnsupportedOperationException();
        }

        @Override
        public List<OutboxRow> readPastHeld(
                int shard, Collection<String> heldTopics, long[] heldIds, String[] waitingKeys, int limit) {
            throw new UnsupportedOperationException();
        }

        @Override
        public List<OutboxRow> readAhead(int shard, long[] inFlight, int limit) {
            throw new UnsupportedOperationException();
        }

        @Override
        public List<Db.Failed> failAll(List<Failure> failures, int maxAttempts) {
            List<Db.Failed> out = new ArrayList<>();
            for (Failure f : failures) {
                List<Db.FailedRow> updated = new ArrayList<>();
                for (long id : f.ids()) {
                    updated.add(new Db.FailedRow(id, 1, false));
                }
                out.add(new Db.Failed(true, updated));
            }
            return out;
        }
    }
}
