package dev.outbox.consumer.internal;

import dev.outbox.consumer.Message;
import dev.outbox.consumer.MessageHandler;
import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.core.internal.TimeSource;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.jooq.DSLContext;

/** The {@link BatchStore} on PostgreSQL: the consumer's transactions, with the handler inside. */
final class BatchTransactions implements BatchStore {
    /** The longest wait for the consumer's connection to answer its check; less when closeTimeout is shorter. */
    private static final int MAX_VALIDATION_SECONDS = 5;

    private final Database db;
    private final Settings settings;
    private final MessageHandler handler;
    private final RecordMapping mapping;
    private final Metrics metrics;
    private final PrefixedLog log;
    private final TimeSource time;
    /** How long a connection may take to answer after a transient SQLState in the handler's failure. */
    private final int validationTimeoutSeconds;

    BatchTransactions(
            Database db, Settings settings, RecordMapping mapping, Metrics metrics, PrefixedLog log, TimeSource time) {
        this.db = db;
        this.settings = settings;
        this.handler = settings.handler();
        this.mapping = mapping;
        this.metrics = metrics;
        this.log = log;
        this.time = time;
        this.validationTimeoutSeconds = Math.clamp(settings.closeTimeout().toSeconds(), 1, MAX_VALIDATION_SECONDS);
    }

    @Override
    public Outcome process(List<ConsumerRecord<byte[], byte[]>> batch, List<UUID> ids)
            throws InfrastructureException, CommitRefusedException {
        return settings.savepointPerRecord() ? processWithSavepoints(batch, ids) : processOptimistic(batch, ids);
    }

    @Override
    public void ping() throws InfrastructureException {
        Connection connection = acquire();
        try {
            if (!Database.answers(connection, validationTimeoutSeconds)) {
                throw new InfrastructureException(
                        "the database connection did not answer within " + validationTimeoutSeconds + " s", null);
            }
        } finally {
            db.release(connection);
        }
    }

    @Override
    public void recordDeadLettered(UUID id) throws InfrastructureException {
        try {
            db.insertDeadLettered(settings.consumerName(), id);
        } catch (SQLException e) {
            if (SqlErrors.isClaimWait(e)) {
                throw InfrastructureException.contention("recording message " + id + " as dead-lettered", e);
            }
            throw new InfrastructureException(
                    "recording dead-lettered message " + id + " failed (SQLState " + e.getSQLState() + "): "
                            + e.getMessage(),
                    e);
        }
    }

    /**
     * One transaction over {@code batch}, optimistic: one statement inserts every dedup row, then the
     * handlers run without savepoints. When a handler fails, the whole transaction rolls back (the
     * records before it are then redone, and their handlers called again) and the failure is
     * reported at its index.
     */
    private Outcome processOptimistic(List<ConsumerRecord<byte[], byte[]>> batch, List<UUID> ids)
            throws InfrastructureException, CommitRefusedException {
        return inTransaction((connection, tx) -> {
            Set<UUID> replay = new HashSet<>();
            for (int i = 0; i < batch.size(); i++) {
                if (RecordMapping.isReplay(batch.get(i))) {
                    replay.add(ids.get(i));
                }
            }
            Set<UUID> fresh;
            try {
                fresh = db.insertProcessed(connection, settings.consumerName(), ids, replay);
            } catch (SQLException e) {
                if (SqlErrors.isClaimWait(e)) {
                    connection.rollback();
                    return Outcome.busy(e, 0, 0, 0, 0, 0);
                }
                throw e;
            }
            int handled = 0;
            int duplicates = 0;
            int replayed = 0;
            int stale = 0;
            for (int i = 0; i < batch.size(); i++) {
                UUID id = ids.get(i);
                if (!fresh.remove(id)) { // processed before, or an earlier copy in this batch
                    duplicates++;
                    continue;
                }
                Throwable thrown = handle(connection, tx, batch.get(i), id);
                if (thrown != null) {
                    connection.rollback();
                    return Outcome.rolledBack(thrown, i);
                }
                handled++;
                replayed += replay.contains(id) ? 1 : 0;
                if (mapping.isStale(batch.get(i))
                        && stale++ == 0) { // the first of a transaction: a replay can hold thousands
                    warnStale(batch.get(i), id);
                }
            }
            commit(connection);
            return Outcome.committed(batch.size(), handled, duplicates, replayed, stale);
        });
    }

