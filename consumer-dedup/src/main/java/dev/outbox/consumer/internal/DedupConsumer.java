package dev.outbox.consumer.internal;

import dev.outbox.consumer.IdempotentConsumer;
import dev.outbox.core.internal.Durations;
import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.core.internal.TimeSource;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.micrometer.core.instrument.Gauge;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.KafkaException;
import org.jooq.exception.DataAccessException;
import org.slf4j.LoggerFactory;

/**
 * The {@link IdempotentConsumer}: one poll thread owns the {@link KafkaConsumer} (it is not
 * thread-safe: every call to it happens there, rebalance callbacks included), worker threads run
 * {@link PartitionWorker}s.
 */
public final class DedupConsumer implements IdempotentConsumer {
    private static final AtomicInteger INSTANCES = new AtomicInteger();
    private static final Duration POLL_TIMEOUT = Duration.ofMillis(100);
    /** How often an idle consumer tries a breaker that is not closed. */
    private static final Duration IDLE_TRIAL_INTERVAL = Duration.ofSeconds(1);
    /** The {@code isolation.level} that hands the handler records of aborted Kafka transactions. */
    private static final String READ_UNCOMMITTED = "read_uncommitted";
    /**
     * The steps of the poll thread, once asked to stop, in closeTimeouts: the step under way (a poll
     * whose revocation waits for the transactions in flight and commits their offsets: 2; or an offset
     * commit and the end offsets of paused partitions: at most 2), the wait for the transactions in
     * flight (1) and their offset commit (1), the Kafka consumer's close (1) and the dead-letter
     * producer's (1).
     */
    static final int CLOSE_STEPS = 6;
    /** What {@link #closeBound} allows beyond the steps: the poll's own 100 ms and the work between steps. */
    static final Duration CLOSE_MARGIN = Duration.ofSeconds(5);

    private enum State {
        NEW,
        RUNNING,
        CLOSING,
        CLOSED,
        FAILED
    }

    private final Settings settings;
    private final String instance;
    private final PrefixedLog log;
    private final TimeSource time;
    private final Metrics metrics;
    private final Database database;
    private final DeadLetterSink deadLetters;
    private final Breaker databaseBreaker;
    private final Breaker deadLetterBreaker;
    private final List<Gauge> breakerGauges;
    private final Consumer<byte[], byte[]> consumer;
    private final ScheduledThreadPoolExecutor workers;
    private final ScheduledExecutorService purger;
    private final PartitionWorker.Parts parts;
    private final Assignments assignments;
    private final Object lifecycle = new Object();
    private volatile State state = State.NEW;

    private Thread pollThread;
    /** What the poll thread does, for close() to say when it does not stop in time. */
    private volatile String pollStep = "starting";

    private final IdleTrial databaseTrial;
    private final IdleTrial deadLetterTrial;

    /**
     * @param settings validated by the builder
     */
    public DedupConsumer(Settings settings) {
        this(settings, null, null, null, TimeSource.SYSTEM);
    }

    /**
     * @return a Kafka consumer of the settings' properties
     * @throws IllegalArgumentException when the client refuses them (a value it cannot parse, a bootstrap
     *     address that does not resolve), naming the client's reason
     */
    private static Consumer<byte[], byte[]> kafkaConsumer(Settings settings) {
        try {
            return new KafkaConsumer<>(new HashMap<>(settings.consumerProperties()));
        } catch (KafkaException e) {
            // "Failed to construct kafka consumer" carries the client's reason as its cause
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            throw new IllegalArgumentException(
                    "the Kafka consumer could not be created from the consumer's Kafka properties (kafkaProperties,"
                            + " bootstrapServers): " + cause.getMessage() + "; correct the property it names",
                    e);
        }
    }

