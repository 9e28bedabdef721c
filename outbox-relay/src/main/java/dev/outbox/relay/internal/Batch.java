package dev.outbox.relay.internal;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * One batch of a shard in flight: the rows in id order and, per row, what became of it. The send
 * loop fills it on the shard's task; the producer's callbacks report the answers; once every record
 * is answered (and the task let go of it), {@code onAnswered} runs once.
 */
final class Batch {
    final List<OutboxRow> rows;
    // topics whose rows were read without their payload (held when the shard read): never sent in this batch
    final Set<String> withoutPayload;
    final Publisher.Generation producer;
    final KeyOrder order;
    final long started;
    final Throwable[] errors;
    final boolean[] acked;
    final boolean[] sent;
    // not sent: its topic has no metadata, or an earlier row of its key was held
    final boolean[] held;
    // the topics whose rows were held for want of metadata (the first of them; later rows of their keys
    // may be of other topics)
    final Set<String> withoutMetadata = new HashSet<>();
    // the read returned as many rows as asked for: more are likely waiting
    final boolean full;
    // the rows from this index on were not taken into the batch (a batch sends at most batchSize)
    int taken;
    int heldRows;
    int sentRows;
    // one per record sent, plus one held by the task until the read-ahead is done
    private final AtomicInteger pending = new AtomicInteger(1);
    // the order in which the rows' errors arrived (1 for the first): see aborted()
    private final AtomicInteger failures = new AtomicInteger();
    private final int[] failedAs;
    private final Runnable onAck;
    private final Consumer<Batch> onAnswered;
    volatile boolean stoppedEarly;
    // the lease deadline passed during the send loop: the rows not sent wait for a renewal
    volatile boolean leaseExpired;
    // the batch's Kafka transaction was rolled back (transactional mode): no row of it was published
    boolean aborted;
    // some rows were neither sent nor held: their keys wait for a partition leader, or an earlier
    // row of their key failed in this batch
    volatile boolean skipped;

    /**
     * @param withoutPayload topics whose rows were read without their payload
     * @param onAck runs for every acknowledged record (Kafka answered)
     * @param onAnswered runs once every record sent was answered and {@link #release()} was called
     */
    Batch(
            List<OutboxRow> rows,
            Set<String> withoutPayload,
            Publisher.Generation producer,
            KeyOrder order,
            long started,
            boolean full,
            Runnable onAck,
            Consumer<Batch> onAnswered) {
        this.rows = rows;
        this.withoutPayload = withoutPayload;
        this.producer = producer;
        this.order = order;
        this.started = started;
        this.full = full;
        this.taken = rows.size();
        this.errors = new Throwable[rows.size()];
        this.acked = new boolean[rows.size()];
        this.sent = new boolean[rows.size()];
        this.held = new boolean[rows.size()];
        this.failedAs = new int[rows.size()];
        this.onAck = onAck;
        this.onAnswered = onAnswered;
    }

    /** Row {@code i} is handed to the producer: its answer is waited for. */
    void sending(int i) {
        pending.incrementAndGet();
        sent[i] = true;
        sentRows++;
    }

    /** The answer for row {@code i}: null when acknowledged. */
    void answered(int i, Throwable error) {
        if (error != null) {
            errors[i] = error;
            failedAs[i] = failures.incrementAndGet();
        } else {
            acked[i] = true;
            onAck.run();
        }
        release();
    }

    /** The send loop is done with the batch (called once). */
    void release() {
        if (pending.decrementAndGet() == 0) {
            onAnswered.accept(this);
        }
    }

    /** @return the first error any record reported, or null */
    Throwable firstError() {
        for (Throwable e : errors) {
            if (e != null) {
                return e;
            }
        }
        return null;
    }