    /**
     * One transaction over {@code batch}, each record inside its own savepoint: a failing handler
     * rolls back only its record, and the records before it commit without being redone.
     */
    private Outcome processWithSavepoints(List<ConsumerRecord<byte[], byte[]>> batch, List<UUID> ids)
            throws InfrastructureException, CommitRefusedException {
        String consumer = settings.consumerName();
        return inTransaction((connection, tx) -> {
            boolean savepoints = batch.size() > 1;
            int done = 0;
            int handled = 0;
            int duplicates = 0;
            int replayed = 0;
            int stale = 0;
            Throwable failure = null;
            for (int i = 0; i < batch.size(); i++) {
                UUID id = ids.get(i);
                boolean replay = RecordMapping.isReplay(batch.get(i));
                boolean inserted;
                try {
                    inserted = db.insertProcessed(connection, consumer, id, savepoints, replay);
                } catch (SQLException e) {
                    if (!SqlErrors.isClaimWait(e)) {
                        throw e;
                    }
                    // the records before it commit without being redone, as after a handler failure
                    if (done > 0) {
                        db.rollbackToSavepoint(connection);
                        commit(connection);
                    } else {
                        connection.rollback();
                    }
                    return Outcome.busy(e, done, handled, duplicates, replayed, stale);
                }
                if (!inserted) {
                    duplicates++;
                    done = i + 1;
                    continue;
                }
                Throwable thrown = handle(connection, tx, batch.get(i), id);
                if (thrown != null) {
                    if (savepoints) {
                        db.rollbackToSavepoint(connection);
                    }
                    failure = thrown;
                    break;
                }
                handled++;
                done = i + 1;
                replayed += replay ? 1 : 0;
                if (mapping.isStale(batch.get(i))
                        && stale++ == 0) { // the first of a transaction: a replay can hold thousands
                    warnStale(batch.get(i), id);
                }
            }
            if (done == 0) {
                connection.rollback();
            } else {
                commit(connection);
            }
            return new Outcome(done, handled, duplicates, failure, failure == null ? -1 : done, replayed, stale);
        });
    }

    private void warnStale(ConsumerRecord<byte[], byte[]> record, UUID id) {
        log.warn(
                "message {} ({}@{}) is older than the retention of processed ids ({}): its id may have been purged, so it"
                        + " is handled as new; if it was processed before, this applies it again (logged for the first such message"
                        + " of a transaction; outbox.consumer.stale counts them all)",
                id,
                new TopicPartition(record.topic(), record.partition()),
                record.offset(),
                settings.retention());
    }

    /**
     * Commits; a refusal that is not a lost connection (after which the commit's fate is unknown and
     * the whole batch is redone) is blamed on what the transaction wrote.
     */
    private static void commit(Connection connection) throws SQLException, CommitRefusedException {
        try {
            connection.commit();
        } catch (SQLException e) {
            if (SqlErrors.isTransient(e) && !SqlErrors.isContention(e)) {
                throw e;
            }
            throw new CommitRefusedException(e);
        }
    }

    /** The work of one transaction; it ends the transaction (commit or rollback) before it returns. */
    @FunctionalInterface
    private interface TransactionWork {
        Outcome run(Connection connection, DSLContext tx)
                throws SQLException, InfrastructureException, CommitRefusedException;
    }