    /**
     * With some collaborators given instead of made from {@code settings}; a null one is made.
     *
     * @param consumer the Kafka consumer, or null for a {@link KafkaConsumer} of the settings
     * @param store the database of the workers, or null for {@link BatchTransactions}
     * @param deadLetters where dead letters go, or null for {@link DeadLetters}
     */
    DedupConsumer(
            Settings settings,
            Consumer<byte[], byte[]> consumer,
            BatchStore store,
            DeadLetterSink deadLetters,
            TimeSource time) {
        this.settings = Objects.requireNonNull(settings, "settings may not be null");
        this.instance = settings.consumerName() + "#" + INSTANCES.incrementAndGet();
        this.log =
                new PrefixedLog(LoggerFactory.getLogger(IdempotentConsumer.class), "[consumer-dedup " + instance + "]");
        this.time = time;
        // first: a Kafka property the client refuses fails the build before any meter is registered
        this.consumer = consumer != null ? consumer : kafkaConsumer(settings);
        this.metrics = new Metrics(settings.meterRegistry(), settings.consumerName(), instance);
        this.database = new Database(settings);
        this.deadLetters =
                deadLetters != null ? deadLetters : new DeadLetters(settings, metrics.deadLetterProducerReplaced, log);
        // a batch or publish still running after closeTimeout is taken as hung, as at a revocation
        this.databaseBreaker = Breaker.create(instance + "-database", "database", log, time, settings.closeTimeout());
        this.deadLetterBreaker =
                Breaker.create(instance + "-dead-letter", "dead-letter producer", log, time, settings.closeTimeout());
        this.breakerGauges = List.of(
                metrics.breakerState(databaseBreaker.circuitBreaker(), "database"),
                metrics.breakerState(deadLetterBreaker.circuitBreaker(), "dead-letter"));
        this.workers =
                new ScheduledThreadPoolExecutor(settings.concurrency(), Threads.daemons(instance, "worker", true));
        this.workers.setRemoveOnCancelPolicy(true);
        // a partition waiting for its retry must not hold up close()
        this.workers.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
        this.purger = settings.purgeInterval().isZero()
                ? null
                : Executors.newSingleThreadScheduledExecutor(Threads.daemons(instance, "purge", false));
        RecordMapping mapping = RecordMapping.of(settings, time);
        this.parts = new PartitionWorker.Parts(
                settings,
                mapping,
                store != null ? store : new BatchTransactions(database, settings, mapping, metrics, log, time),
                this.deadLetters,
                databaseBreaker,
                deadLetterBreaker,
                metrics,
                log,
                time,
                SerialTask.Scheduler.of(workers));
        this.assignments = new Assignments(settings, this.consumer, parts, metrics, log, time);
        // every record's work asks the database breaker; only a record that fails for good asks the
        // dead-letter one, so its check runs whether records are queued or not
        this.databaseTrial = new IdleTrial(databaseBreaker, () -> parts.store().ping(), assignments::hasWork);
        String firstTopic = settings.topics().get(0);
        this.deadLetterTrial = new IdleTrial(
                deadLetterBreaker,
                () -> parts.deadLetters().ping(parts.deadLetters().topicFor(firstTopic)),
                () -> false);
        Object isolation = settings.consumerProperties().get(ConsumerConfig.ISOLATION_LEVEL_CONFIG);
        if (isolation != null
                && READ_UNCOMMITTED.equalsIgnoreCase(isolation.toString().strip())) {
            log.warn(
                    "isolation.level={} in kafkaProperties: the handler also gets the records of aborted Kafka"
                            + " transactions, among them the batches the relay's publish-mode=transactional rolled back"
                            + " (or a fenced relay's), applied out of the order in which the relay commits them, which"
                            + " breaks per-key order; remove it to read committed records only (read_committed, the"
                            + " consumer's default)",
                    isolation);
        }
        if (settings.retention().compareTo(Duration.ofDays(1)) < 0) {
            log.warn(
                    "retention is {}: a message redelivered more than {} after it was processed (relay republishing after"
                            + " an outage, an offset reset, a replay) will be handled again",
                    Durations.format(settings.retention()),
                    Durations.format(settings.retention()));
        }
    }

    // --- public API

