package dev.outbox.bench.relay;

import java.sql.Connection;
import java.sql.SQLException;
import java.util.UUID;

/**
 * One side of {@link DebeziumComparison}: what a service writes in its transaction, and the process
 * that takes it from PostgreSQL to Kafka, started for one session and closed after it.
 */
interface ComparedSystem extends AutoCloseable {
    /** @return the name in the report */
    String name();

    /**
     * Writes one message in its own transaction on {@code c} (autocommit off) and commits.
     *
     * @return the message's id, which the consumed record carries in the {@code outbox-message-id} header
     */
    UUID appendOne(Connection c, String topic, String key, byte[] payload) throws SQLException;

    /** Writes {@code count} messages in one transaction on {@code c} (autocommit off) and commits. */
    void appendMany(Connection c, String topic, int first, int count) throws SQLException;

    /** @return whether everything written so far has left the table (true where nothing is deleted) */
    boolean drained() throws SQLException;

    /** Stops the process and removes what this session left behind. */
    @Override
    void close() throws Exception;
}
