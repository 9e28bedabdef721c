package dev.outbox.relay.internal;

import dev.outbox.core.internal.Durations;
import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.core.internal.TimeSource;
import java.time.Duration;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;

/**
 * Notices when the whole process stood still: a thread that wakes every {@link #TICK} and finds that
 * much more time went by than it slept (a long garbage collection, a throttled or suspended container,
 * {@code SIGSTOP}). The requests the Kafka producer had in flight during such a pause can expire
 * together on resuming, and each shard's batch then fails at once: {@link #pausedSince} lets the shards
 * tell the circuit breaker nothing about those failures, which say nothing about Kafka, instead of
 * opening it for its whole interval after every pause.
 */
final class PauseWatch {
    /** How often the watch wakes: ten times a second, a few microseconds of CPU each. */
    static final Duration TICK = Duration.ofMillis(100);
    /** How much longer than a tick a gap must be to count as a pause. */
    static final Duration PAUSE = Duration.ofSeconds(1);

    private final TimeSource time;
    private final PrefixedLog log;
    private final Thread thread;
    // when the last pause ended ({@link TimeSource#nanoTime()}); Long.MIN_VALUE: none seen
    private volatile long lastPauseEndedNanos = Long.MIN_VALUE;
    // when the watch last woke: a pause going on, or just over, that it has not recorded yet shows as a tick
    // long overdue
    private volatile long lastTickNanos;
    private volatile boolean stopped;

    /** A watch not started: {@link #noticed} is all that records a pause. */
    PauseWatch(TimeSource time, PrefixedLog log, ThreadFactory threads) {
        this.time = time;
        this.log = log;
        this.thread = threads.newThread(this::watch);
        this.lastTickNanos = time.nanoTime();
    }

    /** @return a watch already running on a thread of {@code threads} */
    static PauseWatch start(TimeSource time, PrefixedLog log, ThreadFactory threads) {
        PauseWatch w = new PauseWatch(time, log, threads);
        w.thread.start();
        return w;
    }

    /**
     * @param nanos a {@link TimeSource#nanoTime()}, for example when a batch was sent
     * @return whether a pause of the process ended after {@code nanos} (something in flight at {@code
     *     nanos} may have stood still through it), or one is going on or just over that the watch has not
     *     recorded yet (its tick overdue by more than {@link #PAUSE})
     */
    boolean pausedSince(long nanos) {
        long ended = lastPauseEndedNanos;
        if (ended != Long.MIN_VALUE && ended - nanos > 0) {
            return true;
        }
        // resumed, and the batch's failure judged before the watch woke to record the pause: its tick is
        // overdue by more than a pause
        return time.nanoTime() - lastTickNanos - TICK.toNanos() > PAUSE.toNanos();
    }

    void stop() {
        stopped = true;
        thread.interrupt();
    }

    private void watch() {
        long tick = TICK.toNanos();
        long last = time.nanoTime();
        while (!stopped) {
            try {
                TimeUnit.NANOSECONDS.sleep(tick);
            } catch (InterruptedException e) {
                return;
            }
            long now = time.nanoTime();
            noticed(last, now);
            last = now;
        }
    }

    /** Records a pause between two ticks at {@code last} and {@code now}, if their gap was one. */
    void noticed(long last, long now) {
        lastTickNanos = now;
        long gap = now - last;
        if (gap - TICK.toNanos() > PAUSE.toNanos()) {
            lastPauseEndedNanos = now;
            log.warn(
                    "the process stood still for about {} (a long garbage collection, a throttled or suspended"
                            + " container?); the batches in flight meanwhile that fail are not counted by the Kafka"
                            + " circuit breaker",
                    Durations.format(Durations.roughly(Duration.ofNanos(gap))));
        }
    }
}
