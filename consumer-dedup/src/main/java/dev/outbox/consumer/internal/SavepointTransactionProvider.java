package dev.outbox.consumer.internal;

import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.util.ArrayDeque;
import java.util.Deque;
import org.jooq.TransactionContext;
import org.jooq.TransactionProvider;
import org.jooq.exception.DataAccessException;

/**
 * Turns every {@code tx.transaction(...)} a handler starts into a savepoint of the consumer's
 * transaction. jOOQ's default provider would commit the connection at the end of an outermost
 * transaction, which would commit the dedup row and the batch behind the consumer's back.
 */
final class SavepointTransactionProvider implements TransactionProvider {
    private final Connection connection;
    private final Deque<Savepoint> savepoints = new ArrayDeque<>();

    SavepointTransactionProvider(Connection connection) {
        this.connection = connection;
    }

    @Override
    public void begin(TransactionContext ctx) {
        try {
            savepoints.push(connection.setSavepoint());
        } catch (SQLException e) {
            throw new DataAccessException("Cannot set a savepoint for a nested transaction: " + e.getMessage(), e);
        }
    }

    @Override
    public void commit(TransactionContext ctx) {
        Savepoint savepoint = savepoints.pop();
        try {
            connection.releaseSavepoint(savepoint);
        } catch (SQLException e) {
            throw new DataAccessException("Cannot release the savepoint of a nested transaction: " + e.getMessage(), e);
        }
    }

    @Override
    public void rollback(TransactionContext ctx) {
        Savepoint savepoint = savepoints.pop();
        try {
            connection.rollback(savepoint);
        } catch (SQLException e) {
            throw new DataAccessException(
                    "Cannot roll back to the savepoint of a nested transaction: " + e.getMessage(), e);
        }
    }
}
