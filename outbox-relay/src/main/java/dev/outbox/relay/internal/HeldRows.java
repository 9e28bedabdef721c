package dev.outbox.relay.internal;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * What one shard remembers of the rows it holds: rows whose topic has no metadata, or an earlier row
 * of whose key is held. They are left out of the shard's reads so that they are not read again with
 * every batch, at most {@link ShardWorker#HELD_WINDOW_BATCHES} batches of them. Confined to the
 * shard's running task.
 */
final class HeldRows {
    private final TopicHealth topics;
    // rows the last batch held (their topic without metadata), or the rows forgotten since: the next read
    // takes as many more, and reads for itself rather than taking the probe's read of one batch; 0 once a
    // read found nothing
    int seen;
    // the rows held, at most HELD_WINDOW_BATCHES batches of them; the keys of these rows, whose other rows
    // are held too; the topics of these rows; and the held topics when they were read. Forgotten (read
    // again) when a topic stops being held, a read finds nothing but these rows, a metadata check of their
    // topic is to be counted as an attempt, a row is parked or a batch fails.
    final List<Long> ids = new ArrayList<>();
    final Set<String> keys = new HashSet<>();
    final Set<String> rowTopics = new HashSet<>();
    Set<String> topicsRead = Set.of();
    // the topics whose rows the shard remembers because they had no metadata when their batch was sent.
    // Usually held at the read too (in topicsRead); not when a topic's first lookup began in the batch and
    // outlasted its wait: its metadata may arrive without the held topics changing at the next read
    final Set<String> awaited = new HashSet<>();
    long max = Long.MIN_VALUE;

    /** @param topics told which topics' rows this shard remembers: they stay held while it does */
    HeldRows(TopicHealth topics) {
        this.topics = topics;
    }

    boolean isEmpty() {
        return ids.isEmpty();
    }

    /** @return the ids of the rows the shard remembers as held, and {@code more} */
    long[] idsAnd(long... more) {
        long[] all = new long[ids.size() + more.length];
        for (int i = 0; i < ids.size(); i++) {
            all[i] = ids.get(i);
        }
        System.arraycopy(more, 0, all, ids.size(), more.length);
        return all;
    }

    /**
     * Remembers the rows the batch held, up to {@code max} rows.
     *
     * @return false when a held row could not be remembered (the bound was reached)
     */
    boolean remember(Batch batch, int max) {
        awaited.addAll(batch.withoutMetadata);
        for (int i = 0; i < batch.taken; i++) {
            if (batch.held[i] && ids.size() >= max) {
                return false;
            }
            if (batch.held[i]) {
                OutboxRow row = batch.rows.get(i);
                ids.add(row.id());
                this.max = Math.max(this.max, row.id());
                if (rowTopics.add(row.topic())) {
                    topics.holding(row.topic(), this, true);
                }
                if (row.key() != null) {
                    keys.add(row.key());
                }
            }
        }
        return true;
    }

    /** Forgets the rows: the next read takes them again (as many as the window allows). */
    void forget() {
        if (ids.isEmpty()) {
            return;
        }
        seen = Math.max(seen, ids.size());
        for (String topic : rowTopics) {
            topics.holding(topic, this, false);
        }
        ids.clear();
        keys.clear();
        rowTopics.clear();
        awaited.clear();
        max = Long.MIN_VALUE;
    }

    /** The shard stopped: its rows are no one's to hold any more. */
    void release() {
        topics.releaseAll(this);
    }

    /** @return whether a failed metadata check of a remembered row's topic is still to be counted by {@code shard} */
    boolean checkToCount(TopicHealth topics, int shard) {
        for (String topic : rowTopics) {
            if (topics.uncountedCheck(topic, shard) != null) {
                return true;
            }
        }
        return false;
    }
}
