package dev.outbox.relay.internal;

import dev.outbox.core.internal.Durations;
import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.core.internal.TimeSource;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;

/**
 * The lease rounds of a {@link RelayEngine}, on its coordinator thread: membership heartbeat, renewal of
 * the held leases, fair-share claim of free shards and hand-back of the surplus.
 */
final class LeaseRounds {
    private final RelayEngine engine;
    private final RelayConfig config;
    private final Db db;
    private final RelayMetrics metrics;
    private final PrefixedLog log;
    private final TimeSource time;
    private final Map<Integer, ShardWorker> owned;
    private final Map<Integer, ShardWorker> releasing;
    private final int shardCount;
    private final ShardServices services;
    private final RelayProducers producers;
    private final ScheduledExecutorService coordinator;
    /** Workers whose loop found their lease gone, whose leases are still to be handed back. */
    private final Queue<ShardWorker> droppedWorkers = new ConcurrentLinkedQueue<>();
    /** When the round in progress started. */
    private final RunningSince running = new RunningSince();
    /** When the last round ended, whether it succeeded or failed. */
    private volatile long roundEndedNanos;

    /**
     * @param owned the shards this relay publishes, shared with the engine
     * @param releasing shards being handed back: still renewed until their last batch finished and the
     *     release ran
     */
    LeaseRounds(
            RelayEngine engine,
            Map<Integer, ShardWorker> owned,
            Map<Integer, ShardWorker> releasing,
            int shardCount,
            ShardServices services,
            RelayProducers producers,
            ScheduledExecutorService coordinator) {
        this.engine = engine;
        this.config = engine.config();
        this.db = engine.db();
        this.metrics = engine.metrics();
        this.log = engine.log();
        this.time = engine.time();
        this.owned = owned;
        this.releasing = releasing;
        this.shardCount = shardCount;
        this.services = services;
        this.producers = producers;
        this.coordinator = coordinator;
        this.roundEndedNanos = time.nanoTime(); // the first round gets the whole bound
    }

    /**
     * Whether the rounds make progress: none has been running for longer than {@code bound} (a statement
     * stuck on a connection without a socket timeout) and one ended within {@code bound} (the coordinator
     * still schedules them). A round that fails because PostgreSQL does not answer is progress.
     *
     * @param now {@link TimeSource#nanoTime()}
     */
    boolean progressing(long now, long bound) {
        if (running.running()) {
            return running.within(now, bound);
        }
        return now - roundEndedNanos <= bound;
    }

    void tick() {
        if (engine.closing()) {
            return;
        }
        long mark = running.started(time.nanoTime());
        try {
            round();
        } finally {
            roundEndedNanos = time.nanoTime();
            running.ended(mark);
        }
    }

    private void round() {
        try {
            db.heartbeat(config.leaseDuration());
            // a shard claimed again under a new epoch while its old worker is still being handed back:
            // the new epoch is the lease to renew (the old one's renewal could only fail)
            Map<Integer, Long> held = ShardRanges.epochs(releasing.values());
            held.putAll(ShardRanges.epochs(owned.values()));
            long renewStarted = time.nanoTime();
            Set<Integer> renewed = db.renew(held, config.leaseDuration());
            engine.databaseAnswered();
            for (Integer shard : held.keySet()) {
                ShardWorker kept = owned.get(shard);
                if (kept == null || kept.epoch != held.get(shard)) {
                    kept = releasing.get(shard);
                }
                if (kept != null && kept.epoch == held.get(shard) && renewed.contains(shard)) {
                    kept.lease.renewed(renewStarted);
                }
                if (!renewed.contains(shard)) {
                    ShardWorker w = owned.get(shard);
                    if (w != null && w.epoch == held.get(shard) && owned.remove(shard, w)) {
                        log.info(
                                "lost the lease of shard {} (epoch {}): another relay took it over; stopping its loop",
                                shard,
                                w.epoch);
                        w.loop.stop();
                    }
                }
            }
            int live = Math.max(1, db.liveMembers(config.leaseDuration().multipliedBy(10)));
            int share = (shardCount + live - 1) / live;
            int surplus = owned.size() - share;
            if (surplus > 0) {
                releaseSurplus(surplus, share, live);
            } else if (surplus < 0 && !engine.closing()) {
                long claimStarted = time.nanoTime();
                Map<Integer, Long> claimed = db.claim(-surplus, config.leaseDuration());
                if (!claimed.isEmpty()) {
                    for (var e : claimed.entrySet()) {
                        ShardWorker previous = owned.get(e.getKey());
                        if (previous != null) {
                            // our own lease had expired and we took it again under a new epoch
                            owned.remove(e.getKey(), previous);
                            previous.loop.stop();
                        }
                        ShardWorker w = new ShardWorker(
                                services, producers.forShard(e.getKey()), e.getKey(), e.getValue(), claimStarted);
                        owned.put(e.getKey(), w);
                        w.loop.start();
                    }
                    log.info(
                            "claimed shards {} (now {} of {}, fair share {} with {} live relays)",
                            ShardRanges.ranges(claimed.keySet()),
                            owned.size(),
                            shardCount,
                            share,
                            live);
                }
            }
        } catch (SQLException e) {
            metrics.database.increment();
            log.retry(
                    "lease round failed (SQLState {}): {}; leases are retried in {}",
                    e.getSQLState(),
                    e.getMessage(),
                    Durations.format(config.renewInterval()));
        } catch (RuntimeException e) {
            log.error("lease round failed: {}", e.toString(), e);
        }
    }

