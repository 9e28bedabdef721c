package dev.outbox.consumer;

import static dev.outbox.consumer.Fixtures.header;
import static dev.outbox.consumer.Fixtures.payment;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.MessageIds;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.retry.Backoff;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.Map;
import java.util.UUID;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The dead-letter producer against a broker that refuses it: on a broker of its own, the dead-letter
 * producer signs in over SASL/SCRAM as a user of its own, on a second listener, while the consumer and
 * the test's clients connect without authentication.
 */
@ExtendWith(RealServices.class)
@Timeout(300)
class DeadLetterProducerIT {
    private static final Duration WAIT = Duration.ofSeconds(90);
    private static final String USER = "dlt-writer";
    private static final String PASSWORD = "dlt-writer-secret";

    @BeforeAll
    static void schema(TestDatabase db) throws Exception {
        Fixtures.createPayments(db);
    }

    /**
     * G7 when the dead-letter producer cannot sign in: the broker has no SCRAM credential for its user
     * yet. A failed authentication that meets the idempotent producer's request for its producer id
     * leaves a Kafka producer without one for good: even once it can sign in, its sends only time out.
     * The record is retried under the dead-letter breaker and the consumer is not ready. Once the
     * operator creates the user's credential, the consumer, without a restart, dead-letters the record
     * with a new producer (the failed ones closed: outbox.consumer.dead.letter.producer.replaced),
     * commits past it and is ready again. Fails if the first producer were kept: every dead letter
     * would time out until the process restarts.
     */
    @Test
    void aDeadLetterProducerThatFailedToSignInIsReplacedOnceItsCredentialExists(TestDatabase db) throws Exception {
        String name = "dlt-scram";
        String topic = "dlt-scram";
        String deadLetterTopic = topic + ".dlt";
        try (TestKafka own = TestKafka.startInJvmWithScramListener(Map.of())) {
            own.createTopic(topic, 1);
            own.createTopic(deadLetterTopic, 1);
            UUID poison = MessageIds.next();
            try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(own)) {
                producer.send(payment(topic, poison, "order-scram", 1)).get();
            }
            MeterRegistry registry = new SimpleMeterRegistry();
            try (IdempotentConsumer consumer = Fixtures.builder(own, db, topic, name)
                    .meterRegistry(registry)
                    .closeTimeout(Duration.ofSeconds(2))
                    .backoff(Backoff.of(Duration.ofMillis(50), Duration.ofMillis(200)))
                    .producerProperties(own.scramClientProperties(USER, PASSWORD))
                    .handler((m, tx) -> {
                        throw new PermanentHandlerException("not payable");
                    })
                    .build()) {
                consumer.start();
                await().atMost(WAIT).untilAsserted(() -> {
                    assertThat(registry.get("outbox.consumer.retries")
                                    .tag("cause", "infrastructure")
                                    .counter()
                                    .count())
                            .as("dead-letter attempts refused by the broker")
                            .isGreaterThanOrEqualTo(3);
                    assertThat(consumer.readiness()).satisfies(r -> {
                        assertThat(r.ready()).isFalse();
                        assertThat(r.reason()).contains("dead-letter circuit breaker");
                    });
                });
                assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                        .isZero();

                own.createScramCredential(USER, PASSWORD);

                await().atMost(WAIT).untilAsserted(() -> {
                    assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                            .as("dead letters once the credential exists")
                            .isOne();
                    assertThat(consumer.readiness().ready())
                            .as("%s", consumer.readiness())
                            .isTrue();
                });
                await().atMost(WAIT).untilAsserted(() -> Fixtures.assertCommittedToEnd(own, name + "-group", topic));
                assertThat(Fixtures.counter(registry, "outbox.consumer.dead.letter.producer.replaced"))
                        .isGreaterThanOrEqualTo(1);
            }
            assertThat(Fixtures.readAll(own, deadLetterTopic, 1, WAIT))
                    .singleElement()
                    .satisfies(
                            r -> assertThat(header(r, OutboxHeaders.MESSAGE_ID)).isEqualTo(poison.toString()));
        }
    }
}
