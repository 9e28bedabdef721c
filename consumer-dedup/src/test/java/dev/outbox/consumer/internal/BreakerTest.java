package dev.outbox.consumer.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.outbox.core.internal.PrefixedLog;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import java.sql.SQLException;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * The consumer's circuit breaker on a fake clock (G6: while the database or the dead-letter topic is
 * down, the workers stop asking it and try again after the breaker's open duration).
 */
class BreakerTest {
    private static final Duration MAX_TRIAL = Duration.ofSeconds(30);
    private final Fakes.Time time = new Fakes.Time();
    private final Breaker breaker = Breaker.create(
            "db",
            "database",
            new PrefixedLog(LoggerFactory.getLogger(BreakerTest.class), "[consumer-dedup test]"),
            time,
            MAX_TRIAL);
    private final AtomicInteger made = new AtomicInteger();

    private Integer fail() throws InfrastructureException {
        made.incrementAndGet();
        throw new InfrastructureException("connection lost", new SQLException("lost", "08006"));
    }

    @Test
    void anOpenBreakerRefusesCallsForItsOpenDurationThenLetsOneThrough() throws Exception {
        for (int i = 0; i < 5; i++) {
            assertThatThrownBy(() -> breaker.call(this::fail)).isInstanceOf(InfrastructureException.class);
        }
        assertThat(breaker.state()).as("half of at least 5 calls failed").isEqualTo(CircuitBreaker.State.OPEN);

        time.advance(Duration.ofSeconds(5).minusMillis(1));
        assertThatThrownBy(() -> breaker.call(made::incrementAndGet))
                .as("refused, not made, for the open duration (5 s)")
                .isInstanceOf(Breaker.OpenException.class);
        assertThat(made).hasValue(5);

        time.advance(Duration.ofMillis(2));
        assertThat(breaker.call(made::incrementAndGet)).isEqualTo(6);
        assertThat(breaker.state()).as("the one call let through succeeded").isEqualTo(CircuitBreaker.State.CLOSED);
    }

    /**
     * G6: the one call let through while half-open hangs (a handler blocked on another system, a
     * black-holed socket). The others are refused for {@code maxTrial}, then the breaker opens again
     * and lets another call through after its open duration, rather than every partition waiting for
     * the hung one until a restart.
     */
    @Test
    void aCallLetThroughThatHangsOpensTheBreakerAgainAfterMaxTrial() throws Exception {
        for (int i = 0; i < 5; i++) {
            assertThatThrownBy(() -> breaker.call(this::fail)).isInstanceOf(InfrastructureException.class);
        }
        time.advance(Duration.ofSeconds(5).plusMillis(1));
        CountDownLatch started = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        Thread hung = new Thread(() -> {
            try {
                breaker.call(() -> {
                    started.countDown();
                    release.await();
                    return 0;
                });
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        hung.start();
        assertThat(started.await(10, TimeUnit.SECONDS)).isTrue();
        assertThat(breaker.state()).isEqualTo(CircuitBreaker.State.HALF_OPEN);

        time.advance(MAX_TRIAL);
        assertThatThrownBy(() -> breaker.call(made::incrementAndGet))
                .as("refused while the call let through runs, up to maxTrial")
                .isInstanceOf(Breaker.OpenException.class);
        assertThat(breaker.state()).isEqualTo(CircuitBreaker.State.HALF_OPEN);

        time.advance(Duration.ofMillis(1));
        assertThatThrownBy(() -> breaker.call(made::incrementAndGet)).isInstanceOf(Breaker.OpenException.class);
        assertThat(breaker.state())
                .as("past maxTrial the hung call no longer holds the breaker")
                .isEqualTo(CircuitBreaker.State.OPEN);

        time.advance(Duration.ofSeconds(5).plusMillis(1));
        assertThat(breaker.call(made::incrementAndGet))
                .as("another call let through")
                .isEqualTo(6);
        assertThat(breaker.state()).isEqualTo(CircuitBreaker.State.CLOSED);
        release.countDown();
        hung.join(10_000);
        assertThat(hung.isAlive()).isFalse();
    }

    /**
     * A batch transaction includes its handlers' own work, which may take minutes (a call to another
     * system per record): calls that succeed slowly are not a failing database, and do not open it.
     */
    @Test
    void callsThatSucceedSlowlyDoNotOpenTheBreaker() throws Exception {
        for (int i = 0; i < 20; i++) {
            assertThat(breaker.call(() -> {
                        time.advance(Duration.ofMinutes(2));
                        return made.incrementAndGet();
                    }))
                    .isEqualTo(i + 1);
        }
        assertThat(breaker.state()).isEqualTo(CircuitBreaker.State.CLOSED);
        assertThat(breaker.call(made::incrementAndGet)).isEqualTo(21);
    }
}
