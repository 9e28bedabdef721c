package dev.outbox.bench.relay;

import dev.outbox.core.MessageIds;
import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.OutboxMessage;
import dev.outbox.relay.PublishMode;
import dev.outbox.relay.Relay;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.sql.Connection;
import java.sql.Statement;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.internals.RecordHeaders;

/**
 * The drain scenario: a pre-loaded backlog drained by one relay, measured from {@code start()} until
 * its published counter reaches the backlog, and the same records sent by a plain {@link
 * KafkaProducer} with the relay's producer settings, for the ratio of the two.
 */
final class DrainScenario {
    private static final int LOAD_CHUNK = 5_000;

    private final BenchContext ctx;

    // the relay's publish mode in drainWithRelay; PublishModeBenchmark alternates it
    PublishMode publishMode = PublishMode.IDEMPOTENT;

    DrainScenario(BenchContext ctx) {
        this.ctx = ctx;
    }

    /** One measured drain: messages and nanoseconds, plus what was seen around it. */
    record Drain(long messages, long nanos, long duplicates, String loadBefore, String loadAfter, Cpu cpu) {
        double rate() {
            return messages / (nanos / 1e9);
        }
    }

    Drain drainWithRelay(int messages, int batchSize) throws Exception {
        String topic = ctx.newTopic("relay-b" + batchSize);
        long loadStart = System.nanoTime();
        load(topic, messages);
        Report.progress(
                "loaded %d rows for topic %s in %.1f s; vacuum analyze",
                messages, topic, (System.nanoTime() - loadStart) / 1e9);
        try (Connection c = ctx.db.connect();
                Statement st = c.createStatement()) {
            st.execute("vacuum analyze " + ctx.db.schema() + ".outbox_message");
        }
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        Relay.Builder builder = Relay.builder()
                .dataSource(ctx.db.newDataSource(ctx.options.workers() + 4))
                .producerProperties(ctx.producerProperties())
                .batchSize(batchSize)
                .workerThreads(ctx.options.workers())
                .vacuumAfterRows(ctx.options.vacuumAfterRows())
                .meterRegistry(registry)
                .publishMode(publishMode);
        if (ctx.options.statements()) {
            ctx.execute("create extension if not exists pg_stat_statements");
            ctx.execute("select pg_stat_statements_reset()");
        }
        String loadBefore = Report.loadAverage();
        long started;
        long elapsed;
        Cpu cpu;
        try (Relay relay = builder.build()) {
            Counter published = registry.get("outbox.relay.published").counter();
            Map<String, Double> threadsBefore = Cpu.threadCpu();
            Cpu cpuBefore = ctx.cpuNow();
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
            cpu = ctx.cpuNow().minus(cpuBefore);
            Report.progress(
                    "relay JVM CPU per message by thread: %s",
                    Cpu.threadCpuDelta(threadsBefore, Cpu.threadCpu(), cpu.jvm(), messages));
            Report.progress("relay producer: %s", Cpu.producerStats("outbox-relay-"));
            if (ctx.options.statements()) {
                for (String line : ctx.topStatements(messages)) {
                    Report.progress("drain%s", line);
                }
            }
        }
        String loadAfter = Report.loadAverage();
        long left = ctx.scalar("select count(*) from " + ctx.db.schema() + ".outbox_message");
        if (left != 0) {
            throw new IllegalStateException(
                    left + " rows left in the outbox after the relay counted " + messages + " published");
        }
        long inKafka = ctx.endOffsets(topic);
        if (inKafka < messages) {
            throw new IllegalStateException(
                    "only " + inKafka + " records in " + topic + " for " + messages + " messages");
        }
        Report.progress(
                "relay, batch %d: %d messages in %.2f s = %.0f msg/s; %d records in Kafka; CPU per message %s",
                batchSize, messages, elapsed / 1e9, messages / (elapsed / 1e9), inKafka, cpu.perMessage(messages));
        ctx.deleteTopic(topic);
        return new Drain(messages, elapsed, inKafka - messages, loadBefore, loadAfter, cpu);
    }

    /** Appends through {@link Outbox#appendAll}, {@value #LOAD_CHUNK} messages per transaction. */
    private void load(String topic, int messages) {
        List<OutboxMessage> chunk = new ArrayList<>(LOAD_CHUNK);
        for (int i = 0; i < messages; i++) {
            chunk.add(
                    OutboxMessage.of(topic, ctx.key(i), BenchContext.TYPE, BenchContext.CONTENT_TYPE, ctx.payload(i)));
            if (chunk.size() == LOAD_CHUNK || i == messages - 1) {
                List<OutboxMessage> batch = List.copyOf(chunk);
                ctx.dsl.transaction(tx -> ctx.outbox.appendAll(tx.dsl(), batch));
                chunk.clear();
            }
        }
    }

    /**
     * The same records as the relay sends (key, payload, the five outbox headers) to a topic with the
     * same partition count, from one producer with the relay's settings: send everything, then flush.
     */
    Drain plainProducer(int messages) throws Exception {
        String topic = ctx.newTopic("plain");
        // exactly the configuration the relay gives its producer (acks=all, idempotence, linger, batch size, timeouts)
        Map<String, Object> props = ctx.relayProducerConfig();
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "bench-plain-" + topic);
        AtomicReference<Exception> failure = new AtomicReference<>();
        String loadBefore = Report.loadAverage();
        long elapsed;
        Cpu cpu;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            producer.partitionsFor(
                    topic); // metadata outside the measurement, as the relay's producer has it after its first batch
            Map<String, Double> threadsBefore = Cpu.threadCpu();
            Cpu cpuBefore = ctx.cpuNow();
            long started = System.nanoTime();
            for (int i = 0; i < messages; i++) {
                RecordHeaders headers = new RecordHeaders();
                headers.add(
                        OutboxHeaders.MESSAGE_ID,
                        BenchContext.utf8(MessageIds.next().toString()));
                headers.add(OutboxHeaders.MESSAGE_TYPE, BenchContext.utf8(BenchContext.TYPE));
                headers.add(OutboxHeaders.CONTENT_TYPE, BenchContext.utf8(BenchContext.CONTENT_TYPE));
                headers.add(
                        OutboxHeaders.CREATED_AT,
                        BenchContext.utf8(Instant.now().toString()));
                headers.add(OutboxHeaders.OUTBOX_ID, BenchContext.utf8(Long.toString(i)));
                producer.send(
                        new ProducerRecord<>(topic, null, null, BenchContext.utf8(ctx.key(i)), ctx.payload(i), headers),
                        (m, e) -> {
                            if (e != null) {
                                failure.compareAndSet(null, e);
                            }
                        });
            }
            producer.flush();
            elapsed = System.nanoTime() - started;
            cpu = ctx.cpuNow().minus(cpuBefore);
            Report.progress(
                    "plain JVM CPU per message by thread: %s",
                    Cpu.threadCpuDelta(threadsBefore, Cpu.threadCpu(), cpu.jvm(), messages));
            Report.progress("plain producer: %s", Cpu.producerStats("bench-plain"));
        }
        if (failure.get() != null) {
            throw new IllegalStateException("plain producer failed: " + failure.get(), failure.get());
        }
        long inKafka = ctx.endOffsets(topic);
        Report.progress(
                "plain producer: %d messages in %.2f s = %.0f msg/s; %d records in Kafka; CPU per message %s",
                messages, elapsed / 1e9, messages / (elapsed / 1e9), inKafka, cpu.perMessage(messages));
        ctx.deleteTopic(topic);
        return new Drain(messages, elapsed, inKafka - messages, loadBefore, Report.loadAverage(), cpu);
    }
}
