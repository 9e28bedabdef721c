package dev.outbox.consumer.internal;

import dev.outbox.core.internal.Breakers;
import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.core.internal.TimeSource;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A circuit breaker around calls to one service (the database, the dead-letter producer), with the
 * call sequence written once: ask for permission, time the call, and report it as a failure only
 * when the service failed. A refusal ({@code R}) means the service answered, so it counts as a
 * success, and so does an {@link InfrastructureException#contention() InfrastructureException for
 * contention} (the database answered that another transaction holds the row); any other exception
 * is no verdict on the service, and its permission is released (or a half-open breaker would wait
 * for this call forever).
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
    private final long maxTrialNanos;
    // when the call let through while half-open started, on time.nanoTime(); 0 when none is out
    private final AtomicLong trialStarted = new AtomicLong();

    /** @param maxTrial how long the one call let through while half-open may take before another is tried */
    Breaker(CircuitBreaker breaker, TimeSource time, Duration maxTrial) {
        this.breaker = breaker;
        this.time = time;
        this.maxTrialNanos = maxTrial.toNanos();
    }

    /**
     * The consumer's breaker: opens when half of the last 10 calls (at least 5) failed, lets one
     * call through after 5 s (on {@code time}), and logs its transitions. A call let through that has
     * not returned after {@code maxTrial} (a handler blocked on another system, a black-holed socket)
     * opens it again, so that another call is tried 5 s later rather than every caller waiting for
     * that one.
     */
    static Breaker create(String name, String what, PrefixedLog log, TimeSource time, Duration maxTrial) {
        CircuitBreaker breaker = CircuitBreaker.of(
                name,
                Breakers.countBased(10, 5, 50, Duration.ofSeconds(5), 1)
                        .automaticTransitionFromOpenToHalfOpenEnabled(false)
                        .clock(time.clock())
                        .build());
        breaker.getEventPublisher()
                .onStateTransition(e -> log.warn("{} circuit breaker: {}", what, e.getStateTransition()));
        return new Breaker(breaker, time, maxTrial);
    }

    CircuitBreaker circuitBreaker() {
        return breaker;
    }

    CircuitBreaker.State state() {
        return breaker.getState();
    }

    /**
     * @throws OpenException when the breaker refuses the call; it was not made
     * @throws InfrastructureException when the service failed (counted against it), or answered
     *     that another transaction holds what the call needs ({@link
     *     InfrastructureException#contention()}, counted as an answer)
     * @throws R when the service refused (counted as an answer)
     */
    <T, R extends Exception> T call(Call<T, R> call) throws OpenException, InfrastructureException, R {
        if (!breaker.tryAcquirePermission()) {
            long trial = trialStarted.get();
            if (breaker.getState() == CircuitBreaker.State.HALF_OPEN
                    && trial != 0
                    && time.nanoTime() - trial > maxTrialNanos
                    && trialStarted.compareAndSet(trial, 0)) {
                breaker.transitionToOpenState();
            }
            throw OPEN;
        }
        long start = time.nanoTime();
        // the trial's mark: its start, never 0 (which means none is out)
        long trial = breaker.getState() == CircuitBreaker.State.HALF_OPEN ? (start == 0 ? 1 : start) : 0;
        if (trial != 0) {
            trialStarted.set(trial);
        }
        try {
            return measured(call, start);
        } finally {
            if (trial != 0) {
                trialStarted.compareAndSet(trial, 0);
            }
        }
    }

    private <T, R extends Exception> T measured(Call<T, R> call, long start) throws InfrastructureException, R {
        T result;
        try {
            result = call.run();
        } catch (InfrastructureException e) {
            if (e.contention()) {
                breaker.onSuccess(time.nanoTime() - start, TimeUnit.NANOSECONDS);
            } else {
                breaker.onError(time.nanoTime() - start, TimeUnit.NANOSECONDS, e);
            }
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
