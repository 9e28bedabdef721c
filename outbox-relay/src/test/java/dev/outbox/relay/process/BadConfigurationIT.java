package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.testkit.PrivatePostgres;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
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

    /**
     * A startup-timeout above 30 s is waited whole for PostgreSQL, by the relay and by the admin commands
     * (both stopped at 30 s before), and the error names the setting.
     */
    @Test
    void aStartupTimeoutAbove30sIsWaitedWholeForPostgres() {
        for (String command : new String[] {"run", "status"}) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            List<String> args = command.equals("run")
                    ? List.of(
                            "--jdbc-url=jdbc:postgresql://127.0.0.1:1/orders",
                            "--bootstrap-servers=127.0.0.1:1",
                            "--startup-timeout=33s",
                            "--http-port=0")
                    : List.of("status", "--jdbc-url=jdbc:postgresql://127.0.0.1:1/orders", "--startup-timeout=33s");
            long started = System.nanoTime();
            int code = Main.run(args.toArray(String[]::new), Map.of(), print(out), print(err));
            Duration took = Duration.ofNanos(System.nanoTime() - started);
            assertThat(code).as(command).isEqualTo(3);
            assertThat(took).as(command).isBetween(Duration.ofSeconds(33), Duration.ofSeconds(45));
            List<String> lines = lines(err);
            assertThat(lines).as(command).hasSize(1);
            assertThat(lines.get(0))
                    .as(command)
                    .startsWith(
                            "Cannot connect to PostgreSQL at jdbc:postgresql://127.0.0.1:1/orders (setting jdbc-url,")
                    .contains("waited 33s (setting startup-timeout, OUTBOX_RELAY_STARTUP_TIMEOUT)");
        }
    }

    /**
     * A login PostgreSQL refuses (here a role that does not exist) is not retried: the relay and the
     * admin commands stop at once, naming the credentials' settings. An admin command waited the whole
     * startup-timeout before (its pool retried the login).
     */
    @Test
    void aRefusedLoginIsExitCode3AtOnceNamingTheCredentials(TestDatabase db) {
        for (String command : new String[] {"run", "status", "doctor"}) {
            long started = System.nanoTime();
            Result r = command.equals("run")
                    ? run(
                            db,
                            "--db-user=no_such_role",
                            "--startup-timeout=40s",
                            "--bootstrap-servers=127.0.0.1:1",
                            "--http-port=0")
                    : run(db, command, "--db-user=no_such_role", "--startup-timeout=40s");
            Duration took = Duration.ofNanos(System.nanoTime() - started);
            assertThat(r.code).as(command).isEqualTo(3);
            assertThat(took).as(command).isLessThan(Duration.ofSeconds(20));
            assertThat(r.errLines).as(command).hasSize(1);
            assertThat(r.errLines.get(0))
                    .as(command)
                    .startsWith("Cannot connect to PostgreSQL at " + db.jdbcUrl() + " (setting jdbc-url,")
                    .contains("no_such_role")
                    // 28000 where the server trusts the login, 28P01 where it asks for a password
                    .containsPattern("\\[SQLState 28[0-9A-Z]{3}\\]; refused at once, not retried")
                    .contains("db-user, OUTBOX_RELAY_DB_USER");
        }
    }

    /**
     * On a server that asks this role for a password: none given (the driver gives up, 08004) and a wrong one
     * (28P01) are refused at once too, by the relay and the admin commands.
     */
    @Test
    void aMissingOrWrongPasswordIsExitCode3AtOnce() throws Exception {
        try (PrivatePostgres pg = PrivatePostgres.start()) {
            Path hba = pg.directory().resolve("data").resolve("pg_hba.conf");
            Files.writeString(
                    hba,
                    "host all needs_password 127.0.0.1/32 scram-sha-256\n"
                            + "host all needs_password ::1/128 scram-sha-256\n" + Files.readString(hba));
            try (Connection c = pg.server().connectAdmin();
                    Statement st = c.createStatement()) {
                st.execute("create role needs_password login password 'right'");
                st.execute("select pg_reload_conf()");
            }
            String url = pg.server().jdbcUrl("postgres");
            for (String password : new String[] {"", "wrong"}) {
                for (String command : new String[] {"run", "status"}) {
                    List<String> args = new ArrayList<>(
                            List.of("--jdbc-url=" + url, "--db-user=needs_password", "--startup-timeout=40s"));
                    if (!password.isEmpty()) {
                        args.add("--db-password=" + password);
                    }
                    if (command.equals("run")) {
                        args.addAll(List.of("--bootstrap-servers=127.0.0.1:1", "--http-port=0"));
                    } else {
                        args.add(0, command);
                    }
                    ByteArrayOutputStream err = new ByteArrayOutputStream();
                    long started = System.nanoTime();
                    int code = Main.run(
                            args.toArray(String[]::new), Map.of(), print(new ByteArrayOutputStream()), print(err));
                    Duration took = Duration.ofNanos(System.nanoTime() - started);
                    String what = command + " with password '" + password + "'";
                    assertThat(code).as(what).isEqualTo(3);
                    assertThat(took).as(what).isLessThan(Duration.ofSeconds(20));
                    assertThat(lines(err))
                            .as(what)
                            .singleElement()
                            .asString()
                            .contains(password.isEmpty() ? "[SQLState 08004]" : "[SQLState 28P01]")
                            .contains("refused at once, not retried")
                            .contains("db-password, OUTBOX_RELAY_DB_PASSWORD");
                }
            }
        }
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

    /**
     * The admin commands too: a schema without the outbox tables is one line naming the schema setting and
     * exit code 3, where it was exit 1 and a stack trace.
     */
    @Test
    void anAdminCommandOnASchemaWithoutTheOutboxTablesIsExitCode3NamingTheSchemaSetting(TestDatabase db) {
        for (String command : new String[] {"status", "parked"}) {
            Result r = run(db, command, "--schema=nothing_here");
            assertThat(r.code).as(command).isEqualTo(3);
            assertThat(r.errLines).as(command).hasSize(1);
            assertThat(r.errLines.get(0))
                    .as(command)
                    .startsWith("Schema nothing_here (setting schema, OUTBOX_RELAY_SCHEMA) has no outbox tables: ")
                    .contains("[SQLState 42P01]");
        }
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
