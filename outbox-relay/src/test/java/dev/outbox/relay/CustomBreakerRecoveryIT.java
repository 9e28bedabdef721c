package dev.outbox.relay;

import static dev.outbox.migrations.jooq.Tables.OUTBOX_MESSAGE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.OutboxMessage;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.jooq.DSLContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * G1 and G6 with a circuit breaker of the user's own without {@code
 * automaticTransitionFromOpenToHalfOpenEnabled}: Kafka down long enough to open the breaker, then back;
 * the breaker half-opens by itself, closes on the trial batch, and every message is delivered. Before
 * the relay enabled that transition itself, the open breaker was never asked for a permit again and
 * the relay published nothing more.
 */
@ExtendWith(RealServices.class)
class CustomBreakerRecoveryIT {

    @Test
    @Timeout(value = 4, unit = TimeUnit.MINUTES)
    void anOpenedBreakerWithoutAutomaticHalfOpenStillLetsTheRelayResume(TestDatabase db) throws Exception {
        String topic = "breaker";
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        CircuitBreakerConfig withoutAutomaticHalfOpen = CircuitBreakerConfig.custom()
                .slidingWindowType(CircuitBreakerConfig.SlidingWindowType.COUNT_BASED)
                .slidingWindowSize(2)
                .minimumNumberOfCalls(2)
                .failureRateThreshold(100)
                .waitDurationInOpenState(Duration.ofMillis(500))
                .permittedNumberOfCallsInHalfOpenState(1)
                .build();
        try (TestKafka broker = TestKafka.startInJvm()) {
            broker.createTopic(topic, 2);
            DSLContext dsl = db.dsl();
            try (Relay relay = Fixtures.outageRelay(db, broker.bootstrapServers(), "breaker-relay", registry, Map.of())
                    .circuitBreaker(withoutAutomaticHalfOpen)
                    .build()) {
                relay.start();
                Fixtures.commit(dsl, List.of(Fixtures.message(topic, "warm-up", "0")));
                await().atMost(Duration.ofSeconds(60)).until(() -> dsl.fetchCount(OUTBOX_MESSAGE) == 0);

                broker.stopBroker();
                List<OutboxMessage> messages = new ArrayList<>();
                for (int i = 0; i < 20; i++) {
                    messages.add(Fixtures.message(topic, "key-" + i, "m-" + i));
                }
                List<UUID> ids = Fixtures.commit(dsl, messages);
                await().atMost(Duration.ofSeconds(60))
                        .pollInterval(Duration.ofMillis(20))
                        .until(() -> Fixtures.gauge(registry, "outbox.relay.breaker.state") == 1);
                Thread.sleep(2_000); // well past waitDurationInOpenState while Kafka is still down
                broker.startBroker();

                try (Fixtures.Collector collector = new Fixtures.Collector(broker.bootstrapServers(), topic)) {
                    await().atMost(Duration.ofSeconds(60))
                            .untilAsserted(() -> assertThat(collector.ids()).containsAll(ids));
                }
                await().atMost(Duration.ofSeconds(30)).until(() -> dsl.fetchCount(OUTBOX_MESSAGE) == 0);
                await().atMost(Duration.ofSeconds(30))
                        .until(() -> Fixtures.gauge(registry, "outbox.relay.breaker.state") == 0);
            }
        }
    }
}
