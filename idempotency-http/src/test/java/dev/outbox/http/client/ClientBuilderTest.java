package dev.outbox.http.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** Bad configuration fails at build time, naming the setting, the value and the default. */
class ClientBuilderTest {
    @Test
    void rejectsOutOfRangeValues() {
        var b = IdempotentHttpClient.builder();
        assertThatThrownBy(() -> b.maxAttempts(0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("maxAttempts")
                .hasMessageContaining("got 0")
                .hasMessageContaining("default is 5");
        assertThatThrownBy(() -> b.attemptTimeout(Duration.ZERO)).hasMessageContaining("attemptTimeout");
        assertThatThrownBy(() -> b.maxRetryAfter(Duration.ofSeconds(-1))).hasMessageContaining("maxRetryAfter");
        assertThatThrownBy(() -> b.keyedMethods("PO ST")).hasMessageContaining("'PO ST'");
        assertThatThrownBy(() -> b.idempotentTargets("ftp://files.internal"))
                .hasMessageContaining("idempotentTargets")
                .hasMessageContaining("'ftp://files.internal'");
        assertThatThrownBy(() -> b.idempotentTargets("payments.internal/v1")).hasMessageContaining("host or host:port");
        assertThatThrownBy(() -> b.idempotentTargets(" ")).hasMessageContaining("blank");
        assertThatThrownBy(() -> b.idempotentTargets("https://api.example.com/v1?x=1"))
                .hasMessageContaining("without query");
        assertThatThrownBy(() -> b.backoff(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("backoff");
    }

    @Test
    void settersRejectNullWithNullPointerException() {
        var b = IdempotentHttpClient.builder();
        assertThatThrownBy(() -> b.httpClient(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("httpClient");
        assertThatThrownBy(() -> b.retryBudget(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("retryBudget");
        assertThatThrownBy(() -> b.circuitBreakerConfig(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("config");
        assertThatThrownBy(() -> b.attemptTimeout(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("attemptTimeout");
        assertThatThrownBy(() -> b.maxRetryAfter(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("maxRetryAfter");
        assertThatThrownBy(() -> b.clock(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("clock");
        assertThatThrownBy(() -> b.sleeper(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("sleeper");
        assertThatThrownBy(() -> b.random(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("random");
        assertThatThrownBy(() -> b.keyedMethods("POST", null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("methods");
        assertThatThrownBy(() -> b.idempotentTargets((String[]) null)).isInstanceOf(NullPointerException.class);
        assertThatThrownBy(() -> b.name(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("name");
    }

    @Test
    void boundsAreThePublishedConstants() {
        var b = IdempotentHttpClient.builder();
        b.maxAttempts(1).maxAttempts(IdempotentHttpClient.Builder.MAX_ATTEMPTS);
        assertThatThrownBy(() -> b.maxAttempts(IdempotentHttpClient.Builder.MAX_ATTEMPTS + 1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("between 1 and 100");
    }

    /**
     * attemptTimeout has an upper bound. Before, any positive duration passed, and one beyond 292
     * years (the nanoseconds a long holds) failed with an ArithmeticException only after its
     * request had been sent.
     */
    @Test
    void attemptTimeoutIsAtMostItsPublishedBound() {
        var b = IdempotentHttpClient.builder();
        b.attemptTimeout(IdempotentHttpClient.Builder.MAX_ATTEMPT_TIMEOUT);
        assertThatThrownBy(() -> b.attemptTimeout(IdempotentHttpClient.Builder.MAX_ATTEMPT_TIMEOUT.plusMillis(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("attemptTimeout must be at most 1h, got 1h1ms")
                .hasMessageContaining("default is 10s");
        assertThatThrownBy(() -> b.attemptTimeout(Duration.ofDays(365L * 1_000)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("got 365000d");
    }

    /** maxBufferedBody is between 1 byte and its published bound, and a bad value names the setting and the default. */
    @Test
    void maxBufferedBodyIsWithinItsPublishedBounds() {
        var b = IdempotentHttpClient.builder();
        b.maxBufferedBody(1).maxBufferedBody(IdempotentHttpClient.Builder.MAX_BUFFERED_BODY);
        for (long bad : new long[] {0, -1, IdempotentHttpClient.Builder.MAX_BUFFERED_BODY + 1}) {
            assertThatThrownBy(() -> b.maxBufferedBody(bad))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("maxBufferedBody must be between 1 and 1073741824")
                    .hasMessageContaining("got " + bad)
                    .hasMessageContaining("default is 16777216");
        }
    }

    @Test
    void aBreakerConfigAndNoBreakerTogetherFailAtBuild() {
        var config = CircuitBreakerConfig.ofDefaults();
        assertThatThrownBy(() -> IdempotentHttpClient.builder()
                        .circuitBreakerConfig(config)
                        .noCircuitBreaker()
                        .build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("both");
        assertThatThrownBy(() -> IdempotentHttpClient.builder()
                        .noCircuitBreaker()
                        .circuitBreakerConfig(config)
                        .build())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("both");
        assertThat(IdempotentHttpClient.builder()
                        .circuitBreakerConfig(config)
                        .build()
                        .circuitBreakers())
                .isPresent();
    }

    @Test
    void defaultsBuildWithBreakersAndCanTurnThemOff() {
        assertThat(IdempotentHttpClient.builder().build().circuitBreakers()).isPresent();
        assertThat(IdempotentHttpClient.builder().noCircuitBreaker().build().circuitBreakers())
                .isEmpty();
    }
}
