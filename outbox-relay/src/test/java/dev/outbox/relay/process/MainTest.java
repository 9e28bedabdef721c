package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad command lines fail before anything is contacted: exit code 2 and one line on stderr naming the setting. */
class MainTest {
    private record Result(int code, String out, List<String> err) {}

    private static Result run(Map<String, String> env, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(
                args,
                env,
                new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Result(
                code,
                out.toString(StandardCharsets.UTF_8),
                err.toString(StandardCharsets.UTF_8)
                        .lines()
                        .filter(l -> !l.isBlank())
                        .toList());
    }

    private static final Map<String, String> ENV = Map.of(
            "OUTBOX_RELAY_JDBC_URL",
            "jdbc:postgresql://127.0.0.1:1/x",
            "OUTBOX_RELAY_BOOTSTRAP_SERVERS",
            "127.0.0.1:1");

    @Test
    void negativeBatchSize() {
        Result r = run(ENV, "--batch-size=-5");
        assertThat(r.code).isEqualTo(2);
        assertThat(r.err)
                .containsExactly(
                        "Invalid value -5 for setting batch-size (OUTBOX_RELAY_BATCH_SIZE, given by flag --batch-size): must be between 1 and 10000");
    }

    @Test
    void unknownSetting() {
        Result r = run(ENV, "--batch-sise", "5");
        assertThat(r.code).isEqualTo(2);
        assertThat(r.err).hasSize(1);
        assertThat(r.err.get(0)).startsWith("Unknown setting --batch-sise (flag): did you mean --batch-size?");
        Result env = run(Map.of("OUTBOX_RELAY_JDBC_URL", "jdbc:postgresql://h/x", "OUTBOX_RELAY_BOOTSTRAP", "k:1"));
        assertThat(env.code).isEqualTo(2);
        assertThat(env.err).hasSize(1);
        assertThat(env.err.get(0))
                .contains("OUTBOX_RELAY_BOOTSTRAP")
                .contains("did you mean OUTBOX_RELAY_BOOTSTRAP_SERVERS?");
    }

    /**
     * A URL pgjdbc refuses (a port out of range, or not a number) is a bad setting: exit 2 and one
     * line naming it. Before, it passed the check of its prefix and the pool's start failed with
     * exit 1 and a stack trace.
     */
    @Test
    void aJdbcUrlTheDriverRefusesIsABadSetting() {
        for (String url : List.of("jdbc:postgresql://db:99999/orders", "jdbc:postgresql://db:5432x/orders")) {
            Result r = run(Map.of("OUTBOX_RELAY_BOOTSTRAP_SERVERS", "127.0.0.1:1", "OUTBOX_RELAY_JDBC_URL", url));
            assertThat(r.code).as(url).isEqualTo(2);
            assertThat(r.err).as(url).hasSize(1);
            assertThat(r.err.get(0)).as(url).contains("jdbc-url").contains("the port (1 to 65535)");
        }
    }

    @Test
    void missingJdbcUrl() {
        Result r = run(Map.of("OUTBOX_RELAY_BOOTSTRAP_SERVERS", "127.0.0.1:1"));
        assertThat(r.code).isEqualTo(2);
        assertThat(r.err).hasSize(1);
        assertThat(r.err.get(0)).startsWith("Missing setting jdbc-url (OUTBOX_RELAY_JDBC_URL)");
        Result admin = run(Map.of(), "status");
        assertThat(admin.code).isEqualTo(2);
        assertThat(admin.err).hasSize(1);
        assertThat(admin.err.get(0)).startsWith("Missing setting jdbc-url");
    }

    @Test
    void propertiesFileIsReadAndItsUnknownKeysNamed(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("relay.properties");
        Files.writeString(file, "relay.batch.size=0\n");
        Result r = run(ENV, "--config", file.toString());
        assertThat(r.code).isEqualTo(2);
        assertThat(r.err)
                .containsExactly(
                        "Invalid value 0 for setting batch-size (OUTBOX_RELAY_BATCH_SIZE, given by relay.batch.size in "
                                + file + "): must be between 1 and 10000");
        Files.writeString(file, "relay.batchsize=10\n");
        Result viaEnv = run(
                Map.of("OUTBOX_RELAY_CONFIG", file.toString(), "OUTBOX_RELAY_JDBC_URL", "jdbc:postgresql://h/x"),
                "status");
        assertThat(viaEnv.code).isEqualTo(2);
        assertThat(viaEnv.err.get(0)).contains("relay.batchsize").contains("did you mean relay.batch.size?");
        Result missing = run(ENV, "--config=" + dir.resolve("nope.properties"));
        assertThat(missing.code).isEqualTo(2);
        assertThat(missing.err).hasSize(1);
        assertThat(missing.err.get(0)).contains("nope.properties").contains("--config");
    }

    /**
     * The file is read as UTF-8, as a ConfigMap or Secret holds it: a value with a non-ASCII character
     * arrives as written (it arrived as ISO-8859-1 mojibake), and a file in another encoding is named.
     */
    @Test
    void propertiesFileIsReadAsUtf8(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("relay.properties");
        Files.writeString(file, "relay.park.policy=p\u00e4rk\n", StandardCharsets.UTF_8);
        Result r = run(ENV, "--config", file.toString());
        assertThat(r.code).isEqualTo(2);
        assertThat(r.err.get(0)).startsWith("Invalid value p\u00e4rk for setting park-policy");
        Files.writeString(file, "relay.park.policy=p\u00e4rk\n", StandardCharsets.ISO_8859_1);
        Result latin1 = run(ENV, "--config", file.toString());
        assertThat(latin1.code).isEqualTo(2);
        assertThat(latin1.err)
                .containsExactly("Cannot read the properties file " + file
                        + " (--config): it is not UTF-8 text; save it as UTF-8.");
    }

    /**
     * An empty {@code --config=} (a variable left unset in a script) is refused, naming the flag and the
     * way out, like every other bad argument: exit 2 before anything is contacted. Before, it was ignored
     * and the command ran without the file it was meant to read (here: tried PostgreSQL, exit 3).
     */
    @Test
    void anEmptyConfigFlagIsRefused() {
        String expected = "Option --config needs the path of a properties file, got an empty one: write"
                + " --config=<file>, e.g. --config=relay.properties, or drop --config to take the settings from"
                + " flags and the environment only.";
        for (String[] args : List.of(
                new String[] {"status", "--config=", "--startup-timeout=250ms"},
                new String[] {"status", "--config", "", "--startup-timeout=250ms"},
                new String[] {"status", "--config=  ", "--startup-timeout=250ms"},
                new String[] {"--config=", "--startup-timeout=250ms"})) {
            Result r = run(ENV, args);
            assertThat(r.code).as(String.join(" ", args)).isEqualTo(Main.EXIT_USAGE);
            assertThat(r.err).as(String.join(" ", args)).containsExactly(expected);
        }
    }

    /**
     * A value means the same as a flag as in the environment: {@code --jdbc-url=' '} is a missing
     * jdbc-url, as {@code OUTBOX_RELAY_JDBC_URL=' '} is. Before, the flag's space was the value, refused
     * as not a JDBC URL.
     */
    @Test
    void aBlankFlagIsTheSameAsABlankEnvironmentVariable() {
        Result flag = run(Map.of(), "status", "--jdbc-url= ");
        Result env = run(Map.of("OUTBOX_RELAY_JDBC_URL", " "), "status");
        assertThat(env.code).isEqualTo(Main.EXIT_USAGE);
        assertThat(env.err).singleElement().asString().startsWith("Missing setting jdbc-url (OUTBOX_RELAY_JDBC_URL)");
        assertThat(flag.code).isEqualTo(env.code);
        assertThat(flag.err).isEqualTo(env.err);
    }

    /**
     * {@code doctor} bounds each Kafka request by the configured {@code kafka.request.timeout.ms}; 0, with
     * which every request would time out at once, is a bad setting: exit 2 naming the property and the fix,
     * before anything is contacted. Before, the doctor ignored the property (it used 15 s) and went on to
     * PostgreSQL (here: exit 3).
     */
    @Test
    void doctorRefusesARequestTimeoutOfZero() {
        Result r = run(
                ENV,
                "doctor",
                "--kafka.request.timeout.ms=0",
                "--bootstrap-servers=127.0.0.1:1",
                "--startup-timeout=250ms");
        assertThat(r.code).as(String.join("\n", r.err)).isEqualTo(Main.EXIT_USAGE);
        assertThat(r.err)
                .singleElement()
                .asString()
                .startsWith("Invalid value 0 for Kafka property request.timeout.ms (flag --kafka.request.timeout.ms,"
                        + " OUTBOX_RELAY_KAFKA_REQUEST_TIMEOUT_MS or file key kafka.request.timeout.ms)")
                .contains("give it in milliseconds, e.g. 30000, or remove it");
    }

    @Test
    void commandsAndTheirOptionsAreChecked() {
        assertThat(run(ENV, "statsu").err.get(0)).contains("did you mean 'status'?");
        assertThat(run(ENV, "parked", "requeue").err.get(0)).contains("needs --all or --id");
        assertThat(run(ENV, "parked", "purge", "--all", "--id", "3").err.get(0)).contains("exclude each other");
        assertThat(run(ENV, "parked", "purge", "--id", "3", "--expect=1:0123456789abcdef")
                        .err
                        .get(0))
                .contains("--expect goes with --all");
        assertThat(run(ENV, "parked", "purge", "--all", "--yes", "--expect=3")
                        .err
                        .get(0))
                .contains("Invalid value 3 for option --expect: must be what the dry run of parked purge --all"
                        + " printed, COUNT:FINGERPRINT");
        assertThat(run(ENV, "parked", "purge", "--all", "--expect=0").err.get(0))
                .contains("Invalid value 0 for option --expect");
        assertThat(run(ENV, "parked", "list", "--expect=1:0123456789abcdef").err.get(0))
                .contains("does not apply to parked list");
        assertThat(run(ENV, "status", "--limit", "3").err.get(0)).contains("--limit does not apply to status");
        assertThat(run(ENV, "parked", "requeue", "--id", "abc").err.get(0))
                .contains("Invalid value abc for option --id");
        assertThat(run(ENV, "--migrate=yes").code).isEqualTo(2);
    }

    @Test
    void helpExitsZeroAndDocumentsExitCodes() {
        Result r = run(Map.of(), "--help");
        assertThat(r.code).isZero();
        assertThat(r.out).contains("parked requeue").contains("Exit codes").contains("OUTBOX_RELAY_KAFKA_<PROPERTY>");
    }
}
