package dev.outbox.testkit;

import com.zaxxer.hikari.HikariDataSource;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * A login role of its own on a {@link TestDatabase}, with only the grants a test gives it, and pools
 * that log in as it: for tests of what a role without some privilege is told. Closing drops the
 * role and what it owns.
 */
public final class TestRole implements AutoCloseable {
    private final TestDatabase db;
    private final String name;
    private final String password = UUID.randomUUID().toString();
    private final List<HikariDataSource> pools = new ArrayList<>();

    private TestRole(TestDatabase db, String name) {
        this.db = db;
        this.name = name;
    }

    /**
     * Creates the role and runs each grant statement, with {@code %s} standing for the role's name.
     *
     * @param db the database
     * @param prefix the start of the role's name; a random suffix follows it
     * @param grants statements such as {@code "grant usage on schema outbox to %s"}
     * @return the role; close it to drop it
     * @throws SQLException when a statement fails (the role is dropped again)
     */
    public static TestRole create(TestDatabase db, String prefix, String... grants) throws SQLException {
        TestRole role =
                new TestRole(db, prefix + "_" + UUID.randomUUID().toString().substring(0, 8));
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            // a password of its own: a server that asks for one (a container's, a configured one) gets it
            st.execute("create role " + role.name + " login password '" + role.password + "'");
            try {
                for (String grant : grants) {
                    st.execute(grant.formatted(role.name));
                }
            } catch (SQLException e) {
                try {
                    role.close();
                } catch (SQLException suppressed) {
                    e.addSuppressed(suppressed);
                }
                throw e;
            }
        }
        return role;
    }

    /** @return the role's name */
    public String name() {
        return name;
    }

    /**
     * @param maxPoolSize the pool size
     * @return a new pool whose connections log in as this role, closed with the role
     */
    public synchronized HikariDataSource dataSource(int maxPoolSize) {
        HikariDataSource pool = db.newDataSource(maxPoolSize, config -> {
            config.setUsername(name);
            config.setPassword(password);
        });
        pools.add(pool);
        return pool;
    }

    /** Closes the role's pools, then drops what the role owns and the role. */
    @Override
    public synchronized void close() throws SQLException {
        pools.forEach(HikariDataSource::close);
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("drop owned by " + name);
            st.execute("drop role " + name);
        }
    }
}
