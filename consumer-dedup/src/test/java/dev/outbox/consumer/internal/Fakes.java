package dev.outbox.consumer.internal;

import dev.outbox.consumer.FailureKind;
import dev.outbox.consumer.IdempotentConsumer;
import dev.outbox.consumer.internal.BatchStore.Outcome;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.internal.PrefixedLog;
import dev.outbox.core.internal.TimeSource;
import dev.outbox.core.retry.Backoff;
import dev.outbox.schemas.AvroCodec;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.lang.reflect.RecordComponent;
import java.nio.charset.StandardCharsets;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.function.Predicate;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.LoggerFactory;

/** Fakes of a worker's collaborators: time, scheduler, database and dead-letter topic, all in memory. */
final class Fakes {
    private Fakes() {}

    static final TopicPartition TP = new TopicPartition("orders", 0);

    /** Time that moves only when told, or when the scheduler runs a delayed task. */
    static final class Time implements TimeSource {
        volatile long nanos = 1_000_000_000L;

        @Override
        public long nanoTime() {
            return nanos;
        }

        @Override
        public long currentTimeMillis() {
            return 1_700_000_000_000L + nanos / 1_000_000;
        }

        void advance(Duration d) {
            nanos += d.toNanos();
        }
    }

    /** Runs tasks on the calling thread, earliest first, moving the fake time to each delayed task's due time. */
    static final class Scheduler implements SerialTask.Scheduler {
        private record Due(long at, long seq, Runnable task) {}

        private final Time time;
        private final PriorityQueue<Due> queue =
                new PriorityQueue<>(Comparator.comparingLong(Due::at).thenComparingLong(Due::seq));
        private long seq;
        final List<Duration> delays = new ArrayList<>();

        Scheduler(Time time) {
            this.time = time;
        }

        @Override
        public boolean execute(Runnable task) {
            queue.add(new Due(time.nanos, seq++, task));
            return true;
        }

        @Override
        public boolean schedule(Runnable task, Duration delay) {
            delays.add(delay);
            queue.add(new Due(time.nanos + delay.toNanos(), seq++, task));
            return true;
        }

        /** Runs tasks until none is left, at most {@code max} of them. */
        int runAll(int max) {
            int ran = 0;
            while (!queue.isEmpty() && ran < max) {
                Due next = queue.poll();
                time.nanos = Math.max(time.nanos, next.at());
                next.task().run();
                ran++;
            }
            return ran;
        }
    }

    /**
     * A database of processed ids that runs the optimistic batch: a handler failure rolls the whole
     * batch back and is reported at its index; a commit is refused when {@link #refuseCommit} says so.
     */
    static class Store implements BatchStore {
        final Set<UUID> processed = new HashSet<>();
        final List<UUID> deadLettered = new ArrayList<>();
        /** Offsets of each transaction, in order. */
        final List<List<Long>> transactions = new ArrayList<>();
        /** Handler calls per offset. */
        final Map<Long, Integer> calls = new HashMap<>();
        /** The handler: its failure for a record, or null. */
        Function<ConsumerRecord<byte[], byte[]>, Throwable> handler = r -> null;

        Predicate<List<ConsumerRecord<byte[], byte[]>>> refuseCommit = b -> false;
        int infrastructureFailures;
        /** Checks of the database made; the first {@link #pingFailures} fail. */
        final AtomicInteger pings = new AtomicInteger();

        volatile int pingFailures;

        /** Calls of {@link #recordDeadLettered} made; the first {@link #deadLetterFailures} fail. */
        int deadLetterCalls;

        int deadLetterFailures;
        /** Whether those failures are waits for a row another transaction holds, rather than a lost database. */
        boolean deadLetterRowHeld;

