package dev.outbox.bench.relay;

import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxMessage;
import dev.outbox.relay.Relay;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;

/** The idle latency scenario: commit to consumed of single messages appended to an idle relay. */
final class IdleLatency {
    /** How the relay learns of new rows, and the producer that goes with it. */
    interface WakeUp {
        /** The default: the relay's probe, appends without a notification. */
        WakeUp PROBE = new WakeUp() {
            @Override
            public Outbox configure(Relay.Builder builder, BenchContext ctx) {
                return ctx.outbox;
            }

            @Override
            public String description() {
                return "the probe (every " + Relay.Builder.DEFAULT_PROBE_INTERVAL.toMillis() + " ms, no notification)";
            }
        };

        /**
         * Sets up the relay's wake-up on {@code builder}.
         *
         * @return the outbox the appender uses with it
         */
        Outbox configure(Relay.Builder builder, BenchContext ctx);

        /** @return how the relay is woken, for the report */
        String description();
    }

    /**
     * Samples dropped before those measured: 3 s at one every 20 ms. In a JVM a few seconds old (the
     * benchmark's warm-up sends its messages as a backlog, not one at a time) the JIT still compiles the
     * idle path then, 600 compilations a second on the two cores, and the first second of samples had 11
     * to 16 above 25 ms in every run.
     */
    private static final int WARM_UP_SAMPLES = 150;

    private final BenchContext ctx;

    IdleLatency(BenchContext ctx) {
        this.ctx = ctx;
    }

    /**
     * Commit → consumed: from {@code transaction(...)} returning in the appender (the commit is done)
     * to a consumer's {@code poll} returning the record. Each sample is one message in its own
     * transaction, appended every 20 ms to an otherwise idle relay (no backlog), woken as {@code wakeUp}
     * sets it up.
     */
    void measure(WakeUp wakeUp) throws Exception {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        Relay.Builder builder = Relay.builder()
                .dataSource(ctx.db.newDataSource(ctx.options.workers() + 4))
                .producerProperties(ctx.producerProperties())
                .workerThreads(ctx.options.workers())
                .vacuumAfterRows(ctx.options.vacuumAfterRows())
                .meterRegistry(registry);
        Outbox appender = wakeUp.configure(builder, ctx);
        String loadBefore = Report.loadAverage();
        try (Relay relay = builder.build()) {
            relay.start();
            sample("an idle relay, woken by " + wakeUp.description(), appender, loadBefore);
        }
    }

    /**
     * The same samples with the relay in a JVM of its own ({@link RelayChild}: the relay's command-line
     * process with its default settings and the JVM's default options, as deployed), after its idle
     * cost: the CPU of its whole process and of its PostgreSQL backends.
     */
    void measureInOwnProcess() throws Exception {
        try (RelayChild relay = RelayChild.start(ctx)) {
            relay.awaitAllShards();
            // let the start-up's compilation and first lease rounds pass before the idle cost is counted
            Thread.sleep(5_000);
            int idleSeconds = 15;
            double[] before = relay.cpu();
            Thread.sleep(idleSeconds * 1000L);
            double[] after = relay.cpu();
            ctx.report.line(String.format(
                    Locale.ROOT,
                    "relay in its own JVM (%s), idle for %d s: its process %.2f %% of one core, its PostgreSQL"
                            + " backends %.2f %% of one core",
                    relay.describe(),
                    idleSeconds,
                    (after[0] - before[0]) * 100 / idleSeconds,
                    (after[1] - before[1]) * 100 / idleSeconds));
            sample(
                    "an idle relay in its own JVM, woken by " + WakeUp.PROBE.description(),
                    ctx.outbox,
                    Report.loadAverage());
        }
    }

    private void sample(String relay, Outbox appender, String loadBefore) throws Exception {
        int samples = ctx.options.latencySamples();
        int warmup = WARM_UP_SAMPLES;
        String topic = ctx.newTopic("latency");
        Map<UUID, Long> committed = new ConcurrentHashMap<>();
        Map<UUID, Long> consumed = new ConcurrentHashMap<>();
        AtomicBoolean running = new AtomicBoolean(true);
        Thread reader = ctx.timingConsumer(topic, consumed, running);
        try {
            // the relay's start (leases, the topic's metadata) and the consumer's first fetches are not
            // an idle relay's latency: a marker goes through first
            ctx.awaitMarker(appender, topic, consumed);
            long next = System.nanoTime();
            List<UUID> order = new ArrayList<>();
            for (int i = 0; i < samples + warmup; i++) {
                LockSupport.parkNanos(next - System.nanoTime());
                next += TimeUnit.MILLISECONDS.toNanos(20);
                OutboxMessage m = OutboxMessage.of(
                        topic, ctx.key(i), BenchContext.TYPE, BenchContext.CONTENT_TYPE, ctx.payload(i));
                UUID id = ctx.dsl.transactionResult(tx -> appender.append(tx.dsl(), m));
                committed.put(id, System.nanoTime());
                order.add(id);
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            // (a late marker may still arrive: only the samples are counted)
            while (!consumed.keySet().containsAll(order) && System.nanoTime() < deadline) {
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
            }
            running.set(false);
            reader.join(10_000);
            long arrived = order.stream().filter(consumed::containsKey).count();
            if (arrived < order.size()) {
                throw new IllegalStateException(
                        "only " + arrived + " of " + order.size() + " latency samples were consumed");
            }
            // in the order sent, then sorted
            double[] inOrder = order.subList(warmup, order.size()).stream()
                    .mapToDouble(id -> (consumed.get(id) - committed.get(id)) / 1e6)
                    .toArray();
            double[] ms = inOrder.clone();
            Arrays.sort(ms);
            long over25 = Arrays.stream(ms).filter(v -> v > 25).count();
            // where the slow ones were, in the order sent: a stall shows as a run of neighbours
            StringBuilder slow = new StringBuilder();
            for (int i = 0; i < inOrder.length; i++) {
                if (inOrder[i] > 25) {
                    slow.append(String.format(Locale.ROOT, " #%d %.0f ms", i, inOrder[i]));
                }
            }
            Report.progress("latency samples above 25 ms, by position:%s", slow.length() == 0 ? " none" : slow);
            ctx.report.line("## latency, commit -> consumed, single messages every 20 ms to " + relay);
            ctx.report.line(String.format(
                    Locale.ROOT,
                    "%d samples after %d warm-up: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms, min %.1f ms,"
                            + " %d above 25 ms (load avg %s / %s)",
                    ms.length,
                    warmup,
                    Report.percentile(ms, 50),
                    Report.percentile(ms, 90),
                    Report.percentile(ms, 99),
                    ms[ms.length - 1],
                    ms[0],
                    over25,
                    loadBefore,
                    Report.loadAverage()));
        } finally {
            running.set(false);
        }
        ctx.deleteTopic(topic);
    }
}