    /**
     * Runs {@code work} on a pooled connection in manual-commit mode. When the work throws, the
     * transaction is rolled back; a {@link SQLException} becomes an {@link InfrastructureException}
     * (the database's failure, not the handler's). The connection goes back to the pool in the
     * auto-commit mode it came in.
     */
    private Outcome inTransaction(TransactionWork work) throws InfrastructureException, CommitRefusedException {
        Connection connection = acquire();
        boolean restoreAutoCommit = false;
        boolean finished = false;
        try {
            if (connection.getAutoCommit()) {
                connection.setAutoCommit(false);
                restoreAutoCommit = true;
            }
            Outcome outcome = work.run(connection, db.handlerContext(connection));
            finished = true;
            return outcome;
        } catch (SQLException e) {
            throw new InfrastructureException(
                    "database failure (SQLState " + e.getSQLState() + "): " + e.getMessage(), e);
        } finally {
            finish(connection, finished, restoreAutoCommit);
        }
    }

    /**
     * Calls the handler and checks the transaction is still usable.
     *
     * <p>A failure with a transient SQLState (a lost connection, a server shutting down, resources
     * exhausted) is the consumer's database failing only when the consumer's own connection no longer
     * answers: the handler may have got it from another database or pool it talks to, and taking
     * that for an outage would retry the record for ever and open the database breaker for every
     * partition. A transaction that a failed statement aborted (25P02) leaves the connection
     * answering; it is rolled back with the record.
     *
     * @return the handler's failure, or null
     * @throws InfrastructureException when the failure is the database's, not the handler's
     */
    private Throwable handle(Connection connection, DSLContext tx, ConsumerRecord<byte[], byte[]> record, UUID id)
            throws InfrastructureException {
        Throwable thrown = callHandler(mapping.toMessage(record, id), tx);
        if (thrown == null && Database.transactionFailed(connection)) {
            thrown = new IllegalStateException("the handler of message " + id + " returned normally, but a statement"
                    + " in its transaction failed and the exception was not rethrown; its writes were rolled back");
        }
        if (thrown instanceof InterruptedException) {
            Thread.currentThread().interrupt();
            throw new InfrastructureException("interrupted in the handler of message " + id, thrown);
        }
        if (thrown != null
                && SqlErrors.isTransient(thrown)
                && !SqlErrors.isContention(thrown)
                && !Database.answers(connection, validationTimeoutSeconds)) {
            throw new InfrastructureException(
                    "database failure in the handler of message " + id + " (SQLState " + SqlErrors.sqlState(thrown)
                            + "): " + thrown.getMessage(),
                    thrown);
        }
        // a transient SQLState while the consumer's connection answers came from elsewhere (another
        // database or pool the handler uses): the handler's failure, classified TRANSIENT by default
        return thrown;
    }

    private Throwable callHandler(Message message, DSLContext tx) {
        long start = time.nanoTime();
        try {
            handler.handle(message, tx);
            return null;
        } catch (Throwable t) {
            // an Error of the handler (an assertion, a class that fails to initialise, a deep recursion) is
            // its failure like an exception; only a JVM in trouble (out of memory) is not the record's fault
            if (t instanceof VirtualMachineError && !(t instanceof StackOverflowError)) {
                throw (VirtualMachineError) t;
            }
            return t;
        } finally {
            metrics.handlerTimer.record(time.nanoTime() - start, TimeUnit.NANOSECONDS);
        }
    }

    private Connection acquire() throws InfrastructureException {
        try {
            return db.acquire();
        } catch (SQLException e) {
            throw new InfrastructureException("cannot get a database connection: " + e.getMessage(), e);
        }
    }

    private void finish(Connection connection, boolean finished, boolean restoreAutoCommit) {
        if (!finished) {
            try {
                connection.rollback();
            } catch (SQLException | RuntimeException ignored) {
                // the connection is broken; the pool discards it
            }
        }
        if (restoreAutoCommit) {
            try {
                connection.setAutoCommit(true);
            } catch (SQLException | RuntimeException ignored) {
                // as above
            }
        }
        db.release(connection);
    }
}
