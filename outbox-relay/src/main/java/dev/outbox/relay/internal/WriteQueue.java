package dev.outbox.relay.internal;

import dev.outbox.core.internal.TimeSource;
import java.sql.SQLException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.IntConsumer;
import java.util.function.LongConsumer;

/**
 * Coalesces one kind of fenced write of the relay's shards: every shard loop hands its request here,
 * and one task at a time takes every request pending, runs one statement for all of them (each shard
 * fenced by its own lease) and completes each request with its own shard's result.
 *
 * <ul>
 *   <li>{@link #deletes}: the acknowledged rows of finished batches ({@link ShardRows#deleteAll}).
 *       Under a steady trickle many shards finish a batch of one or two rows each: one statement and
 *       one commit for all of them instead of one each.
 *   <li>{@link #failures}: the attempts, errors and parks of failed rows ({@link ShardRows#failAll}).
 *       A failed metadata check of a missing topic is an attempt of every row of it that every shard
 *       holds, counted by all shards in the same round: one statement for them, not one per shard on
 *       the worker threads.
 * </ul>
 *
 * <p>A statement takes at most {@code maxShards} requests and, unless a single request is larger,
 * {@code maxIds} ids, and at most one request per shard; the rest go in the next statement, in the
 * order they came. A statement that fails completes each of its requests with the {@link
 * SQLException}, except that when rows of some of its shards are locked by another transaction ({@link
 * RowsLockedException}) only those shards' requests fail and the statement runs again for the others.
 * After {@link #stop()} every request pending or submitted completes with a {@link
 * RejectedExecutionException}.
 *
 * <p>A request that no shard waits for ({@link #submitDeferred}) may wait up to the queue's linger
 * before its statement starts, so that the deferred deletes of a steady trickle share one statement
 * and one commit; a request submitted the usual way, or {@link #hurry()}, starts the statement at
 * once, with every request pending.
 *
 * <p>{@link #progressing} tells whether a statement has been running for longer than a bound: the
 * relay's liveness, since a statement that never ends (a connection without a socket timeout) stops
 * every shard that waits for it while the lease rounds go on.
 *
 * @param <R> a shard's request
 * @param <T> what the statement found for one request
 */
final class WriteQueue<R extends ShardRows.ShardWrite, T> {
    /** Requests per statement by default: every shard of the default install. */
    static final int MAX_SHARDS = 64;
    /** Ids per statement by default (a single larger request still goes alone). */
    static final int MAX_IDS = 20_000;
    /**
     * How long a deferred delete may wait for others: at most 50 delete statements a second under a
     * steady trickle, against one per probe round and shard group before (benchmarks/RELAY.md,
     * "Deletes the shards do not wait for").
     */
    static final long DELETE_LINGER_NANOS = TimeUnit.MILLISECONDS.toNanos(20);

    /** Runs one statement for several shards' requests, at most one per shard. */
    @FunctionalInterface
    interface Statement<R, T> {
        /** @return what each request found, in the order of {@code requests} */
        List<T> run(List<R> requests) throws SQLException;
    }

    private record Request<R, T>(R write, CompletableFuture<T> result) {}

    private final String name;
    private final Statement<R, T> statement;
    private final Executor runner;
    private final IntConsumer shardsPerStatement;
    private final int maxShards;
    private final int maxIds;
    // runs the statements of deferred requests after the linger; null: they start at once
    private final ScheduledExecutorService later;
    private final long lingerNanos;
    private final TimeSource time;
    // when the statement running now started ({@link TimeSource#nanoTime()})
    private final RunningSince running = new RunningSince();
    // guarded by this
    private final ArrayDeque<Request<R, T>> pending = new ArrayDeque<>();
    // a drain is queued or running: what is submitted meanwhile goes with it
    private boolean draining;
    // a drain is scheduled after the linger
    private boolean lingering;
    private boolean stopped;

