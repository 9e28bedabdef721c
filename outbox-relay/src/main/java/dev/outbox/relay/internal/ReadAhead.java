package dev.outbox.relay.internal;

import java.sql.SQLException;
import java.util.List;
import java.util.Set;

/**
 * The rows one shard read ahead while a batch was in flight, for its next round. Confined to the
 * shard's running task.
 */
final class ReadAhead {
    /** Every this many read-aheads one also takes the rows that committed late below the batch in flight. */
    static final int FULL_EVERY = 10;

    /** The rows read ahead, or null: the next round reads. */
    List<OutboxRow> rows;
    // the read-ahead left out the held rows (and took the held topics' rows without their payload)
    boolean filtered;
    Set<String> withoutPayload = Set.of();
    private long reads;

    /**
     * Reads up to {@code batchSize} rows after the batch in flight; after a database failure nothing
     * is kept (the next round reads again).
     */
    void read(ShardRows db, int shard, Batch batch, HeldRows held, int batchSize) {
        try {
            if (batch.heldRows == 0 && held.isEmpty() && held.topicsRead.isEmpty()) {
                long[] inFlight = batch.takenIds();
                // Most read-aheads take only rows above the batch in flight: a read that starts at the
                // shard's first row steps over the index entries of every row deleted since the last
                // vacuum, which under a long backlog is most of the index. Every FULL_EVERY-th one also
                // takes the rows that committed late below it.
                rows = reads++ % FULL_EVERY == 0
                        ? db.readAhead(shard, inFlight, batchSize)
                        : db.readAbove(shard, inFlight[inFlight.length - 1], batchSize);
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
        }
    }
}
