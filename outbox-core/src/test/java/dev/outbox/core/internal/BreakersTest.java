package dev.outbox.core.internal;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The breakers of the relay, the consumer and the HTTP client open on failures, never on slow successes. */
class BreakersTest {

    @Test
    void slowSuccessesKeepTheBreakerClosed() {
        CircuitBreaker breaker = CircuitBreaker.of(
                "slow", Breakers.countBased(5, 5, 50, Duration.ofSeconds(5), 1).build());
        for (int i = 0; i < 10; i++) {
            assertThat(breaker.tryAcquirePermission()).isTrue();
            breaker.onSuccess(Duration.ofMinutes(5).toNanos(), TimeUnit.NANOSECONDS);
        }
        assertThat(breaker.getState()).isEqualTo(CircuitBreaker.State.CLOSED);
        assertThat(breaker.getMetrics().getNumberOfSlowCalls()).isZero();
    }

    @Test
    void failuresStillOpenIt() {
        CircuitBreaker breaker = CircuitBreaker.of(
                "failing",
                Breakers.countBased(5, 5, 50, Duration.ofSeconds(5), 1).build());
        for (int i = 0; i < 5; i++) {
            breaker.tryAcquirePermission();
            breaker.onError(1, TimeUnit.MILLISECONDS, new IllegalStateException("down"));
        }
        assertThat(breaker.getState()).isEqualTo(CircuitBreaker.State.OPEN);
    }
}
