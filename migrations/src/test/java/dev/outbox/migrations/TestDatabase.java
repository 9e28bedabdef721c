package dev.outbox.migrations;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.HexFormat;
import java.util.Properties;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.sql.DataSource;

import org.postgresql.ds.PGSimpleDataSource;

/**
 * A throwaway database on the test PostgreSQL server, created on {@link #create()} and dropped on {@link #close()}.
 * The server is the one at {@code OUTBOX_TEST_JDBC_URL} (system property, then environment variable), else the
 * local one at {@value #DEFAULT_ADMIN_URL}; the user is {@code postgres} unless the URL names one.
 */
final class TestDatabase implements AutoCloseable {

    static final String DEFAULT_ADMIN_URL = "jdbc:postgresql://127.0.0.1:5432/postgres";
    private static final Pattern URL = Pattern.compile("^(jdbc:postgresql://[^/?]*/)([^?]*)(\\?.*)?$");

    private final String name;
    private final String url;

    private TestDatabase(String name, String url) {
        this.name = name;
        this.url = url;
    }

    static TestDatabase create() throws SQLException {
        String name = "mig_it_" + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong());
        try (Connection admin = connect(adminUrl()); Statement statement = admin.createStatement()) {
            statement.execute("create database " + name);
        }
        return new TestDatabase(name, withDatabase(adminUrl(), name));
    }

    String name() {
        return name;
    }

    String url() {
        return url;
    }

    DataSource dataSource() {
        PGSimpleDataSource dataSource = new PGSimpleDataSource();
        dataSource.setUrl(url);
        if (!hasUser(url)) {
            dataSource.setUser("postgres");
        }
        return dataSource;
    }

    Connection connection() throws SQLException {
        return connect(url);
    }

    @Override
    public void close() throws SQLException {
        try (Connection admin = connect(adminUrl()); Statement statement = admin.createStatement()) {
            statement.execute("drop database if exists " + name + " with (force)");
        }
    }

    static String adminUrl() {
        String configured = System.getProperty("OUTBOX_TEST_JDBC_URL");
        if (configured == null || configured.isBlank()) {
            configured = System.getenv("OUTBOX_TEST_JDBC_URL");
        }
        return configured == null || configured.isBlank() ? DEFAULT_ADMIN_URL : configured.trim();
    }

    private static Connection connect(String url) throws SQLException {
        Properties properties = new Properties();
        if (!hasUser(url)) {
            properties.setProperty("user", "postgres");
        }
        return DriverManager.getConnection(url, properties);
    }

    private static boolean hasUser(String url) {
        return url.matches("(?i).*[?&]user=.*");
    }

    private static String withDatabase(String adminUrl, String database) {
        Matcher matcher = URL.matcher(adminUrl);
        if (!matcher.matches()) {
            throw new IllegalStateException("OUTBOX_TEST_JDBC_URL must look like jdbc:postgresql://host:port/database"
                    + "[?parameters], got " + adminUrl);
        }
        return matcher.group(1) + database + (matcher.group(3) == null ? "" : matcher.group(3));
    }
}