    /**
     * @param name what the queue writes, for the rejection after {@link #stop()}
     * @param runner runs the statements, one task at a time: the relay's write thread
     * @param shardsPerStatement told how many requests each statement took
     */
    WriteQueue(
            String name,
            Statement<R, T> statement,
            Executor runner,
            IntConsumer shardsPerStatement,
            int maxShards,
            int maxIds,
            ScheduledExecutorService later,
            long lingerNanos,
            TimeSource time) {
        this.name = name;
        this.statement = statement;
        this.runner = runner;
        this.shardsPerStatement = shardsPerStatement;
        this.maxShards = maxShards;
        this.maxIds = maxIds;
        this.later = later;
        this.lingerNanos = lingerNanos;
        this.time = time;
    }

    /**
     * The fenced deletes of published rows, their shards per statement recorded in the metrics.
     *
     * @param later runs the statement of deferred deletes after {@code lingerNanos}; null: at once
     * @param time the clock of {@link #progressing}
     */
    static WriteQueue<ShardRows.Deletion, Db.Fenced> deletes(
            ShardRows rows,
            Executor runner,
            RelayMetrics metrics,
            int maxShards,
            int maxIds,
            ScheduledExecutorService later,
            long lingerNanos,
            TimeSource time) {
        return new WriteQueue<>(
                "delete",
                rows::deleteAll,
                runner,
                n -> metrics.deleteShards.record(n),
                maxShards,
                maxIds,
                later,
                lingerNanos,
                time);
    }

    /** A delete queue without a linger: deferred deletes start at once. */
    static WriteQueue<ShardRows.Deletion, Db.Fenced> deletes(
            ShardRows rows, Executor runner, RelayMetrics metrics, int maxShards, int maxIds) {
        return deletes(rows, runner, metrics, maxShards, maxIds, null, 0, TimeSource.SYSTEM);
    }

    /** The relay's delete queue: statements and lingers on the write thread. */
    static WriteQueue<ShardRows.Deletion, Db.Fenced> deletes(
            ShardRows rows, ScheduledExecutorService writeThread, RelayMetrics metrics, TimeSource time) {
        return deletes(rows, writeThread, metrics, MAX_SHARDS, MAX_IDS, writeThread, DELETE_LINGER_NANOS, time);
    }

    /**
     * The fenced records of failed rows; a row reaching {@code maxAttempts} is parked.
     *
     * @param rewritten told how many rows each statement updated
     */
    static WriteQueue<ShardRows.Failure, Db.Failed> failures(
            ShardRows rows, Executor runner, int maxAttempts, LongConsumer rewritten, TimeSource time) {
        return new WriteQueue<>(
                "failure",
                f -> {
                    List<Db.Failed> out = rows.failAll(f, maxAttempts);
                    long n = 0;
                    for (Db.Failed one : out) {
                        n += one.rows().size();
                    }
                    rewritten.accept(n);
                    return out;
                },
                runner,
                n -> {},
                MAX_SHARDS,
                MAX_IDS,
                null,
                0,
                time);
    }

    /**
     * @param now {@link TimeSource#nanoTime()}
     * @return false while a statement of this queue has been running for longer than {@code bound}
     */
    boolean progressing(long now, long bound) {
        return running.within(now, bound);
    }

    /** @return completes with the shard's result once the statement that took the request committed */
    CompletableFuture<T> submit(R write) {
        return submit(write, false);
    }

    /**
     * Like {@link #submit}, for a request no shard waits for: its statement may start up to the
     * queue's linger later, together with the others submitted meanwhile.
     */
    CompletableFuture<T> submitDeferred(R write) {
        return submit(write, later != null);
    }

    /** Starts the statement of the requests pending now, without waiting for the rest of the linger. */
    void hurry() {
        synchronized (this) {
            if (draining || pending.isEmpty()) {
                return;
            }
            draining = true;
        }
        execute();
    }

