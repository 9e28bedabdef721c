package dev.outbox.relay.internal;

import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.LongSupplier;
import org.apache.kafka.clients.producer.BufferExhaustedException;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.TimeoutException;

/**
 * The send loop of one shard: hands a batch's rows to the producer in id order, each after the
 * lease deadline check, and decides per row whether it is sent, held (its topic has no metadata, or
 * an earlier row of its key was held) or skipped (its key waits for a partition leader, or an
 * earlier record of its key failed). What it decided is written into the {@link Batch}.
 */
final class BatchSender {
    private final int batchSize;
    private final boolean holdKey;
    private final LeaderlessKeys leaderless;
    private final LeaseClock lease;
    private final TopicHealth topics;
    private final LongSupplier wallClock;

    /** @param wallClock the records' timestamps, epoch milliseconds */
    BatchSender(
            int batchSize,
            boolean holdKey,
            LeaderlessKeys leaderless,
            LeaseClock lease,
            TopicHealth topics,
            LongSupplier wallClock) {
        this.batchSize = batchSize;
        this.holdKey = holdKey;
        this.leaderless = leaderless;
        this.lease = lease;
        this.topics = topics;
        this.wallClock = wallClock;
    }

    /**
     * Sends the batch's rows, at most batchSize of them; the batch is not released.
     *
     * @param heldKeys keys of rows the shard holds from earlier batches (not read again): their rows
     *     in this batch are held too
     * @return whether a topic failed for lack of metadata in this batch (its other rows were not sent)
     */
    boolean send(Batch batch, Set<String> heldKeys) {
        Set<String> held = holdKey ? new HashSet<>() : Set.of();
        // a topic whose metadata did not arrive within max.block.ms: its other rows are not sent in this
        // batch (each would wait max.block.ms again), nor the later rows of the failed key; other topics go on
        String missingTopic = null;
        // the keys of the rows failed or skipped for that topic: their later rows, of any topic, wait too
        Set<String> missingKeys = new HashSet<>();
        // topics without metadata (TopicHealth): their rows are held, not sent, and so are the later rows
        // of their keys in this batch, so that a key's rows never overtake one another across topics
        Map<String, TopicHealth.Status> metadata = new HashMap<>();
        Set<String> waitingKeys = new HashSet<>(heldKeys);
        // keys with a row read without its payload: not sent in this batch, read again with it
        Set<String> unreadKeys = new HashSet<>();
        int sendable = 0;
        List<OutboxRow> rows = batch.rows;
        // read only on this thread (a callback on another thread never looks at it)
        Thread sender = Thread.currentThread();
        int[] inSend = {-1};
        for (int i = 0; i < rows.size(); i++) {
            OutboxRow row = rows.get(i);
            if (sendable == batchSize) {
                batch.taken = i;
                break;
            }
            String key = row.key();
            if (key != null && (held.contains(key) || leaderless.contains(key) || unreadKeys.contains(key))) {
                continue;
            }
            if (missingTopic != null && (missingTopic.equals(row.topic()) || missingKeys.contains(key))) {
                if (key != null) {
                    missingKeys.add(key);
                }
                continue;
            }
            // metadata first (a topic's first lookup may wait briefly), then the lease deadline, then the
            // record: nothing can make send() wait between the deadline check and the record's timestamp
            TopicHealth.Status status = metadata.computeIfAbsent(row.topic(), topics::status);
            if (status.state() == TopicHealth.State.HOLD || (row.key() != null && waitingKeys.contains(row.key()))) {
                if (status.state() == TopicHealth.State.HOLD) {
                    batch.withoutMetadata.add(row.topic());
                }
                batch.held[i] = true;
                batch.heldRows++;
                if (row.key() != null) {
                    waitingKeys.add(row.key());
                }
                continue;
            }
            RuntimeException unusable = status.error();
            if (unusable == null && batch.withoutPayload.contains(row.topic())) {
                // its topic was held when the shard read and has metadata now: its payload was not read, and
                // a record without it would publish a tombstone; the row and its key wait for the next read
                batch.skipped = true;
                if (row.key() != null) {
                    unreadKeys.add(row.key());
                }
                continue;
            }
            if (unusable == null) {
                try {
                    if (leaderless.hold(batch.producer.producer(), row.topic(), row.key())) {
                        // its partition has no leader: the key waits, without an attempt, until it has one
                        batch.skipped = true;
                        continue;
                    }
                } catch (RuntimeException e) {
                    // the producer is unusable: the row fails with that, and the batch replaces the producer
                    unusable = e;
                }
            }
            sendable++;
            final int index = i;
            ProducerRecord<byte[], byte[]> record = null;
            if (unusable == null) {
                if (!lease.mayPublish()) {
                    batch.leaseExpired = true;
                    break;
                }
                try {
                    record = RecordMapper.record(row, wallClock.getAsLong());
                } catch (IllegalArgumentException e) {
                    unusable = new Errors.MalformedRow(
                            "outbox row " + row.id() + " cannot be turned into a record: " + e.getMessage(), e);
                }
            }
            if (unusable == null && !batch.order.hand(row.key())) {
                // an earlier record of the key failed meanwhile: the rest of the key is re-read in order
                batch.skipped = true;
                continue;
            }
            batch.sending(i);
            if (unusable != null) {
                batch.answered(index, unusable);
            } else {
                // which record's send() runs now on this thread: the producer reports some failures (a record
                // too large, a full buffer) to the callback inside send(), ahead of earlier records' answers
                inSend[0] = index;
                try {
                    batch.producer
                            .producer()
                            .send(
                                    record,
                                    (md, error) -> answered(
                                            batch,
                                            index,
                                            row.key(),
                                            error,
                                            Thread.currentThread() == sender && inSend[0] == index));
                } catch (RuntimeException e) {
                    // thrown rather than reported: a closed producer, an interrupt, a client-side bug
                    answered(batch, index, row.key(), e, true);
                } finally {
                    inSend[0] = -1;
                }
            }
            // errors found before the record left the relay have already reached the callback here
            Throwable early = batch.errors[i];
            if (early != null) {
                if (Errors.isPoison(early)) {
                    if (holdKey && row.key() != null) {
                        held.add(row.key());
                    }
                } else if (missingTopic == null && !Errors.isFatal(early)) {
                    // send() found no metadata for a topic whose lookup had succeeded (deleted meanwhile, or
                    // the producer forgot it): that wait is the row's own failure; later batches look it up first
                    if (early instanceof TimeoutException && !(early instanceof BufferExhaustedException)) {
                        batch.errors[i] = new Errors.TopicUnavailable(row.topic(), (RuntimeException) early);
                    }
                    topics.suspect(row.topic());
                    missingTopic = row.topic();
                    if (row.key() != null) {
                        missingKeys.add(row.key());
                    }
                } else {
                    // a second topic without metadata, or a broken producer: the broker is not reachable or the
                    // client is unusable, and sending the rest would only wait max.block.ms per record
                    batch.stoppedEarly = true;
                    break;
                }
            }
        }
        return missingTopic != null;
    }

    /**
     * Records a record's answer: first in the batch's {@link KeyOrder} (which may close the producer, so
     * that nothing of the key buffered behind a failed record reaches Kafka), then in the batch, even when
     * the first step threw: a batch missing an answer would never end, and its shard never publish again.
     */
    private static void answered(Batch batch, int index, String key, Throwable error, boolean inSend) {
        try {
            batch.order.answered(key, error, inSend);
        } finally {
            batch.answered(index, error);
        }
    }
}
