package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxMessage;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TcpProxy;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.jooq.DSLContext;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * PostgreSQL stops answering without closing anything (a TCP proxy between the relay process and
 * the database stops forwarding): the relay must notice within a lease, stop publishing, stay live
 * (only not ready), and recover.
 */
@ExtendWith(RealServices.class)
@Tag("integration")
class DatabaseHangIT {
    private static final Duration LEASE = Duration.ofSeconds(6);
    private static final int PARTITIONS = 3;
    private final Outbox outbox = Outbox.builder().build();
    private final HttpClient http =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    /**
     * G1 and health across a black-holed database (F6): with forwarding paused, {@code /health/ready}
     * turns 503 within a lease while {@code /health/live} stays 200 for three leases (the JDBC socket and
     * statement timeouts end every lease round, which fails and is retried: the relay's threads make
     * progress, and a restart would not bring the database back), nothing is published once the lease
     * deadline and the producer's delivery timeout have passed (the relay could not delete it), and when
     * forwarding resumes the relay is ready again and every committed message reaches Kafka.
     */
    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void aBlackHoledDatabaseMakesTheRelayNotReadyAndSilentThenItRecovers(TestDatabase db, TestKafka kafka)
            throws Exception {
        String topic = TestKafka.uniqueTopic("db-hang");
        kafka.createTopic(topic, PARTITIONS);
        DSLContext dsl = db.dsl();
        URI dbUri = URI.create(db.jdbcUrl().substring("jdbc:".length()));
        int port = freePort();
        String base = "http://127.0.0.1:" + port;
        List<UUID> committed = new CopyOnWriteArrayList<>();
        try (TcpProxy proxy = TcpProxy.start(dbUri.getHost(), dbUri.getPort());
                Records records = new Records(kafka.consumerProperties("unused"), topic, PARTITIONS);
                ChildRelay relay = ChildRelay.start("db-hang", env(db, kafka, proxy, port))) {
            for (int i = 0; i < 10; i++) {
                committed.addAll(commit(dsl, topic, i, 50));
            }
            await("relay ready and the first messages published")
                    .atMost(Duration.ofSeconds(120))
                    .pollInterval(Duration.ofMillis(250))
                    .untilAsserted(() -> {
                        assertThat(relay.process.isAlive())
                                .as("relay alive, see %s", relay.err)
                                .isTrue();
                        assertThat(status(base + "/health/ready")).isEqualTo(200);
                        assertThat(records.size()).isGreaterThanOrEqualTo(500);
                    });

            AtomicBoolean writing = new AtomicBoolean(true);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread writer = new Thread(
                    () -> {
                        try {
                            for (int i = 10; writing.get(); i++) {
                                committed.addAll(commit(dsl, topic, i, 20));
                                Thread.sleep(5);
                            }
                        } catch (Throwable t) {
                            failure.set(t);
                        }
                    },
                    "test-writer");
            writer.start();
            Thread.sleep(1_000);

            proxy.pause();
            long paused = System.nanoTime();
            await("not ready within a lease")
                    .atMost(LEASE.plusSeconds(2))
                    .pollInterval(Duration.ofMillis(100))
                    .until(() -> status(base + "/health/ready") == 503);
            // the last renewal started before the pause: its deadline (lease - a third) plus delivery.timeout.ms
            // (a sixth) has passed 5 s after it; from then on nothing may reach Kafka
            long quietFrom = paused + LEASE.toNanos() * 5 / 6 + TimeUnit.MILLISECONDS.toNanos(500);
            Thread.sleep(Math.max(0, TimeUnit.NANOSECONDS.toMillis(quietFrom - System.nanoTime())));
            int atDeadline = records.size();
            // about 18 s without PostgreSQL, three leases: longer than liveness allows a stuck lease round (two
            // leases and 5 s), so a round that did not end within its JDBC timeouts would show here
            long quietUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(12);
            while (System.nanoTime() < quietUntil) {
                assertThat(status(base + "/health/live"))
                        .as("live while PostgreSQL does not answer: a restart would not bring it back")
                        .isEqualTo(200);
                assertThat(status(base + "/health/ready")).isEqualTo(503);
                Thread.sleep(250);
            }
            assertThat(records.size())
                    .as("records published while the database was unreachable, after the lease deadline")
                    .isEqualTo(atDeadline);
            assertThat(relay.process.isAlive()).isTrue();

            proxy.resume();
            await("ready again")
                    .atMost(Duration.ofSeconds(60))
                    .pollInterval(Duration.ofMillis(250))
                    .until(() -> status(base + "/health/ready") == 200 && status(base + "/health") == 200);
            writing.set(false);
            writer.join(30_000);
            assertThat(failure.get()).isNull();
            // tens of thousands of messages, written throughout the outage: checked once a second, by the count
            // of those missing (Records#missing: a run of the whole suite once took longer than two minutes so)
            await("every committed message in Kafka")
                    .atMost(Duration.ofSeconds(180))
                    .pollInterval(Duration.ofSeconds(1))
                    .untilAsserted(() -> assertThat(records.missing(committed))
                            .as("committed messages not in Kafka, of %d", committed.size())
                            .isZero());
            System.out.printf(
                    "[DatabaseHangIT] %d messages; %d records were in Kafka at the lease deadline, none after it"
                            + " while the proxy was paused%n",
                    committed.size(), atDeadline);
            relay.process.destroy();
            assertThat(relay.waitFor(60)).as("exit code, see %s", relay.err).isZero();
        }
    }

    private List<UUID> commit(DSLContext dsl, String topic, int round, int n) {
        List<OutboxMessage> batch = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            batch.add(OutboxMessage.of(
                    topic, "key-" + (i % 25), "Test", "text/plain", ("m " + round + "/" + i).getBytes()));
        }
        return dsl.transactionResult(tx -> outbox.appendAll(tx.dsl(), batch));
    }

    private int status(String url) {
        try {
            return http.send(
                            HttpRequest.newBuilder(URI.create(url))
                                    .timeout(Duration.ofSeconds(2))
                                    .build(),
                            HttpResponse.BodyHandlers.discarding())
                    .statusCode();
        } catch (Exception e) {
            return -1;
        }
    }

    static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private static Map<String, String> env(TestDatabase db, TestKafka kafka, TcpProxy proxy, int httpPort) {
        Map<String, String> env = ChildRelay.env(db, kafka.bootstrapServers(), "relay-hang");
        env.put("OUTBOX_RELAY_JDBC_URL", db.jdbcUrl().replaceFirst("//[^/]+/", "//127.0.0.1:" + proxy.port() + "/"));
        env.put("OUTBOX_RELAY_LEASE_DURATION", LEASE.toSeconds() + "s");
        env.put("OUTBOX_RELAY_HTTP_PORT", String.valueOf(httpPort));
        env.put("OUTBOX_RELAY_STARTUP_TIMEOUT", "5s");
        env.put("OUTBOX_RELAY_BATCH_SIZE", "50");
        return env;
    }
}
