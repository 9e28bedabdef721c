package dev.outbox.consumer.internal;

import dev.outbox.core.internal.Durations;
import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.core.internal.TimeSource;
import io.micrometer.core.instrument.Gauge;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InterruptException;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.errors.WakeupException;

/**
 * The partitions assigned to a {@link DedupConsumer}: the group's rebalance callbacks, a worker per
 * partition, pausing and resuming them, their lag, and their offset commits. Every method but
 * {@link #size()}, {@link #hasAssignment()}, {@link #owned()} and {@link #stillRunning()} runs on the
 * poll thread.
 */
final class Assignments implements ConsumerRebalanceListener {
    private static final long COMMIT_INTERVAL_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    /** How often a commit failure that lasts (a long rebalance, a coordinator away) is logged again. */
    private static final Duration COMMIT_WARNING_INTERVAL = Duration.ofSeconds(10);
    /** How often the end offsets of paused partitions are asked for, for their lag. */
    static final Duration PAUSED_END_OFFSETS_INTERVAL = Duration.ofSeconds(5);
    /** The longest the poll thread waits for them; less when closeTimeout is shorter. */
    private static final Duration PAUSED_END_OFFSETS_TIMEOUT = Duration.ofSeconds(1);

    /** An assigned partition: its worker, and what the poll thread keeps about it. */
    private static final class Assigned {
        final PartitionWorker worker;
        final Gauge gauge;
        long committed = -1;
        boolean paused;
        /** The end offset asked for while paused (a paused partition is not fetched), or -1. */
        long pausedEndOffset = -1;

        Assigned(PartitionWorker worker, Gauge gauge) {
            this.worker = worker;
            this.gauge = gauge;
        }
    }

    private final Settings settings;
    private final PrefixedLog log;
    private final TimeSource time;
    private final Metrics metrics;
    private final Consumer<byte[], byte[]> consumer;
    private final PartitionWorker.Parts parts;
    private final Map<TopicPartition, Assigned> partitions = new ConcurrentHashMap<>();
    /**
     * The failures of a revoked partition's head record and when its retry is due, for its next worker
     * here: an eager rebalance (Kafka's default assignor) revokes every partition, also those it
     * assigns back, and would otherwise restart their retry bounds and call the handler again without
     * waiting out the backoff. Touched by the poll thread only.
     */
    private final Map<TopicPartition, PartitionWorker.Carried> carried = new HashMap<>();
    /** The partitions the group gave this consumer and has not taken back yet (revoked or lost). */
    private final Set<TopicPartition> owned = ConcurrentHashMap.newKeySet();
    /**
     * Stopped workers whose step was still running when their partition was stopped (a handler that
     * outlasted the wait for it, or a partition lost), until that step ends.
     */
    private final Set<PartitionWorker> unfinished = ConcurrentHashMap.newKeySet();

    /** Records queued on one partition at which it is paused, whatever their size. */
    private final int pauseThreshold;
    /** The bytes queued over all partitions at which every partition is paused ({@code maxBufferedBytes}). */
    private final long maxBufferedBytes;
    /** The bytes queued at which the partitions with records queued are paused: half of {@link #maxBufferedBytes}. */
    private final long halfBufferedBytes;

    private final Gauge bufferedGauge;
    /** Commits refused or failed in a row; retried at every poll, so logged at most once per interval. */
    private final RepeatedWarning commitFailures;

    private volatile boolean commitsAllowed = true;
    /** The group gave this consumer its assignment (possibly empty) and did not take it away as lost. */
    private volatile boolean hasAssignment;

    private long lastCommitNanos;
    private final Duration pausedEndOffsetsTimeout;
    private long lastPausedEndOffsetsNanos;