    @Override
    public void start() {
        synchronized (lifecycle) {
            if (state != State.NEW) {
                throw new IllegalStateException("consumer " + settings.consumerName() + " was already started (state "
                        + state + "); build a new one");
            }
            state = State.RUNNING;
            // the poll thread keeps the JVM alive as any thread its caller would start
            pollThread = Threads.start(instance, "poll", Thread.currentThread().isDaemon(), this::pollLoop);
            Threads.start(instance, "retention-check", true, () -> TopicRetentionCheck.run(settings, instance, log));
            if (purger != null) {
                long interval = settings.purgeInterval().toMillis();
                purger.scheduleWithFixedDelay(this::scheduledPurge, interval, interval, TimeUnit.MILLISECONDS);
            }
        }
        log.info(
                "started on topics {} with group {}, concurrency {}, {} record(s) per transaction",
                settings.topics(),
                settings.consumerProperties().get("group.id"),
                settings.concurrency(),
                settings.maxRecordsPerTransaction());
    }

    @Override
    public long purgeProcessed(Duration olderThan) {
        Objects.requireNonNull(olderThan, "olderThan may not be null");
        if (olderThan.compareTo(Duration.ofHours(1)) < 0) {
            throw new IllegalArgumentException("olderThan must be at least 1h, got " + Durations.format(olderThan)
                    + "; it must exceed the longest redelivery window");
        }
        if (olderThan.compareTo(IdempotentConsumer.Builder.MAX_RETENTION) > 0) {
            throw new IllegalArgumentException("olderThan must be at most "
                    + Durations.format(IdempotentConsumer.Builder.MAX_RETENTION) + " (100 years), got "
                    + Durations.format(olderThan) + "; no processed id is that old, so there is nothing to purge");
        }
        double seconds = olderThan.toNanos() / 1e9;
        long total = 0;
        try {
            int deleted;
            do {
                deleted = database.purgeBatch(settings.consumerName(), seconds);
                total += deleted;
                metrics.purged.increment(deleted);
            } while (deleted == Database.PURGE_BATCH);
        } catch (SQLException e) {
            throw new DataAccessException(
                    log.prefix() + " purging processed_message rows older than " + Durations.format(olderThan)
                            + " failed after" + " deleting " + total + " (SQLState " + e.getSQLState() + "): "
                            + e.getMessage(),
                    e);
        }
        return total;
    }

    private void scheduledPurge() {
        try {
            long deleted = purgeProcessed(settings.retention());
            if (deleted > 0) {
                log.info(
                        "purged {} processed message id(s) older than {}",
                        deleted,
                        Durations.format(settings.retention()));
            }
        } catch (VirtualMachineError e) {
            throw e;
        } catch (RuntimeException | Error e) {
            // anything thrown out of a scheduled task cancels its later runs, and the table would grow
            metrics.purgeFailures.increment();
            log.warn("scheduled purge failed; next try in {}", settings.purgeInterval(), e);
        }
    }

    /** The database breaker, for tests that open it. */
    CircuitBreaker databaseCircuitBreaker() {
        return databaseBreaker.circuitBreaker();
    }

    /** The dead-letter breaker, for tests that open it. */
    CircuitBreaker deadLetterCircuitBreaker() {
        return deadLetterBreaker.circuitBreaker();
    }

    @Override
    public Readiness readiness() {
        boolean running = state == State.RUNNING;
        boolean isAssigned = running && assignments.hasAssignment();
        boolean databaseClosed = databaseBreaker.state() == CircuitBreaker.State.CLOSED;
        boolean deadLetterClosed = deadLetterBreaker.state() == CircuitBreaker.State.CLOSED;
        List<String> problems = new ArrayList<>();
        if (!running) {
            problems.add("not running (" + state.name().toLowerCase(Locale.ROOT) + ")");
        } else if (!isAssigned) {
            problems.add("no partition assignment from group "
                    + settings.consumerProperties().get("group.id") + " yet");
        }
        if (!databaseClosed) {
            problems.add("database circuit breaker " + databaseBreaker.state());
        }
        if (!deadLetterClosed) {
            problems.add("dead-letter circuit breaker " + deadLetterBreaker.state());
        }
        return new Readiness(
                problems.isEmpty(),
                running,
                isAssigned,
                running ? assignments.size() : 0,
                databaseClosed,
                deadLetterClosed,
                String.join("; ", problems));
    }