    private CompletableFuture<T> submit(R write, boolean mayLinger) {
        Request<R, T> r = new Request<>(write, new CompletableFuture<>());
        synchronized (this) {
            if (stopped) {
                r.result.completeExceptionally(rejected());
                return r.result;
            }
            pending.add(r);
            if (draining) {
                return r.result;
            }
            if (mayLinger && !lingering) {
                lingering = scheduleLinger();
            }
            if (mayLinger && lingering) {
                return r.result; // the linger's end, or an earlier drain, takes it
            }
            draining = true;
        }
        execute();
        return r.result;
    }

    /** @return whether the end of the linger is scheduled; false when the write thread is shut down */
    private boolean scheduleLinger() {
        try {
            later.schedule(this::lingered, lingerNanos, TimeUnit.NANOSECONDS);
            return true;
        } catch (RejectedExecutionException e) {
            return false;
        }
    }

    /** The linger is over: runs what is pending, unless a drain took it already. */
    private void lingered() {
        synchronized (this) {
            lingering = false;
            if (draining || pending.isEmpty()) {
                return;
            }
            draining = true;
        }
        drain();
    }

    private void execute() {
        try {
            runner.execute(this::drain);
        } catch (RejectedExecutionException e) {
            stop();
        }
    }

    /** Fails every request pending and every later one; a statement running finishes. */
    void stop() {
        List<Request<R, T>> left;
        synchronized (this) {
            stopped = true;
            left = List.copyOf(pending);
            pending.clear();
        }
        left.forEach(r -> r.result.completeExceptionally(rejected()));
    }

    private RejectedExecutionException rejected() {
        return new RejectedExecutionException("the relay's " + name + " queue stopped");
    }

    /** Runs statements until nothing is pending. */
    private void drain() {
        while (true) {
            List<Request<R, T>> next = take();
            if (next.isEmpty()) {
                return;
            }
            run(next);
        }
    }

    /** @return the requests of the next statement, in the order they came; empty ends the drain */
    private synchronized List<Request<R, T>> take() {
        List<Request<R, T>> out = new ArrayList<>();
        Set<Integer> shards = new HashSet<>();
        int ids = 0;
        for (Iterator<Request<R, T>> it = pending.iterator(); it.hasNext() && out.size() < maxShards; ) {
            Request<R, T> r = it.next();
            int n = r.write.ids().length;
            if (shards.contains(r.write.shard()) || (!out.isEmpty() && ids + n > maxIds)) {
                continue;
            }
            it.remove();
            out.add(r);
            shards.add(r.write.shard());
            ids += n;
        }
        if (out.isEmpty()) {
            draining = false;
        }
        return out;
    }

    private void run(List<Request<R, T>> requests) {
        shardsPerStatement.accept(requests.size());
        List<T> results;
        long mark = running.started(time.nanoTime());
        try {
            results = statement.run(requests.stream().map(Request::write).toList());
        } catch (RowsLockedException e) {
            runWithout(requests, e);
            return;
        } catch (Throwable t) {
            // a statement that failed, or anything unexpected: no request of it may wait for ever
            requests.forEach(r -> r.result.completeExceptionally(t));
            return;
        } finally {
            running.ended(mark);
        }
        for (int i = 0; i < requests.size(); i++) {
            requests.get(i).result.complete(results.get(i));
        }
    }

    /**
     * The statement changed nothing because rows of some of its shards are locked by another
     * transaction: those shards' requests fail, each with its own rows named, and the statement runs
     * again for the others, so that a foreign row lock stops only the shards whose rows it holds.
     */
    private void runWithout(List<Request<R, T>> requests, RowsLockedException locked) {
        List<Request<R, T>> rest = new ArrayList<>(requests.size());
        for (Request<R, T> r : requests) {
            if (locked.shards().contains(r.write.shard())) {
                r.result.completeExceptionally(locked.forShard(r.write.shard()));
            } else {
                rest.add(r);
            }
        }
        if (rest.size() == requests.size()) {
            // no request of the statement has a locked row (a row of another shard was named): nothing to leave out
            rest.forEach(r -> r.result.completeExceptionally(locked));
        } else if (!rest.isEmpty()) {
            run(rest);
        }
    }
}
