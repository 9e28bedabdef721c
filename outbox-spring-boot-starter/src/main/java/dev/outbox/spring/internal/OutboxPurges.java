package dev.outbox.spring.internal;

import dev.outbox.core.internal.Durations;
import dev.outbox.http.server.IdempotencyStore;
import dev.outbox.spring.ProcessedMessagesTemplate;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.sql.Connection;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.context.SmartLifecycle;

/**
 * The starter's scheduled purges, on one daemon thread ({@value #THREAD}) started with the
 * application context and stopped when it closes: the expired keys of the application's {@link
 * IdempotencyStore}, and the dedup claims of {@link ProcessedMessagesTemplate} older than the
 * retention, for every consumer name the template claimed for. Each runs every its interval, the
 * first one interval after the start; an interval of zero leaves it out.
 *
 * <p>A purge that fails is counted ({@value #FAILURES}), logged at WARN with its exception at most
 * once a minute per kind (at DEBUG in between), and tried again at the next interval. Rows deleted
 * are counted in {@value #DELETED} and, when there were any, logged at DEBUG. Both counters are
 * tagged {@code kind}: {@value #IDEMPOTENCY_KEYS} or {@value #PROCESSED_MESSAGES}.
 */
public final class OutboxPurges implements SmartLifecycle {
    /** The name of the purge thread. */
    public static final String THREAD = "outbox-purge";

    /** The counter of rows deleted by the scheduled purges, by kind. */
    public static final String DELETED = "outbox.purge.deleted";

    /** The counter of scheduled purges that failed, by kind. */
    public static final String FAILURES = "outbox.purge.failures";

    /** The kind of the purge of expired idempotency keys. */
    public static final String IDEMPOTENCY_KEYS = "idempotency_keys";

    /** The kind of the purge of old dedup claims. */
    public static final String PROCESSED_MESSAGES = "processed_messages";

    private static final Logger LOG = LoggerFactory.getLogger(OutboxPurges.class);
    private static final long WARN_EVERY_NANOS = Duration.ofMinutes(1).toNanos();

    private final List<Purge> purges;
    private final List<ScheduledFuture<?>> futures = new ArrayList<>();
    private ScheduledExecutorService executor;
    private boolean running;

    /** @param purges the purges; those with an interval of zero are not scheduled */
    public OutboxPurges(List<Purge> purges) {
        this.purges = List.copyOf(Objects.requireNonNull(purges, "purges may not be null"));
    }

    /**
     * @param interval the purge's interval; zero for none
     * @return the interval
     * @throws NullPointerException when it is null
     * @throws IllegalArgumentException when it is negative, or between zero and 1 second
     */
    public static Duration requireInterval(Duration interval) {
        Objects.requireNonNull(interval, "purgeInterval may not be null");
        if (interval.isNegative() || (!interval.isZero() && interval.compareTo(Duration.ofSeconds(1)) < 0)) {
            throw new IllegalArgumentException(
                    "purgeInterval must be zero (off) or at least 1s, got " + Durations.format(interval));
        }
        return interval;
    }

    /**
     * @param store the application's store
     * @param interval how often; zero for never
     * @param registry where the counters go
     * @return the purge of the store's expired keys ({@link IdempotencyStore#purgeExpired()})
     */
    public static Purge idempotencyKeys(IdempotencyStore store, Duration interval, MeterRegistry registry) {
        Objects.requireNonNull(store, "store may not be null");
        return new Purge(IDEMPOTENCY_KEYS, interval, registry, store::purgeExpired);
    }

    /**
     * @param template the application's template, which knows the consumer names it claimed for
     * @param dataSource where the purge takes a connection, put in autocommit mode for the purge
     * @param retention claims older than this are deleted; at least 1 hour
     * @param interval how often; zero for never
     * @param registry where the counters go
     * @return the purge of {@code template}'s claims older than {@code retention}, consumer by
     *     consumer ({@link dev.outbox.consumer.ProcessedMessages#purge})
     */
    public static Purge processedMessages(
            ProcessedMessagesTemplate template,
            DataSource dataSource,
            Duration retention,
            Duration interval,
            MeterRegistry registry) {
        Objects.requireNonNull(template, "template may not be null");
        Objects.requireNonNull(dataSource, "dataSource may not be null");
        Objects.requireNonNull(retention, "retention may not be null");
        return new Purge(PROCESSED_MESSAGES, interval, registry, () -> {
            List<String> consumers = template.consumers().stream().sorted().toList();
            if (consumers.isEmpty()) {
                return 0;
            }
            long total = 0;
            try (Connection connection = dataSource.getConnection()) {
                boolean autoCommit = connection.getAutoCommit();
                if (!autoCommit) {
                    connection.setAutoCommit(true);
                }
                try {
                    for (String consumer : consumers) {
                        long deleted = template.processedMessages().purge(connection, consumer, retention);
                        if (deleted > 0) {
                            LOG.debug(
                                    "[outbox] purged {} processed message id(s) of consumer {} older than {}",
                                    deleted,
                                    consumer,
                                    Durations.format(retention));
                        }
                        total += deleted;
                    }
                } finally {
                    if (!autoCommit) {
                        connection.setAutoCommit(false);
                    }
                }
            }
            return total;
        });
    }

