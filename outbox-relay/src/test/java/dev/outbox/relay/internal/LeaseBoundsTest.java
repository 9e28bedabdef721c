package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * F1 (Kafka-side fencing), decision logic: the local lease deadline and the producer timeouts it
 * bounds. The end-to-end proof against real PostgreSQL and Kafka is {@code ZombieRelayIT}.
 */
class LeaseBoundsTest {
    private static Map<String, Object> producer(Map<String, ?> given) {
        Map<String, Object> p = new HashMap<>(given);
        p.put("bootstrap.servers", "localhost:9092");
        return ProducerSettings.validate(p, "r-1");
    }

    @Test
    void theDeadlineIsTheClaimStartPlusTheLeaseMinusAThirdAndOnlyMovesForward() {
        FakeTime time = new FakeTime();
        long start = time.nanoTime();
        LeaseClock clock = new LeaseClock(Duration.ofSeconds(30), start, time);
        assertThat(clock.remainingNanos()).isEqualTo(Duration.ofSeconds(20).toNanos());

        time.advance(Duration.ofSeconds(20).minusNanos(1));
        assertThat(clock.mayPublish()).isTrue();
        time.advance(Duration.ofNanos(1));
        assertThat(clock.mayPublish())
                .as("20 s after the claim started: another relay may claim it 10 s later")
                .isFalse();

        clock.renewed(start - Duration.ofSeconds(5).toNanos()); // an older renewal cannot move it back
        assertThat(clock.remainingNanos()).isZero();
        assertThat(clock.mayPublish()).isFalse();

        clock.renewed(time.nanoTime());
        assertThat(clock.mayPublish()).as("renewed").isTrue();
        assertThat(clock.remainingNanos()).isEqualTo(Duration.ofSeconds(20).toNanos());
    }

    @Test
    void producerTimeoutsDefaultToHalfTheMargin() {
        Map<String, Object> p = ProducerSettings.boundByLease(producer(Map.of()), Duration.ofSeconds(30));
        assertThat(p).containsEntry("delivery.timeout.ms", "5000").containsEntry("request.timeout.ms", "5000");
        Map<String, Object> shortLease =
                ProducerSettings.boundByLease(producer(Map.of("linger.ms", "5")), Duration.ofSeconds(3));
        assertThat(shortLease).containsEntry("delivery.timeout.ms", "500").containsEntry("request.timeout.ms", "495");
    }

    @Test
    void aDeliveryTimeoutBeyondTheMarginIsRefusedByName() {
        assertThatThrownBy(() -> ProducerSettings.boundByLease(
                        producer(Map.of("delivery.timeout.ms", "30000")), Duration.ofSeconds(30)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("delivery.timeout.ms (30000) may not exceed the lease's safety margin")
                .hasMessageContaining("10s of 30s");
        assertThatThrownBy(() -> ProducerSettings.boundByLease(
                        producer(Map.of("delivery.timeout.ms", "8000", "request.timeout.ms", "9000")),
                        Duration.ofSeconds(30)))
                .hasMessageContaining("request.timeout.ms (9000)");
        assertThat(ProducerSettings.boundByLease(
                        producer(Map.of("delivery.timeout.ms", 10_000)), Duration.ofSeconds(30)))
                .containsEntry("delivery.timeout.ms", "10000")
                .containsEntry("request.timeout.ms", "10000");
    }

    @Test
    void propertiesThatRemapKeysOrPartitionsAreRefusedByName() {
        for (String name : new String[] {"partitioner.class", "partitioner.ignore.keys", "interceptor.classes"}) {
            assertThatThrownBy(() -> producer(Map.of(name, "x")))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageStartingWith("producer property " + name + " is not supported");
        }
    }

    @Test
    void malformedRowDataIsPoison() {
        assertThat(Errors.isPoison(new Errors.MalformedRow("headers", new IllegalArgumentException())))
                .isTrue();
    }
}
