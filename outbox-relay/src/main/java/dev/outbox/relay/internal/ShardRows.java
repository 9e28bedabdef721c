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

    /**
     * The read of a shard that holds more rows than it remembers: rather than read the held topics'
     * rows without their payload, it leaves out every row of {@code heldTopics} and every row of a
     * key from that key's first row of one of them in the shard on.
     *
     * @param heldTopics topics none of whose rows is read
     * @param heldIds rows not read (the shard holds them already)
     * @param waitingKeys keys none of whose rows is read
     * @return up to {@code limit} publishable rows of the shard in id order that per-key order lets
     *     go before the held rows
     */
    List<OutboxRow> readPastHeld(
            int shard, Collection<String> heldTopics, long[] heldIds, String[] waitingKeys, int limit)
            throws SQLException;

    /** @return up to {@code limit} publishable rows of the shard that are not in flight, in id order */
    List<OutboxRow> readAhead(int shard, long[] inFlight, int limit) throws SQLException;

    /** A fenced write of one shard's rows, coalesced with other shards' by a {@link WriteQueue}. */
    interface ShardWrite {
        int shard();

        /** The lease epoch the write is fenced by. */
        long epoch();

        long[] ids();
    }

    /** One shard's published rows to delete, fenced by its lease {@code (shard, epoch)}. */
    record Deletion(int shard, long epoch, long[] ids) implements ShardWrite {}

    /**
     * Deletes the published rows of several shards, each fenced by its own lease: a shard whose lease
     * is lost keeps its rows and does not stop the others'. {@link Db} runs one statement for all of them.
     *
     * @param deletions at most one per shard
     * @return what each deletion found, in the order of {@code deletions}
     */
    List<Db.Fenced> deleteAll(List<Deletion> deletions) throws SQLException;

    /**
     * One shard's failed rows, fenced by its lease {@code (shard, epoch)}: per row its error and
     * whether it is parked whatever its attempts (an error it causes itself).
     */
    record Failure(int shard, long epoch, long[] ids, String[] errors, boolean[] park) implements ShardWrite {}

    /**
     * Records the failed rows of several shards, each fenced by its own lease: {@code attempts + 1},
     * {@code last_error}, and {@code parked_at} when {@code park[i]} or the row reached {@code
     * maxAttempts}. A shard whose lease is lost records nothing and does not stop the others. {@link Db}
     * runs one statement for all of them.
     *
     * @param failures at most one per shard
     * @return what each shard's request found, in the order of {@code failures}
     */
    List<Db.Failed> failAll(List<Failure> failures, int maxAttempts) throws SQLException;
}
