package dev.outbox.testkit;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.net.JarURLConnection;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.TreeMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.jar.JarFile;
import java.util.stream.Stream;
import javax.sql.DataSource;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * Creates per-class databases as copies of a template database migrated once. The template's name
 * carries a hash of the migration scripts, so changed scripts get a new template and old ones are
 * never reused by mistake.
 *
 * <p>The kit does not depend on the migrations module: it finds {@value #MIGRATIONS} and the
 * scripts on the test class path (every module whose tests use a migrated database has them), so
 * that the migrations module's own tests can use the kit to find PostgreSQL.
 */
final class Templates {
    static final String MIGRATIONS = "dev.outbox.migrations.OutboxMigrations";
    static final String SCHEMA = "outbox";
    private static final String SCRIPTS = "db/outbox/";
    private static final String PREFIX = "outbox_it_";
    private static final long STALE_SECONDS = 3 * 3600;

    private Templates() {}

    static TestDatabase newDatabase(PostgresServer server) {
        String template = "outbox_tpl_" + scriptsHash();
        String name = newName();
        try (Connection admin = server.connectAdmin();
                Statement st = admin.createStatement()) {
            // serialise template creation across JVMs building at the same time
            st.execute("select pg_advisory_lock(7243001)");
            try {
                dropStale(st);
                if (!exists(st, template)) {
                    String building = template + "_build";
                    st.execute("drop database if exists " + building + " with (force)");
                    st.execute("create database " + building);
                    migrate(server, building);
                    st.execute("alter database " + building + " rename to " + template);
                }
                st.execute("create database " + name + " template " + template);
            } finally {
                st.execute("select pg_advisory_unlock(7243001)");
            }
        } catch (SQLException e) {
            throw new IllegalStateException(
                    "could not create a test database on " + server + ": " + e.getMessage() + " (SQLState "
                            + e.getSQLState() + ")",
                    e);
        }
        return new TestDatabase(server, name);
    }

    /**
     * @param server the server
     * @return a new empty database, without the outbox tables
     */
    static TestDatabase newEmptyDatabase(PostgresServer server) {
        String name = newName();
        try (Connection admin = server.connectAdmin();
                Statement st = admin.createStatement()) {
            st.execute("create database " + name);
        } catch (SQLException e) {
            throw new IllegalStateException(
                    "could not create a test database on " + server + ": " + e.getMessage() + " (SQLState "
                            + e.getSQLState() + ")",
                    e);
        }
        return new TestDatabase(server, name);
    }

    /** @return a database name that carries its creation time, for {@link #dropStale} */
    private static String newName() {
        return PREFIX + (System.currentTimeMillis() / 1000) + "_"
                + Long.toHexString(ThreadLocalRandom.current().nextLong() >>> 20);
    }

    static void drop(PostgresServer server, String name) {
        try (Connection admin = server.connectAdmin();
                Statement st = admin.createStatement()) {
            st.execute("drop database if exists " + name + " with (force)");
        } catch (SQLException e) {
            System.err.println("[testkit] could not drop test database " + name + ": " + e.getMessage());
        }
    }

    private static void migrate(PostgresServer server, String database) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setUrl(server.jdbcUrl(database));
        ds.setUser(server.user());
        if (!server.password().isEmpty()) {
            ds.setPassword(server.password());
        }
        try {
            Method migrate = migrations().getMethod("migrate", DataSource.class, String.class);
            migrate.invoke(null, ds, SCHEMA);
        } catch (InvocationTargetException e) {
            throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot call " + MIGRATIONS + ".migrate(DataSource, String): " + e, e);
        }
    }

    private static Class<?> migrations() {
        try {
            return Class.forName(MIGRATIONS, true, Templates.class.getClassLoader());
        } catch (ClassNotFoundException e) {
            throw new IllegalStateException(
                    "TestDatabase.create() migrates its template with " + MIGRATIONS
                            + ", which is not on the class path: add dev.outbox:outbox-migrations to the test dependencies,"
                            + " or use TestDatabase.createEmpty() for a database without the outbox tables",
                    e);
        }
    }

    private static boolean exists(Statement st, String database) throws SQLException {
        try (ResultSet rs = st.executeQuery("select 1 from pg_database where datname = '" + database + "'")) {
            return rs.next();
        }
    }

    /** Drops test databases left behind by killed runs, judged by the creation time in their name. */
    private static void dropStale(Statement st) throws SQLException {
        long now = System.currentTimeMillis() / 1000;
        List<String> stale = new ArrayList<>();
        try (ResultSet rs = st.executeQuery("select datname from pg_database where datname like '" + PREFIX + "%'")) {
            while (rs.next()) {
                String[] parts = rs.getString(1).substring(PREFIX.length()).split("_");
                try {
                    if (now - Long.parseLong(parts[0]) > STALE_SECONDS) {
                        stale.add(rs.getString(1));
                    }
                } catch (NumberFormatException ignored) {
                    // not one of ours
                }
            }
        }
        for (String db : stale) {
            st.execute("drop database if exists " + db + " with (force)");
        }
    }

    /** @return a short hash of every migration script's name and content */
    static String scriptsHash() {
        TreeMap<String, byte[]> scripts = new TreeMap<>();
        try {
            URL first = migrations().getClassLoader().getResource(SCRIPTS + "V1__outbox_message.sql");
            if (first == null) {
                throw new IllegalStateException("the migration scripts " + SCRIPTS + "*.sql are not on the class path");
            }
            if ("jar".equals(first.getProtocol())) {
                try (JarFile jar = new JarFile(((JarURLConnection) first.openConnection())
                        .getJarFileURL()
                        .toURI()
                        .getPath())) {
                    for (var entry : Collections.list(jar.entries())) {
                        if (entry.getName().startsWith(SCRIPTS) && !entry.isDirectory()) {
                            try (InputStream in = jar.getInputStream(entry)) {
                                scripts.put(entry.getName(), in.readAllBytes());
                            }
                        }
                    }
                }
            } else {
                Path dir = Path.of(first.toURI()).getParent();
                try (Stream<Path> files = Files.list(dir)) {
                    for (Path f : files.toList()) {
                        scripts.put(f.getFileName().toString(), Files.readAllBytes(f));
                    }
                }
            }
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            scripts.forEach((k, v) -> {
                sha.update(k.getBytes(StandardCharsets.UTF_8));
                sha.update(v);
            });
            return HexFormat.of().formatHex(sha.digest(), 0, 6);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the migration scripts", e);
        } catch (URISyntaxException | NoSuchAlgorithmException e) {
            throw new IllegalStateException("cannot hash the migration scripts", e);
        }
    }
}