    @Override
    public synchronized void start() {
        if (running) {
            return;
        }
        List<Purge> scheduled =
                purges.stream().filter(p -> !p.interval.isZero()).toList();
        if (!scheduled.isEmpty()) {
            executor = Executors.newSingleThreadScheduledExecutor(task -> {
                Thread thread = new Thread(task, THREAD);
                thread.setDaemon(true);
                return thread;
            });
            for (Purge purge : scheduled) {
                long millis = purge.interval.toMillis();
                futures.add(executor.scheduleWithFixedDelay(purge::run, millis, millis, TimeUnit.MILLISECONDS));
                LOG.info("[outbox] scheduled purge of {} every {}", purge.kind, Durations.format(purge.interval));
            }
        }
        running = true;
    }

    @Override
    public synchronized void stop() {
        if (!running) {
            return;
        }
        running = false;
        futures.forEach(f -> f.cancel(true));
        futures.clear();
        if (executor != null) {
            executor.shutdownNow();
            try {
                if (!executor.awaitTermination(10, TimeUnit.SECONDS)) {
                    LOG.warn("[outbox] the purge thread did not end within 10s of the context closing");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            executor = null;
        }
    }

    @Override
    public synchronized boolean isRunning() {
        return running;
    }

    /** Starts after the pool and before the web server, and stops after the web server and before the pool closes, as the embedded relay does. */
    @Override
    public int getPhase() {
        return EmbeddedRelay.PHASE;
    }

    /** What one purge deletes: the rows, or an exception. */
    @FunctionalInterface
    public interface Deletion {
        /**
         * @return how many rows were deleted
         * @throws Exception when the purge failed
         */
        long delete() throws Exception;
    }

    /** One kind of purge, its interval, and its counters. Run on the purge thread only. */
    public static final class Purge {
        private final String kind;
        private final Duration interval;
        private final Deletion deletion;
        private final Counter deleted;
        private final Counter failures;
        private long lastWarning;
        private boolean warned;

        /**
         * @param kind names the purge in log lines and in the counters' {@code kind} tag
         * @param interval how often it runs; zero for never
         * @param registry where the counters go
         * @param deletion the deletion
         */
        public Purge(String kind, Duration interval, MeterRegistry registry, Deletion deletion) {
            this.kind = Objects.requireNonNull(kind, "kind may not be null");
            this.interval = requireInterval(interval);
            this.deletion = Objects.requireNonNull(deletion, "deletion may not be null");
            Objects.requireNonNull(registry, "registry may not be null");
            this.deleted = Counter.builder(DELETED)
                    .description("Rows deleted by the starter's scheduled purges")
                    .tag("kind", kind)
                    .register(registry);
            this.failures = Counter.builder(FAILURES)
                    .description("Scheduled purges that failed (the next one retries)")
                    .tag("kind", kind)
                    .register(registry);
        }

        /** @return the name of the purge */
        public String kind() {
            return kind;
        }

        /** @return how often it runs; zero for never */
        public Duration interval() {
            return interval;
        }

        /** Runs the deletion once; a failure is counted and logged, never thrown, but for a VM error (out of memory). */
        public void run() {
            try {
                long rows = deletion.delete();
                deleted.increment((double) rows);
                if (rows > 0) {
                    LOG.debug("[outbox] purge of {} deleted {} row(s)", kind, rows);
                }
            } catch (InterruptedException e) {
                // the context is closing
                Thread.currentThread().interrupt();
            } catch (VirtualMachineError e) {
                throw e;
            } catch (Exception | Error e) {
                // anything thrown out of a scheduled task cancels its later runs, and the table would grow
                if (Thread.currentThread().isInterrupted()) {
                    LOG.debug("[outbox] purge of {} ended by the context closing: {}", kind, e.toString());
                    return;
                }
                failures.increment();
                long now = System.nanoTime();
                if (!warned || now - lastWarning >= WARN_EVERY_NANOS) {
                    warned = true;
                    lastWarning = now;
                    LOG.warn(
                            "[outbox] purge of {} failed; next try in {} (logged at most once a minute)",
                            kind,
                            Durations.format(interval),
                            e);
                } else {
                    LOG.debug("[outbox] purge of {} failed again: {}", kind, e.toString());
                }
            }
        }
    }
}
