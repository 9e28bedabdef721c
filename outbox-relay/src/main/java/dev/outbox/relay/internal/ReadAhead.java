package dev.outbox.relay.internal;

import java.sql.SQLException;
import java.util.List;
import java.util.Set;

/**
 * The rows one shard read ahead while a batch was in flight, for its next round. Confined to the
 * shard's running task.
 */
final class ReadAhead {
    /** The rows read ahead, or null: the next round reads. */
    List<OutboxRow> rows;
    // the read-ahead left out the held rows (and took the held topics' rows without their payload)
    boolean filtered;
    Set<String> withoutPayload = Set.of();

    /**
     * Reads up to {@code batchSize} rows after the batch in flight; after a database failure nothing
     * is kept (the next round reads again).
     *
     * @return the database's failure, for the shard to count and log, or null
     */
    SQLException read(ShardRows db, int shard, Batch batch, HeldRows held, int batchSize) {
        try {
            if (batch.heldRows == 0 && held.isEmpty() && held.topicsRead.isEmpty()) {
                rows = db.readAhead(shard, batch.takenIds(), batchSize);
                filtered = false;
                withoutPayload = Set.of();
            } else {
                // the rows held so far and this batch's rows (complete() remembers the held ones before
                // the next batch) are left out, the held topics' rows are read without their payload
                rows = db.readFiltered(shard, held.topicsRead, held.idsAnd(batch.takenIds()), new String[0], batchSize);
                filtered = true;
                withoutPayload = held.topicsRead;
            }
        } catch (SQLException e) {
            rows = null; // the next round reads again
            return e;
        }
        return null;
    }
}
