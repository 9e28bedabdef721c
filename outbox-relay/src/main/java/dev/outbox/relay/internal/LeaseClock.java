package dev.outbox.relay.internal;

import dev.outbox.core.internal.TimeSource;
import java.time.Duration;

/**
 * The local deadline of one shard's lease, on the monotonic clock: the {@link TimeSource#nanoTime()}
 * taken just before the claim or renewal statement that succeeded, plus the lease, minus the
 * safety margin. The database set {@code lease_until = now() + lease} after that instant, so the
 * deadline passes at least a margin before any other relay can claim the shard. No record of the
 * shard is handed to the producer once the deadline has passed; the producer's {@code
 * delivery.timeout.ms} is bounded by the margin ({@link ProducerSettings#boundByLease}), so a
 * record sent before the deadline reaches the broker, or is failed, before the lease can expire.
 */
final class LeaseClock {
    /**
     * Turns the deadline off, for tests only: a relay that ignores it shows what the broker's fencing
     * alone keeps out (the transactional publish mode). Never set in production code.
     */
    static volatile boolean ignoreDeadlineForTests;

    private final long leaseNanos;
    private final long marginNanos;
    private final TimeSource time;
    private volatile long deadlineNanos;

    /**
     * @param lease the lease duration
     * @param claimStartedNanos {@code time}'s {@link TimeSource#nanoTime()} read before the claim statement was sent
     * @param time the relay's clock
     */
    LeaseClock(Duration lease, long claimStartedNanos, TimeSource time) {
        this.time = time;
        this.leaseNanos = lease.toNanos();
        this.marginNanos = margin(lease).toNanos();
        this.deadlineNanos = claimStartedNanos + leaseNanos - marginNanos;
    }

    /** @return the safety margin of a lease: a third of it */
    static Duration margin(Duration lease) {
        return lease.dividedBy(3);
    }

    /**
     * A renewal that started at {@code startedNanos} succeeded: moves the deadline forward (never back).
     *
     * @param startedNanos {@link TimeSource#nanoTime()} read before the renewal statement was sent
     */
    void renewed(long startedNanos) {
        long next = startedNanos + leaseNanos - marginNanos;
        synchronized (this) {
            if (next - deadlineNanos > 0) {
                deadlineNanos = next;
            }
        }
    }

    /** @return whether a record of the shard may still be handed to the producer now */
    boolean mayPublish() {
        return ignoreDeadlineForTests || time.nanoTime() - deadlineNanos < 0;
    }

    /** @return nanoseconds until the deadline, negative once it passed */
    long remainingNanos() {
        return deadlineNanos - time.nanoTime();
    }
}