        @Override
        public Outcome process(List<ConsumerRecord<byte[], byte[]>> batch, List<UUID> ids)
                throws InfrastructureException, CommitRefusedException {
            transactions.add(batch.stream().map(ConsumerRecord::offset).toList());
            if (infrastructureFailures > 0) {
                infrastructureFailures--;
                throw new InfrastructureException("connection lost", new SQLException("lost", "08006"));
            }
            Set<UUID> fresh = new HashSet<>();
            int handled = 0;
            int duplicates = 0;
            for (int i = 0; i < batch.size(); i++) {
                if (processed.contains(ids.get(i)) || !fresh.add(ids.get(i))) {
                    duplicates++;
                    continue;
                }
                calls.merge(batch.get(i).offset(), 1, Integer::sum);
                Throwable failure = handler.apply(batch.get(i));
                if (failure != null) {
                    return Outcome.rolledBack(failure, i);
                }
                handled++;
            }
            if (refuseCommit.test(batch)) {
                throw new CommitRefusedException(new SQLException("deferred constraint violated", "23503"));
            }
            processed.addAll(fresh);
            return Outcome.committed(batch.size(), handled, duplicates, 0, 0);
        }

        @Override
        public void recordDeadLettered(UUID id) throws InfrastructureException {
            if (++deadLetterCalls <= deadLetterFailures) {
                if (deadLetterRowHeld) {
                    throw InfrastructureException.contention(
                            "recording message " + id + " as dead-lettered", new SQLException("held", "55P03"));
                }
                throw new InfrastructureException("connection lost", new SQLException("lost", "08006"));
            }
            deadLettered.add(id);
        }

        @Override
        public void ping() throws InfrastructureException {
            if (pings.incrementAndGet() <= pingFailures) {
                throw new InfrastructureException("connection refused", new SQLException("refused", "08001"));
            }
        }
    }

    /** A dead-letter topic that keeps what it is sent. */
    static final class Sink implements DeadLetterSink {
        record Sent(long offset, String reason, Throwable failure, int attempts) {}

        final List<Sent> sent = new ArrayList<>();

        @Override
        public String topicFor(String sourceTopic) {
            return sourceTopic + ".dlt";
        }

        /** Checks of the brokers made, with the topic asked for; the first {@link #pingFailures} fail. */
        final List<String> pings = new CopyOnWriteArrayList<>();

        volatile int pingFailures;

        @Override
        public void publish(ConsumerRecord<byte[], byte[]> record, String reason, Throwable failure, int attempts) {
            sent.add(new Sent(record.offset(), reason, failure, attempts));
        }

        @Override
        public void ping(String topic) throws InfrastructureException {
            pings.add(topic);
            if (pings.size() <= pingFailures) {
                throw new InfrastructureException("no metadata for " + topic, new RuntimeException("timed out"));
            }
        }
    }

    static UUID idOf(long offset) {
        return new UUID(42, offset);
    }

    /** A record of {@link #TP} at {@code offset} with message id {@link #idOf}. */
    static ConsumerRecord<byte[], byte[]> record(long offset) {
        ConsumerRecord<byte[], byte[]> r = new ConsumerRecord<>(TP.topic(), TP.partition(), offset, null, new byte[0]);
        r.headers().add(OutboxHeaders.MESSAGE_ID, idOf(offset).toString().getBytes(StandardCharsets.UTF_8));
        return r;
    }

    static List<ConsumerRecord<byte[], byte[]>> records(long from, long to) {
        List<ConsumerRecord<byte[], byte[]>> list = new ArrayList<>();
        for (long o = from; o < to; o++) {
            list.add(record(o));
        }
        return list;
    }

    static Settings settings(
            int maxAttempts,
            int maxRecords,
            Duration maxTransientRetry,
            Hooks hooks,
            Function<Throwable, FailureKind> classifier) {
        return settings(maxAttempts, maxRecords, maxTransientRetry, hooks, classifier, 1);
    }

