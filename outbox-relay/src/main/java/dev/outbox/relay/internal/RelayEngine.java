package dev.outbox.relay.internal;

import dev.outbox.core.Outbox;
import dev.outbox.core.RetriableOutboxException;
import dev.outbox.core.internal.Durations;
import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.core.internal.TimeSource;
import dev.outbox.relay.ParkPolicy;
import dev.outbox.relay.Relay;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@link Relay}: lease coordination (membership heartbeat, renew, fair-share claim and release, run
 * by {@link LeaseRounds}), the shard loops on a worker pool, the LISTEN connection and the sampled metrics.
 */
public final class RelayEngine implements Relay {
    private static final Logger LOG = LoggerFactory.getLogger(Relay.class);

    private enum State {
        NEW,
        RUNNING,
        CLOSED
    }

    private final RelayConfig config;
    private final String prefix;
    private final Db db;
    private final CircuitBreaker breaker;
    private final RelayMetrics metrics;
    private final PrefixedLog log;
    private final TimeSource time;
    private final Map<Integer, ShardWorker> owned = new ConcurrentHashMap<>();
    // shards being handed back: still renewed until their last batch finished and the release ran
    private final Map<Integer, ShardWorker> releasing = new ConcurrentHashMap<>();
    private final Object lifecycle = new Object();
    private volatile State state = State.NEW;
    private volatile boolean closing;
    private volatile boolean halted;
    private int shardCount;
    private RelayProducers producers;
    private TopicHealth topics;
    private volatile KafkaReadiness kafkaProbe;
    private ScheduledThreadPoolExecutor workers;
    private ScheduledExecutorService coordinator;
    private ScheduledExecutorService sampler;
    private ExecutorService writeThread;
    private WriteQueue<ShardRows.Deletion, Db.Fenced> deletes;
    private final PendingDeletes pendingDeletes = new PendingDeletes();
    private WriteQueue<ShardRows.Failure, Db.Failed> failures;
    private NotificationListener listener;
    private ShardProbe probe;
    private ShardServices services;
    private volatile long databaseOkNanos = Long.MIN_VALUE;
    private volatile long kafkaOkNanos = Long.MIN_VALUE;
    /** When the sends' breaker last opened ({@link TimeSource#nanoTime()}). */
    private volatile long breakerOpenedNanos = Long.MIN_VALUE;

    private volatile LeaseRounds leases;
    private PauseWatch pauses;

    public RelayEngine(RelayConfig config) {
        this(config, TimeSource.SYSTEM);
    }

    /** @param time the clock of the leases, the shard loops and the health checks */
    RelayEngine(RelayConfig config, TimeSource time) {
        this.config = config;
        this.time = time;
        this.prefix = "relay[" + config.instanceId() + "]";
        this.db = new Db(
                config.dataSource(),
                config.schema(),
                config.instanceId(),
                config.parkPolicy() == ParkPolicy.HOLD_KEY,
                config.batchBytes());
        this.breaker = CircuitBreaker.of("outbox-relay-kafka", config.circuitBreaker());
        this.metrics = new RelayMetrics(config.meterRegistry(), config.instanceId(), owned::size, breaker);
        this.log = new PrefixedLog(LOG, prefix);
        breaker.getEventPublisher().onStateTransition(e -> {
            if (e.getStateTransition().getToState() == CircuitBreaker.State.OPEN) {
                breakerOpenedNanos = time.nanoTime();
            }
            log.warn("Kafka circuit breaker {}", e.getStateTransition());
        });
    }

