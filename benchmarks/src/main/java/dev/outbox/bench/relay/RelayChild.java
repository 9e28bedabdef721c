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
import java.util.ArrayList;
import java.util.List;
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
    private final String name;
    private final String schema;

    private RelayChild(BenchContext ctx, Process process, Path log, String name, String schema) {
        this.ctx = ctx;
        this.process = process;
        this.log = log;
        this.name = name;
        this.schema = schema;
    }

    static RelayChild start(BenchContext ctx) throws IOException {
        return start(ctx, System.getProperty("java.class.path"), ctx.db.schema(), NAME, List.of());
    }

    /**
     * @param classPath the class path of the relay build to run (this JVM's, or another build's jars)
     * @param schema the outbox schema it publishes from
     * @param name its instance id and the application name of its connections
     * @param args the command line after the main class, e.g. {@code run --migrate}
     */
    static RelayChild start(BenchContext ctx, String classPath, String schema, String name, List<String> args)
            throws IOException {
        Path log = Files.createTempFile(name + "-", ".log");
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp",
                classPath,
                Main.class.getName()));
        command.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(command);
        Map<String, String> env = pb.environment();
        env.keySet().removeIf(k -> k.startsWith(RelaySettings.ENV_PREFIX));
        String url = ctx.db.jdbcUrl();
        env.put(RelaySettings.JDBC_URL.envVar(), url + (url.contains("?") ? "&" : "?") + "ApplicationName=" + name);
        env.put(RelaySettings.DB_USER.envVar(), ctx.db.user());
        if (!ctx.db.password().isEmpty()) {
            env.put(RelaySettings.DB_PASSWORD.envVar(), ctx.db.password());
        }
        env.put(RelaySettings.SCHEMA.envVar(), schema);
        env.put(RelaySettings.BOOTSTRAP_SERVERS.envVar(), ctx.kafka.bootstrapServers());
        env.put(RelaySettings.INSTANCE_ID.envVar(), name);
        env.put(RelaySettings.HTTP_PORT.envVar(), "0");
        pb.redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        return new RelayChild(ctx, pb.start(), log, name, schema);
    }

    /** Waits until the process holds the lease of every shard; fails with its log's path if it ends or takes a minute. */
    void awaitAllShards() throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IllegalStateException(
                        "the relay process ended with exit code " + process.exitValue() + "; its output is in " + log);
            }
            if (ownedShards()) {
                return;
            }
            Thread.sleep(200);
        }
        throw new IllegalStateException(
                "the relay process did not lease every shard within a minute; its output is in " + log);
    }

    /** @return whether the lease table exists (a relay started with --migrate creates it) and this relay holds every shard */
    private boolean ownedShards() throws SQLException {
        try (Connection c = ctx.db.connect();
                PreparedStatement ps = c.prepareStatement("select to_regclass(?) is not null")) {
            ps.setString(1, schema + ".outbox_shard_lease");
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                if (!rs.getBoolean(1)) {
                    return false;
                }
            }
        }
        try (Connection c = ctx.db.connect();
                PreparedStatement ps = c.prepareStatement("select count(*) filter (where owner = ? and lease_until >"
                        + " now()) = count(*) and count(*) > 0 from " + schema + ".outbox_shard_lease")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    /** @return {CPU seconds of the whole process, CPU seconds of its PostgreSQL backends} */
    double[] cpu() throws SQLException {
        return new double[] {processCpu(), ctx.backendCpuSeconds(name)};
    }

    /** @return CPU seconds of the whole process so far */
    double processCpu() {
        return Cpu.processCpuSeconds(Math.toIntExact(process.pid()));
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
