package dev.outbox.relay.internal;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * How long one shard waits between rounds: the poll after an empty read, the idle wait while the
 * probe works, the wait of an expired lease, and the retry backoff with its attempt count. Confined to
 * the shard's running task.
 */
final class ShardWaits {
    static final long MIN_POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(10);

    private final RelayConfig config;
    private final RelayMetrics metrics;
    private final BooleanSupplier probeActive;
    private long pollNanos = MIN_POLL_NANOS;
    private int attempt;

    ShardWaits(RelayConfig config, RelayMetrics metrics, BooleanSupplier probeActive) {
        this.config = config;
        this.metrics = metrics;
        this.probeActive = probeActive;
    }

    /** @return the retries since the last batch that did not fail */
    int attempt() {
        return attempt;
    }

    /** A batch did not fail: the backoff starts over. */
    void resetAttempts() {
        attempt = 0;
    }

    /** A batch sent rows: the poll after an empty read starts again from 10 ms. */
    void resetPoll() {
        pollNanos = MIN_POLL_NANOS;
    }

    /** @return the wait after a read that found nothing to send: until the probe wakes the shard, or the next poll */
    long emptyWaitNanos() {
        long delay = probeActive.getAsBoolean() ? probedWaitNanos() : pollNanos;
        pollNanos = Math.min(config.idlePollInterval().toNanos(), pollNanos * 2);
        return delay;
    }

    /** @return {@code wait}, or less while keys wait for a partition leader: no new row wakes them */
    long leaderWait(long wait, LeaderlessKeys leaderless) {
        return leaderless.isEmpty()
                ? wait
                : Math.min(wait, config.idlePollInterval().toNanos());
    }

    /**
     * @return 0 to read again at once after a full batch (more rows are likely waiting); after a
     *     shorter one, which took every row visible when it was read, the idle wait, from which the
     *     probe wakes the shard once new rows are there (one read per round instead of two)
     */
    long idleAfter(boolean fullRead, boolean readAhead) {
        return !fullRead && !readAhead && probeActive.getAsBoolean() ? probedWaitNanos() : 0;
    }

    /**
     * @return the idle wait while the probe works: it wakes the shard when rows arrive, so the shard
     *     reads on its own only once per lease renewal interval, as a safeguard; while the probe
     *     fails, the shard polls from 10 ms up to the idle poll interval instead
     */
    long probedWaitNanos() {
        return Math.max(
                config.idlePollInterval().toNanos(), config.renewInterval().toNanos());
    }

    /** @return how long a shard whose lease deadline passed waits before it looks again */
    long leaseWaitNanos() {
        return Math.max(MIN_POLL_NANOS, config.renewInterval().toNanos() / 20);
    }

    /** @return the next retry delay of this shard, counted in the backoff metric */
    long backoff() {
        Duration d = config.backoff().delay(Math.min(attempt, 40));
        attempt++;
        metrics.backoff.record(d);
        return Math.max(1, d.toNanos());
    }
}
