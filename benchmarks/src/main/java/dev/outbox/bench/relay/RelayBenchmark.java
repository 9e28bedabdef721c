package dev.outbox.bench.relay;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import com.sun.management.OperatingSystemMXBean;
import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.outbox.core.MessageIds;
import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.OutboxMessage;
import dev.outbox.relay.PublishMode;
import dev.outbox.relay.Relay;
import dev.outbox.relay.internal.ProducerSettings;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import javax.management.ObjectName;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.AppInfoParser;
import org.jooq.DSLContext;
import org.postgresql.ds.PGSimpleDataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Throughput of the relay draining a pre-loaded backlog, next to a plain {@link KafkaProducer}
 * sending the same records to the same broker, and the latency from commit to consumption of single
 * messages appended to an idle relay. Runs on the test kit's PostgreSQL (a fresh database) and its
 * Kafka broker (started in this JVM unless {@code OUTBOX_TEST_KAFKA_BOOTSTRAP} names one).
 *
 * <p>Options: {@code --messages N} (backlog per batch size, default 200000), {@code --batch-sizes
 * a,b,c} (default 100,500,2000), {@code --latency-samples N} (default 500), {@code --skip-million}
 * (skip the 1,000,000-message drain), {@code --million-batch-size N} (default 500), {@code
 * --partitions N} (topic partitions, default 8), {@code --keys N} (distinct keys, default 10000),
 * {@code --payload-bytes N} (default 1024), {@code --workers N} (relay worker threads, default the
 * relay's default), {@code --producer k=v,k=v} (extra producer properties for the relay and the plain
 * producer alike), {@code --warmup N} (messages sent through both, unreported, before measuring; default 50000, 0
 * to skip), {@code --steady-seconds N} (seconds per steady load level, default 15, 0 to skip the idle cost and
 * the steady loads), {@code --compare-listen} (idle latency also with the opt-in LISTEN wake-up, then with
 * the probe again), {@code --out FILE} (also write the summary there). See {@code benchmarks/RELAY.md}.
 */
public final class RelayBenchmark {
    private static final String TYPE = "BenchPayload";
    private static final String CONTENT_TYPE = "application/octet-stream";
    private static final int LOAD_CHUNK = 5_000;
    private static final int STEADY_CHUNK = 10;
    private static final String RELAY_APP = "bench-steady-relay";

    private final Options options;
    private final TestKafka kafka;
    private final TestDatabase db;
    private final DSLContext dsl;
    private final Outbox outbox = Outbox.builder().build();
    private final List<String> report = new ArrayList<>();

    // the relay's publish mode in drainWithRelay; PublishModeBenchmark alternates it
    PublishMode publishMode = PublishMode.IDEMPOTENT;

    RelayBenchmark(Options options, TestKafka kafka, TestDatabase db) {
        this.options = options;
        this.kafka = kafka;
        this.db = db;
        this.dsl = db.dsl();
    }

    public static void main(String[] args) throws Exception {
        Options options = Options.parse(args);
        quietLogs();
        TestKafka kafka = RealServices.kafka();
        try (TestDatabase db = TestDatabase.create()) {
            new RelayBenchmark(options, kafka, db).run();
        }
        // the shared broker stops in a shutdown hook; its shutdown chatter is not part of the report
        silenceLogs();
        System.exit(0);
    }

