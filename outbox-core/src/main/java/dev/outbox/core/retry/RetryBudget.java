package dev.outbox.core.retry;

import dev.outbox.core.internal.Durations;
import java.time.Duration;
import java.util.Objects;
import java.util.function.LongSupplier;

/**
 * Limits retries to a share of the requests seen in a sliding window, plus a small floor so that a
 * quiet client can still retry.
 *
 * <p>Backoff spaces one caller's retries; the budget bounds everyone's. When a dependency fails
 * for every caller, unbudgeted retries multiply the load on it by the attempt count exactly when
 * it can least take it. With a budget of ratio {@code r}, total attempts stay below {@code (1 + r)}
 * times the requests plus the floor, however many callers retry.
 *
 * <p>Call {@link #recordRequest()} once per logical request (first attempts only) and {@link
 * #tryAcquireRetry()} before each retry ({@link #releaseRetry()} when that retry is not sent after
 * all); a retry is allowed while {@code retries < ratio *
 * requests + minRetriesPerSecond * windowSeconds} over the window. Thread-safe.
 */
public final class RetryBudget {
    private static final int BUCKETS = 10;

    /** The longest window: a day. A budget bounds the retries of recent traffic. */
    public static final Duration MAX_WINDOW = Duration.ofDays(1);

    private final double ratio;
    private final int minRetriesPerSecond;
    private final long bucketNanos;
    private final long windowSeconds;
    private final LongSupplier nanoClock;
    private final long[] requests = new long[BUCKETS];
    private final long[] retries = new long[BUCKETS];
    private long currentBucket;

    private RetryBudget(double ratio, int minRetriesPerSecond, Duration window, LongSupplier nanoClock) {
        this.ratio = ratio;
        this.minRetriesPerSecond = minRetriesPerSecond;
        this.bucketNanos = window.toNanos() / BUCKETS;
        this.windowSeconds = Math.max(1, window.toSeconds());
        this.nanoClock = nanoClock;
        this.currentBucket = nanoClock.getAsLong() / bucketNanos;
    }

    /**
     * @param ratio retries allowed per request, in {@code [0, 1]}, e.g. 0.1 for 10 %
     * @param minRetriesPerSecond retries always allowed per second of window, at least 0
     * @param window the sliding window, at least 1 second and at most {@link #MAX_WINDOW}
     * @return a budget on the system clock
     * @throws IllegalArgumentException for a value outside its range
     */
    public static RetryBudget of(double ratio, int minRetriesPerSecond, Duration window) {
        return of(ratio, minRetriesPerSecond, window, System::nanoTime);
    }

    /**
     * @param ratio see {@link #of(double, int, Duration)}
     * @param minRetriesPerSecond see {@link #of(double, int, Duration)}
     * @param window see {@link #of(double, int, Duration)}
     * @param nanoClock a monotonic clock in nanoseconds (a fake one in tests)
     * @return a budget
     */
    public static RetryBudget of(double ratio, int minRetriesPerSecond, Duration window, LongSupplier nanoClock) {
        if (!(ratio >= 0 && ratio <= 1)) {
            throw new IllegalArgumentException("retry budget ratio must be between 0 and 1, got " + ratio);
        }
        if (minRetriesPerSecond < 0) {
            throw new IllegalArgumentException("minRetriesPerSecond must be at least 0, got " + minRetriesPerSecond);
        }
        Objects.requireNonNull(window, "window may not be null");
        if (window.compareTo(Duration.ofSeconds(1)) < 0 || window.compareTo(MAX_WINDOW) > 0) {
            throw new IllegalArgumentException("retry budget window must be between 1s and "
                    + Durations.format(MAX_WINDOW) + ", got " + Durations.format(window));
        }
        return new RetryBudget(
                ratio, minRetriesPerSecond, window, Objects.requireNonNull(nanoClock, "nanoClock may not be null"));
    }

    /** @return a budget that allows every retry (for comparisons; never use it in production) */
    public static RetryBudget unlimited() {
        return new RetryBudget(1, Integer.MAX_VALUE / 1000, Duration.ofSeconds(1), System::nanoTime);
    }

    /** Records one logical request (a first attempt). */
    public synchronized void recordRequest() {
        requests[advance()]++;
    }

    /**
     * Takes one retry from the budget if there is one.
     *
     * @return whether the retry may go ahead; when false, fail the request instead of retrying
     */
    public synchronized boolean tryAcquireRetry() {
        int bucket = advance();
        long totalRequests = 0;
        long totalRetries = 0;
        for (int i = 0; i < BUCKETS; i++) {
            totalRequests += requests[i];
            totalRetries += retries[i];
        }
        double allowed = ratio * totalRequests + (double) minRetriesPerSecond * windowSeconds;
        if (totalRetries + 1 > allowed) {
            return false;
        }
        retries[bucket]++;
        return true;
    }

    /**
     * Gives back a retry taken with {@link #tryAcquireRetry()} that was not sent after all (a circuit
     * breaker refused it after the backoff), so that only retries sent count against the budget. Call
     * it at most once per retry taken. The window then counts one retry fewer: the newest tenth of the
     * window that counts one gives it back. That is the tenth the retry was taken in unless the window
     * moved on meanwhile (a backoff wait longer than a tenth of the window); then a newer retry's count
     * leaves the window instead, a little earlier than the one given back would have. When no tenth of
     * the window counts a retry, nothing changes.
     */
    public synchronized void releaseRetry() {
        int bucket = advance();
        for (int i = 0; i < BUCKETS; i++) {
            int idx = Math.floorMod(bucket - i, BUCKETS);
            if (retries[idx] > 0) {
                retries[idx]--;
                return;
            }
        }
    }

    /** @return the retry ratio */
    public double ratio() {
        return ratio;
    }

    /** @return the floor of retries per second */
    public int minRetriesPerSecond() {
        return minRetriesPerSecond;
    }

    private int advance() {
        long bucket = nanoClock.getAsLong() / bucketNanos;
        long steps = Math.min(BUCKETS, bucket - currentBucket);
        for (long i = 1; i <= steps; i++) {
            int idx = (int) Math.floorMod(currentBucket + i, (long) BUCKETS);
            requests[idx] = 0;
            retries[idx] = 0;
        }
        if (bucket > currentBucket) {
            currentBucket = bucket;
        }
        return (int) Math.floorMod(currentBucket, (long) BUCKETS);
    }
}