    Assignments(
            Settings settings,
            Consumer<byte[], byte[]> consumer,
            PartitionWorker.Parts parts,
            Metrics metrics,
            PrefixedLog log,
            TimeSource time) {
        this.settings = settings;
        this.consumer = consumer;
        this.parts = parts;
        this.metrics = metrics;
        this.log = log;
        this.time = time;
        this.pauseThreshold = Math.max(1000, 4 * settings.maxRecordsPerTransaction());
        this.maxBufferedBytes = settings.maxBufferedBytes();
        this.halfBufferedBytes = maxBufferedBytes - maxBufferedBytes / 2;
        this.commitFailures = new RepeatedWarning(log, time, COMMIT_WARNING_INTERVAL, "failed commit(s)");
        this.pausedEndOffsetsTimeout = settings.closeTimeout().compareTo(PAUSED_END_OFFSETS_TIMEOUT) < 0
                ? settings.closeTimeout()
                : PAUSED_END_OFFSETS_TIMEOUT;
        this.lastPausedEndOffsetsNanos = time.nanoTime() - PAUSED_END_OFFSETS_INTERVAL.toNanos();
        this.bufferedGauge = metrics.bufferedBytes(this::bufferedBytes);
    }

    int size() {
        return partitions.size();
    }

    boolean hasAssignment() {
        return hasAssignment;
    }

    /** @return the partitions the group assigned to this consumer and has not revoked, sorted; any thread */
    Set<TopicPartition> owned() {
        Set<TopicPartition> sorted =
                new TreeSet<>(Comparator.comparing(TopicPartition::topic).thenComparingInt(TopicPartition::partition));
        sorted.addAll(owned);
        return sorted;
    }

    /**
     * @return the stopped workers whose step still runs: their partition was stopped (revoked, lost or
     *     closed) while it ran, and the wait for it, if any, gave up; any thread
     */
    List<PartitionWorker> stillRunning() {
        unfinished.removeIf(w -> w.activity() == null);
        return List.copyOf(unfinished);
    }

    /** After a failure of the poll loop: no further offset commits. */
    void stopCommits() {
        commitsAllowed = false;
    }

    /** Hands each partition's records to its worker. */
    void enqueue(ConsumerRecords<byte[], byte[]> records) {
        for (TopicPartition tp : records.partitions()) {
            Assigned assigned = partitions.get(tp);
            if (assigned == null) {
                log.warn("got records of {}, which is not assigned to this consumer; ignoring them", tp);
                continue;
            }
            assigned.worker.enqueue(records.records(tp));
        }
    }

    /** On a clean close: stops every partition, committing what its worker finished. */
    void stopAll() {
        stopPartitions(new ArrayList<>(partitions.keySet()), true);
    }

    /** Stops every worker, without waiting. */
    void stopWorkers() {
        for (Assigned a : partitions.values()) {
            a.worker.stop();
        }
    }

    /**
     * Once the Kafka consumer is closed: removes the partitions' lag gauges and the buffered bytes' gauge,
     * and forgets the partitions.
     */
    void clear() {
        for (Assigned a : partitions.values()) {
            metrics.remove(a.gauge);
        }
        metrics.remove(bufferedGauge);
        partitions.clear();
        owned.clear();
    }

    /** @return the bytes of the records fetched and not yet processed, over the assigned partitions; any thread */
    long bufferedBytes() {
        long sum = 0;
        for (Assigned a : partitions.values()) {
            sum += a.worker.queuedBytes();
        }
        return sum;
    }

