package dev.outbox.core.internal;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import java.time.Duration;

/**
 * The circuit breakers of the relay, the consumer and the HTTP client, built one way: a count-based
 * window over the last calls, and the gauge value every module publishes for a breaker's state.
 * Each module picks its numbers and adds what only it needs (the relay's automatic open to
 * half-open transition, the HTTP client's clock). Only failures open a breaker: a call that merely took
 * long is a success (Resilience4j would otherwise open a breaker whose recorded calls all took more
 * than 60 s, which for the consumer's database breaker would count its handlers' own work). Not part
 * of the public API.
 */
public final class Breakers {

    /** Longer than any call: the slow-call rule never applies. */
    static final Duration NEVER_SLOW = Duration.ofDays(365);

    private Breakers() {}

    /**
     * @param window calls in the count-based window
     * @param minimumCalls calls recorded before the failure rate counts
     * @param failureRatePercent failed calls, in percent of the window, that open the breaker
     * @param openDuration how long it stays open before it lets trial calls through
     * @param halfOpenCalls trial calls let through when half-open
     * @return a builder with those settings, to finish and {@code build()}
     */
    public static CircuitBreakerConfig.Builder countBased(
            int window, int minimumCalls, float failureRatePercent, Duration openDuration, int halfOpenCalls) {
        return CircuitBreakerConfig.custom()
                .slidingWindowType(CircuitBreakerConfig.SlidingWindowType.COUNT_BASED)
                .slidingWindowSize(window)
                .minimumNumberOfCalls(minimumCalls)
                .failureRateThreshold(failureRatePercent)
                .waitDurationInOpenState(openDuration)
                .permittedNumberOfCallsInHalfOpenState(halfOpenCalls)
                .slowCallDurationThreshold(NEVER_SLOW)
                .slowCallRateThreshold(100);
    }

    /**
     * @param breaker a breaker
     * @return its state as every breaker-state gauge reports it: 0 closed, 1 open (or forced open), 2
     *     half-open
     */
    public static double gaugeValue(CircuitBreaker breaker) {
        return switch (breaker.getState()) {
            case OPEN, FORCED_OPEN -> 1;
            case HALF_OPEN -> 2;
            default -> 0;
        };
    }
}
