package dev.outbox.relay.internal;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * What a finished batch means, decided from the batch alone: which rows are deleted, which parked,
 * which failed retriably and which of those count an attempt, whether what was read ahead is kept,
 * and what the circuit breaker is told. A pure function of an immutable {@link Description}; the
 * shard loop carries it out (statements, breaker, metrics, the next wait).
 *
 * @param delete ids of the acknowledged rows to delete
 * @param poison indices of the rows to park (they can never be published)
 * @param retriable indices of the rows that failed and are read again
 * @param counted indices of the failed rows that count an attempt toward maxAttempts: their own
 *     failure (their topic's metadata did not arrive) while Kafka answered
 * @param failure the batch's failure, or null when it succeeded (held and parked rows aside)
 * @param fatal whether a failure left the producer unusable
 * @param keepReadAhead whether the rows read while the batch was in flight may be sent next
 * @param breaker what the circuit breaker is told
 */
record BatchOutcome(
        List<Long> delete,
        List<Integer> poison,
        List<Integer> retriable,
        List<Integer> counted,
        Throwable failure,
        boolean fatal,
        boolean keepReadAhead,
        Breaker breaker) {

    /** What a batch tells the circuit breaker, which gave it a permit. */
    enum Breaker {
        /** Kafka answered as it should, or the failures were the rows' own while Kafka worked. */
        SUCCESS,
        /** The batch failed: counts toward opening the breaker. */
        FAILURE,
        /**
         * Nothing learned about Kafka: every row was held (nothing was sent), or the batch failed only
         * because another shard's failure replaced the producer it was using, or while the process stood
         * still. The permit is given back.
         */
        RELEASE
    }

    /**
     * One row of the batch, as it ended.
     *
     * @param held not sent: its topic has no metadata, or an earlier row of its key was held
     * @param sent handed to the producer (or failed before it could be)
     * @param acked acknowledged by Kafka (and, in the transactional mode, committed)
     * @param error what the producer or the relay reported for it, or null
     */
    record Row(long id, String key, boolean held, boolean sent, boolean acked, Throwable error) {}

    /**
     * A finished batch: its rows taken into the batch, in id order, and how the send loop ended.
     *
     * @param aborted the batch's Kafka transaction was rolled back: none of its rows was published
     * @param leaseExpired the lease deadline passed during the send loop: the rows not sent wait for a renewal
     * @param stoppedEarly the send loop stopped before the end (a broken producer, a second topic without metadata)
     * @param sentRows how many rows were handed to the producer
     * @param kafkaAnswered Kafka acknowledged a record (of any shard) or answered the readiness probe
     *     after the batch was sent
     * @param replacedElsewhere the producer the batch used was replaced by another batch's failure
     *     (not this one's) while it was in flight
     * @param pausedInFlight the process stood still ({@link PauseWatch}) while the batch was in flight:
     *     its requests may have expired without Kafka being slow
     */
    record Description(
            List<Row> rows,
            boolean aborted,
            boolean leaseExpired,
            boolean stoppedEarly,
            int sentRows,
            boolean kafkaAnswered,
            boolean replacedElsewhere,
            boolean pausedInFlight) {
        Description {
            rows = List.copyOf(rows);
        }
    }

    BatchOutcome {
        delete = List.copyOf(delete);
        poison = List.copyOf(poison);
        retriable = List.copyOf(retriable);
        counted = List.copyOf(counted);
    }

    /** @return whether the failed rows count an attempt */
    boolean countAttempts() {
        return !counted.isEmpty();
    }

    static BatchOutcome of(Description batch) {
        List<Long> delete = new ArrayList<>(batch.rows().size());
        List<Integer> poison = new ArrayList<>();
        List<Integer> retriable = new ArrayList<>();
        Set<String> blocked = new HashSet<>();
        Throwable failure = null;
        boolean fatal = false;
        boolean keepReadAhead = true;
        for (int i = 0; i < batch.rows().size(); i++) {
            Row row = batch.rows().get(i);
            Throwable error = row.error();
            if (row.held()) {
                // not sent, not failed: read again (and sent in order) once its topic has metadata
                if (row.key() != null) {
                    blocked.add(row.key());
                }
                continue;
            }
            if (row.acked()) {
                // a row after a failed row of its key stays, so the key is re-read and re-sent in order
                if (row.key() == null || !blocked.contains(row.key())) {
                    delete.add(row.id());
                }
            } else if (error != null && Errors.isPoison(error)) {
                poison.add(i);
                keepReadAhead = false;
            } else {
                keepReadAhead = false;
                if (row.key() != null) {
                    blocked.add(row.key());
                }
                if (error != null) {
                    retriable.add(i);
                    failure = failure == null ? error : failure;
                    fatal |= Errors.isFatal(error);
                } else if (batch.aborted()) {
                    // rolled back with its transaction: sent again in the next round
                } else if (row.sent()) {
                    failure = failure == null
                            ? new IllegalStateException("record was neither acknowledged nor failed")
                            : failure;
                } else if (batch.leaseExpired()) {
                    // not sent: the lease deadline passed; kept for a renewal or the next owner
                } else if (batch.stoppedEarly() && failure == null) {
                    failure = new IllegalStateException("batch stopped before this record was sent");
                }
            }
        }
        // Only a failure that is the row's own counts: its topic's metadata did not arrive while Kafka
        // answered (a record of any shard acknowledged, or the readiness probe, after this batch was sent).
        // A partition without a leader, a broker down, a timeout on an existing topic are not the row's
        // fault and are retried without limit (counting them would park healthy rows); without evidence
        // that Kafka answered nothing is counted and the breaker decides.
        List<Integer> counted = new ArrayList<>();
        if (!fatal && batch.kafkaAnswered()) {
            for (int i : retriable) {
                if (batch.rows().get(i).error() instanceof Errors.TopicUnavailable) {
                    counted.add(i);
                }
            }
        }
        Breaker breaker;
        if (failure != null) {
            if (!counted.isEmpty()) {
                // Kafka answered: one bad topic must not open the breaker for every shard
                breaker = Breaker.SUCCESS;
            } else if (batch.replacedElsewhere() || batch.pausedInFlight()) {
                // the producer was replaced (and closed) while this batch was in flight, or the process stood
                // still meanwhile and the batch's requests expired on resuming: that failure says nothing new
                // about Kafka, and every shard reporting it would open the breaker at once
                breaker = Breaker.RELEASE;
            } else {
                breaker = Breaker.FAILURE;
            }
        } else if (batch.sentRows() == 0) {
            // every row was held or waits for its partition's leader: Kafka was not asked anything
            breaker = Breaker.RELEASE;
        } else {
            breaker = Breaker.SUCCESS;
        }
        return new BatchOutcome(delete, poison, retriable, counted, failure, fatal, keepReadAhead, breaker);
    }
}
