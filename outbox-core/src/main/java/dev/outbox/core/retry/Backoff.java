package dev.outbox.core.retry;

import dev.outbox.core.internal.Durations;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.ThreadLocalRandom;
import java.util.random.RandomGenerator;

/**
 * Exponential backoff with full jitter: the delay before retry {@code attempt} (0 for the first
 * retry) is drawn uniformly from {@code [0, min(cap, base * 2^attempt)]}.
 *
 * <p>Full jitter spreads the retries of many clients that failed together over the whole interval,
 * so they do not return in synchronized waves; it gives the lowest total work of the usual jitter
 * schemes at the price of occasionally retrying almost at once. A backoff alone does not bound
 * retries: pair it with a maximum attempt count, a {@link RetryBudget} or a circuit breaker.
 *
 * @param base the ceiling of the first retry's delay; positive
 * @param cap the largest ceiling; at least {@code base}
 */
public record Backoff(Duration base, Duration cap) {

    /**
     * @throws NullPointerException when an argument is null
     * @throws IllegalArgumentException when {@code base} is not positive, {@code cap < base} or {@code cap}
     *     is longer than {@link #MAX_CAP}
     */
    public Backoff {
        Objects.requireNonNull(base, "base may not be null");
        Objects.requireNonNull(cap, "cap may not be null");
        if (base.isNegative() || base.isZero()) {
            throw new IllegalArgumentException("base must be positive, got " + Durations.format(base));
        }
        if (cap.compareTo(base) < 0) {
            throw new IllegalArgumentException(
                    "cap (" + Durations.format(cap) + ") must be at least base (" + Durations.format(base) + ")");
        }
        if (cap.compareTo(MAX_CAP) > 0) {
            throw new IllegalArgumentException("cap (" + Durations.format(cap) + ") must be at most "
                    + Durations.format(MAX_CAP) + "; a longer wait between retries is no retry");
        }
    }

    /** The longest cap: a day. Delays are computed in nanoseconds, which hold up to 292 years. */
    public static final Duration MAX_CAP = Duration.ofDays(1);

    /**
     * @param base see {@link #base()}
     * @param cap see {@link #cap()}
     * @return the backoff
     */
    public static Backoff of(Duration base, Duration cap) {
        return new Backoff(base, cap);
    }

    /**
     * @param attempt the retry number, 0 for the first retry
     * @return {@code min(cap, base * 2^attempt)}
     * @throws IllegalArgumentException when {@code attempt} is negative
     */
    public Duration ceiling(int attempt) {
        if (attempt < 0) {
            throw new IllegalArgumentException("attempt must be at least 0, got " + attempt);
        }
        long baseNanos = base.toNanos();
        long capNanos = cap.toNanos();
        if (attempt >= 62 || baseNanos > (capNanos >> Math.min(attempt, 62))) {
            return cap;
        }
        return Duration.ofNanos(Math.min(capNanos, baseNanos << attempt));
    }

    /**
     * @param attempt the retry number, 0 for the first retry
     * @return a delay drawn uniformly from {@code [0, ceiling(attempt)]}
     */
    public Duration delay(int attempt) {
        return delay(attempt, ThreadLocalRandom.current());
    }

    /**
     * @param attempt the retry number, 0 for the first retry
     * @param random the source of randomness (seed it in tests)
     * @return a delay drawn uniformly from {@code [0, ceiling(attempt)]}
     */
    public Duration delay(int attempt, RandomGenerator random) {
        long ceiling = ceiling(attempt).toNanos();
        return Duration.ofNanos(ceiling == Long.MAX_VALUE ? random.nextLong(ceiling) : random.nextLong(ceiling + 1));
    }
}
