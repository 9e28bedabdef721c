package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** The process's HTTP endpoints against a running relay. */
@ExtendWith(RealServices.class)
@Tag("integration")
class HealthEndpointsIT {
    private final HttpClient http =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    @Test
    void healthReadinessAndMetricsAnswer(TestDatabase db, TestKafka kafka) throws Exception {
        Map<String, String> flags = InProcess.flags(db, kafka.bootstrapServers(), "health-1");
        flags.put("http-host", "127.0.0.1");
        try (RelayProcess process = startOnAFreePort(flags)) {
            String base = "http://127.0.0.1:" + flags.get("http-port");
            HttpResponse<String> health = get(base + "/health");
            assertThat(health.statusCode()).isEqualTo(200);
            assertThat(health.headers().firstValue("content-type")).hasValue("application/json");
            assertThat(health.body()).startsWith("{\"status\":\"UP\",\"instance\":\"health-1\",\"live\":true");

            await("ready once PostgreSQL and Kafka answered")
                    .atMost(Duration.ofSeconds(60))
                    .untilAsserted(() -> {
                        HttpResponse<String> ready = get(base + "/health/ready");
                        assertThat(ready.statusCode()).isEqualTo(200);
                        assertThat(ready.body()).contains("\"ready\":true").contains("\"ownedShards\":64");
                    });

            await("metrics registered").atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
                HttpResponse<String> metrics = get(base + "/metrics");
                assertThat(metrics.statusCode()).isEqualTo(200);
                assertThat(metrics.headers().firstValue("content-type").orElse(""))
                        .startsWith("text/plain");
                assertThat(metrics.body())
                        .contains("outbox_relay_published_total")
                        .containsPattern("outbox_relay_owned_shards\\{relay_instance=\"[^\"]+\"} 64.0")
                        .contains("jvm_memory_used_bytes")
                        .contains("hikaricp_connections_active{pool=\"outbox-relay\"}")
                        .contains("kafka_producer_record_send_total{client_id=\"outbox-relay-health-1\"");
            });

            assertThat(get(base + "/nothing").statusCode()).isEqualTo(404);
            assertThat(http.send(
                                    HttpRequest.newBuilder(URI.create(base + "/health"))
                                            .POST(HttpRequest.BodyPublishers.noBody())
                                            .build(),
                                    HttpResponse.BodyHandlers.ofString())
                            .statusCode())
                    .isEqualTo(405);

            assertThat(process.shutdown()).isTrue();
            assertThatThrownBy(() -> get(base + "/health")).isInstanceOf(IOException.class);
        }
    }

    @Test
    void readinessIs503WhileKafkaIsGone(TestDatabase db) throws Exception {
        // the broker first: it binds ports of its own, which could take the one picked for the relay
        TestKafka own = TestKafka.startInJvm();
        Map<String, String> flags = InProcess.flags(db, own.bootstrapServers(), "health-2");
        flags.put("http-host", "127.0.0.1");
        try (RelayProcess process = startOnAFreePort(flags)) {
            String base = "http://127.0.0.1:" + flags.get("http-port");
            await().atMost(Duration.ofSeconds(60))
                    .untilAsserted(() ->
                            assertThat(get(base + "/health/ready").statusCode()).isEqualTo(200));
            own.close();
            await("not ready once Kafka stopped answering for a lease duration")
                    .atMost(Duration.ofSeconds(90))
                    .untilAsserted(() -> {
                        HttpResponse<String> ready = get(base + "/health/ready");
                        assertThat(ready.statusCode()).isEqualTo(503);
                        assertThat(ready.body()).contains("\"status\":\"DOWN\"").contains("\"ready\":false");
                    });
            assertThat(get(base + "/health").statusCode())
                    .as("still live: the loops run and retry")
                    .isEqualTo(200);
        } finally {
            own.close();
        }
    }

    /**
     * An http-host that is not an address of this machine, or does not resolve, names the http-host
     * setting; before, the message sent the operator to change the port or turn the server off.
     */
    @Test
    void anHttpHostThatCannotBeBoundNamesTheHostSetting(TestDatabase db, TestKafka kafka) throws Exception {
        for (String host : new String[] {"no-such-host.invalid", "192.0.2.1"}) {
            Map<String, String> flags = InProcess.flags(db, kafka.bootstrapServers(), "health-host");
            flags.put("http-host", host);
            flags.put("http-port", String.valueOf(InProcess.freePort()));
            assertThatThrownBy(() -> InProcess.start(flags).close())
                    .as(host)
                    .isInstanceOf(CliException.class)
                    .hasMessageStartingWith("Cannot listen on " + host + ":")
                    .hasMessageContaining("setting")
                    .hasMessageContaining("http-host, OUTBOX_RELAY_HTTP_HOST")
                    .hasMessageContaining("an address")
                    .hasMessageContaining("of this machine");
        }
    }

    /**
     * Starts the process on a port that was free a moment ago, and on another one if something took it
     * in between (port 0 turns the HTTP server off, so the port must be chosen here); the port used is
     * left in {@code flags}.
     */
    private static RelayProcess startOnAFreePort(Map<String, String> flags) throws IOException {
        for (int attempt = 1; ; attempt++) {
            flags.put("http-port", String.valueOf(InProcess.freePort()));
            try {
                return InProcess.start(flags);
            } catch (CliException e) {
                if (attempt == 5 || e.getMessage() == null || !e.getMessage().startsWith("Cannot listen on")) {
                    throw e;
                }
            }
        }
    }

    private HttpResponse<String> get(String url) throws Exception {
        return http.send(
                HttpRequest.newBuilder(URI.create(url))
                        .timeout(Duration.ofSeconds(10))
                        .GET()
                        .build(),
                HttpResponse.BodyHandlers.ofString());
    }
}
