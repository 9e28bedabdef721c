package org.springframework.jdbc.core.simple;

import java.util.Map;
import org.springframework.jdbc.core.JdbcTemplate;

/**
 * Stand-in for Spring JDBC's {@code SimpleJdbcInsert}, which is not a dependency of this module: the
 * implementation of {@link SimpleJdbcInsertOperations}, as in Spring, so that a call on it is a call
 * on a subtype of the interface.
 */
public class SimpleJdbcInsert implements SimpleJdbcInsertOperations {
    public SimpleJdbcInsert(JdbcTemplate jdbcTemplate) {}

    @Override
    public SimpleJdbcInsert withTableName(String tableName) {
        throw new UnsupportedOperationException("the fixtures are read, never run");
    }

    @Override
    public int execute(Map<String, ?> args) {
        throw new UnsupportedOperationException("the fixtures are read, never run");
    }

    @Override
    public Number executeAndReturnKey(Map<String, ?> args) {
        throw new UnsupportedOperationException("the fixtures are read, never run");
    }

    @Override
    @SuppressWarnings("unchecked")
    public int[] executeBatch(Map<String, ?>... batch) {
        throw new UnsupportedOperationException("the fixtures are read, never run");
    }
}
