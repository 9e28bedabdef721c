package dev.outbox.relay.process;

import dev.outbox.testkit.TestDatabase;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
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
    final Process process;
    final Path out;
    final Path err;

    private ChildRelay(String name, Process process, Path out, Path err) {
        this.name = name;
        this.process = process;
        this.out = out;
        this.err = err;
    }

    /** The settings every child needs to reach the test database and broker, with test-friendly timings. */
    static Map<String, String> env(TestDatabase db, String bootstrap, String instanceId) {
        Map<String, String> env = new LinkedHashMap<>();
        env.put("OUTBOX_RELAY_JDBC_URL", db.jdbcUrl());
        env.put("OUTBOX_RELAY_DB_USER", db.user());
        env.put("OUTBOX_RELAY_DB_PASSWORD", db.password());
        env.put("OUTBOX_RELAY_BOOTSTRAP_SERVERS", bootstrap);
        env.put("OUTBOX_RELAY_INSTANCE_ID", instanceId);
        env.put("OUTBOX_RELAY_HTTP_PORT", "0");
        env.put("OUTBOX_RELAY_LEASE_DURATION", "3s");
        env.put("OUTBOX_RELAY_IDLE_POLL_INTERVAL", "200ms");
        env.put("OUTBOX_RELAY_BACKOFF_BASE", "50ms");
        env.put("OUTBOX_RELAY_BACKOFF_CAP", "1s");
        env.put("OUTBOX_RELAY_STARTUP_TIMEOUT", "30s");
        return env;
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
        return new ChildRelay(name, pb.start(), out, err);
    }

    /** Waits for the child to exit by itself. */
    int waitFor(long seconds) throws InterruptedException {
        if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError(name + " did not exit within " + seconds + " s; see " + out + " and " + err);
        }
        return process.exitValue();
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
