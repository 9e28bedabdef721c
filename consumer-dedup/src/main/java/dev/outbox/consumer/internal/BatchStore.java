package dev.outbox.consumer.internal;

import java.sql.SQLException;
import java.util.List;
import java.util.UUID;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/**
 * The database as a {@link PartitionWorker} uses it: one transaction per batch (dedup rows and
 * handlers together), and the dead-letter mark. {@link BatchTransactions} is the real one.
 */
interface BatchStore {

    /**
     * What one transaction did: its first {@code done} records settled (handled or duplicate) and
     * committed; {@code failure}, if any, is the handler failure of the record at {@code
     * failureIndex} ({@code >= done}; greater when the whole batch was rolled back). When {@code busy},
     * no handler failed: the dedup row of the record at {@code done} is held by another transaction
     * ({@code failure} is the lock timeout, serialization failure or deadlock met); the records before
     * it committed (with savepoints) or nothing did ({@code done} 0).
     */
    record Outcome(
            int done,
            int handled,
            int duplicates,
            Throwable failure,
            int failureIndex,
            int replayed,
            int stale,
            boolean busy) {

        Outcome(int done, int handled, int duplicates, Throwable failure, int failureIndex, int replayed, int stale) {
            this(done, handled, duplicates, failure, failureIndex, replayed, stale, false);
        }

        static Outcome committed(int size, int handled, int duplicates, int replayed, int stale) {
            return new Outcome(size, handled, duplicates, null, -1, replayed, stale);
        }

        static Outcome rolledBack(Throwable failure, int failureIndex) {
            return new Outcome(0, 0, 0, failure, failureIndex, 0, 0);
        }

        /** The dedup row of the record at {@code done} is held by another transaction ({@code contention}). */
        static Outcome busy(SQLException contention, int done, int handled, int duplicates, int replayed, int stale) {
            return new Outcome(done, handled, duplicates, contention, -1, replayed, stale, true);
        }
    }

    /**
     * Runs one transaction over {@code batch}: inserts the dedup rows, calls the handler of each
     * record whose row is new, commits what settled.
     *
     * @param ids the message ids of {@code batch}, in order
     * @throws InfrastructureException when the database failed (not the handler): nothing committed
     * @throws CommitRefusedException when the database refused the commit because of what the
     *     transaction wrote
     */
    Outcome process(List<ConsumerRecord<byte[], byte[]>> batch, List<UUID> ids)
            throws InfrastructureException, CommitRefusedException;

    /**
     * Records {@code id} as dead-lettered, so that a redelivery is skipped.
     *
     * @throws InfrastructureException when the database failed, or ({@link
     *     InfrastructureException#contention()}) another transaction held the id's row past the
     *     bound
     */
    void recordDeadLettered(UUID id) throws InfrastructureException;

    /**
     * Checks that the database answers: a connection, and a round trip on it.
     *
     * @throws InfrastructureException when it does not
     */
    void ping() throws InfrastructureException;
}
