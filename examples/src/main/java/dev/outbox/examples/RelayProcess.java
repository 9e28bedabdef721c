package dev.outbox.examples;

import dev.outbox.relay.process.RelaySettings;
import dev.outbox.testkit.TestDatabase;
import java.io.File;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** A relay in a JVM of its own, started from this JVM's classpath, so the demo can kill it. */
final class RelayProcess implements AutoCloseable {
    private final String name;
    private final Process process;
    private final Path log;

    private RelayProcess(String name, Process process, Path log) {
        this.name = name;
        this.process = process;
        this.log = log;
    }

    static RelayProcess start(String name, TestDatabase db, String bootstrapServers, Path logDir) throws IOException {
        Path log = logDir.resolve(name + ".log");
        ProcessBuilder pb = new ProcessBuilder(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-cp",
                System.getProperty("java.class.path"),
                "dev.outbox.relay.process.Main");
        Map<String, String> env = pb.environment();
        env.keySet().removeIf(k -> k.startsWith(RelaySettings.ENV_PREFIX));
        env.put(RelaySettings.JDBC_URL.envVar(), db.jdbcUrl());
        env.put(RelaySettings.DB_USER.envVar(), db.user());
        if (!db.password().isEmpty()) {
            env.put(RelaySettings.DB_PASSWORD.envVar(), db.password());
        }
        env.put(RelaySettings.BOOTSTRAP_SERVERS.envVar(), bootstrapServers);
        env.put(RelaySettings.INSTANCE_ID.envVar(), name);
        // short leases so a killed relay's shards are taken over within seconds
        env.put(RelaySettings.LEASE_DURATION.envVar(), "3s");
        env.put(RelaySettings.HTTP_PORT.envVar(), "0");
        pb.redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        return new RelayProcess(name, pb.start(), log);
    }

    String name() {
        return name;
    }

    File log() {
        return log.toFile();
    }

    boolean isAlive() {
        return process.isAlive();
    }

    /** SIGKILL: no batch is finished, no lease handed back. */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
    }

    /** SIGTERM: the relay finishes its batch and hands its leases back. */
    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly();
        }
    }
}
