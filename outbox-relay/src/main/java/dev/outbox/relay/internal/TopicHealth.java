package dev.outbox.relay.internal;

import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.core.internal.TimeSource;
import dev.outbox.core.retry.Backoff;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BiConsumer;
import java.util.function.LongPredicate;
import java.util.function.Supplier;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.errors.InterruptException;

/**
 * Which topics have metadata, for all shards of one relay. Only this class asks the producer for a
 * topic's partitions ({@code partitionsFor}, which blocks up to {@code max.block.ms} for a topic the
 * broker does not know), on threads of its own: a worker waits for a lookup at most {@link
 * #firstWaitNanos} from the lookup's start, once per lookup, whichever shard started it.
 *
 * <p>A topic whose lookup timed out is <em>missing</em> from then on: shards hold its rows (and
 * the later rows of their keys) without sending or waiting, and a re-check runs here, again and
 * again, with a short capped backoff between lookups. A lookup in progress returns as soon as
 * metadata arrives, so a topic created meanwhile is seen within about a second (the producer's
 * metadata refresh plus the gap), the idle shards are woken and its rows go out. A topic is never
 * held because a lookup was merely slow: only a lookup that failed makes it missing; a worker that
 * stopped waiting holds the rows of that batch and reads them again after the lookup ended.
 *
 * <p>Only a failed lookup during which Kafka answered (a record acknowledged, the readiness probe)
 * makes a topic missing: it is evidence that the topic itself lacks metadata, and {@link
 * #uncountedCheck} lets each shard count it once as an attempt of the rows it holds, so that the
 * documented {@code maxAttempts} bound keeps parking such rows. A lookup that failed while Kafka
 * answered nothing looks like an outage: the rows fail at once (no wait) as retriable errors, which
 * the circuit breaker and the shard's backoff handle as before, and nothing is counted.
 */
final class TopicHealth {
    /** How long a successful lookup is trusted before the next batch of the topic looks again. */
    private static final long FRESH_NANOS = TimeUnit.SECONDS.toNanos(1);
    /** The longest a worker waits for a lookup (counted from the lookup's start). */
    static final long MAX_FIRST_WAIT_NANOS = TimeUnit.MILLISECONDS.toNanos(500);
    /** A topic no shard asked about for this long, and whose rows no shard remembers, is forgotten (its re-checks stop). */
    private static final long FORGET_NANOS = TimeUnit.MINUTES.toNanos(5);
    /**
     * A missing topic stays held (the shards' reads leave its rows' payloads out and the probe only
     * asks) while a shard remembers rows of it, and for this long after a batch last met one.
     */
    static final long HELD_AFTER_ASKED_NANOS = TimeUnit.SECONDS.toNanos(2);
    /**
     * How long after a lookup found the producer unusable it replaces that producer, if no worker has:
     * a worker that took the answer replaces it first, as a batch's own failure.
     */
    static final long REPLACE_AFTER_NANOS = TimeUnit.SECONDS.toNanos(1);
    /** Gaps between the lookups of a missing topic: full jitter, 100 ms doubling up to 1 s. */
    private static final Backoff RECHECK = Backoff.of(Duration.ofMillis(100), Duration.ofSeconds(1));

    /** What a worker may do with a topic's rows now. */
    enum State {
        /** its partitions are known: send */
        READY,
        /** no metadata (the last lookup failed, or the first one has not answered yet): hold its rows */
        HOLD,
        /**
         * send nothing, the row fails with {@link Status#error()}: the lookup failed for good (invalid or
         * forbidden topic), the producer is unusable, or no metadata arrived while Kafka answered nothing
         * at all (an outage, for the circuit breaker and the shard's backoff, never counted as an attempt)
         */
        ERROR
    }

    /** @param error for {@link State#ERROR}: what the lookup threw */
    record Status(State state, RuntimeException error) {
        static final Status READY = new Status(State.READY, null);
        static final Status HOLD = new Status(State.HOLD, null);
    }

    private static final class Entry {
        final String topic;
        final Map<Integer, Integer> countedByShard = new ConcurrentHashMap<>();
        // the shards' HeldRows that remember rows of this topic
        final Set<Object> holders = ConcurrentHashMap.newKeySet();
        volatile long askedNanos;
        volatile long readyNanos;
        volatile boolean ready;
        volatile boolean missing;
        // the last failed lookup saw Kafka answer meanwhile: the topic lacks metadata, not the cluster
        volatile boolean evidence;
        volatile int failedChecks;
        long countedNanos;
        volatile Errors.TopicUnavailable lastError;
        volatile boolean looking;
        // guarded by this
        CompletableFuture<Status> lookup;
        long lookupStarted;
        int consecutiveFailures;
        // since when it has had no metadata (a lookup timed out), until a lookup finds it: kept across a lookup
        // that ended the missing state on another error, for the log line when its metadata arrives
        long missingSince;
        boolean sinceSet;

