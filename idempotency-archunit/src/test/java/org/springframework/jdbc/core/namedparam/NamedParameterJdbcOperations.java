package org.springframework.jdbc.core.namedparam;

import java.util.Map;

/**
 * Stand-in for Spring JDBC's {@code NamedParameterJdbcOperations}, which is not a dependency of this
 * module: the fixtures compile against its name and the methods the rules look for, nothing more.
 */
public interface NamedParameterJdbcOperations {
    int update(String sql, Map<String, ?> paramMap);

    int[] batchUpdate(String sql, Map<String, ?>[] batchValues);
}