    /** @param concurrency the worker threads */
    static Settings settings(
            int maxAttempts,
            int maxRecords,
            Duration maxTransientRetry,
            Hooks hooks,
            Function<Throwable, FailureKind> classifier,
            int concurrency) {
        return new Settings(
                Map.of("bootstrap.servers", "localhost:1", "group.id", "g"),
                Map.of(),
                List.of(TP.topic()),
                "unit",
                null,
                null,
                "outbox",
                (m, tx) -> {},
                null,
                maxAttempts,
                Backoff.of(Duration.ofSeconds(1), Duration.ofSeconds(30)),
                null,
                maxRecords,
                false,
                concurrency,
                Duration.ofDays(7),
                Duration.ZERO,
                Duration.ofSeconds(5),
                new SimpleMeterRegistry(),
                AvroCodec.empty(),
                hooks,
                ".dlt",
                classifier,
                maxTransientRetry,
                IdempotentConsumer.Builder.DEFAULT_MAX_BUFFERED_BYTES);
    }

    /** @return {@code s} with {@code extractor} as its message id extractor */
    static Settings withExtractor(Settings s, Function<ConsumerRecord<byte[], byte[]>, Optional<UUID>> extractor) {
        return with(s, "messageIdExtractor", extractor);
    }

    /** @return {@code s} with {@code closeTimeout} */
    static Settings withCloseTimeout(Settings s, Duration closeTimeout) {
        return with(s, "closeTimeout", closeTimeout);
    }

    /** @return {@code s} with {@code maxBufferedBytes} */
    static Settings withMaxBufferedBytes(Settings s, long maxBufferedBytes) {
        return with(s, "maxBufferedBytes", maxBufferedBytes);
    }

    /** @return a copy of {@code s} whose record component {@code name} is {@code value} */
    private static Settings with(Settings s, String name, Object value) {
        RecordComponent[] components = Settings.class.getRecordComponents();
        Object[] args = new Object[components.length];
        Class<?>[] types = new Class<?>[components.length];
        boolean found = false;
        try {
            for (int i = 0; i < components.length; i++) {
                types[i] = components[i].getType();
                if (components[i].getName().equals(name)) {
                    args[i] = value;
                    found = true;
                } else {
                    args[i] = components[i].getAccessor().invoke(s);
                }
            }
            if (!found) {
                throw new IllegalArgumentException("Settings has no component " + name);
            }
            return Settings.class.getDeclaredConstructor(types).newInstance(args);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("could not copy the settings with " + name, e);
        }
    }

    static PartitionWorker worker(
            Settings settings, Store store, Sink sink, Time time, SerialTask.Scheduler scheduler) {
        return worker(settings, store, sink, time, scheduler, null);
    }

    /** @param carried what the partition's previous worker knew of its head, or null */
    static PartitionWorker worker(
            Settings settings,
            Store store,
            Sink sink,
            Time time,
            SerialTask.Scheduler scheduler,
            PartitionWorker.Carried carried) {
        return worker(settings, store, sink, time, scheduler, carried, databaseBreaker(time));
    }

    /**
     * @param carried what the partition's previous worker knew of its head, or null
     * @param databaseBreaker the breaker of its database calls, which the other workers of a consumer share
     */
    static PartitionWorker worker(
            Settings settings,
            Store store,
            Sink sink,
            Time time,
            SerialTask.Scheduler scheduler,
            PartitionWorker.Carried carried,
            Breaker databaseBreaker) {
        PrefixedLog log = log();
        return new PartitionWorker(
                TP,
                new PartitionWorker.Parts(
                        settings,
                        RecordMapping.of(settings, time),
                        store,
                        sink,
                        databaseBreaker,
                        Breaker.create("dlt", "dead-letter producer", log, time, Duration.ofSeconds(30)),
                        new Metrics(settings.meterRegistry(), settings.consumerName(), "unit#1"),
                        log,
                        time,
                        scheduler),
                carried);
    }

    /** A consumer's database breaker on {@code time}, as {@link #worker} gives each worker of its own. */
    static Breaker databaseBreaker(Time time) {
        return Breaker.create("db", "database", log(), time, Duration.ofSeconds(30));
    }

    private static PrefixedLog log() {
        return new PrefixedLog(LoggerFactory.getLogger(PartitionWorker.class), "[consumer-dedup test]");
    }
}
