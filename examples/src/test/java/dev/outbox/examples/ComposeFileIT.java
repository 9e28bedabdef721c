package dev.outbox.examples;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.relay.process.RelaySettings;
import dev.outbox.relay.process.Setting;
import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;

/**
 * docker-compose.yml matches the project: images or Dockerfiles that exist and copy jars the build
 * produces, main classes that exist, ports, and environment names the services actually read
 * (the relay's from its settings table). Runs after {@code package}, when the jars exist.
 */
class ComposeFileIT {
    private static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

    @SuppressWarnings("unchecked")
    private static Map<String, Map<String, Object>> services() throws IOException {
        try (Reader r = Files.newBufferedReader(ROOT.resolve("docker-compose.yml"))) {
            Map<String, Object> compose = new Yaml().load(r);
            return (Map<String, Map<String, Object>>) compose.get("services");
        }
    }

    @Test
    void everyServiceIsThere() throws IOException {
        assertThat(services()).containsOnlyKeys("postgres", "kafka", "relay", "orders-service", "payments-consumer");
        assertThat(services().get("kafka").get("image").toString()).startsWith("apache/kafka:");
        assertThat(services().get("postgres").get("image").toString()).startsWith("postgres:");
    }

    /**
     * A health check that opens {@code /dev/tcp} runs under bash: a {@code CMD-SHELL} check runs under
     * the image's {@code /bin/sh}, dash in the Temurin images, which has no {@code /dev/tcp}; the check
     * then never passed, and the payments consumer, which waits for a healthy orders service, never
     * started.
     */
    @Test
    @SuppressWarnings("unchecked")
    void healthChecksThatOpenATcpConnectionRunUnderBash() throws IOException {
        for (var e : services().entrySet()) {
            Map<String, Object> check = (Map<String, Object>) e.getValue().get("healthcheck");
            if (check == null) {
                continue;
            }
            List<String> test = (List<String>) check.get("test");
            if (String.join(" ", test).contains("/dev/tcp")) {
                assertThat(test.subList(0, 3)).as(e.getKey() + " health check").containsExactly("CMD", "bash", "-c");
            }
        }
    }

    /**
     * The broker keeps a record of a topic created on first use (the orders topic here) for at most
     * {@code retention.ms + segment.ms} ({@code log.retention.ms + log.roll.ms}), what {@link
     * OrdersService#TOPIC_CONFIGS} gives it: within the payments consumer's 7 days of processed ids.
     * The broker's defaults keep records up to 14 days, so an offset reset could apply again a
     * payment whose id was purged.
     */
    @Test
    @SuppressWarnings("unchecked")
    void theBrokerKeepsRecordsNoLongerThanTheConsumerKeepsIds() throws IOException {
        Map<String, Object> env = (Map<String, Object>) services().get("kafka").get("environment");
        assertThat(env.get("KAFKA_LOG_RETENTION_MS")).hasToString(OrdersService.TOPIC_CONFIGS.get("retention.ms"));
        assertThat(env.get("KAFKA_LOG_ROLL_MS")).hasToString(OrdersService.TOPIC_CONFIGS.get("segment.ms"));
    }

    @Test
    @SuppressWarnings("unchecked")
    void everyServiceHasAnImageOrABuildThatExists() throws Exception {
        for (var e : services().entrySet()) {
            Map<String, Object> svc = e.getValue();
            assertThat(svc.containsKey("image") || svc.containsKey("build"))
                    .as(e.getKey() + " has an image or a build")
                    .isTrue();
            assertThat(svc.get("healthcheck") != null || e.getKey().equals("payments-consumer"))
                    .as(e.getKey() + " has a health check")
                    .isTrue();
            if (svc.containsKey("build")) {
                Map<String, Object> build = (Map<String, Object>) svc.get("build");
                Path context = ROOT.resolve(build.get("context").toString()).normalize();
                Path dockerfile = context.resolve(
                        build.getOrDefault("dockerfile", "Dockerfile").toString());
                assertThat(dockerfile).as(e.getKey() + " Dockerfile").exists();
                Matcher copy = Pattern.compile("(?m)^COPY\\s+(\\S+)\\s").matcher(Files.readString(dockerfile));
                assertThat(copy.find())
                        .as("Dockerfile of " + e.getKey() + " copies a jar")
                        .isTrue();
                assertThat(context.resolve(copy.group(1)))
                        .as("the jar the Dockerfile of " + e.getKey() + " copies is built by ./mvnw package")
                        .exists();
                List<String> command = (List<String>) svc.get("command");
                assertThat(command).as(e.getKey() + " command").isNotEmpty();
                if (command.get(0).startsWith("dev.outbox.")) {
                    assertThat(Class.forName(command.get(0)).getMethod("main", String[].class))
                            .isNotNull();
                }
            }
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    void environmentNamesAreOnesTheServicesRead() throws IOException {
        Set<String> relayVars = RelaySettings.ALL.stream().map(Setting::envVar).collect(Collectors.toSet());
        for (var e : services().entrySet()) {
            Map<String, Object> env = (Map<String, Object>) e.getValue().getOrDefault("environment", Map.of());
            for (String name : env.keySet()) {
                if (name.startsWith(RelaySettings.KAFKA_ENV_PREFIX)) {
                    continue; // pass-through producer properties
                }
                if (name.startsWith(RelaySettings.ENV_PREFIX)) {
                    assertThat(relayVars)
                            .as(e.getKey() + ": " + name + " is a relay setting")
                            .contains(name);
                } else if (name.startsWith("SHOP_")) {
                    assertThat(Env.ALL)
                            .as(e.getKey() + ": " + name + " is read by the example services")
                            .contains(name);
                } else {
                    assertThat(name)
                            .as(e.getKey() + ": " + name + " belongs to the postgres or kafka image")
                            .matches("(POSTGRES|KAFKA)_[A-Z_]+");
                }
            }
        }
        Map<String, Object> relayEnv =
                (Map<String, Object>) services().get("relay").get("environment");
        assertThat(relayEnv).containsKeys(RelaySettings.JDBC_URL.envVar(), RelaySettings.BOOTSTRAP_SERVERS.envVar());
    }

    @Test
    @SuppressWarnings("unchecked")
    void portsMatchWhatTheServicesListenOn() throws IOException {
        var s = services();
        assertThat((List<String>) s.get("relay").get("ports"))
                .contains(
                        ((Map<String, Object>) s.get("relay").get("environment")).get(RelaySettings.HTTP_PORT.envVar())
                                + ":8080");
        assertThat((List<String>) s.get("orders-service").get("ports"))
                .contains(((Map<String, Object>) s.get("orders-service").get("environment")).get(Env.HTTP_PORT)
                        + ":8081");
        assertThat((List<String>) s.get("postgres").get("ports")).contains("15432:5432");
        assertThat((List<String>) s.get("kafka").get("ports")).contains("9092:9092");
    }
}
