package dev.outbox.testkit;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.Properties;

/**
 * A PostgreSQL server the test kit may create databases on.
 *
 * @param origin how it was found, for log lines and error messages
 * @param host host name
 * @param port TCP port
 * @param user a user allowed to create databases
 * @param password its password, empty for trust authentication
 * @param adminDatabase the database to connect to for administration
 */
public record PostgresServer(String origin, String host, int port, String user, String password, String adminDatabase) {

    /**
     * @param database a database on this server
     * @return its JDBC URL, without credentials
     */
    public String jdbcUrl(String database) {
        return "jdbc:postgresql://" + host + ":" + port + "/" + database;
    }

    /**
     * Opens a connection to a database of this server.
     *
     * @param database the database
     * @return a new connection in autocommit mode; the caller closes it
     * @throws SQLException when the server cannot be reached
     */
    public Connection connect(String database) throws SQLException {
        Properties props = new Properties();
        props.setProperty("user", user);
        if (!password.isEmpty()) {
            props.setProperty("password", password);
        }
        props.setProperty("connectTimeout", "5");
        props.setProperty("ApplicationName", "outbox-testkit");
        return DriverManager.getConnection(jdbcUrl(database), props);
    }

    /**
     * @return a connection to the administration database
     * @throws SQLException when the server cannot be reached
     */
    public Connection connectAdmin() throws SQLException {
        return connect(adminDatabase);
    }

    @Override
    public String toString() {
        return origin + " (" + jdbcUrl(adminDatabase) + ", user " + user + ")";
    }
}