    /**
     * The batch's transaction is rolled back (transactional mode): nothing of it was published. When
     * {@code commitFailure} is given (the commit failed), it is the failure of every row sent. When a
     * poison row explains the abort, what the other records reported after it is the transaction's
     * state, not theirs, and is dropped.
     */
    void aborted(Throwable commitFailure) {
        boolean poisoned = false;
        for (Throwable e : errors) {
            poisoned |= e != null && Errors.isPoison(e);
        }
        // Once a record failed, the producer fails the transaction's records not yet sent with that same
        // exception (its last error): a healthy row may get the poison row's RecordTooLargeException.
        // Of the rows answered with one exception object, only the first to be answered is its own cause.
        Map<Throwable, Integer> firstFailed = new IdentityHashMap<>();
        for (int i = 0; i < rows.size(); i++) {
            if (errors[i] != null && Errors.isPoison(errors[i])) {
                firstFailed.merge(errors[i], failedAs[i], Math::min);
            }
        }
        for (int i = 0; i < rows.size(); i++) {
            Throwable e = errors[i];
            if (commitFailure != null && sent[i]) {
                errors[i] = commitFailure;
            } else if (commitFailure == null
                    && poisoned
                    && e != null
                    && (Errors.isPoison(e)
                            ? failedAs[i] != firstFailed.get(e)
                            : !(e instanceof Errors.TopicUnavailable))) {
                errors[i] = null;
            }
        }
        Arrays.fill(acked, false);
        aborted = true;
    }

    /**
     * @param kafkaAnswered Kafka answered after the batch was sent
     * @param replacedElsewhere another batch's failure replaced the producer this batch used
     * @param pausedInFlight the process stood still while the batch was in flight
     * @return the batch as it ended, the rows taken into it only
     */
    BatchOutcome.Description describe(boolean kafkaAnswered, boolean replacedElsewhere, boolean pausedInFlight) {
        List<BatchOutcome.Row> out = new ArrayList<>(taken);
        for (int i = 0; i < taken; i++) {
            OutboxRow row = rows.get(i);
            out.add(new BatchOutcome.Row(row.id(), row.key(), held[i], sent[i], acked[i], errors[i]));
        }
        return new BatchOutcome.Description(
                out, aborted, leaseExpired, stoppedEarly, sentRows, kafkaAnswered, replacedElsewhere, pausedInFlight);
    }

    /** @return the ids of the rows taken into the batch, ascending */
    long[] takenIds() {
        long[] ids = new long[taken];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = rows.get(i).id();
        }
        return ids;
    }

    /** @return per topic of the held rows, the failed metadata check this shard has not counted yet */
    Map<String, TopicHealth.Uncounted> heldChecks(TopicHealth topics, int shard) {
        Map<String, TopicHealth.Uncounted> checks = new HashMap<>();
        Set<String> asked = new HashSet<>();
        for (int i = 0; i < taken; i++) {
            String topic = rows.get(i).topic();
            if (held[i] && asked.add(topic)) {
                TopicHealth.Uncounted check = topics.uncountedCheck(topic, shard);
                if (check != null) {
                    checks.put(topic, check);
                }
            }
        }
        return checks;
    }

    /**
     * The arguments of the statement that records failed rows: ids, error texts, whether each is
     * parked now, and where each id is in the batch.
     */
    record Failures(long[] ids, String[] errors, boolean[] park, Map<Long, Integer> index) {}

    /** @return the poison rows (parked) and the counted retriable rows (an attempt each) as one statement's arguments */
    Failures failures(List<Integer> poison, List<Integer> retriable) {
        int n = poison.size() + retriable.size();
        Failures f = new Failures(new long[n], new String[n], new boolean[n], new HashMap<>());
        int k = 0;
        for (List<Integer> group : List.of(poison, retriable)) {
            for (int i : group) {
                f.ids()[k] = rows.get(i).id();
                f.errors()[k] = Errors.describe(errors[i]);
                f.park()[k] = group == poison;
                f.index().put(f.ids()[k], i);
                k++;
            }
        }
        return f;
    }
}