    /**
     * After each poll, pauses the partitions not to fetch now and resumes the others. A partition is
     * paused while its worker waits for a retry, while it has {@link #pauseThreshold} records queued, and
     * by the bytes queued over all partitions: from half of {@code maxBufferedBytes} on if it has records
     * queued (they keep its worker busy meanwhile), from the whole of it on in any case. The half above
     * stays for partitions with nothing queued, so that partitions whose records do not move (a retry
     * wait, a slow handler) hold up the others only once they hold all of it. No hysteresis: the next
     * round resumes what falls below, and the workers' draining and the polls' fetching keep the bytes
     * near the mark; pausing and resuming are calls on the Kafka consumer alone, which keeps what it
     * fetched of a paused partition for when it is resumed.
     *
     * <p>A poll returns records of the partitions not paused after the round before, when the bytes were
     * below {@code maxBufferedBytes}: they stay below it plus one poll's records.
     */
    void updatePauses() {
        long buffered = bufferedBytes();
        boolean full = buffered >= maxBufferedBytes;
        boolean halfFull = buffered >= halfBufferedBytes;
        List<TopicPartition> pause = new ArrayList<>();
        List<TopicPartition> resume = new ArrayList<>();
        for (Assigned a : partitions.values()) {
            int queued = a.worker.queued();
            boolean want = a.worker.isWaiting() || queued >= pauseThreshold || full || (queued > 0 && halfFull);
            if (want && !a.paused) {
                pause.add(a.worker.partition());
                a.paused = true;
            } else if (!want && a.paused) {
                resume.add(a.worker.partition());
                a.paused = false;
                a.pausedEndOffset = -1; // fetched again: its lag is the fetch's
            }
        }
        if (!pause.isEmpty()) {
            consumer.pause(pause);
        }
        if (!resume.isEmpty()) {
            consumer.resume(resume);
        }
    }

    /**
     * Sets each partition's lag gauge: its end offset minus the next offset to process. The end offset
     * is the last fetch's ({@link Consumer#currentLag}), which a paused partition does not refresh
     * (it is not fetched): a partition held by a failing or stuck record would show a frozen lag. So
     * the end offsets of paused partitions are asked for ({@link Consumer#endOffsets}) at most every
     * {@link #PAUSED_END_OFFSETS_INTERVAL}, waiting at most 1 s (or closeTimeout if shorter), and only
     * when this round of the poll loop has taken less than closeTimeout so far, so that the gap
     * between two polls stays within what the build's check of max.poll.interval.ms allows for.
     *
     * @param roundStartNanos when this round of the poll loop began ({@link TimeSource#nanoTime()})
     */
    void updateLag(long roundStartNanos) {
        refreshPausedEndOffsets(roundStartNanos);
        for (Assigned a : partitions.values()) {
            TopicPartition tp = a.worker.partition();
            OptionalLong lag = consumer.currentLag(tp);
            if (lag.isPresent()) {
                long position = consumer.position(tp);
                long end = Math.max(position + lag.getAsLong(), a.paused ? a.pausedEndOffset : -1);
                a.worker.lag().set(Math.max(0, end - a.worker.nextToProcess(position)));
            }
        }
    }

    private void refreshPausedEndOffsets(long roundStartNanos) {
        long now = time.nanoTime();
        if (now - lastPausedEndOffsetsNanos < PAUSED_END_OFFSETS_INTERVAL.toNanos()
                || now - roundStartNanos >= settings.closeTimeout().toNanos()) {
            return;
        }
        List<TopicPartition> paused = new ArrayList<>();
        for (Assigned a : partitions.values()) {
            if (a.paused) {
                paused.add(a.worker.partition());
            }
        }
        if (paused.isEmpty()) {
            return;
        }
        lastPausedEndOffsetsNanos = now;
        Map<TopicPartition, Long> ends;
        try {
            ends = consumer.endOffsets(paused, pausedEndOffsetsTimeout);
        } catch (WakeupException | InterruptException e) {
            throw e;
        } catch (RuntimeException e) {
            // a gauge is not worth failing the poll loop for: the lag stays as it was until the next try
            log.debug("end offsets of the paused partitions {} not known: {}", paused, e.toString());
            return;
        }
        ends.forEach((tp, end) -> {
            Assigned a = partitions.get(tp);
            if (a != null && a.paused && end != null) {
                a.pausedEndOffset = end;
            }
        });
    }

    /** Commits the offsets of every record whose transaction committed; on the poll thread only. */
    void commit(boolean force) {
        if (!commitsAllowed) {
            return;
        }
        long now = time.nanoTime();
        if (!force && now - lastCommitNanos < COMMIT_INTERVAL_NANOS) {
            return;
        }
        commit(partitions.values());
        lastCommitNanos = now;
    }

