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

/**
 * Coalesces the fenced deletes of the relay's shards: every shard loop whose batch is done hands its
 * acknowledged ids here, and one task at a time takes every request pending, runs one statement for
 * all of them ({@link ShardRows#deleteAll}, each shard fenced by its own lease) and completes each
 * request with its own shard's result. Under a steady trickle many shards finish a batch of one or
 * two rows each: one statement and one commit for all of them instead of one each.
 *
 * <p>A statement takes at most {@code maxShards} requests and, unless a single request is larger,
 * {@code maxIds} ids, and at most one request per shard; the rest go in the next statement, in the
 * order they came. A statement that fails completes each of its requests with the {@link
 * SQLException}. After {@link #stop()} every request pending or submitted completes with a {@link
 * RejectedExecutionException}.
 */
final class DeleteQueue {
    /** Requests per statement by default: every shard of the default install. */
    static final int MAX_SHARDS = 64;
    /** Ids per statement by default (a single larger request still goes alone). */
    static final int MAX_IDS = 20_000;

    private record Request(ShardRows.Deletion deletion, CompletableFuture<Db.Fenced> result) {}

    private final ShardRows rows;
    private final Executor runner;
    private final RelayMetrics metrics;
    private final int maxShards;
    private final int maxIds;
    // guarded by this
    private final ArrayDeque<Request> pending = new ArrayDeque<>();
    private boolean draining;
    private boolean stopped;

    /**
     * @param runner runs the statements, one task at a time: the relay's delete thread
     */
    DeleteQueue(ShardRows rows, Executor runner, RelayMetrics metrics, int maxShards, int maxIds) {
        this.rows = rows;
        this.runner = runner;
        this.metrics = metrics;
        this.maxShards = maxShards;
        this.maxIds = maxIds;
    }

    DeleteQueue(ShardRows rows, Executor runner, RelayMetrics metrics) {
        this(rows, runner, metrics, MAX_SHARDS, MAX_IDS);
    }

    /**
     * @param ids the acknowledged rows of the shard's batch
     * @return completes with the shard's result once the statement that took the request committed
     */
    CompletableFuture<Db.Fenced> submit(int shard, long epoch, long[] ids) {
        Request r = new Request(new ShardRows.Deletion(shard, epoch, ids), new CompletableFuture<>());
        synchronized (this) {
            if (stopped) {
                r.result.completeExceptionally(new RejectedExecutionException("the relay's delete queue stopped"));
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
        List<Request> left;
        synchronized (this) {
            stopped = true;
            left = List.copyOf(pending);
            pending.clear();
        }
        left.forEach(r ->
                r.result.completeExceptionally(new RejectedExecutionException("the relay's delete queue stopped")));
    }

    /** Runs statements until nothing is pending. */
    private void drain() {
        while (true) {
            List<Request> statement = take();
            if (statement.isEmpty()) {
                return;
            }
            run(statement);
        }
    }

    /** @return the requests of the next statement, in the order they came; empty ends the drain */
    private synchronized List<Request> take() {
        List<Request> out = new ArrayList<>();
        Set<Integer> shards = new HashSet<>();
        int ids = 0;
        for (Iterator<Request> it = pending.iterator(); it.hasNext() && out.size() < maxShards; ) {
            Request r = it.next();
            int n = r.deletion.ids().length;
            if (shards.contains(r.deletion.shard()) || (!out.isEmpty() && ids + n > maxIds)) {
                continue;
            }
            it.remove();
            out.add(r);
            shards.add(r.deletion.shard());
            ids += n;
        }
        if (out.isEmpty()) {
            draining = false;
        }
        return out;
    }

    private void run(List<Request> statement) {
        metrics.deleteShards.record(statement.size());
        List<Db.Fenced> results;
        try {
            results = rows.deleteAll(statement.stream().map(Request::deletion).toList());
        } catch (Throwable t) {
            // a statement that failed, or anything unexpected: no request of it may wait for ever
            statement.forEach(r -> r.result.completeExceptionally(t));
            return;
        }
        for (int i = 0; i < statement.size(); i++) {
            statement.get(i).result.complete(results.get(i));
        }
    }
}