    @Override
    public int readmitDeadLettered(Collection<UUID> messageIds) {
        Objects.requireNonNull(messageIds, "messageIds may not be null");
        messageIds.forEach(id -> Objects.requireNonNull(id, "messageIds may not contain null"));
        if (messageIds.isEmpty()) {
            return 0;
        }
        try {
            int readmitted = database.readmit(settings.consumerName(), messageIds);
            log.info("re-admitted {} of {} dead-lettered message id(s)", readmitted, messageIds.size());
            return readmitted;
        } catch (SQLException e) {
            throw new DataAccessException(
                    log.prefix() + " re-admitting dead-lettered message ids failed (SQLState " + e.getSQLState() + "): "
                            + e.getMessage()
                            + (SqlErrors.isContention(e)
                                    ? "; another transaction holds the row of one of these ids (a replayed copy being"
                                            + " handled, another re-admission, or a consumer instance that lost its"
                                            + " partitions with its transaction open: pg_stat_activity shows it);"
                                            + " nothing was re-admitted, call again once it ended"
                                    : ""),
                    e);
        }
    }

    @Override
    public String name() {
        return settings.consumerName();
    }

    @Override
    public boolean isRunning() {
        return state == State.RUNNING;
    }

    @Override
    public void close() {
        Thread poll;
        synchronized (lifecycle) {
            switch (state) {
                case NEW -> {
                    state = State.CLOSED;
                    shutdownResources();
                    consumer.close(Duration.ZERO);
                    return;
                }
                case CLOSED -> {
                    return;
                }
                case RUNNING -> state = State.CLOSING;
                default -> {
                    // CLOSING by another caller, or FAILED: wait for the poll thread below
                }
            }
            poll = pollThread;
        }
        if (poll != null && poll != Thread.currentThread()) {
            awaitPollThread(poll);
        }
    }

    /**
     * How long close() waits for the poll thread: every step it takes once asked to stop, each bounded by
     * closeTimeout ({@link #CLOSE_STEPS}), and {@link #CLOSE_MARGIN}.
     *
     * @param closeTimeout the consumer's closeTimeout
     * @return {@code 6 × closeTimeout + 5 s}
     */
    static Duration closeBound(Duration closeTimeout) {
        return closeTimeout.multipliedBy(CLOSE_STEPS).plus(CLOSE_MARGIN);
    }

