package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.relay.Relay;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * G6: a circuit breaker configured by the user without the automatic transition from open to
 * half-open still half-opens by itself. The shard loops never ask an open breaker for a permit, so
 * without that transition one opening would stop the relay for good ({@code CustomBreakerRecoveryIT}
 * shows it against a real broker).
 */
class BreakerConfigTest {

    @Test
    void theRelaysBreakerHalfOpensByItselfWhateverTheUsersConfigSays() {
        CircuitBreakerConfig given = CircuitBreakerConfig.custom()
                .slidingWindowType(CircuitBreakerConfig.SlidingWindowType.COUNT_BASED)
                .slidingWindowSize(3)
                .minimumNumberOfCalls(3)
                .waitDurationInOpenState(Duration.ofMillis(200))
                .permittedNumberOfCallsInHalfOpenState(2)
                .build();
        assertThat(given.isAutomaticTransitionFromOpenToHalfOpenEnabled()).isFalse();
        try (Relay relay = Relay.builder()
                .dataSource(new PGSimpleDataSource())
                .producerProperties(Map.of("bootstrap.servers", "localhost:9092"))
                .circuitBreaker(given)
                .build()) {
            CircuitBreaker breaker = ((RelayEngine) relay).breaker();
            CircuitBreakerConfig used = breaker.getCircuitBreakerConfig();
            assertThat(used.isAutomaticTransitionFromOpenToHalfOpenEnabled()).isTrue();
            assertThat(used.getSlidingWindowSize()).as("the rest is the user's").isEqualTo(3);
            assertThat(used.getMinimumNumberOfCalls()).isEqualTo(3);
            assertThat(used.getPermittedNumberOfCallsInHalfOpenState()).isEqualTo(2);
            assertThat(used.getWaitIntervalFunctionInOpenState().apply(1)).isEqualTo(200L);

            breaker.transitionToOpenState();
            // nothing asks for a permit, as in the shard loops while the breaker is open
            await().atMost(Duration.ofSeconds(5)).until(() -> breaker.getState() == CircuitBreaker.State.HALF_OPEN);
        }
    }
}
