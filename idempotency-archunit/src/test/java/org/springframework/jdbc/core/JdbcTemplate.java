package org.springframework.jdbc.core;

import java.util.List;

/**
 * Stand-in for Spring JDBC's {@code JdbcTemplate}, which is not a dependency of this module: the
 * implementation of {@link JdbcOperations}, as in Spring, so that a call on it is a call on a
 * subtype of the interface.
 */
public class JdbcTemplate implements JdbcOperations {
    @Override
    public int update(String sql, Object... args) {
        throw new UnsupportedOperationException("the fixtures are read, never run");
    }

    @Override
    public int[] batchUpdate(String... sql) {
        throw new UnsupportedOperationException("the fixtures are read, never run");
    }

    @Override
    public int[] batchUpdate(String sql, List<Object[]> batchArgs) {
        throw new UnsupportedOperationException("the fixtures are read, never run");
    }

    @Override
    public void execute(String sql) {
        throw new UnsupportedOperationException("the fixtures are read, never run");
    }

    @Override
    public <T> T execute(String sql, PreparedStatementCallback<T> action) {
        throw new UnsupportedOperationException("the fixtures are read, never run");
    }

    @Override
    public <T> T queryForObject(String sql, Class<T> requiredType, Object... args) {
        throw new UnsupportedOperationException("the fixtures are read, never run");
    }
}
