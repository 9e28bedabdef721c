package dev.outbox.testkit;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import javax.sql.DataSource;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * A fresh PostgreSQL database, already migrated into schema {@link #schema()}, that belongs to one
 * test class (or one demo run) and is dropped when it closes.
 */
public final class TestDatabase implements AutoCloseable, ExtensionContext.Store.CloseableResource {

    private final PostgresServer server;
    private final String name;
    private final List<HikariDataSource> pools = new ArrayList<>();
    private HikariDataSource dataSource;
    private boolean closed;

    TestDatabase(PostgresServer server, String name) {
        this.server = server;
        this.name = name;
    }

    /**
     * Creates a new database from the migrated template on the server the test kit finds.
     *
     * @return the database; close it to drop it
     */
    public static TestDatabase create() {
        return Templates.newDatabase(RealServices.postgres());
    }

    /**
     * Creates a new database from the migrated template on the given server, for example a {@link
     * PrivatePostgres} with settings of its own; the template is created there on first use.
     *
     * @param server the server, such as {@code privatePostgres.server()}
     * @return the database; close it (before the server stops) to drop it
     */
    public static TestDatabase create(PostgresServer server) {
        return Templates.newDatabase(server);
    }

    /**
     * Creates a new empty database, without the outbox tables, on the server the test kit finds:
     * for tests of the migrations themselves.
     *
     * @return the database; close it to drop it
     */
    public static TestDatabase createEmpty() {
        return Templates.newEmptyDatabase(RealServices.postgres());
    }

    /** @return the database name */
    public String name() {
        return name;
    }

    /** @return the schema the outbox tables were migrated into */
    public String schema() {
        return Templates.SCHEMA;
    }

    /** @return the server */
    public PostgresServer server() {
        return server;
    }

    /** @return the JDBC URL of this database, without credentials */
    public String jdbcUrl() {
        return server.jdbcUrl(name);
    }

    /** @return the user name */
    public String user() {
        return server.user();
    }

    /** @return the password, empty for trust authentication */
    public String password() {
        return server.password();
    }

    /** @return a shared pool of up to 16 connections to this database */
    public synchronized DataSource dataSource() {
        if (dataSource == null) {
            dataSource = newDataSource(16);
        }
        return dataSource;
    }

    /**
     * @return a jOOQ context on {@link #dataSource()}; the generated outbox classes render in {@link
     *     #schema()}, the schema they were generated with
     */
    public DSLContext dsl() {
        return DSL.using(dataSource(), SQLDialect.POSTGRES);
    }

    /**
     * @param maxPoolSize the pool size
     * @return a new pool, closed with this database
     */
    public HikariDataSource newDataSource(int maxPoolSize) {
        return newDataSource(maxPoolSize, config -> {});
    }

    /**
     * A new pool on this database, with settings of the test's own on top: {@code customizer} sees the URL, the
     * credentials, the pool size, {@code minimumIdle} 0 and the pool name already set, and may change any of them.
     *
     * @param maxPoolSize the pool size
     * @param customizer sets what the test needs more, such as a connection timeout or a connection option
     * @return a new pool, closed with this database
     */
    public synchronized HikariDataSource newDataSource(int maxPoolSize, Consumer<HikariConfig> customizer) {
        HikariConfig config = new HikariConfig();
        config.setJdbcUrl(jdbcUrl());
        config.setUsername(user());
        if (!password().isEmpty()) {
            config.setPassword(password());
        }
        config.setMaximumPoolSize(maxPoolSize);
        config.setMinimumIdle(0);
        config.setPoolName("testkit-" + name + "-" + pools.size());
        customizer.accept(config);
        HikariDataSource pool = new HikariDataSource(config);
        pools.add(pool);
        return pool;
    }

    /**
     * @return a new connection in autocommit mode; the caller closes it
     * @throws SQLException when the server does not answer
     */
    public Connection connect() throws SQLException {
        return server.connect(name);
    }

    /** Closes the pools and drops the database. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        pools.forEach(HikariDataSource::close);
        Templates.drop(server, name);
    }
}