    private void run() throws Exception {
        line("# relay benchmark, " + Instant.now());
        conditions();
        if (options.warmup > 0) {
            progress("warm-up (not reported): %d messages through the relay and the plain producer", options.warmup);
            drainWithRelay(options.warmup, Relay.Builder.DEFAULT_BATCH_SIZE);
            plainProducer(options.warmup);
            line("after an unreported warm-up of " + options.warmup + " messages through the relay (batch "
                    + Relay.Builder.DEFAULT_BATCH_SIZE + ") and the plain producer, in this JVM");
        }
        line("");
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute(
                    "vacuum analyze " + db.schema() + ".outbox_message"); // leave no autovacuum work behind the warm-up
        }
        latency(false);
        if (options.compareListen) {
            latency(true);
            latency(false);
        }
        line("");
        line("## drain a backlog of " + options.messages + " messages of " + options.payloadBytes
                + " B (random bytes), " + options.keys + " keys over 64 shards, topic with " + options.partitions
                + " partitions");
        line(String.format(
                Locale.ROOT,
                "%-6s %11s %11s %6s %5s  %-34s %-34s %s",
                "batch",
                "relay msg/s",
                "plain msg/s",
                "ratio",
                "dups",
                "relay CPU per message",
                "plain CPU per message",
                "load avg before / after the relay run"));
        double drainRate = 0;
        for (int batchSize : options.batchSizes) {
            Drain relay = drainWithRelay(options.messages, batchSize);
            drainRate = Math.max(drainRate, relay.rate());
            Drain plain = plainProducer(options.messages);
            line(String.format(
                    Locale.ROOT,
                    "%-6d %11.0f %11.0f %6.2f %5d  %-34s %-34s %s / %s",
                    batchSize,
                    relay.rate(),
                    plain.rate(),
                    relay.rate() / plain.rate(),
                    relay.duplicates,
                    relay.cpu.perMessage(relay.messages),
                    plain.cpu.perMessage(plain.messages),
                    relay.loadBefore,
                    relay.loadAfter));
        }
        if (options.steadySeconds > 0) {
            line("");
            new SteadyLoad(drainRate).run();
        }
        if (!options.skipMillion) {
            line("");
            line("## drain a backlog of 1000000 messages, batch size " + options.millionBatchSize);
            Drain million = drainWithRelay(1_000_000, options.millionBatchSize);
            line(String.format(
                    Locale.ROOT,
                    "relay: %.0f msg/s (%.1f s, %d duplicates, CPU per message %s, load avg %s / %s)",
                    million.rate(),
                    million.nanos / 1e9,
                    million.duplicates,
                    million.cpu.perMessage(million.messages),
                    million.loadBefore,
                    million.loadAfter));
        }
        line("");
        line("load average at the end: " + loadAverage());
        if (options.out != null) {
            Files.write(options.out, report);
        }
    }

    // ---- the relay ----

    /** One measured drain: messages and nanoseconds, plus what was seen around it. */
    record Drain(long messages, long nanos, long duplicates, String loadBefore, String loadAfter, Cpu cpu) {
        double rate() {
            return messages / (nanos / 1e9);
        }
    }

    Drain drainWithRelay(int messages, int batchSize) throws Exception {
        String topic = newTopic("relay-b" + batchSize);
        long loadStart = System.nanoTime();
        load(topic, messages);
        progress(
                "loaded %d rows for topic %s in %.1f s; vacuum analyze",
                messages, topic, (System.nanoTime() - loadStart) / 1e9);
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("vacuum analyze " + db.schema() + ".outbox_message");
        }
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        Relay.Builder builder = Relay.builder()
                .dataSource(db.newDataSource(options.workers + 4))
                .producerProperties(producerProperties())
                .batchSize(batchSize)
                .workerThreads(options.workers)
                .meterRegistry(registry)
                .publishMode(publishMode);
        String loadBefore = loadAverage();
        long started;
        long elapsed;
        Cpu cpu;
        try (Relay relay = builder.build()) {
            Counter published = registry.get("outbox.relay.published").counter();
            Map<String, Double> threadsBefore = threadCpu();
            Cpu cpuBefore = Cpu.now();
            started = System.nanoTime();
            relay.start();
            long deadline = started + TimeUnit.MINUTES.toNanos(30);
            while (published.count() < messages) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException(
                            "backlog not drained within 30 min: " + (long) published.count() + " of " + messages);
                }
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(2));
            }
            elapsed = System.nanoTime() - started;
            cpu = Cpu.now().minus(cpuBefore);
            progress(
                    "relay JVM CPU per message by thread: %s",
                    threadCpuDelta(threadsBefore, threadCpu(), cpu.jvm(), messages));
            progress("relay producer: %s", producerStats("outbox-relay-"));
        }
        String loadAfter = loadAverage();
        long left = scalar("select count(*) from " + db.schema() + ".outbox_message");
        if (left != 0) {
            throw new IllegalStateException(
                    left + " rows left in the outbox after the relay counted " + messages + " published");
        }
        long inKafka = endOffsets(topic);
        if (inKafka < messages) {
            throw new IllegalStateException(
                    "only " + inKafka + " records in " + topic + " for " + messages + " messages");
        }
        progress(
                "relay, batch %d: %d messages in %.2f s = %.0f msg/s; %d records in Kafka; CPU per message %s",
                batchSize, messages, elapsed / 1e9, messages / (elapsed / 1e9), inKafka, cpu.perMessage(messages));
        deleteTopic(topic);
        return new Drain(messages, elapsed, inKafka - messages, loadBefore, loadAfter, cpu);
    }

    /** Appends through {@link Outbox#appendAll}, {@value #LOAD_CHUNK} messages per transaction. */
    private void load(String topic, int messages) {
        List<OutboxMessage> chunk = new ArrayList<>(LOAD_CHUNK);
        for (int i = 0; i < messages; i++) {
            chunk.add(OutboxMessage.of(topic, key(i), TYPE, CONTENT_TYPE, payload(i)));
            if (chunk.size() == LOAD_CHUNK || i == messages - 1) {
                List<OutboxMessage> batch = List.copyOf(chunk);
                dsl.transaction(tx -> outbox.appendAll(tx.dsl(), batch));
                chunk.clear();
            }
        }
    }

    // ---- the plain producer ----

    /**
     * The same records as the relay sends (key, payload, the five outbox headers) to a topic with the
     * same partition count, from one producer with the relay's settings: send everything, then flush.
     */
    private Drain plainProducer(int messages) throws Exception {
        String topic = newTopic("plain");
        // exactly the configuration the relay gives its producer (acks=all, idempotence, linger, batch size, timeouts)
        Map<String, Object> props = new HashMap<>(ProducerSettings.validate(producerProperties(), "bench"));
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "bench-plain-" + topic);
        AtomicReference<Exception> failure = new AtomicReference<>();
        String loadBefore = loadAverage();
        long elapsed;
        Cpu cpu;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            producer.partitionsFor(
                    topic); // metadata outside the measurement, as the relay's producer has it after its first batch
            Map<String, Double> threadsBefore = threadCpu();
            Cpu cpuBefore = Cpu.now();
            long started = System.nanoTime();
            for (int i = 0; i < messages; i++) {
                RecordHeaders headers = new RecordHeaders();
                headers.add(OutboxHeaders.MESSAGE_ID, utf8(MessageIds.next().toString()));
                headers.add(OutboxHeaders.MESSAGE_TYPE, utf8(TYPE));
                headers.add(OutboxHeaders.CONTENT_TYPE, utf8(CONTENT_TYPE));
                headers.add(OutboxHeaders.CREATED_AT, utf8(Instant.now().toString()));
                headers.add(OutboxHeaders.OUTBOX_ID, utf8(Long.toString(i)));
                producer.send(new ProducerRecord<>(topic, null, null, utf8(key(i)), payload(i), headers), (m, e) -> {
                    if (e != null) {
                        failure.compareAndSet(null, e);
                    }
                });
            }
            producer.flush();
            elapsed = System.nanoTime() - started;
            cpu = Cpu.now().minus(cpuBefore);
            progress(
                    "plain JVM CPU per message by thread: %s",
                    threadCpuDelta(threadsBefore, threadCpu(), cpu.jvm(), messages));
            progress("plain producer: %s", producerStats("bench-plain"));
        }
        if (failure.get() != null) {
            throw new IllegalStateException("plain producer failed: " + failure.get(), failure.get());
        }
        long inKafka = endOffsets(topic);
        progress(
                "plain producer: %d messages in %.2f s = %.0f msg/s; %d records in Kafka; CPU per message %s",
                messages, elapsed / 1e9, messages / (elapsed / 1e9), inKafka, cpu.perMessage(messages));
        deleteTopic(topic);
        return new Drain(messages, elapsed, inKafka - messages, loadBefore, loadAverage(), cpu);
    }

    // ---- latency ----

    /**
     * Commit → consumed: from {@code transaction(...)} returning in the appender (the commit is done)
     * to a consumer's {@code poll} returning the record. Each sample is one message in its own
     * transaction, appended every 20 ms to an otherwise idle relay (no backlog). With {@code listen},
     * the producer notifies in its transaction and the relay LISTENs on a connection of its own (the
     * opt-in wake-up), for comparison with the probe.
     */
    private void latency(boolean listen) throws Exception {
        int samples = options.latencySamples;
        int warmup = Math.min(50, samples / 10);
        String topic = newTopic("latency");
        Map<UUID, Long> committed = new ConcurrentHashMap<>();
        Map<UUID, Long> consumed = new ConcurrentHashMap<>();
        AtomicBoolean running = new AtomicBoolean(true);
        Thread reader = timingConsumer(topic, consumed, running);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        String loadBefore = loadAverage();
        Relay.Builder builder = Relay.builder()
                .dataSource(db.newDataSource(options.workers + 4))
                .producerProperties(producerProperties())
                .workerThreads(options.workers)
                .meterRegistry(registry);
        Outbox outbox = this.outbox;
        if (listen) {
            PGSimpleDataSource session = new PGSimpleDataSource();
            session.setUrl(db.jdbcUrl());
            session.setUser(db.user());
            if (!db.password().isEmpty()) {
                session.setPassword(db.password());
            }
            builder.listenDataSource(session);
            outbox = Outbox.builder().notifyInTransaction(true).build();
        }
        Outbox appender = outbox;
        try (Relay relay = builder.build()) {
            relay.start();
            long next = System.nanoTime();
            List<UUID> order = new ArrayList<>();
            for (int i = 0; i < samples + warmup; i++) {
                LockSupport.parkNanos(next - System.nanoTime());
                next += TimeUnit.MILLISECONDS.toNanos(20);
                OutboxMessage m = OutboxMessage.of(topic, key(i), TYPE, CONTENT_TYPE, payload(i));
                UUID id = dsl.transactionResult(tx -> appender.append(tx.dsl(), m));
                committed.put(id, System.nanoTime());
                order.add(id);
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (consumed.size() < order.size() && System.nanoTime() < deadline) {
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
            }
            running.set(false);
            reader.join(10_000);
            if (consumed.size() < order.size()) {
                throw new IllegalStateException(
                        "only " + consumed.size() + " of " + order.size() + " latency samples were consumed");
            }
            double[] ms = order.subList(warmup, order.size()).stream()
                    .mapToDouble(id -> (consumed.get(id) - committed.get(id)) / 1e6)
                    .sorted()
                    .toArray();
            long over25 = Arrays.stream(ms).filter(v -> v > 25).count();
            line("## latency, commit -> consumed, single messages every 20 ms to an idle relay, woken by "
                    + (listen
                            ? "LISTEN (producer notifies in its transaction)"
                            : "the probe (every " + Relay.Builder.DEFAULT_PROBE_INTERVAL.toMillis()
                                    + " ms, no notification)"));
            line(String.format(
                    Locale.ROOT,
                    "%d samples after %d warm-up: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms, min %.1f ms,"
                            + " %d above 25 ms (load avg %s / %s)",
                    ms.length,
                    warmup,
                    percentile(ms, 50),
                    percentile(ms, 90),
                    percentile(ms, 99),
                    ms[ms.length - 1],
                    ms[0],
                    over25,
                    loadBefore,
                    loadAverage()));
        } finally {
            running.set(false);
        }
        deleteTopic(topic);
    }

    // ---- idle cost and steady loads ----

    /**
     * What an idle relay costs, and latency and cost under steady loads of a quarter and half the
     * best drain rate of this run: background writers append in transactions of {@value #STEADY_CHUNK}
     * messages at a paced rate while single probe messages, every 20 ms on a topic of their own, are
     * timed from commit to consumed. CPU is counted for the relay's threads in this JVM and for the
     * PostgreSQL backends of the relay's own pool (application name {@value #RELAY_APP}), so that the
     * writers' inserts are not counted; vacuum of the deleted rows is not in these figures.
     */
    private final class SteadyLoad {
        private final double drainRate;

        SteadyLoad(double drainRate) {
            this.drainRate = drainRate;
        }

        void run() throws Exception {
            line("## idle cost and steady loads (relay defaults: probe every "
                    + Relay.Builder.DEFAULT_PROBE_INTERVAL.toMillis() + " ms, batch " + Relay.Builder.DEFAULT_BATCH_SIZE
                    + "); best drain rate of this run " + Math.round(drainRate) + " msg/s");
            String probeTopic = newTopic("steady-probe");
            String loadTopic = newTopic("steady-load");
            HikariConfig hc = new HikariConfig();
            hc.setJdbcUrl(db.jdbcUrl());
            hc.setUsername(db.user());
            if (!db.password().isEmpty()) {
                hc.setPassword(db.password());
            }
            hc.setMaximumPoolSize(options.workers + 4);
            hc.setMinimumIdle(options.workers + 4);
            hc.addDataSourceProperty("ApplicationName", RELAY_APP);
            try (HikariDataSource pool = new HikariDataSource(hc);
                    Relay relay = Relay.builder()
                            .dataSource(pool)
                            .producerProperties(producerProperties())
                            .workerThreads(options.workers)
                            .meterRegistry(new SimpleMeterRegistry())
                            .build()) {
                relay.start();
                Thread.sleep(5_000);
                int idleSeconds = Math.max(10, options.steadySeconds);
                double[] before = relayCpu();
                Thread.sleep(idleSeconds * 1000L);
                double[] after = relayCpu();
                line(String.format(
                        Locale.ROOT,
                        "idle, %d s, %d shards: relay threads %.2f %% of one core, its PostgreSQL backends %.2f %%"
                                + " of one core",
                        idleSeconds,
                        relay.ownedShards().size(),
                        (after[0] - before[0]) * 100 / idleSeconds,
                        (after[1] - before[1]) * 100 / idleSeconds));
                line(String.format(
                        Locale.ROOT,
                        "%-12s %-14s %-40s %s",
                        "target msg/s",
                        "achieved msg/s",
                        "probe commit -> consumed p50 / p99 / max",
                        "relay CPU per message: JVM threads + its PostgreSQL backends"));
                for (double share : new double[] {0.25, 0.5}) {
                    level(relay, drainRate * share, probeTopic, loadTopic);
                }
            }
            deleteTopic(probeTopic);
            deleteTopic(loadTopic);
        }

        private void level(Relay relay, double rate, String probeTopic, String loadTopic) throws Exception {
            AtomicBoolean running = new AtomicBoolean(true);
            AtomicLong appended = new AtomicLong();
            int writers = 2;
            List<Thread> threads = new ArrayList<>();
            for (int w = 0; w < writers; w++) {
                int writer = w;
                Thread t = new Thread(
                        () -> {
                            long perTx = (long) (1e9 * STEADY_CHUNK * writers / rate);
                            long next = System.nanoTime();
                            int i = writer * 1_000_000;
                            try (Connection c = db.connect()) {
                                c.setAutoCommit(false);
                                while (running.get()) {
                                    LockSupport.parkNanos(next - System.nanoTime());
                                    next += perTx;
                                    List<OutboxMessage> chunk = new ArrayList<>(STEADY_CHUNK);
                                    for (int k = 0; k < STEADY_CHUNK; k++, i++) {
                                        chunk.add(OutboxMessage.of(
                                                loadTopic, key(i), TYPE, CONTENT_TYPE, payload(i % 1000)));
                                    }
                                    outbox.appendAll(c, chunk);
                                    c.commit();
                                    appended.addAndGet(STEADY_CHUNK);
                                }
                            } catch (SQLException e) {
                                progress("steady writer failed: %s", e);
                            }
                        },
                        "steady-writer-" + w);
                t.setDaemon(true);
                threads.add(t);
                t.start();
            }
            Thread.sleep(2_000);
            Map<UUID, Long> committed = new ConcurrentHashMap<>();
            Map<UUID, Long> consumed = new ConcurrentHashMap<>();
            AtomicBoolean reading = new AtomicBoolean(true);
            Thread reader = timingConsumer(probeTopic, consumed, reading);
            long appendedBefore = appended.get();
            double[] cpuBefore = relayCpu();
            long started = System.nanoTime();
            long next = started;
            List<UUID> order = new ArrayList<>();
            int i = 0;
            while (System.nanoTime() - started < options.steadySeconds * 1_000_000_000L) {
                LockSupport.parkNanos(next - System.nanoTime());
                next += TimeUnit.MILLISECONDS.toNanos(20);
                OutboxMessage m = OutboxMessage.of(probeTopic, "probe-" + (i++), TYPE, CONTENT_TYPE, payload(i));
                UUID id = dsl.transactionResult(tx -> outbox.append(tx.dsl(), m));
                committed.put(id, System.nanoTime());
                order.add(id);
            }
            long elapsed = System.nanoTime() - started;
            double[] cpuAfter = relayCpu();
            long messages = appended.get() - appendedBefore + order.size();
            running.set(false);
            for (Thread t : threads) {
                t.join(10_000);
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (consumed.size() < order.size() && System.nanoTime() < deadline) {
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
            }
            reading.set(false);
            reader.join(10_000);
            double[] ms = order.stream()
                    .filter(consumed::containsKey)
                    .mapToDouble(id -> (consumed.get(id) - committed.get(id)) / 1e6)
                    .sorted()
                    .toArray();
            double achieved = messages / (elapsed / 1e9);
            line(String.format(
                    Locale.ROOT,
                    "%-12.0f %-14.0f %-40s JVM %.1f us + PostgreSQL %.1f us (load avg %s)",
                    rate,
                    achieved,
                    String.format(
                            Locale.ROOT,
                            "%.1f / %.1f / %.1f ms (%d of %d)",
                            percentile(ms, 50),
                            percentile(ms, 99),
                            ms[ms.length - 1],
                            ms.length,
                            order.size()),
                    (cpuAfter[0] - cpuBefore[0]) * 1e6 / messages,
                    (cpuAfter[1] - cpuBefore[1]) * 1e6 / messages,
                    loadAverage()));
            // let the relay drain what the writers left before the next level
            long drainDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (scalar("select count(*) from " + db.schema() + ".outbox_message") > 0
                    && System.nanoTime() < drainDeadline) {
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
            }
        }

        /** @return {CPU seconds of the relay's threads in this JVM, CPU seconds of the relay pool's PostgreSQL backends} */
        private double[] relayCpu() throws SQLException {
            Map<String, Double> threads = threadCpu();
            double jvm = threads.getOrDefault("relay workers", 0.0)
                    + threads.getOrDefault("relay other", 0.0)
                    + threads.getOrDefault("producer I/O", 0.0);
            double pg = 0;
            try (Connection c = db.connect();
                    Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery(
                            "select pid from pg_stat_activity where application_name = '" + RELAY_APP + "'")) {
                while (rs.next()) {
                    pg += processCpuSeconds(rs.getInt(1));
                }
            }
            return new double[] {jvm, pg};
        }
    }

    private static double processCpuSeconds(int pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return (Long.parseLong(f[11]) + Long.parseLong(f[12])) / 100.0;
        } catch (Exception e) {
            return 0;
        }
    }

    /**
     * Starts a consumer thread that reads {@code topic} from its end and records, per message id, when
     * {@code poll} returned it, until {@code running} is false.
     */
    private Thread timingConsumer(String topic, Map<UUID, Long> consumed, AtomicBoolean running) {
        Properties cp = kafka.consumerProperties("unused");
        cp.remove("group.id");
        cp.put("fetch.min.bytes", "1");
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp);
        List<TopicPartition> partitions = new ArrayList<>();
        consumer.partitionsFor(topic).forEach(p -> partitions.add(new TopicPartition(topic, p.partition())));
        consumer.assign(partitions);
        consumer.seekToEnd(partitions);
        partitions.forEach(consumer::position);
        Thread reader = new Thread(
                () -> {
                    try (consumer) {
                        while (running.get()) {
                            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(50))) {
                                long now = System.nanoTime();
                                Header h = r.headers().lastHeader(OutboxHeaders.MESSAGE_ID);
                                consumed.putIfAbsent(
                                        UUID.fromString(new String(h.value(), StandardCharsets.UTF_8)), now);
                            }
                        }
                    }
                },
                "timing-consumer-" + topic);
        reader.start();
        return reader;
    }

    private static double percentile(double[] sorted, double p) {
        int i = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    // ---- helpers ----

    private Map<String, Object> producerProperties() {
        Map<String, Object> p = new LinkedHashMap<>(options.producer);
        p.put("bootstrap.servers", kafka.bootstrapServers());
        return p;
    }

    private String key(int i) {
        return "key-" + (i % options.keys);
    }

    /** Random bytes, the same for one index in every run (seeded by the index), not kept in memory. */
    private byte[] payload(int i) {
        byte[] b = new byte[options.payloadBytes];
        new SplittableRandom(0x5eed_0000L + i).nextBytes(b);
        return b;
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /**
     * Creates a topic and writes one warm-up record to each partition with a throwaway producer, so
     * that every partition has a leader that takes writes before anything is measured (an idempotent
     * producer that meets a partition still electing its leader can retry for a long time). The
     * warm-up records are subtracted in {@link #endOffsets}.
     */
    private String newTopic(String prefix) {
        String topic = "bench-" + prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
        kafka.createTopic(topic, options.partitions);
        Map<String, Object> props = new HashMap<>();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        try (KafkaProducer<byte[], byte[]> warmup = new KafkaProducer<>(props)) {
            for (int p = 0; p < options.partitions; p++) {
                warmup.send(new ProducerRecord<>(topic, p, null, utf8("warm-up")))
                        .get(60, TimeUnit.SECONDS);
            }
        } catch (Exception e) {
            throw new IllegalStateException("topic " + topic + " did not take a warm-up record: " + e, e);
        }
        return topic;
    }

    private void deleteTopic(String topic) {
        try (Admin admin = kafka.admin()) {
            admin.deleteTopics(List.of(topic)).all().get(60, TimeUnit.SECONDS);
        } catch (Exception e) {
            progress("could not delete topic %s: %s", topic, e);
        }
    }

    private long endOffsets(String topic) throws Exception {
        try (Admin admin = kafka.admin()) {
            Map<TopicPartition, OffsetSpec> request = new HashMap<>();
            for (int p = 0; p < options.partitions; p++) {
                request.put(new TopicPartition(topic, p), OffsetSpec.latest());
            }
            long warmup = options.partitions;
            return admin.listOffsets(request).all().get(60, TimeUnit.SECONDS).values().stream()
                            .mapToLong(o -> o.offset())
                            .sum()
                    - warmup;
        }
    }

    private long scalar(String sql) throws SQLException {
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    private void conditions() throws SQLException {
        String pg;
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("show server_version")) {
            rs.next();
            pg = rs.getString(1);
        }
        long memory = ((OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getTotalMemorySize();
        line(String.format(
                Locale.ROOT,
                "machine: %d cpus, %.1f GiB RAM; JDK %s (%s); PostgreSQL %s at %s; Kafka clients %s," + " broker %s",
                Runtime.getRuntime().availableProcessors(),
                memory / (1024.0 * 1024 * 1024),
                Runtime.version(),
                System.getProperty("java.vm.name"),
                pg,
                db.jdbcUrl().replaceAll("\\?.*", ""),
                AppInfoParser.getVersion(),
                kafka));
        line("JVM: max heap " + Runtime.getRuntime().maxMemory() / (1024 * 1024) + " MiB, args "
                + ManagementFactory.getRuntimeMXBean().getInputArguments());
        line("relay: " + options.workers + " worker threads, producer " + producerPropertiesForDisplay()
                + "; plain producer: the same properties");
        line("load average at the start: " + loadAverage());
    }

    private String producerPropertiesForDisplay() {
        Map<String, Object> shown = new TreeMap<>(ProducerSettings.validate(producerProperties(), "bench"));
        shown.keySet().removeAll(List.of("bootstrap.servers", "client.id", "key.serializer", "value.serializer"));
        return shown.toString();
    }

    /** CPU seconds used so far by this JVM (relay, producer and, when in-JVM, the broker) and by all postgres processes. */
    record Cpu(double jvm, double postgres) {
        static Cpu now() {
            double jvm =
                    ((OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime() / 1e9;
            return new Cpu(jvm, postgresCpuSeconds());
        }

        Cpu minus(Cpu earlier) {
            return new Cpu(jvm - earlier.jvm, postgres - earlier.postgres);
        }

        String perMessage(long messages) {
            return String.format(
                    Locale.ROOT, "JVM %.1f us + PostgreSQL %.1f us", jvm * 1e6 / messages, postgres * 1e6 / messages);
        }
    }

    /** CPU seconds per thread group of this JVM, from the thread MXBean (threads that ended are not counted). */
    private static Map<String, Double> threadCpu() {
        var mx = ManagementFactory.getThreadMXBean();
        Map<String, Double> out = new TreeMap<>();
        for (var info : mx.getThreadInfo(mx.getAllThreadIds())) {
            if (info == null) {
                continue;
            }
            long t = mx.getThreadCpuTime(info.getThreadId());
            if (t > 0) {
                out.merge(threadGroup(info.getThreadName()), t / 1e9, Double::sum);
            }
        }
        return out;
    }

    private static String threadGroup(String name) {
        if (name.startsWith("relay-") && name.contains("-worker-")) {
            return "relay workers";
        }
        if (name.startsWith("relay-")) {
            return "relay other";
        }
        if (name.startsWith("kafka-producer-network-thread")) {
            return "producer I/O";
        }
        if (name.startsWith("data-plane-kafka")
                || name.startsWith("kafka-")
                || name.contains("controller")
                || name.contains("broker")) {
            return "broker";
        }
        if (name.equals("main")) {
            return "main";
        }
        return "other";
    }

    private static String threadCpuDelta(
            Map<String, Double> before, Map<String, Double> after, double processSeconds, long messages) {
        StringBuilder sb = new StringBuilder();
        double known = 0;
        for (var e : after.entrySet()) {
            double d = e.getValue() - before.getOrDefault(e.getKey(), 0.0);
            known += d;
            sb.append(String.format(Locale.ROOT, "%s %.1f us, ", e.getKey(), d * 1e6 / messages));
        }
        sb.append(
                String.format(Locale.ROOT, "GC/JIT/ended threads %.1f us", (processSeconds - known) * 1e6 / messages));
        return sb.toString();
    }

    /** @return batch and request sizes of the producers of this JVM whose client id starts with {@code prefix}, from JMX */
    private static String producerStats(String prefix) {
        try {
            var server = ManagementFactory.getPlatformMBeanServer();
            StringBuilder sb = new StringBuilder();
            for (var name :
                    server.queryNames(new ObjectName("kafka.producer:type=producer-metrics,client-id=*"), null)) {
                if (!name.getKeyProperty("client-id").startsWith(prefix)) {
                    continue;
                }
                sb.append(String.format(
                        Locale.ROOT,
                        "batch-size-avg %.0f B, records-per-request-avg %.1f, request-latency-avg %.1f ms, "
                                + "bufferpool-wait-ratio %.3f",
                        (Double) server.getAttribute(name, "batch-size-avg"),
                        (Double) server.getAttribute(name, "records-per-request-avg"),
                        (Double) server.getAttribute(name, "request-latency-avg"),
                        (Double) server.getAttribute(name, "bufferpool-wait-ratio")));
            }
            return sb.toString();
        } catch (Exception e) {
            return "producer metrics unavailable: " + e;
        }
    }

    private static double postgresCpuSeconds() {
        long ticks = 0;
        try (var dirs = Files.newDirectoryStream(Path.of("/proc"), "[0-9]*")) {
            for (Path dir : dirs) {
                try {
                    String stat = Files.readString(dir.resolve("stat"));
                    int close = stat.lastIndexOf(')');
                    if (!stat.substring(stat.indexOf('(') + 1, close).startsWith("postgres")) {
                        continue;
                    }
                    String[] f = stat.substring(close + 2).split(" ");
                    ticks += Long.parseLong(f[11]) + Long.parseLong(f[12]);
                } catch (Exception e) {
                    // the process ended while it was read
                }
            }
        } catch (Exception e) {
            return Double.NaN;
        }
        return ticks / 100.0; // USER_HZ
    }

    static String loadAverage() {
        try {
            String[] parts = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return parts[0] + " " + parts[1] + " " + parts[2];
        } catch (Exception e) {
            return String.format(
                    Locale.ROOT,
                    "%.2f",
                    ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
        }
    }

    void line(String s) {
        report.add(s);
        System.out.println(s);
        System.out.flush();
    }

    private static void progress(String format, Object... args) {
        System.err.printf(Locale.ROOT, "[relay-bench] " + format + "%n", args);
    }

    static void quietLogs() {
        if (LoggerFactory.getILoggerFactory() instanceof LoggerContext context) {
            context.getLogger(Logger.ROOT_LOGGER_NAME).setLevel(Level.WARN);
            context.getLogger("org.jooq").setLevel(Level.ERROR);
        }
    }

    private static void silenceLogs() {
        if (LoggerFactory.getILoggerFactory() instanceof LoggerContext context) {
            context.getLogger(Logger.ROOT_LOGGER_NAME).setLevel(Level.OFF);
        }
    }

    /** The command line. */
    record Options(
            int messages,
            int[] batchSizes,
            int latencySamples,
            boolean skipMillion,
            int millionBatchSize,
            int partitions,
            int keys,
            int payloadBytes,
            int workers,
            Map<String, String> producer,
            Path out,
            int warmup,
            int steadySeconds,
            boolean compareListen) {

        static Options parse(String[] args) {
            int messages = 200_000;
            int[] batchSizes = {100, 500, 2_000};
            int latencySamples = 500;
            boolean skipMillion = false;
            int millionBatchSize = Relay.Builder.DEFAULT_BATCH_SIZE;
            int partitions = 8;
            int keys = 10_000;
            int payloadBytes = 1024;
            int workers = Relay.Builder.DEFAULT_WORKER_THREADS;
            Map<String, String> producer = new LinkedHashMap<>();
            Path out = null;
            int warmup = 50_000;
            int steadySeconds = 15;
            boolean compareListen = false;
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                if (a.equals("--skip-million")) {
                    skipMillion = true;
                    continue;
                }
                if (a.equals("--compare-listen")) {
                    compareListen = true;
                    continue;
                }
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException("option " + a + " needs a value");
                }
                String v = args[++i];
                switch (a) {
                    case "--messages" -> messages = positive(a, v);
                    case "--batch-sizes" ->
                        batchSizes = Arrays.stream(v.split(","))
                                .mapToInt(s -> positive(a, s.trim()))
                                .toArray();
                    case "--latency-samples" -> latencySamples = positive(a, v);
                    case "--million-batch-size" -> millionBatchSize = positive(a, v);
                    case "--partitions" -> partitions = positive(a, v);
                    case "--keys" -> keys = positive(a, v);
                    case "--payload-bytes" -> payloadBytes = positive(a, v);
                    case "--workers" -> workers = positive(a, v);
                    case "--out" -> out = Path.of(v);
                    case "--warmup" -> warmup = Integer.parseInt(v);
                    case "--steady-seconds" -> steadySeconds = Integer.parseInt(v);
                    case "--producer" -> {
                        for (String kv : v.split(",")) {
                            String[] p = kv.split("=", 2);
                            if (p.length != 2) {
                                throw new IllegalArgumentException(
                                        "--producer takes key=value pairs separated by commas, got '" + kv + "'");
                            }
                            producer.put(p[0].trim(), p[1].trim());
                        }
                    }
                    default ->
                        throw new IllegalArgumentException(
                                "unknown option " + a + "; see the class javadoc or benchmarks/RELAY.md");
                }
            }
            return new Options(
                    messages,
                    batchSizes,
                    latencySamples,
                    skipMillion,
                    millionBatchSize,
                    partitions,
                    keys,
                    payloadBytes,
                    workers,
                    Map.copyOf(producer),
                    out,
                    warmup,
                    steadySeconds,
                    compareListen);
        }

        private static int positive(String name, String v) {
            try {
                int n = Integer.parseInt(v);
                if (n > 0) {
                    return n;
                }
            } catch (NumberFormatException e) {
                // fall through to the message below
            }
            throw new IllegalArgumentException(name + " must be a positive integer, got '" + v + "'");
        }
    }
}
