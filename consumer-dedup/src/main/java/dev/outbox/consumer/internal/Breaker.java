package dev.outbox.consumer.internal;

import dev.outbox.core.internal.Breakers;
import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.core.internal.TimeSource;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * A circuit breaker around calls to one service (the database, the dead-letter producer), with the
 * call sequence written once: ask for permission, time the call, and report it as a failure only
 * when the service failed. A refusal ({@code R}) means the service answered, so it counts as a
 * success; any other exception is no verdict on the service, and its permission is released (or a
 * half-open breaker would wait for this call forever).
 */
final class Breaker {
    /** The breaker is open: the call was not made. */
    static final class OpenException extends Exception {
        private OpenException() {
            super("circuit breaker open", null, false, false);
        }
    }

    private static final OpenException OPEN = new OpenException();

    /** A call to the service; {@code R} is its refusal, an answer that no retry changes. */
    @FunctionalInterface
    interface Call<T, R extends Exception> {
        T run() throws InfrastructureException, R;
    }

    private final CircuitBreaker breaker;
    private final TimeSource time;

    Breaker(CircuitBreaker breaker, TimeSource time) {
        this.breaker = breaker;
        this.time = time;
    }

    /**
     * The consumer's breaker: opens when half of the last 10 calls (at least 5) failed, lets one
     * call through after 5 s (on {@code time}), and logs its transitions.
     */
    static Breaker create(String name, String what, PrefixedLog log, TimeSource time) {
        CircuitBreaker breaker = CircuitBreaker.of(
                name,
                Breakers.countBased(10, 5, 50, Duration.ofSeconds(5), 1)
                        .automaticTransitionFromOpenToHalfOpenEnabled(false)
                        .clock(time.clock())
                        .build());
        breaker.getEventPublisher()
                .onStateTransition(e -> log.warn("{} circuit breaker: {}", what, e.getStateTransition()));
        return new Breaker(breaker, time);
    }

    CircuitBreaker circuitBreaker() {
        return breaker;
    }

    CircuitBreaker.State state() {
        return breaker.getState();
    }

    /**
     * @throws OpenException when the breaker refuses the call; it was not made
     * @throws InfrastructureException when the service failed (counted against it)
     * @throws R when the service refused (counted as an answer)
     */
    <T, R extends Exception> T call(Call<T, R> call) throws OpenException, InfrastructureException, R {
        if (!breaker.tryAcquirePermission()) {
            throw OPEN;
        }
        long start = time.nanoTime();
        T result;
        try {
            result = call.run();
        } catch (InfrastructureException e) {
            breaker.onError(time.nanoTime() - start, TimeUnit.NANOSECONDS, e);
            throw e;
        } catch (RuntimeException | Error e) {
            breaker.releasePermission();
            throw e;
        } catch (Exception e) {
            breaker.onSuccess(time.nanoTime() - start, TimeUnit.NANOSECONDS);
            throw e;
        }
        breaker.onSuccess(time.nanoTime() - start, TimeUnit.NANOSECONDS);
        return result;
    }
}
