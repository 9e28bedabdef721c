package dev.outbox.core.retry;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** G6: the full-jitter interval stays in [0, min(cap, base * 2^attempt)] and spreads over it. */
class BackoffTest {
    private final Backoff backoff = Backoff.of(Duration.ofMillis(100), Duration.ofSeconds(5));

    @Test
    void ceilingDoublesUntilTheCap() {
        assertThat(backoff.ceiling(0)).isEqualTo(Duration.ofMillis(100));
        assertThat(backoff.ceiling(1)).isEqualTo(Duration.ofMillis(200));
        assertThat(backoff.ceiling(5)).isEqualTo(Duration.ofMillis(3200));
        assertThat(backoff.ceiling(6)).isEqualTo(Duration.ofSeconds(5));
        assertThat(backoff.ceiling(1000)).isEqualTo(Duration.ofSeconds(5));
    }

    @Test
    void delaysStayInRangeAndSpreadUniformly() {
        SplittableRandom random = new SplittableRandom(42);
        for (int attempt = 0; attempt < 10; attempt++) {
            long ceiling = backoff.ceiling(attempt).toNanos();
            int[] deciles = new int[10];
            int n = 20_000;
            for (int i = 0; i < n; i++) {
                long d = backoff.delay(attempt, random).toNanos();
                assertThat(d).isBetween(0L, ceiling);
                deciles[(int) Math.min(9, d * 10 / (ceiling + 1))]++;
            }
            for (int count : deciles) {
                // each tenth of the interval gets its share (2,000 expected; 5 sigma is about 210)
                assertThat(count).isBetween(1_750, 2_250);
            }
        }
    }

    @Test
    void badValuesAreRefusedWithTheirName() {
        assertThatThrownBy(() -> Backoff.of(Duration.ZERO, Duration.ofSeconds(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("base must be positive");
        assertThatThrownBy(() -> Backoff.of(Duration.ofSeconds(2), Duration.ofSeconds(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("cap (1s) must be at least base (2s)");
        // written for "no cap", it overflowed at the first delay (ArithmeticException) rather than here
        assertThatThrownBy(() -> Backoff.of(Duration.ofMillis(100), Duration.ofSeconds(Long.MAX_VALUE)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("must be at most 1d");
        assertThat(Backoff.of(Duration.ofMillis(100), Backoff.MAX_CAP).delay(100))
                .isLessThanOrEqualTo(Backoff.MAX_CAP);
        assertThatThrownBy(() -> backoff.ceiling(-1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Backoff.of(null, Duration.ofSeconds(1))).isInstanceOf(NullPointerException.class);
    }
}
