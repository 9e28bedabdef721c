package org.springframework.jdbc.core;

import java.sql.PreparedStatement;
import java.sql.SQLException;

/**
 * Stand-in for Spring JDBC's {@code PreparedStatementCallback}, which is not a dependency of this
 * module: the fixtures compile against its name, nothing more.
 *
 * @param <T> the result type
 */
@FunctionalInterface
public interface PreparedStatementCallback<T> {
    T doInPreparedStatement(PreparedStatement ps) throws SQLException;
}
