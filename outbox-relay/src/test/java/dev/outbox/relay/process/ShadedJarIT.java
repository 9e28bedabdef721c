package dev.outbox.relay.process;

import static dev.outbox.relay.process.ProcessKillFailoverIT.count;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The packaged artifact works on its own: {@code java -jar outbox-relay-<version>-all.jar} migrates
 * a new schema (Flyway's plugins found through the merged service files), runs the relay and stops
 * with exit code 0 on SIGTERM. Runs after {@code package}, as every {@code *IT} does.
 */
@ExtendWith(RealServices.class)
@Tag("integration")
class ShadedJarIT {

    @Test
    void theRunnableJarMigratesRunsAndStops(TestDatabase db, TestKafka kafka) throws Exception {
        Path out = ChildRelay.LOGS.resolve("shaded-jar.out");
        Path err = ChildRelay.LOGS.resolve("shaded-jar.err");
        runUntilLeasedThenStop(db, kafka, "jar_smoke", "jar-smoke", out, err, List.of());
        assertThat(Files.readString(out)).contains("migrations: ").contains("started:");
    }

    /**
     * A fresh install and start with {@code log-format=json}: every line on standard output is one JSON
     * object, and none is a warning or an error. Before, the first migration logged Flyway's "schema
     * ... already exists" and jOOQ logged that PostgreSQL is "older than" its dialect.
     */
    @Test
    void aFreshStartLogsJsonLinesAndNoWarnings(TestDatabase db, TestKafka kafka) throws Exception {
        Path out = ChildRelay.LOGS.resolve("shaded-jar-json.out");
        Path err = ChildRelay.LOGS.resolve("shaded-jar-json.err");
        runUntilLeasedThenStop(db, kafka, "jar_json", "jar-json", out, err, List.of("--log-format=json"));

        List<String> lines = Files.readAllLines(out);
        assertThat(lines).isNotEmpty();
        ObjectMapper json = new ObjectMapper();
        for (String line : lines) {
            JsonNode event = json.readTree(line);
            assertThat(event.isObject()).as(line).isTrue();
            assertThat(event.path("level").asText()).as(line).isIn("INFO", "DEBUG", "TRACE");
        }
        assertThat(lines).anyMatch(l -> l.contains("\"loggerName\":\"dev.outbox.") && l.contains("started:"));
        assertThat(Files.readString(err)).as("standard error").isBlank();
    }

    /**
     * {@code doctor --json} while Kafka cannot be reached: standard output holds the report as one JSON
     * document and nothing else, and the Kafka client's warnings go to standard error. Before, they
     * were logged to standard output with the report, exactly when the doctor reports a failure, and
     * {@code doctor --json | jq} failed.
     */
    @Test
    void doctorJsonIsAloneOnStandardOutputWhenKafkaIsDown(TestDatabase db) throws Exception {
        Path out = ChildRelay.LOGS.resolve("shaded-jar-doctor.out");
        Path err = ChildRelay.LOGS.resolve("shaded-jar-doctor.err");
        Files.createDirectories(ChildRelay.LOGS);
        ProcessBuilder pb = new ProcessBuilder(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx256m",
                "-jar",
                jar().toString(),
                "doctor",
                "--json",
                "--admin-timeout=5s",
                // a consumer's topic: the doctor asks Kafka for its settings
                "--consumer",
                "payments=orders"));
        pb.environment().keySet().removeIf(k -> k.startsWith(RelaySettings.ENV_PREFIX));
        pb.environment().putAll(ChildRelay.env(db, "127.0.0.1:1", "jar-doctor"));
        pb.redirectOutput(out.toFile());
        pb.redirectError(err.toFile());
        Process p = pb.start();
        try {
            assertThat(p.waitFor(180, TimeUnit.SECONDS))
                    .as("doctor finished, see %s", err)
                    .isTrue();
        } finally {
            p.destroyForcibly();
        }
        String stdout = Files.readString(out);
        JsonNode report = new ObjectMapper().readTree(stdout);
        assertThat(report.isObject()).as(stdout).isTrue();
        assertThat(stdout).as("standard output").doesNotContain("WARN");
        assertThat(p.exitValue()).as("exit code, see %s", out).isNotZero();
    }

    private static Path jar() throws Exception {
        try (Stream<Path> files = Files.list(Path.of("target"))) {
            return files.filter(p -> p.getFileName().toString().matches("outbox-relay-.*-all\\.jar"))
                    .findFirst()
                    .orElseThrow(
                            () -> new AssertionError("no target/outbox-relay-*-all.jar: run ./mvnw package first"));
        }
    }

    private static void runUntilLeasedThenStop(
            TestDatabase db,
            TestKafka kafka,
            String schema,
            String instance,
            Path out,
            Path err,
            List<String> extraArgs)
            throws Exception {
        Path jar = jar();
        Files.createDirectories(ChildRelay.LOGS);
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx256m",
                "-jar",
                jar.toString(),
                "--migrate",
                "--schema=" + schema,
                "--migrate-shards=8"));
        command.addAll(extraArgs);
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.environment().keySet().removeIf(k -> k.startsWith(RelaySettings.ENV_PREFIX));
        Map<String, String> env = ChildRelay.env(db, kafka.bootstrapServers(), instance);
        pb.environment().putAll(env);
        pb.redirectOutput(out.toFile());
        pb.redirectError(err.toFile());
        Process p = pb.start();
        try {
            await("the jar's relay leases the new schema's shards")
                    .atMost(Duration.ofSeconds(120))
                    .pollInterval(Duration.ofMillis(250))
                    .untilAsserted(() -> {
                        assertThat(p.isAlive()).as("alive, see %s", err).isTrue();
                        assertThat(count(db, "select count(*) from pg_tables where schemaname = '" + schema + "'"))
                                .isGreaterThanOrEqualTo(5);
                        assertThat(count(
                                        db,
                                        "select count(*) from " + schema + ".outbox_shard_lease where owner = '"
                                                + instance + "'" + " and lease_until > clock_timestamp()"))
                                .isEqualTo(8);
                    });
            p.destroy();
            assertThat(p.waitFor(90, TimeUnit.SECONDS)).isTrue();
            assertThat(p.exitValue()).as("exit code, see %s", out).isZero();
            assertThat(count(db, "select count(*) from " + schema + ".outbox_shard_lease where owner is not null"))
                    .isZero();
        } finally {
            p.destroyForcibly();
        }
    }
}
