package org.springframework.jdbc.core.simple;

import java.util.Map;

/**
 * Stand-in for Spring JDBC's {@code SimpleJdbcInsertOperations}, which is not a dependency of this
 * module: the fixtures compile against its name and the methods the rules look for, nothing more.
 */
public interface SimpleJdbcInsertOperations {
    SimpleJdbcInsertOperations withTableName(String tableName);

    int execute(Map<String, ?> args);

    Number executeAndReturnKey(Map<String, ?> args);

    @SuppressWarnings("unchecked")
    int[] executeBatch(Map<String, ?>... batch);
}