    private void commit(Collection<Assigned> assigned) {
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        Map<TopicPartition, Long> done = new HashMap<>();
        for (Assigned a : assigned) {
            long next = a.worker.nextToCommit();
            if (next > a.committed) {
                offsets.put(a.worker.partition(), new OffsetAndMetadata(next));
                done.put(a.worker.partition(), next);
            }
        }
        if (offsets.isEmpty()) {
            return;
        }
        settings.hooks().beforeOffsetCommit(offsets);
        try {
            consumer.commitSync(offsets, settings.closeTimeout());
            for (Assigned a : assigned) {
                Long next = done.get(a.worker.partition());
                if (next != null) {
                    a.committed = next;
                }
            }
            commitFailures.cleared("offset commits succeed again");
        } catch (CommitFailedException | RebalanceInProgressException e) {
            // during a cooperative rebalance the partitions stay, and every poll's commit is refused at once
            commitFailures.occurred(
                    "offset commit refused during a rebalance ({}); the records will be redelivered and skipped as"
                            + " duplicates unless a later commit succeeds",
                    e.getMessage());
        } catch (RetriableException e) {
            commitFailures.occurred("offset commit failed ({}); retrying with the next commit", e.toString());
        }
    }

    /**
     * Stops the workers of the given partitions after their transaction in flight, and commits what
     * they finished when {@code commit} is set.
     */
    private void stopPartitions(Collection<TopicPartition> tps, boolean commit) {
        List<Assigned> stopped = new ArrayList<>();
        for (TopicPartition tp : tps) {
            Assigned a = partitions.remove(tp);
            if (a != null) {
                a.worker.stop();
                stopped.add(a);
            }
        }
        long deadline = time.nanoTime() + settings.closeTimeout().toNanos();
        for (Assigned a : stopped) {
            PartitionWorker w = a.worker;
            if (commit && !w.awaitStep(deadline - time.nanoTime())) {
                log.warn(
                        "transaction in flight on {} did not finish within {}; committing the offsets done before it",
                        w.partition(),
                        Durations.format(settings.closeTimeout()));
            }
            PartitionWorker.Carried head = w.carried();
            if (head != null) {
                carried.put(w.partition(), head);
            }
            if (w.activity() != null) {
                unfinished.add(w);
            }
            int left = w.queued();
            if (left > 0) {
                log.info(
                        "{}: {} fetched record(s) from offset {} left for redelivery",
                        w.partition(),
                        left,
                        w.nextToProcess(-1));
            }
            w.clear();
            metrics.remove(a.gauge);
        }
        if (commit && commitsAllowed) {
            commit(stopped);
        }
    }

    /** @return whether a partition has fetched records not processed yet: its worker calls the breakers */
    boolean hasWork() {
        for (Assigned a : partitions.values()) {
            if (a.worker.queued() > 0) {
                return true;
            }
        }
        return false;
    }

    @Override
    public void onPartitionsRevoked(Collection<TopicPartition> revoked) {
        if (!revoked.isEmpty()) {
            log.info("partitions revoked: {}", revoked);
        }
        owned.removeAll(revoked);
        stopPartitions(revoked, true);
    }

    @Override
    public void onPartitionsLost(Collection<TopicPartition> lost) {
        hasAssignment = false;
        log.warn("partitions lost (not committing their offsets): {}", lost);
        owned.removeAll(lost);
        stopPartitions(lost, false);
    }

    @Override
    public void onPartitionsAssigned(Collection<TopicPartition> assigned) {
        if (!assigned.isEmpty()) {
            log.info("partitions assigned: {}", assigned);
        }
        for (TopicPartition tp : assigned) {
            PartitionWorker w = new PartitionWorker(tp, parts, carried.remove(tp));
            partitions.put(tp, new Assigned(w, metrics.lagGauge(tp, w.lag())));
        }
        owned.addAll(assigned);
        hasAssignment = true;
    }
}
