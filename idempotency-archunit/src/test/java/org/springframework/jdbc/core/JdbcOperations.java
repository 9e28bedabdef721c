package org.springframework.jdbc.core;

import java.util.List;

/**
 * Stand-in for Spring JDBC's {@code JdbcOperations}, which is not a dependency of this module: the
 * fixtures compile against its name and the methods the rules look for, nothing more.
 */
public interface JdbcOperations {
    int update(String sql, Object... args);

    int[] batchUpdate(String... sql);

    int[] batchUpdate(String sql, List<Object[]> batchArgs);

    void execute(String sql);

    <T> T execute(String sql, PreparedStatementCallback<T> action);

    <T> T queryForObject(String sql, Class<T> requiredType, Object... args);
}