    private void releaseSurplus(int surplus, int share, int live) {
        List<ShardWorker> give = new ArrayList<>(owned.values());
        give.sort(Comparator.comparingInt((ShardWorker w) -> w.shard).reversed());
        give = give.subList(0, surplus);
        for (ShardWorker w : give) {
            releasing.put(w.shard, w);
            owned.remove(w.shard, w);
            w.stop().whenComplete((v, t) -> {
                try {
                    coordinator.execute(() -> release(w));
                } catch (RejectedExecutionException e) {
                    // closing: close() hands back what is left (it releases the shards in releasing too)
                }
            });
        }
        log.info(
                "handing back shards {} (fair share {} with {} live relays)",
                ShardRanges.ranges(give.stream().map(w -> w.shard).toList()),
                share,
                live);
    }

    /**
     * A shard's loop stopped because a write found its lease no longer held: taken by another relay, or
     * only expired. In the second case the lease may still be this relay's, or be renewed by a round
     * that took the epochs before the worker was dropped, and would then keep the shard from every relay,
     * this one included, for a whole lease. So it is handed back (fenced by its epoch: a lease another
     * relay took is left alone), on the coordinator after any round in progress, and a round runs at once
     * to claim it again, rather than at the next renewal. The worker has no record in flight by then (a
     * write is found fenced only after its batch's records were answered), and the hand-back waits for
     * its deferred deletes, which may still commit under a lease renewed meanwhile.
     */
    void dropped(ShardWorker w) {
        if (!owned.remove(w.shard, w)) {
            return;
        }
        w.stop().whenComplete((v, t) -> {
            droppedWorkers.add(w);
            try {
                coordinator.execute(this::handBackDropped);
            } catch (RejectedExecutionException e) {
                // closing: close() hands back what is still queued (takeDropped)
            }
        });
    }

    /** @return the dropped workers whose leases are not handed back yet; for close() */
    List<ShardWorker> takeDropped() {
        List<ShardWorker> out = new ArrayList<>();
        ShardWorker w = droppedWorkers.poll();
        while (w != null) {
            out.add(w);
            w = droppedWorkers.poll();
        }
        return out;
    }

    /** Hands back the leases of every shard dropped so far, in one statement, then runs one round. */
    private void handBackDropped() {
        Map<Integer, Long> leases = ShardRanges.epochs(takeDropped());
        if (leases.isEmpty()) {
            return; // an earlier task took them
        }
        try {
            Set<Integer> freed = db.release(leases);
            if (freed.isEmpty()) {
                return;
            }
            log.info(
                    "handed back shards {}: their loops stopped when their leases had expired; claiming again",
                    ShardRanges.ranges(freed));
        } catch (SQLException e) {
            metrics.database.increment();
            log.warn(
                    "could not hand back shards {} (SQLState {}): {}; they are free once their leases expire",
                    ShardRanges.ranges(leases.keySet()),
                    e.getSQLState(),
                    e.getMessage());
            return;
        }
        tick();
    }

    private void release(ShardWorker w) {
        try {
            db.release(Map.of(w.shard, w.epoch));
        } catch (SQLException e) {
            metrics.database.increment();
            log.warn(
                    "could not hand back shard {} (SQLState {}): {}; it is free once its lease expires",
                    w.shard,
                    e.getSQLState(),
                    e.getMessage());
        } catch (RuntimeException e) {
            log.error("could not hand back shard {}: {}; it is free once its lease expires", w.shard, e.toString(), e);
        } finally {
            // whatever happened, the rounds stop renewing it: left in releasing, it would stay leased with no worker
            releasing.remove(w.shard, w);
        }
    }
}
