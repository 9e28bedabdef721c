package dev.outbox.bench.relay;

import dev.outbox.relay.process.Main;
import dev.outbox.relay.process.RelaySettings;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The relay's command-line process ({@link Main}) in a JVM of its own, started from this JVM's class
 * path against the benchmark's database and broker, with the relay's default settings and the JVM's
 * default options: what a deployment runs, without the benchmark's broker, writers and consumer in
 * its JVM. Its connections carry the application name {@value #NAME}, so that its PostgreSQL backends
 * can be counted. Closing it sends SIGTERM.
 */
final class RelayChild implements AutoCloseable {
    /** The process's instance id, and the application name of its connections. */
    private static final String NAME = "bench-relay-process";

    private final BenchContext ctx;
    private final Process process;
    private final Path log;

    private RelayChild(BenchContext ctx, Process process, Path log) {
        this.ctx = ctx;
        this.process = process;
        this.log = log;
    }

    static RelayChild start(BenchContext ctx) throws IOException {
        Path log = Files.createTempFile("bench-relay-process-", ".log");
        ProcessBuilder pb = new ProcessBuilder(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp",
                System.getProperty("java.class.path"),
                Main.class.getName());
        Map<String, String> env = pb.environment();
        env.keySet().removeIf(k -> k.startsWith(RelaySettings.ENV_PREFIX));
        String url = ctx.db.jdbcUrl();
        env.put(RelaySettings.JDBC_URL.envVar(), url + (url.contains("?") ? "&" : "?") + "ApplicationName=" + NAME);
        env.put(RelaySettings.DB_USER.envVar(), ctx.db.user());
        if (!ctx.db.password().isEmpty()) {
            env.put(RelaySettings.DB_PASSWORD.envVar(), ctx.db.password());
        }
        env.put(RelaySettings.SCHEMA.envVar(), ctx.db.schema());
        env.put(RelaySettings.BOOTSTRAP_SERVERS.envVar(), ctx.kafka.bootstrapServers());
        env.put(RelaySettings.INSTANCE_ID.envVar(), NAME);
        env.put(RelaySettings.HTTP_PORT.envVar(), "0");
        pb.redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        return new RelayChild(ctx, pb.start(), log);
    }

    /** Waits until the process holds the lease of every shard; fails with its log's path if it ends or takes a minute. */
    void awaitAllShards() throws Exception {
        long shards = ctx.scalar("select count(*) from " + ctx.db.schema() + ".outbox_shard_lease");
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IllegalStateException(
                        "the relay process ended with exit code " + process.exitValue() + "; its output is in " + log);
            }
            if (ownedShards() == shards) {
                return;
            }
            Thread.sleep(200);
        }
        throw new IllegalStateException(
                "the relay process did not lease all " + shards + " shards within a minute; its output is in " + log);
    }

    private long ownedShards() throws SQLException {
        try (Connection c = ctx.db.connect();
                PreparedStatement ps = c.prepareStatement("select count(*) from " + ctx.db.schema()
                        + ".outbox_shard_lease where owner = ? and lease_until > now()")) {
            ps.setString(1, NAME);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }

    /** @return {CPU seconds of the whole process, CPU seconds of its PostgreSQL backends} */
    double[] cpu() throws SQLException {
        return new double[] {Cpu.processCpuSeconds(Math.toIntExact(process.pid())), ctx.backendCpuSeconds(NAME)};
    }

    /** @return how the process runs, for the report */
    String describe() {
        return "pid " + process.pid() + ", the JVM's default options, the relay's default settings";
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }
}