    @Override
    public void start() {
        synchronized (lifecycle) {
            if (state != State.NEW) {
                throw new IllegalStateException(prefix + " was already "
                        + (state == State.RUNNING ? "started" : "closed") + "; a relay starts once: build a new one");
            }
            try {
                shardCount = db.shardCount();
                databaseAnswered();
            } catch (SQLException e) {
                throw new RetriableOutboxException(
                        prefix + " could not read " + config.schema() + ".outbox_shard_lease (SQLState "
                                + e.getSQLState() + "): " + e.getMessage()
                                + "; check the dataSource and that the migrations ran",
                        e);
            }
            if (shardCount == 0) {
                throw new IllegalStateException(prefix + " found no rows in " + config.schema()
                        + ".outbox_shard_lease: run" + " OutboxMigrations.migrate(dataSource, \"" + config.schema()
                        + "\") before starting the relay");
            }
            producers = RelayProducers.open(config, db, prefix);
            producers.shared().onReplaced(metrics.producerReplaced::increment);
            kafkaProbe = new KafkaReadiness(config.producerProperties(), log);
            topics = new TopicHealth(
                    config,
                    producers::shared,
                    this::kafkaAnsweredOrAnswersNow,
                    this::wakeAll,
                    log,
                    RelayProducers.maxBlockMs(config.producerProperties()),
                    TopicHealth.lookupThreads(config, Math.max(2, config.workerThreads())),
                    time);
            metrics.heldTopics(() -> topics.held().size());
            TopicDurability durability = new TopicDurability(kafkaProbe, log);
            topics.onMetadata(durability::met);
            metrics.unsafeTopics(durability::unsafeTopics);
            workers = new ScheduledThreadPoolExecutor(config.workerThreads(), threads("worker"));
            workers.setRemoveOnCancelPolicy(true);
            workers.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
            ScheduledThreadPoolExecutor writes =
                    new ScheduledThreadPoolExecutor(1, Threads.single(config.instanceId(), "write"));
            // a deferred delete still lingering at the shutdown was failed by the queue's stop already
            writes.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
            writeThread = writes;
            deletes = WriteQueue.deletes(db, writes, metrics, time);
            pauses = PauseWatch.start(time, log, Threads.single(config.instanceId(), "pause-watch"));
            failures = WriteQueue.failures(db, writeThread, config.maxAttempts(), metrics.rowsRewritten::add, time);
            services = new ShardServices(
                    config,
                    db,
                    deletes,
                    pendingDeletes,
                    failures,
                    breaker,
                    metrics,
                    workers,
                    topics,
                    producers.shared(),
                    log,
                    this::databaseAnswered,
                    this::kafkaAnswered,
                    this::kafkaAnsweredSince,
                    pauses::pausedSince,
                    this::dropped,
                    () -> probe.active(),
                    time);
            coordinator = Executors.newSingleThreadScheduledExecutor(threads("leases"));
            sampler = Executors.newSingleThreadScheduledExecutor(threads("sampler"));
            leases = new LeaseRounds(this, owned, releasing, shardCount, services, producers, coordinator);
            state = State.RUNNING;
            // before the first shard loop starts: an idle loop asks it whether to wait or poll
            probe = ShardProbe.start(this, config.probeInterval(), config.probeIntervalUnderLoad());
            log.info(
                    "starting on schema {} with {} shards, batch size {}, batch bytes {}, lease {}, park policy {},"
                            + " publish mode {}{}",
                    config.schema(),
                    shardCount,
                    config.batchSize(),
                    config.batchBytes(),
                    config.leaseDuration(),
                    config.parkPolicy(),
                    config.publishMode(),
                    producers.transactionalIdPrefix() == null
                            ? ""
                            : " (transactional ids " + producers.transactionalIdPrefix() + "<shard>)");
            try {
                coordinator.submit(leases::tick).get(config.leaseDuration().toMillis(), TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (ExecutionException | TimeoutException e) {
                log.warn("first lease round did not finish: {}", e.toString());
            }
            long renew = config.renewInterval().toMillis();
            coordinator.scheduleWithFixedDelay(leases::tick, renew, renew, TimeUnit.MILLISECONDS);
            long sample = Math.min(5_000, renew);
            sampler.scheduleWithFixedDelay(this::sample, 0, sample, TimeUnit.MILLISECONDS);
            long recheck = TopicDurability.RECHECK_INTERVAL.toMillis();
            sampler.scheduleWithFixedDelay(durability::recheck, recheck, recheck, TimeUnit.MILLISECONDS);
            if (config.vacuumAfterRows() > 0) {
                // on the sampler's thread: the pool needs no connection more for it
                OutboxVacuum vacuum = new OutboxVacuum(
                        config.dataSource(),
                        config.schema(),
                        config.vacuumAfterRows(),
                        () -> metrics.published.count() + metrics.rowsRewritten.sum(),
                        metrics::backlogTotal,
                        metrics,
                        log,
                        System::nanoTime);
                sampler.scheduleWithFixedDelay(vacuum::tick, 1, 1, TimeUnit.SECONDS);
            }
            if (config.listenDataSource() != null) {
                listener = new NotificationListener(this, Outbox.channel(config.schema()));
                listener.start();
            }
        }
    }

    /** A shard loop found its lease gone when writing. */
    void dropped(ShardWorker w) {
        LeaseRounds rounds = leases;
        if (rounds != null) {
            rounds.dropped(w);
        } else {
            owned.remove(w.shard, w);
        }
    }

    // ---- wake-up ----

    void wake(int shard) {
        ShardWorker w = owned.get(shard);
        if (w != null) {
            w.loop.wake();
        }
    }

    void wakeAll() {
        owned.values().forEach(w -> w.loop.wake());
    }

    /** @return the ids of the deletes no shard waits for: the probe's read leaves them out */
    PendingDeletes pendingDeletes() {
        return pendingDeletes;
    }

    Collection<ShardWorker> ownedWorkers() {
        return owned.values();
    }

    ShardProbe probe() {
        return probe;
    }

    // ---- sampling, on the sampler thread ----

    private void sample() {
        if (closing) {
            return;
        }
        try {
            Set<Integer> shards = Set.copyOf(owned.keySet());
            metrics.backlog(shards, db.backlog(shards));
            metrics.parkedRows(db.parkedRows());
            databaseAnswered();
        } catch (SQLException e) {
            metrics.database.increment();
            log.retry("sampling the backlog failed (SQLState {}): {}", e.getSQLState(), e.getMessage());
        } catch (RuntimeException e) {
            log.warn("sampling the backlog failed: {}", e.toString());
        }
        long window = config.leaseDuration().toNanos();
        if (time.nanoTime() - kafkaOkNanos > window / 3 || kafkaOkNanos == Long.MIN_VALUE) {
            if (kafkaProbe.answers()) {
                kafkaAnswered();
            }
        }
    }

    // ---- state shared with the shard loops ----

    void databaseAnswered() {
        databaseOkNanos = time.nanoTime();
    }

    void kafkaAnswered() {
        kafkaOkNanos = time.nanoTime();
    }

    /** @return whether Kafka acknowledged a record or answered the probe after {@code nanos} ({@link TimeSource#nanoTime()}) */
    boolean kafkaAnsweredSince(long nanos) {
        long ok = kafkaOkNanos;
        return ok != Long.MIN_VALUE && ok - nanos > 0;
    }

    /**
     * Asked by a topic lookup that found no metadata: whether Kafka answered meanwhile, else whether it
     * answers the readiness probe now. An idle relay acknowledges no record for a whole lookup, and its
     * missing topic must still be told apart from an outage.
     */
    private boolean kafkaAnsweredOrAnswersNow(long nanos) {
        if (kafkaAnsweredSince(nanos)) {
            return true;
        }
        KafkaReadiness readiness = kafkaProbe;
        if (readiness != null && readiness.answers()) {
            kafkaAnswered();
            return true;
        }
        return false;
    }

    RelayConfig config() {
        return config;
    }

    TimeSource time() {
        return time;
    }

    Db db() {
        return db;
    }

    /** @return the shared producer; {@link TopicHealth} looks topics up through it in both modes */
    Publisher publisher() {
        return producers.shared();
    }

    TopicHealth topics() {
        return topics;
    }

    CircuitBreaker breaker() {
        return breaker;
    }

    RelayMetrics metrics() {
        return metrics;
    }

    ScheduledThreadPoolExecutor workers() {
        return workers;
    }

    PrefixedLog log() {
        return log;
    }

    boolean closing() {
        return closing;
    }

    // ---- the public API ----

    @Override
    public String instanceId() {
        return config.instanceId();
    }

    @Override
    public Set<Integer> ownedShards() {
        return Set.copyOf(owned.keySet());
    }

    @Override
    public boolean isLive() {
        LeaseRounds rounds = leases;
        // Liveness asks whether the relay's own threads make progress, not whether PostgreSQL answers: a
        // restart does not bring a database back, and a relay that cannot reach it retries by itself and is
        // only not ready. A coordinator stuck in one round (a statement on a connection without a socket
        // timeout) makes no progress: it is not live once the round has run for two lease durations and 5 s.
        // Nor is a write thread stuck in one statement as long: the shards waiting for their deletes or
        // failed rows publish nothing meanwhile, while the lease rounds go on. Nor is a shard's task stuck as
        // long on a worker thread (a read of its rows): that shard publishes nothing while its lease is renewed.
        long now = time.nanoTime();
        long stuck = stuckRoundNanos();
        return state == State.RUNNING
                && !closing
                && !halted
                && !workers.isShutdown()
                && !coordinator.isShutdown()
                && !writeThread.isShutdown()
                && probe.isAlive()
                && (listener == null || listener.isAlive())
                && rounds != null
                && rounds.progressing(now, stuck)
                && deletes.progressing(now, stuck)
                && failures.progressing(now, stuck)
                && shardsProgressing(now, stuck);
    }

    private boolean shardsProgressing(long now, long stuck) {
        for (ShardWorker w : owned.values()) {
            if (!w.loop.progressing(now, stuck)) {
                return false;
            }
        }
        for (ShardWorker w : releasing.values()) {
            if (!w.loop.progressing(now, stuck)) {
                return false;
            }
        }
        return true;
    }

    /**
     * @return how long one lease round may run, or the coordinator go without ending one, before the relay
     *     is not live: two lease durations and 5 s, more than one round takes when each wait for a
     *     connection is bounded by the lease and each statement by a third of it and a socket timeout of a
     *     few seconds more (as the process's pool is)
     */
    private long stuckRoundNanos() {
        return config.leaseDuration().toNanos() * 2 + TimeUnit.SECONDS.toNanos(5);
    }

    @Override
    public boolean isReady() {
        long window = config.leaseDuration().toNanos();
        long now = time.nanoTime();
        return isLive()
                && databaseOkNanos != Long.MIN_VALUE
                && now - databaseOkNanos <= window
                && kafkaOkNanos != Long.MIN_VALUE
                && now - kafkaOkNanos <= window
                && sendsWork(now, window);
    }

    /**
     * Kafka answering its probe is not enough: with too few in-sync replicas, say, the cluster answers
     * while every send fails, and the breaker opens on those failures. Half-open counts as failing while
     * the breaker opened within the window (its trials keep failing, and it opens again sooner than
     * that), and as working after: a half-open breaker closes only on a trial batch, which a relay with
     * nothing to send never makes.
     */
    private boolean sendsWork(long now, long window) {
        return switch (breaker.getState()) {
            case OPEN, FORCED_OPEN -> false;
            case HALF_OPEN -> {
                long opened = breakerOpenedNanos;
                yield opened == Long.MIN_VALUE || now - opened > window;
            }
            default -> true;
        };
    }

    @Override
    public void close() {
        synchronized (lifecycle) {
            if (state == State.CLOSED) {
                return;
            }
            boolean wasRunning = state == State.RUNNING;
            state = State.CLOSED;
            closing = true;
            if (!wasRunning) {
                metrics.removeGauges();
                return;
            }
            long started = time.nanoTime();
            log.info(
                    "closing: finishing the batches in flight (up to {}), then handing back {} shards",
                    Durations.format(config.shutdownTimeout()),
                    owned.size());
            awaitQuietly(coordinator, Duration.ofSeconds(5));
            List<ShardWorker> stopping = new ArrayList<>(owned.values());
            stopping.addAll(releasing.values());
            CompletableFuture<?>[] stops =
                    stopping.stream().map(ShardWorker::stop).toArray(CompletableFuture[]::new);
            boolean timedOut = false;
            try {
                CompletableFuture.allOf(stops).get(config.shutdownTimeout().toMillis(), TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                timedOut = true;
            } catch (ExecutionException | TimeoutException e) {
                timedOut = true;
            }
            if (timedOut) {
                // the producer goes first, so nothing it still holds is sent after a shard changed hands; shards
                // whose batch did not finish are not handed back but left to expire: a record already on its way
                // then still reaches the broker before another relay may claim the shard
                // which batches are unfinished is decided before the producer is closed: closing it fails
                // them at once, and they would then look finished and be handed back
                List<ShardWorker> unfinished =
                        stopping.stream().filter(w -> !w.stop().isDone()).toList();
                producers.close(Duration.ZERO);
                stopping.removeAll(unfinished);
                log.warn(
                        "batches of shards {} still in flight after {}; those leases are left to expire (their rows will be"
                                + " published again)",
                        ShardRanges.ranges(unfinished.stream().map(w -> w.shard).toList()),
                        Durations.format(config.shutdownTimeout()));
            }
            // every shard loop has stopped (or is left behind): no batch waits for a delete any more
            stopWrites(Duration.ofSeconds(5));
            try {
                // the leases of shards dropped since the coordinator stopped, fenced by their epochs like the rest
                Map<Integer, Long> held = ShardRanges.epochs(leases.takeDropped());
                held.putAll(ShardRanges.epochs(stopping));
                Set<Integer> released = db.release(held);
                releasing.clear();
                owned.clear();
                db.leave();
                log.info("handed back shards {} and left the membership", ShardRanges.ranges(released));
            } catch (SQLException e) {
                metrics.database.increment();
                log.warn(
                        "could not hand back the leases (SQLState {}): {}; other relays take the shards when the leases expire",
                        e.getSQLState(),
                        e.getMessage());
                owned.clear();
            }
            shutdown(Duration.ofSeconds(5));
            metrics.removeGauges();
            log.info("closed in {}", Durations.format(Durations.roughly(Duration.ofNanos(time.nanoTime() - started))));
        }
    }

    /**
     * Stops every thread and the producer at once, without finishing batches, handing back leases or
     * leaving the membership: what a {@code kill -9} leaves behind, for failover tests. Other relays
     * take the shards over when the leases expire.
     */
    public void halt() {
        synchronized (lifecycle) {
            if (state != State.RUNNING) {
                if (state != State.CLOSED) {
                    metrics.removeGauges();
                }
                state = State.CLOSED;
                return;
            }
            state = State.CLOSED;
            halted = true;
            closing = true;
            coordinator.shutdownNow();
            sampler.shutdownNow();
            workers.shutdownNow();
            deletes.stop();
            failures.stop();
            writeThread.shutdownNow();
            stopWakeUp();
            topics.close();
            producers.close(Duration.ZERO);
            kafkaProbe.close(Duration.ZERO);
            owned.clear();
            metrics.removeGauges();
            log.warn("halted without handing back its leases");
        }
    }

    /** Fails what is still queued (a batch left behind by the shutdown timeout) and waits for a statement running. */
    private void stopWrites(Duration timeout) {
        deletes.stop();
        failures.stop();
        awaitQuietly(writeThread, timeout);
        writeThread.shutdownNow();
    }

    private void stopWakeUp() {
        pauses.stop();
        probe.stop();
        if (listener != null) {
            listener.stop();
        }
    }

    private void shutdown(Duration timeout) {
        stopWakeUp();
        coordinator.shutdownNow();
        sampler.shutdownNow();
        workers.shutdown();
        awaitQuietly(workers, timeout);
        workers.shutdownNow();
        topics.close();
        producers.close(timeout);
        kafkaProbe.close(Duration.ofSeconds(1));
        awaitQuietly(sampler, Duration.ofSeconds(2));
    }

    private static void awaitQuietly(ExecutorService executor, Duration timeout) {
        executor.shutdown();
        try {
            executor.awaitTermination(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private ThreadFactory threads(String role) {
        return Threads.named(config.instanceId(), role);
    }

    @Override
    public String toString() {
        return prefix;
    }
}