        Entry(String topic) {
            this.topic = topic;
        }
    }

    private final Supplier<Publisher> publisher;
    private final LongPredicate kafkaAnsweredSince;
    private final Runnable wakeAll;
    private final PrefixedLog log;
    private final long firstWaitNanos;
    private final long countIntervalNanos;
    private final Map<String, Entry> entries = new ConcurrentHashMap<>();
    // when forgetUnused last ran
    private volatile long lastForgetNanos;
    private final ScheduledExecutorService lookups;
    private final TimeSource time;
    // told a topic's partitions when its metadata arrives (TopicDurability); nothing until set
    private volatile BiConsumer<String, List<PartitionInfo>> onMetadata = (topic, partitions) -> {};

    /**
     * @param publisher the shared producer, through which topics are looked up
     * @param kafkaAnsweredSince whether Kafka answered after the given {@link TimeSource#nanoTime()}
     *     (asked on a lookup thread when a lookup found no metadata; it may ask the cluster, and wait)
     * @param wakeAll wakes every idle shard (a held topic has metadata again)
     * @param maxBlockMs the producer's {@code max.block.ms}: a lookup of a topic without metadata
     *     ends after it
     * @param lookups where the lookups and re-checks run (they block up to {@code max.block.ms}); shut
     *     down by {@link #close()}
     * @param time the relay's clock
     */
    TopicHealth(
            RelayConfig config,
            Supplier<Publisher> publisher,
            LongPredicate kafkaAnsweredSince,
            Runnable wakeAll,
            PrefixedLog log,
            long maxBlockMs,
            ScheduledExecutorService lookups,
            TimeSource time) {
        this.publisher = publisher;
        this.kafkaAnsweredSince = kafkaAnsweredSince;
        this.wakeAll = wakeAll;
        this.log = log;
        this.firstWaitNanos = Math.min(MAX_FIRST_WAIT_NANOS, TimeUnit.MILLISECONDS.toNanos(Math.max(1, maxBlockMs)));
        this.countIntervalNanos = config.backoff().cap().toNanos();
        this.lookups = lookups;
        this.time = time;
        this.lastForgetNanos = time.nanoTime();
    }

    /** @return a pool of {@code threads} threads for the lookups, named after the relay */
    static ScheduledExecutorService lookupThreads(RelayConfig config, int threads) {
        ScheduledThreadPoolExecutor pool =
                new ScheduledThreadPoolExecutor(threads, Threads.named(config.instanceId(), "metadata"));
        pool.setRemoveOnCancelPolicy(true);
        pool.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
        return pool;
    }

