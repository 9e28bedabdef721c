package dev.outbox.relay.internal;

import java.sql.SQLException;
import java.util.Collection;
import java.util.List;

/**
 * The statements a shard loop runs on the outbox rows of its shard: the reads and the writes fenced
 * by its lease. {@link Db} runs them on PostgreSQL.
 */
interface ShardRows {
    /** @return up to {@code limit} publishable rows of the shard in id order */
    List<OutboxRow> read(int shard, int limit) throws SQLException;

    /**
     * @param heldTopics topics whose rows are read without their payload
     * @param heldIds rows not read (the shard holds them already)
     * @param waitingKeys keys none of whose rows is read
     * @return up to {@code limit} publishable rows of the shard in id order, without the rows {@code
     *     heldIds} and the rows of {@code waitingKeys}
     */
    List<OutboxRow> readFiltered(
            int shard, Collection<String> heldTopics, long[] heldIds, String[] waitingKeys, int limit)
            throws SQLException;

    /** @return up to {@code limit} publishable rows of the shard that are not in flight, in id order */
    List<OutboxRow> readAhead(int shard, long[] inFlight, int limit) throws SQLException;

    /** One shard's published rows to delete, fenced by its lease {@code (shard, epoch)}. */
    record Deletion(int shard, long epoch, long[] ids) {}

    /**
     * Deletes the published rows of several shards, each fenced by its own lease: a shard whose lease
     * is lost keeps its rows and does not stop the others'. {@link Db} runs one statement for all of them.
     *
     * @param deletions at most one per shard
     * @return what each deletion found, in the order of {@code deletions}
     */
    List<Db.Fenced> deleteAll(List<Deletion> deletions) throws SQLException;

    /** Records failed rows (an attempt, the error, parked or not), fenced by the lease {@code (shard, epoch)}. */
    Db.Failed fail(int shard, long epoch, long[] ids, String[] errors, boolean[] park, int maxAttempts)
            throws SQLException;
}
