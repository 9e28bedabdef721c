package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.testkit.TestDatabase;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Runs {@link Main} in a separate JVM on the test class path, with settings in the environment,
 * its output in {@code target/child-relays/<name>.out|.err} for diagnosis.
 */
final class ChildRelay implements AutoCloseable {
    static final Path LOGS = Path.of("target", "child-relays");

    final String name;
    final String instanceId;
    final Process process;
    final Path out;
    final Path err;

    private ChildRelay(String name, String instanceId, Process process, Path out, Path err) {
        this.name = name;
        this.instanceId = instanceId;
        this.process = process;
        this.out = out;
        this.err = err;
    }

    /**
     * The settings every child needs to reach the test database and broker, with test-friendly timings:
     * {@link InProcess#flags} as environment variables, and a start-up timeout for a loaded machine.
     */
    static Map<String, String> env(TestDatabase db, String bootstrap, String instanceId) {
        Map<String, String> env = new LinkedHashMap<>();
        InProcess.flags(db, bootstrap, instanceId)
                .forEach((flag, value) ->
                        env.put(RelaySettings.byName(flag).orElseThrow().envVar(), value));
        env.put(RelaySettings.STARTUP_TIMEOUT.envVar(), "30s");
        return env;
    }

    /**
     * Waits until every relay is alive and leases shards, and fails with the path of a dead one's
     * error output.
     */
    static void awaitLeasing(TestDatabase db, Duration atMost, ChildRelay... relays) {
        await("relays " + Arrays.stream(relays).map(r -> r.name).toList() + " lease shards")
                .atMost(atMost)
                .pollInterval(Duration.ofMillis(250))
                .untilAsserted(() -> {
                    for (ChildRelay r : relays) {
                        assertThat(r.process.isAlive())
                                .as("%s alive, see %s", r.name, r.err)
                                .isTrue();
                        assertThat(liveLeases(db, r.instanceId))
                                .as("leases of %s", r.instanceId)
                                .isPositive();
                    }
                });
    }

    /** @return the shards {@code owner} holds an unexpired lease on */
    static int liveLeases(TestDatabase db, String owner) throws SQLException {
        try (Connection c = db.connect();
                PreparedStatement st = c.prepareStatement("select count(*) from outbox.outbox_shard_lease"
                        + " where owner = ? and lease_until > clock_timestamp()")) {
            st.setString(1, owner);
            try (ResultSet rs = st.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
    }

    static ChildRelay start(String name, Map<String, String> env, String... args) throws IOException {
        return start(name, env, Main.class, args);
    }

    /** @param main {@link Main}, or a test's class that changes something first and then calls it */
    static ChildRelay start(String name, Map<String, String> env, Class<?> main, String... args) throws IOException {
        Files.createDirectories(LOGS);
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.add("-Xmx256m");
        command.add("-XX:+UseSerialGC");
        command.add("-XX:TieredStopAtLevel=1");
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(main.getName());
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.environment().keySet().removeIf(k -> k.startsWith(RelaySettings.ENV_PREFIX));
        pb.environment().putAll(env);
        Path out = LOGS.resolve(name + ".out");
        Path err = LOGS.resolve(name + ".err");
        pb.redirectOutput(out.toFile());
        pb.redirectError(err.toFile());
        pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        return new ChildRelay(name, env.get(RelaySettings.INSTANCE_ID.envVar()), pb.start(), out, err);
    }

    /** Waits for the child to exit by itself. */
    int waitFor(long seconds) throws InterruptedException {
        if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError(name + " did not exit within " + seconds + " s; see " + out + " and " + err);
        }
        return process.exitValue();
    }

    /** Sends the child {@code kill -<signal>}: {@code STOP} pauses it, {@code CONT} resumes it. */
    void signal(String signal) throws IOException, InterruptedException {
        Process kill = new ProcessBuilder("kill", "-" + signal, Long.toString(process.pid()))
                .inheritIO()
                .start();
        assertThat(kill.waitFor()).as("kill -%s %s", signal, name).isZero();
    }

    String stdout() throws IOException {
        return Files.readString(out);
    }

    List<String> stderrLines() throws IOException {
        return Files.readAllLines(err).stream().filter(l -> !l.isBlank()).toList();
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroyForcibly();
            try {
                process.waitFor(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
