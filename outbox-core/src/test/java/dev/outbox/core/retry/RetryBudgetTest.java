package dev.outbox.core.retry;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** G6: the retry budget bounds retries to a share of requests plus a floor, over a sliding window. */
class RetryBudgetTest {
    private final AtomicLong now = new AtomicLong(1_000_000_000_000L);

    @Test
    void retriesAreLimitedToTheRatioPlusTheFloor() {
        RetryBudget budget = RetryBudget.of(0.1, 1, Duration.ofSeconds(10), now::get);
        int allowed = 0;
        for (int i = 0; i < 1000; i++) {
            budget.recordRequest();
            if (budget.tryAcquireRetry()) {
                allowed++;
            }
        }
        // 10 % of 1000 requests + 1/s floor over a 10 s window
        assertThat(allowed).isEqualTo(110);
    }

    @Test
    void theFloorLetsAQuietClientRetry() {
        RetryBudget budget = RetryBudget.of(0.1, 1, Duration.ofSeconds(10), now::get);
        budget.recordRequest();
        assertThat(budget.tryAcquireRetry()).isTrue();
    }

    @Test
    void oldRequestsLeaveTheWindow() {
        RetryBudget budget = RetryBudget.of(0.5, 0, Duration.ofSeconds(10), now::get);
        for (int i = 0; i < 100; i++) {
            budget.recordRequest();
        }
        for (int i = 0; i < 50; i++) {
            assertThat(budget.tryAcquireRetry()).isTrue();
        }
        assertThat(budget.tryAcquireRetry()).isFalse();
        now.addAndGet(Duration.ofSeconds(11).toNanos());
        assertThat(budget.tryAcquireRetry()).isFalse(); // no requests in the window, no floor
        budget.recordRequest();
        budget.recordRequest();
        assertThat(budget.tryAcquireRetry()).isTrue();
        assertThat(budget.tryAcquireRetry()).isFalse();
    }

    /**
     * A retry given back with releaseRetry no longer counts: the budget allows it again. Giving back
     * more than was taken, or a retry the window has moved past, adds nothing.
     */
    @Test
    void aRetryGivenBackNoLongerCounts() {
        RetryBudget budget = RetryBudget.of(0.5, 0, Duration.ofSeconds(10), now::get);
        budget.recordRequest();
        budget.recordRequest();
        assertThat(budget.tryAcquireRetry()).isTrue();
        assertThat(budget.tryAcquireRetry()).isFalse();
        budget.releaseRetry();
        assertThat(budget.tryAcquireRetry()).as("the retry given back").isTrue();
        assertThat(budget.tryAcquireRetry()).isFalse();
        budget.releaseRetry();
        budget.releaseRetry();
        assertThat(budget.tryAcquireRetry()).as("only the one taken comes back").isTrue();
        assertThat(budget.tryAcquireRetry()).isFalse();

        now.addAndGet(Duration.ofSeconds(11).toNanos());
        budget.recordRequest();
        budget.recordRequest();
        budget.releaseRetry(); // the retry taken before has left the window
        assertThat(budget.tryAcquireRetry()).isTrue();
        assertThat(budget.tryAcquireRetry()).isFalse();
    }

    @Test
    void badValuesAreRefused() {
        assertThatThrownBy(() -> RetryBudget.of(1.5, 1, Duration.ofSeconds(10)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("ratio must be between 0 and 1, got 1.5");
        assertThatThrownBy(() -> RetryBudget.of(0.1, -1, Duration.ofSeconds(10)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("minRetriesPerSecond");
        assertThatThrownBy(() -> RetryBudget.of(0.1, 1, Duration.ofMillis(10)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("window must be between 1s and 1d, got 10ms");
        assertThatThrownBy(() -> RetryBudget.of(0.1, 1, Duration.ofSeconds(Long.MAX_VALUE)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("window must be between 1s and 1d");
    }
}
