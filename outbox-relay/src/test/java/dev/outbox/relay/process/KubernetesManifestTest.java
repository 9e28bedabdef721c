package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.Reader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;

/**
 * Keeps the example Kubernetes manifest honest, as {@code ComposeFileIT} does for docker compose:
 * its settings are names the relay accepts (resolved through the same code as the environment of
 * a real pod), the password comes from the Secret, the probes ask paths the health server answers
 * on the port the relay listens on, the grace period outlasts the shutdown, and service links,
 * which would inject {@code OUTBOX_RELAY_*} variables the relay refuses, are off.
 */
class KubernetesManifestTest {
    private static final Path MANIFEST = Path.of("kubernetes", "outbox-relay.yaml");

    @Test
    void theManifestMatchesTheSettingsTableAndTheHealthServer() throws Exception {
        Map<String, Map<String, Object>> byKind = new LinkedHashMap<>();
        List<String> serviceNames = new ArrayList<>();
        try (Reader in = Files.newBufferedReader(MANIFEST)) {
            for (Object document : new Yaml().loadAll(in)) {
                Map<String, Object> doc = map(document);
                String kind = (String) doc.get("kind");
                if (kind.equals("Service")) {
                    serviceNames.add((String) map(doc.get("metadata")).get("name"));
                }
                byKind.put(kind, doc);
            }
        }
        assertThat(byKind).containsKeys("ConfigMap", "Secret", "Deployment");
        Map<String, String> config = strings(map(byKind.get("ConfigMap").get("data")));
        Map<String, String> secret = strings(map(byKind.get("Secret").get("stringData")));
        Map<String, Object> pod = map(
                map(map(byKind.get("Deployment").get("spec")).get("template")).get("spec"));
        Map<String, Object> container = map(list(pod.get("containers")).get(0));

        // the environment the container gets: the ConfigMap, then the Secret's keys it names
        Map<String, String> env = new LinkedHashMap<>();
        assertThat(list(container.get("envFrom")))
                .singleElement()
                .satisfies(e -> assertThat(map(map(e).get("configMapRef")).get("name"))
                        .isEqualTo(map(byKind.get("ConfigMap").get("metadata")).get("name")));
        env.putAll(config);
        for (Object o : list(container.get("env"))) {
            Map<String, Object> var = map(o);
            Map<String, Object> ref = map(map(var.get("valueFrom")).get("secretKeyRef"));
            assertThat(ref.get("name"))
                    .isEqualTo(map(byKind.get("Secret").get("metadata")).get("name"));
            assertThat(secret).containsKey((String) ref.get("key"));
            env.put((String) var.get("name"), secret.get((String) ref.get("key")));
        }
        assertThat(config)
                .as("the password is not in the ConfigMap")
                .doesNotContainKey(RelaySettings.DB_PASSWORD.envVar());
        assertThat(env).containsKey(RelaySettings.DB_PASSWORD.envVar());

        // every name is a setting (or a producer property), every value valid: this throws otherwise
        RelaySettings.Values settings = RelaySettings.resolve(Map.of(), env, Map.of(), "", true);
        assertThat(settings.producerProperties()).containsEntry("compression.type", "lz4");

        int port = settings.integer(RelaySettings.HTTP_PORT);
        assertThat(list(container.get("ports"))).anySatisfy(p -> {
            assertThat(map(p).get("containerPort")).isEqualTo(port);
            assertThat(map(p).get("name")).isEqualTo("http");
        });
        Duration shutdown = settings.duration(RelaySettings.SHUTDOWN_TIMEOUT);
        int grace = (Integer) pod.get("terminationGracePeriodSeconds");
        assertThat(Duration.ofSeconds(grace))
                .as("terminationGracePeriodSeconds outlasts shutdown-timeout by 15 s or more,"
                        + " the time closing the producer and the pool may take")
                .isGreaterThanOrEqualTo(shutdown.plusSeconds(15));

        // memory: after a failover one relay owns every shard and holds two batches of up to batch-bytes of
        // payloads per shard plus the producer's buffer.memory; that must fit in half of the heap that the
        // Dockerfile's MaxRAMPercentage gives the container's memory limit, the other half left to the rest
        String dockerfile = Files.readString(Path.of("Dockerfile"));
        Matcher percentage = Pattern.compile("-XX:MaxRAMPercentage=(\\d+)").matcher(dockerfile);
        assertThat(percentage.find())
                .as("the Dockerfile sets -XX:MaxRAMPercentage")
                .isTrue();
        long limit = quantity(
                (String) map(map(container.get("resources")).get("limits")).get("memory"));
        long heap = limit * Integer.parseInt(percentage.group(1)) / 100;
        long buffer = Long.parseLong(
                settings.producerProperties().getOrDefault("buffer.memory", String.valueOf(32L * 1024 * 1024)));
        long payloads =
                (long) settings.integer(RelaySettings.MIGRATE_SHARDS) * 2 * settings.integer(RelaySettings.BATCH_BYTES)
                        + buffer;
        assertThat(payloads)
                .as(
                        "payloads one relay may hold (shards x 2 x batch-bytes + buffer.memory) within half the heap of %s"
                                + " bytes",
                        heap)
                .isLessThanOrEqualTo(heap / 2);
        assertThat(dockerfile)
                .as("an OutOfMemoryError ends the JVM, so that the container restarts")
                .contains("-XX:+ExitOnOutOfMemoryError");

        boolean linksWouldCollide = serviceNames.stream()
                .anyMatch(
                        n -> (n.toUpperCase(Locale.ROOT).replace('-', '_') + "_").startsWith(RelaySettings.ENV_PREFIX));
        if (linksWouldCollide) {
            assertThat(pod.get("enableServiceLinks"))
                    .as("a Service named outbox-relay injects OUTBOX_RELAY_SERVICE_HOST and"
                            + " OUTBOX_RELAY_PORT*, which the relay refuses")
                    .isEqualTo(false);
        }

        // the probes ask what the health server answers, on the container's port
        Map<String, String> probes = new LinkedHashMap<>();
        for (String probe : List.of("livenessProbe", "readinessProbe")) {
            Map<String, Object> get = map(map(container.get(probe)).get("httpGet"));
            assertThat(get.get("port")).isIn("http", port);
            probes.put(probe, (String) get.get("path"));
        }
        assertThat(probes.get("readinessProbe")).isEqualTo("/health/ready");
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        {
            HealthServer server = new HealthServer("127.0.0.1", 0, "k8s", () -> true, () -> true, () -> 1, registry);
            server.start();
            try {
                HttpClient http = HttpClient.newHttpClient();
                for (var probe : probes.entrySet()) {
                    HttpResponse<String> answer = http.send(
                            HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
                                            + server.address().getPort() + probe.getValue()))
                                    .build(),
                            HttpResponse.BodyHandlers.ofString());
                    assertThat(answer.statusCode())
                            .as(probe.getKey() + " " + probe.getValue())
                            .isEqualTo(200);
                    assertThat(answer.body()).as(probe.getKey()).contains("\"status\":\"UP\"");
                }
            } finally {
                server.close();
                registry.close();
            }
        }
    }

    /** @return a Kubernetes memory quantity such as {@code 512Mi} or {@code 1G} in bytes */
    private static long quantity(String q) {
        Matcher m = Pattern.compile("(\\d+)(Ki|Mi|Gi|K|M|G)?").matcher(q);
        assertThat(m.matches()).as("memory quantity %s", q).isTrue();
        long n = Long.parseLong(m.group(1));
        return switch (m.group(2) == null ? "" : m.group(2)) {
            case "Ki" -> n << 10;
            case "Mi" -> n << 20;
            case "Gi" -> n << 30;
            case "K" -> n * 1_000;
            case "M" -> n * 1_000_000;
            case "G" -> n * 1_000_000_000;
            default -> n;
        };
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> map(Object o) {
        assertThat(o).isInstanceOf(Map.class);
        return (Map<String, Object>) o;
    }

    @SuppressWarnings("unchecked")
    private static List<Object> list(Object o) {
        assertThat(o).isInstanceOf(List.class);
        return (List<Object>) o;
    }

    private static Map<String, String> strings(Map<String, Object> m) {
        Map<String, String> s = new LinkedHashMap<>();
        m.forEach((k, v) -> {
            assertThat(v)
                    .as("%s is quoted in the manifest: ConfigMap and Secret values are strings", k)
                    .isInstanceOf(String.class);
            s.put(k, (String) v);
        });
        return s;
    }
}