    /**
     * Waits {@link #closeBound} for the poll thread to stop. Only a Kafka client call that overstays its
     * timeout keeps it longer: then the poll thread is reported at ERROR with what it holds, woken up
     * ({@link Consumer#wakeup()}) and interrupted, and waited for one closeTimeout more, for the Kafka
     * consumer's close that follows.
     */
    private void awaitPollThread(Thread poll) {
        Duration bound = closeBound(settings.closeTimeout());
        try {
            poll.join(bound.toMillis());
            if (!poll.isAlive()) {
                return;
            }
            log.error(
                    "the poll thread has not stopped within {} ({} times closeTimeout ({}) and {}, what every step it"
                            + " takes once asked to stop needs unless a Kafka call overstays its timeout): it is {}; {}."
                            + " Waking it up and interrupting it, and waiting {} more",
                    Durations.format(bound),
                    CLOSE_STEPS,
                    Durations.format(settings.closeTimeout()),
                    Durations.format(CLOSE_MARGIN),
                    pollStep,
                    holdings(),
                    Durations.format(settings.closeTimeout()),
                    stackOf(poll));
            consumer.wakeup();
            poll.interrupt();
            poll.join(settings.closeTimeout().toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        if (poll.isAlive()) {
            log.error(
                    "the poll thread did not stop once interrupted either: it is {}; {}. close() returns while it"
                            + " runs: no other member of the group gets its partitions before it leaves the group or its"
                            + " session times out (session.timeout.ms), and if it was started from a thread that is not"
                            + " a daemon it keeps the JVM from exiting by itself; end the process",
                    pollStep,
                    holdings(),
                    stackOf(poll));
        } else {
            log.warn("the poll thread stopped once interrupted");
        }
    }

    /** @return what the consumer still holds: its Kafka consumer's partitions, and the steps still running */
    private String holdings() {
        StringBuilder out = new StringBuilder("the Kafka consumer is open in group ")
                .append(settings.consumerProperties().get("group.id"));
        var owned = assignments.owned();
        out.append(owned.isEmpty() ? " with no partition" : ", holding partitions " + owned);
        for (PartitionWorker w : assignments.stillRunning()) {
            PartitionWorker.Activity a = w.activity();
            if (a != null) {
                out.append("; ")
                        .append(a.what())
                        .append(" runs on ")
                        .append(a.thread().getName())
                        .append(" since ")
                        .append(Durations.format(runningFor(a)));
            }
        }
        return out.toString();
    }

    /** @return how long the step has been running, to the millisecond */
    private Duration runningFor(PartitionWorker.Activity a) {
        return Duration.ofMillis(TimeUnit.NANOSECONDS.toMillis(time.nanoTime() - a.sinceNanos()));
    }

    /** @return a throwable whose stack trace is where {@code thread} is now, for the log */
    private static Throwable stackOf(Thread thread) {
        Throwable where = new Throwable("where " + thread.getName() + " is");
        where.setStackTrace(thread.getStackTrace());
        return where;
    }

    // --- poll thread

    private void pollLoop() {
        boolean clean = false;
        try {
            consumer.subscribe(settings.topics(), assignments);
            while (state == State.RUNNING) {
                long roundStart = time.nanoTime();
                pollStep = "in a poll, which may run a revocation (a wait for the transactions in flight of the"
                        + " partitions revoked, then their offset commit)";
                ConsumerRecords<byte[], byte[]> records = consumer.poll(POLL_TIMEOUT);
                if (state != State.RUNNING) {
                    // closing: what the poll fetched is left for redelivery, and stopAll commits what is done
                    break;
                }
                assignments.enqueue(records);
                assignments.updatePauses();
                pollStep = "committing offsets";
                assignments.commit(false);
                pollStep = "asking for the end offsets of paused partitions";
                assignments.updateLag(roundStart);
                databaseTrial.tryIfIdle();
                deadLetterTrial.tryIfIdle();
            }
            if (state == State.CLOSING) {
                pollStep = "waiting for the transactions in flight, then committing their offsets";
                assignments.stopAll();
                clean = true;
            }
        } catch (Throwable t) {
            assignments.stopCommits();
            state = State.FAILED;
            log.error("poll loop failed; stopping without committing further offsets", t);
        } finally {
            try {
                assignments.stopWorkers();
                pollStep = "closing the Kafka consumer (leaving the group)";
                consumer.close(settings.closeTimeout());
            } catch (RuntimeException e) {
                log.warn("closing the Kafka consumer failed", e);
            }
            if (!clean) {
                // after a failure nothing waited for the steps in flight (lost partitions are not waited for,
                // and a close that failed ran no callback): they get closeTimeout, as a close gives them
                pollStep = "waiting for the steps in flight after a failure";
                awaitWorkers();
            }
            pollStep = "stopping the worker threads and closing the dead-letter producer";
            reportStillRunning();
            shutdownResources();
            synchronized (lifecycle) {
                if (state != State.FAILED) {
                    state = State.CLOSED;
                }
            }
            log.info("stopped{}", clean ? "" : " after a failure");
        }
    }

    /** A check of what a breaker guards, made through it. */
    @FunctionalInterface
    private interface Trial {
        void run() throws InfrastructureException;
    }

    /**
     * A breaker that no call reaches stays open: the consumer's breakers move to half-open only when
     * they are asked for a permission. When the partitions that had work moved to another member, or
     * their work was done elsewhere, nothing would ask, and readiness and the breaker gauge would
     * report the database (or the dead-letter topic's brokers) down for as long as no record arrives
     * (or none fails for good). So while a breaker is not closed and nothing else asks it (for the
     * database: no partition has work; for the dead-letter topic, which only a record that failed for
     * good asks: whatever the partitions hold), the poll thread has one check tried through it at most
     * once a second, on a worker thread; an open breaker refuses it until its open interval passed, and
     * the check that it lets through closes or opens it again.
     */
    private final class IdleTrial {
        private final Breaker breaker;
        private final Trial trial;
        private final AtomicBoolean running = new AtomicBoolean();
        // poll thread only
        private long last = Long.MIN_VALUE / 2;

        private final BooleanSupplier asked;

        /** @param asked whether other work asks the breaker now, so that no check is needed */
        IdleTrial(Breaker breaker, Trial trial, BooleanSupplier asked) {
            this.breaker = breaker;
            this.trial = trial;
            this.asked = asked;
        }

        void tryIfIdle() {
            if (breaker.state() == CircuitBreaker.State.CLOSED) {
                return;
            }
            long now = time.nanoTime();
            if (now - last < IDLE_TRIAL_INTERVAL.toNanos() || asked.getAsBoolean()) {
                return;
            }
            if (!running.compareAndSet(false, true)) {
                return;
            }
            last = now;
            try {
                workers.execute(() -> {
                    try {
                        breaker.call(() -> {
                            trial.run();
                            return null;
                        });
                    } catch (Breaker.OpenException | InfrastructureException e) {
                        // still open, or the check failed and counted against what the breaker guards
                    } finally {
                        running.set(false);
                    }
                });
            } catch (RejectedExecutionException e) {
                running.set(false);
            }
        }
    }

    /**
     * As the poll thread stops, after the wait for the transactions in flight: reports at ERROR each step
     * still running, which {@link #shutdownResources} then interrupts. Only a handler that does not
     * return (or a message id extractor that does not) can be one: every other part of a step is bounded
     * by closeTimeout.
     */
    private void reportStillRunning() {
        for (PartitionWorker w : assignments.stillRunning()) {
            PartitionWorker.Activity a = w.activity();
            if (a == null) {
                continue; // ended meanwhile
            }
            log.error(
                    "{} has been running for {} on {}, and the consumer stops without it (a close or a revocation"
                            + " waits closeTimeout, {}, for a step): {}interrupting it. A handler that ignores"
                            + " interrupts (a JDBC statement waiting for a lock does) runs on after close() returned",
                    a.what(),
                    Durations.format(runningFor(a)),
                    a.thread().getName(),
                    Durations.format(settings.closeTimeout()),
                    a.transaction()
                            ? "its transaction stays open until the handler returns, holding the processed-id rows of"
                                    + " these records and whatever the handler wrote or locked (pg_stat_activity shows"
                                    + " its session); their offsets are not committed, so the partition's next owner"
                                    + " gets them again and retries them (retries{cause=\"contention\"}) until that"
                                    + " transaction ends; "
                            : "",
                    stackOf(a.thread()));
        }
    }

    /** Lets the steps in flight end, for at most closeTimeout; new ones are not started. */
    private void awaitWorkers() {
        workers.shutdown();
        try {
            workers.awaitTermination(settings.closeTimeout().toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void shutdownResources() {
        // the steps in flight were waited for already (at most closeTimeout, by the close or the revocation
        // of their partitions, or after a failure): what still runs is interrupted, and a step scheduled for
        // later never starts
        workers.shutdownNow();
        if (purger != null) {
            purger.shutdownNow();
        }
        if (deadLetters instanceof DeadLetters producer) {
            try {
                producer.close();
            } catch (RuntimeException e) {
                // interrupted past the close bound: the rest of the shutdown must still run
                log.warn("closing the dead-letter producer failed", e);
            }
        }
        breakerGauges.forEach(metrics::remove);
        assignments.clear();
    }
}
