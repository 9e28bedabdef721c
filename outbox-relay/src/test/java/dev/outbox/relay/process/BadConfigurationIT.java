package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Start-up failures that need a real PostgreSQL or a real JVM: each exits non-zero with one line on
 * standard error that names the setting to fix.
 */
@ExtendWith(RealServices.class)
@Tag("integration")
class BadConfigurationIT {

    @Test
    void aNegativeBatchSizeStopsTheRealProcessWithExitCode2AndOneLine(TestDatabase db) throws Exception {
        Map<String, String> env = ChildRelay.env(db, "127.0.0.1:9092", "bad-config");
        env.put("OUTBOX_RELAY_BATCH_SIZE", "-5");
        try (ChildRelay child = ChildRelay.start("bad-batch-size", env)) {
            assertThat(child.waitFor(60)).isEqualTo(2);
            assertThat(child.stderrLines())
                    .containsExactly(
                            "Invalid value -5 for setting batch-size (OUTBOX_RELAY_BATCH_SIZE, given by environment variable"
                                    + " OUTBOX_RELAY_BATCH_SIZE): must be between 1 and 10000");
        }
    }

    @Test
    void anUnreachableKafkaAtStartIsExitCode3NamingTheBootstrapSetting(TestDatabase db) {
        Result r = run(db, "--bootstrap-servers=127.0.0.1:1", "--startup-timeout=2s", "--http-port=0");
        assertThat(r.code).isEqualTo(3);
        assertThat(r.errLines).hasSize(1);
        assertThat(r.errLines.get(0))
                .startsWith("Kafka at 127.0.0.1:1 (setting bootstrap-servers, OUTBOX_RELAY_BOOTSTRAP_SERVERS)")
                .contains("did not answer within 2s");
    }

    @Test
    void anUnreachableDatabaseAtStartIsExitCode3NamingTheJdbcUrlSetting() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(
                new String[] {
                    "--jdbc-url=jdbc:postgresql://127.0.0.1:1/orders",
                    "--bootstrap-servers=127.0.0.1:1",
                    "--startup-timeout=2s",
                    "--http-port=0"
                },
                Map.of(),
                print(out),
                print(err));
        assertThat(code).isEqualTo(3);
        List<String> lines = lines(err);
        assertThat(lines).hasSize(1);
        assertThat(lines.get(0))
                .startsWith(
                        "Cannot connect to PostgreSQL at jdbc:postgresql://127.0.0.1:1/orders (setting jdbc-url, OUTBOX_RELAY_JDBC_URL)");
    }

    @Test
    void aSchemaWithoutTheOutboxTablesIsExitCode3NamingTheSchemaSetting(TestDatabase db) {
        Result r = run(db, "--bootstrap-servers=127.0.0.1:1", "--schema=nothing_here", "--http-port=0");
        assertThat(r.code).isEqualTo(3);
        assertThat(r.errLines).hasSize(1);
        assertThat(r.errLines.get(0))
                .contains("(setting schema, OUTBOX_RELAY_SCHEMA)")
                .contains("--migrate");
    }

    private record Result(int code, List<String> errLines) {}

    private static Result run(TestDatabase db, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        Map<String, String> env = Map.of(
                "OUTBOX_RELAY_JDBC_URL",
                db.jdbcUrl(),
                "OUTBOX_RELAY_DB_USER",
                db.user(),
                "OUTBOX_RELAY_DB_PASSWORD",
                db.password());
        int code = Main.run(args, env, print(out), print(err));
        return new Result(code, lines(err));
    }

    static PrintStream print(ByteArrayOutputStream b) {
        return new PrintStream(b, true, StandardCharsets.UTF_8);
    }

    static List<String> lines(ByteArrayOutputStream b) {
        return b.toString(StandardCharsets.UTF_8)
                .lines()
                .filter(l -> !l.isBlank())
                .toList();
    }
}