    /**
     * @return whether rows of {@code topic} may be sent now; waits only for a lookup that started less
     *     than {@link #firstWaitNanos} ago, never for a topic already known to be missing
     */
    Status status(String topic) {
        long now = time.nanoTime();
        forgetUnused(now);
        Entry e = entries.computeIfAbsent(topic, Entry::new);
        e.askedNanos = now;
        CompletableFuture<Status> lookup;
        long waitNanos;
        synchronized (e) {
            if (e.missing) {
                return e.evidence ? Status.HOLD : new Status(State.ERROR, e.lastError);
            }
            if (e.ready) {
                // known: look again in the background now and then (a deleted topic is then held before a
                // send has to wait for it), but never make a batch of a known topic wait for that
                if (now - e.readyNanos >= FRESH_NANOS && e.lookup == null) {
                    start(e, 0);
                }
                return Status.READY;
            }
            if (e.lookup == null && !start(e, 0)) {
                return Status.HOLD;
            }
            lookup = e.lookup;
            waitNanos = e.lookupStarted + firstWaitNanos - now;
        }
        if (waitNanos <= 0) {
            return Status.HOLD;
        }
        try {
            return lookup.get(waitNanos, TimeUnit.NANOSECONDS);
        } catch (TimeoutException ex) {
            return Status.HOLD;
        } catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            return Status.HOLD;
        } catch (ExecutionException ex) {
            return Status.HOLD;
        }
    }

    /**
     * Forgets, at most once per {@link #FORGET_NANOS}, the topics no batch asked about for that long
     * that are not missing (a missing topic's re-checks forget it), not being looked up and whose rows
     * no shard remembers: a relay whose producers name topics per tenant or per day would otherwise keep
     * an entry for every topic it ever published to, and walk them all in {@link #held()}. A topic
     * forgotten is looked up again the next time a batch meets it.
     */
    private void forgetUnused(long now) {
        long last = lastForgetNanos;
        if (now - last < FORGET_NANOS) {
            return;
        }
        lastForgetNanos = now;
        entries.values().removeIf(e -> unused(e, now));
    }

    private static boolean unused(Entry e, long now) {
        synchronized (e) {
            return !e.missing && e.lookup == null && e.holders.isEmpty() && now - e.askedNanos >= FORGET_NANOS;
        }
    }

    /** @return the topics known now, ready, missing or being looked up */
    int known() {
        return entries.size();
    }

    /**
     * @return the topics whose rows are held now: a lookup in progress that is not known to succeed,
     *     or missing while a shard remembers rows of it or a batch met one in the last {@link
     *     #HELD_AFTER_ASKED_NANOS} (a missing topic whose rows are gone, parked or deleted, no longer
     *     changes how the shards read)
     */
    Set<String> held() {
        Set<String> out = new TreeSet<>();
        long now = time.nanoTime();
        for (Entry e : entries.values()) {
            if (held(e, now)) {
                out.add(e.topic);
            }
        }
        return out;
    }

    private static boolean held(Entry e, long now) {
        if (e.missing) {
            return e.evidence && (!e.holders.isEmpty() || now - e.askedNanos < HELD_AFTER_ASKED_NANOS);
        }
        return !e.ready && e.looking;
    }

    /**
     * A shard ({@code holder}, its {@link HeldRows}) remembers held rows of {@code topic} from now on
     * ({@code holds}), or no longer: while any shard does, a missing topic stays {@link #held()} and
     * is checked again.
     */
    void holding(String topic, Object holder, boolean holds) {
        Entry e = entries.get(topic);
        if (e == null) {
            // forgotten meanwhile: not held, so the shard forgets its rows and meets the topic again
            return;
        }
        if (holds) {
            e.holders.add(holder);
        } else if (e.holders.remove(holder)) {
            // in use until now: a shard reading its forgotten rows again finds the topic still held
            e.askedNanos = time.nanoTime();
        }
    }

    /** {@code holder}'s shard stopped: it remembers no rows any more. */
    void releaseAll(Object holder) {
        for (Entry e : entries.values()) {
            e.holders.remove(holder);
        }
    }

    /** A send found no metadata for a topic thought ready (deleted meanwhile): look it up before the next batch. */
    void suspect(String topic) {
        Entry e = entries.get(topic);
        if (e != null) {
            e.ready = false;
        }
    }

    /** A failed check of a topic that a shard has not counted yet: the error to record and the check's number. */
    record Uncounted(Errors.TopicUnavailable error, int check) {}

    /**
     * @return the failed check (Kafka answering meanwhile) of {@code topic} that {@code shard} has not
     *     counted as an attempt of its held rows yet, or null; it stays uncounted until {@link #counted}
     */
    Uncounted uncountedCheck(String topic, int shard) {
        Entry e = entries.get(topic);
        if (e == null || !e.missing || !e.evidence) {
            return null;
        }
        int check = e.failedChecks;
        Errors.TopicUnavailable error = e.lastError;
        return check > e.countedByShard.getOrDefault(shard, 0) && error != null ? new Uncounted(error, check) : null;
    }

    /** {@code shard} recorded one attempt of its held rows of {@code topic} for the checks up to {@code check}. */
    void counted(String topic, int shard, Uncounted check) {
        Entry e = entries.get(topic);
        if (e != null) {
            e.countedByShard.merge(shard, check.check(), Math::max);
        }
    }

    void close() {
        lookups.shutdownNow();
    }

    /**
     * Replaces the producer a lookup found unusable, {@link #REPLACE_AFTER_NANOS} from now, if it is still
     * the current one. Its report can come once only: a producer whose sign-in failed never gets its
     * producer id and says so to the first call that waits for metadata, after which its sends only
     * time out. A worker that waited for the lookup takes the answer, and its batch replaces the
     * producer as a failure of its own (the circuit breaker counts it); the replacement here covers a
     * lookup no worker waited for (a look at a known topic, a re-check of a missing one, a worker that
     * stopped waiting). Not at once: a batch that took the answer would then find its producer replaced
     * elsewhere, a failure the breaker does not count, and the breaker would no longer slow the
     * replacements while a credential is missing.
     */
    private void replaceLater(Publisher.Generation used, RuntimeException failure) {
        try {
            lookups.schedule(() -> publisher.get().replace(used, failure), REPLACE_AFTER_NANOS, TimeUnit.NANOSECONDS);
        } catch (RejectedExecutionException ex) {
            // closing: the producer goes with the relay
        }
    }

    /** @return false when the relay is closing and no lookup can run */
    private boolean start(Entry e, long delayNanos) {
        CompletableFuture<Status> f = new CompletableFuture<>();
        try {
            lookups.schedule(() -> lookup(e, f), delayNanos, TimeUnit.NANOSECONDS);
        } catch (RejectedExecutionException ex) {
            return false;
        }
        e.lookup = f;
        e.looking = true;
        e.lookupStarted = time.nanoTime() + delayNanos;
        return true;
    }

    /** @param onMetadata told a topic's partitions each time its metadata arrives after it had none */
    void onMetadata(BiConsumer<String, List<PartitionInfo>> onMetadata) {
        this.onMetadata = onMetadata;
    }

    private void lookup(Entry e, CompletableFuture<Status> f) {
        long started = time.nanoTime();
        RuntimeException failure = null;
        List<PartitionInfo> partitions = null;
        Publisher.Generation used = null;
        try {
            used = publisher.get().current();
            partitions = used.producer().partitionsFor(e.topic);
        } catch (RuntimeException ex) {
            failure = ex;
        }
        if (failure instanceof InterruptException) {
            Thread.currentThread().interrupt();
        }
        // a failure other than these is a lookup without metadata
        boolean notMetadata = failure != null
                && (Errors.isPoison(failure) || Errors.isFatal(failure) || failure instanceof InterruptException);
        // a lookup without metadata while Kafka answers (a record acknowledged meanwhile, or the readiness
        // probe now) means a missing topic, not an outage; asked before the entry is locked (it may wait)
        boolean answered = failure != null && !notMetadata && kafkaAnsweredSince.test(started);
        boolean found = false;
        long missingFor = 0;
        boolean firstMiss = false;
        Status result;
        synchronized (e) {
            e.lookup = null;
            e.looking = false;
            if (failure == null) {
                found = !e.ready;
                missingFor = e.sinceSet ? time.nanoTime() - e.missingSince : 0;
                e.sinceSet = false;
                e.missing = false;
                e.ready = true;
                e.readyNanos = time.nanoTime();
                e.consecutiveFailures = 0;
                result = Status.READY;
            } else if (notMetadata) {
                // not a question of metadata arriving: the worker handles it (parks the rows of an invalid or
                // forbidden topic, replaces an unusable producer). A missing topic is no longer missing on this
                // evidence: its re-checks end here, so the next batch that meets its rows looks it up again and
                // waits, with the producer in use then, and learns what holds now (a re-check that met a producer
                // closed under it by a batch's replacement, kept missing, was held with no lookup left to end it)
                e.ready = false;
                e.missing = false;
                e.evidence = false;
                result = new Status(State.ERROR, failure);
            } else {
                e.ready = false;
                if (!e.missing) {
                    e.missing = true;
                    if (!e.sinceSet) {
                        e.sinceSet = true;
                        e.missingSince = started;
                    }
                }
                e.lastError = new Errors.TopicUnavailable(e.topic, failure);
                firstMiss = !e.evidence && answered;
                e.evidence = answered;
                // one attempt per check, but at most one per countInterval: about the pace at which a
                // retried batch counted them before (max.block.ms plus a backoff up to its cap)
                if (e.evidence && (e.failedChecks == 0 || time.nanoTime() - e.countedNanos >= countIntervalNanos)) {
                    e.failedChecks++;
                    e.countedNanos = time.nanoTime();
                }
                result = e.evidence ? Status.HOLD : new Status(State.ERROR, e.lastError);
                if (time.nanoTime() - e.askedNanos < FORGET_NANOS || !e.holders.isEmpty()) {
                    start(
                            e,
                            Math.max(
                                    1,
                                    RECHECK.delay(Math.min(e.consecutiveFailures++, 30))
                                            .toNanos()));
                } else {
                    entries.remove(e.topic, e);
                }
            }
        }
        f.complete(result);
        if (used != null
                && Errors.isFatal(failure)
                && !Errors.isPoison(failure)
                && !(failure instanceof InterruptException)) {
            replaceLater(used, failure);
        }
        if (firstMiss) {
            log.warn(
                    "topic {} has no metadata ({}): its rows and the later rows of their keys are held, the other"
                            + " topics go on; checking again until it appears",
                    e.topic,
                    Errors.describe(failure));
        }
        if (found) {
            onMetadata.accept(e.topic, partitions);
            if (missingFor > 0) {
                log.info(
                        "topic {} has metadata again after {} ms without; publishing its held rows",
                        e.topic,
                        TimeUnit.NANOSECONDS.toMillis(missingFor));
            }
            wakeAll.run();
        }
    }
}
