package dev.outbox.relay.internal;

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
import java.util.function.IntConsumer;

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
 * SQLException}. After {@link #stop()} every request pending or submitted completes with a {@link
 * RejectedExecutionException}.
 *
 * @param <R> a shard's request
 * @param <T> what the statement found for one request
 */
final class WriteQueue<R extends ShardRows.ShardWrite, T> {
    /** Requests per statement by default: every shard of the default install. */
    static final int MAX_SHARDS = 64;
    /** Ids per statement by default (a single larger request still goes alone). */
    static final int MAX_IDS = 20_000;

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
    // guarded by this
    private final ArrayDeque<Request<R, T>> pending = new ArrayDeque<>();
    private boolean draining;
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
            int maxIds) {
        this.name = name;
        this.statement = statement;
        this.runner = runner;
        this.shardsPerStatement = shardsPerStatement;
        this.maxShards = maxShards;
        this.maxIds = maxIds;
    }

    /** The fenced deletes of published rows, their shards per statement recorded in the metrics. */
    static WriteQueue<ShardRows.Deletion, Db.Fenced> deletes(
            ShardRows rows, Executor runner, RelayMetrics metrics, int maxShards, int maxIds) {
        return new WriteQueue<>(
                "delete", rows::deleteAll, runner, n -> metrics.deleteShards.record(n), maxShards, maxIds);
    }

    static WriteQueue<ShardRows.Deletion, Db.Fenced> deletes(ShardRows rows, Executor runner, RelayMetrics metrics) {
        return deletes(rows, runner, metrics, MAX_SHARDS, MAX_IDS);
    }

    /** The fenced records of failed rows; a row reaching {@code maxAttempts} is parked. */
    static WriteQueue<ShardRows.Failure, Db.Failed> failures(ShardRows rows, Executor runner, int maxAttempts) {
        return new WriteQueue<>("failure", f -> rows.failAll(f, maxAttempts), runner, n -> {}, MAX_SHARDS, MAX_IDS);
    }

    /** @return completes with the shard's result once the statement that took the request committed */
    CompletableFuture<T> submit(R write) {
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
            draining = true;
        }
        try {
            runner.execute(this::drain);
        } catch (RejectedExecutionException e) {
            stop();
        }
        return r.result;
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
        try {
            results = statement.run(requests.stream().map(Request::write).toList());
        } catch (Throwable t) {
            // a statement that failed, or anything unexpected: no request of it may wait for ever
            requests.forEach(r -> r.result.completeExceptionally(t));
            return;
        }
        for (int i = 0; i < requests.size(); i++) {
            requests.get(i).result.complete(results.get(i));
        }
    }
}
