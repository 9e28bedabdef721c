package dev.outbox.relay.internal;

import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.core.internal.TimeSource;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import java.util.concurrent.ScheduledExecutorService;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.LongPredicate;

/**
 * What the shard loops of one relay share, bound once by the relay and handed to each {@link
 * ShardWorker} through its constructor.
 *
 * @param rows the outbox rows: reads, fenced deletes and parks
 * @param deletes the relay's delete queue: one fenced statement for many shards' finished batches
 * @param pendingDeletes the ids of the deletes no shard waits for, left out by the probe's read
 * @param failures the relay's failure queue: one fenced statement for many shards' failed rows
 * @param breaker the circuit breaker in front of Kafka
 * @param workers the worker pool the loops run on
 * @param topics the relay-wide table of topics without metadata
 * @param shared the shared producer: per-key order replaces it, leaderless keys read its metadata
 * @param databaseAnswered PostgreSQL answered a statement
 * @param kafkaAnswered Kafka acknowledged a record
 * @param kafkaAnsweredSince whether Kafka acknowledged a record or answered the probe after the
 *     given {@link TimeSource#nanoTime()}
 * @param pausedSince whether the process stood still ({@link PauseWatch}) after the given {@link
 *     TimeSource#nanoTime()}
 * @param dropped the shard's loop found its lease gone when writing
 * @param probeActive whether the probe works: an idle shard then waits for it instead of polling
 * @param time the relay's clock: lease deadlines, batch durations, the records' timestamps
 */
record ShardServices(
        RelayConfig config,
        ShardRows rows,
        WriteQueue<ShardRows.Deletion, Db.Fenced> deletes,
        PendingDeletes pendingDeletes,
        WriteQueue<ShardRows.Failure, Db.Failed> failures,
        CircuitBreaker breaker,
        RelayMetrics metrics,
        ScheduledExecutorService workers,
        TopicHealth topics,
        Publisher shared,
        PrefixedLog log,
        Runnable databaseAnswered,
        Runnable kafkaAnswered,
        LongPredicate kafkaAnsweredSince,
        LongPredicate pausedSince,
        Consumer<ShardWorker> dropped,
        BooleanSupplier probeActive,
        TimeSource time) {}
