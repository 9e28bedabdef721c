package org.springframework.jdbc.core.simple;

/**
 * Stand-in for Spring JDBC's {@code JdbcClient} (Spring 6.1+), which is not a dependency of this
 * module: the fixtures compile against its name, its nested {@code StatementSpec} and the methods
 * they use, nothing more.
 */
public interface JdbcClient {
    StatementSpec sql(String sql);

    /** Stand-in for {@code JdbcClient.StatementSpec}, whose {@code update} runs the statement. */
    interface StatementSpec {
        StatementSpec param(Object value);

        int update();
    }
}
