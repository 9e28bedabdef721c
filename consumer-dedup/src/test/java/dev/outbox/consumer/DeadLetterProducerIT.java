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
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
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
        int saslPort = freePort();
        try (TestKafka own = TestKafka.startInJvm(brokerWithScramListener(saslPort))) {
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
                    .producerProperties(Map.of(
                            "bootstrap.servers",
                            "localhost:" + saslPort,
                            "security.protocol",
                            "SASL_PLAINTEXT",
                            "sasl.mechanism",
                            "SCRAM-SHA-256",
                            "sasl.jaas.config",
                            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"" + USER
                                    + "\" password=\"" + PASSWORD + "\";"))
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

                createCredential(own);

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

    /**
     * A broker with a second listener on {@code saslPort} where clients sign in with SASL/SCRAM-SHA-256;
     * its own listener ({@link TestKafka#bootstrapServers()}) takes clients without authentication.
     */
    private static Map<String, String> brokerWithScramListener(int saslPort) {
        return Map.of(
                "listeners",
                "EXTERNAL://localhost:0,CONTROLLER://localhost:0,SASL_DLT://localhost:" + saslPort,
                "listener.security.protocol.map",
                "EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_DLT:SASL_PLAINTEXT",
                "sasl.enabled.mechanisms",
                "SCRAM-SHA-256",
                "listener.name.sasl_dlt.scram-sha-256.sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required;");
    }

    /** Creates {@link #USER}'s SCRAM-SHA-256 credential with {@link #PASSWORD}. */
    private static void createCredential(TestKafka kafka) throws Exception {
        try (Admin admin = kafka.admin()) {
            admin.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion(
                            USER, new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), PASSWORD)))
                    .all()
                    .get(30, TimeUnit.SECONDS);
        }
    }

    /** @return a port nobody listens on now, for the broker's second listener */
    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }
}
