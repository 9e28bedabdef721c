package dev.outbox.relay.internal;

import java.util.concurrent.atomic.AtomicLong;

/**
 * When the task running now started, for the relay's liveness: a task of a shard loop, a statement of
 * a write queue or a lease round that has run for longer than a bound is stuck (a statement on a
 * connection without a socket timeout), while its thread and the rest of the relay look alive.
 */
final class RunningSince {
    private static final long NONE = Long.MIN_VALUE;

    private final AtomicLong startedNanos = new AtomicLong(NONE);

    /**
     * A task starts.
     *
     * @param now the time, on the owner's clock
     * @return the mark to hand to {@link #ended}
     */
    long started(long now) {
        startedNanos.set(now);
        return now;
    }

    /** The task of {@code mark} ended; a task started after it (the one it submitted, say) keeps its own mark. */
    void ended(long mark) {
        startedNanos.compareAndSet(mark, NONE);
    }

    /** @return whether a task runs now */
    boolean running() {
        return startedNanos.get() != NONE;
    }

    /**
     * @param now the time, on the owner's clock
     * @return false while a task has been running for longer than {@code bound}
     */
    boolean within(long now, long bound) {
        long started = startedNanos.get();
        return started == NONE || now - started <= bound;
    }
}
