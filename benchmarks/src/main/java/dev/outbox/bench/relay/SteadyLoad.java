package dev.outbox.bench.relay;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.outbox.core.OutboxMessage;
import dev.outbox.relay.Relay;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * The steady load scenario, after the idle cost ({@link IdleCost}) of the same relay, once per probe
 * interval of {@code --probe-intervals} (a relay of its own each, the warm-up before the first only): latency and cost under steady loads of a quarter and half the
 * best drain rate of this run (or the rates of {@code --steady-rates}): background writers, one per 5,000 msg/s and at least two, append in transactions of {@value #STEADY_CHUNK}
 * messages at a paced rate while single probe messages, every 20 ms on a topic of their own, are
 * timed from commit to consumed, once a marker message went through the relay and the level's timing
 * consumer. The first level is a warm-up of {@value #WARM_UP_SECONDS} s at the first rate, reported on a
 * line of its own and not counted as a measured level: the first seconds of steady load in this JVM compile the writers', the
 * relay's and the consumer's steady-state code (more than 3,000 JIT compilations in its first 15 s,
 * against 100 to 250 per 5 s from the 25th second on), and the compiler threads take their share of the two cores from
 * the relay. CPU is counted for the relay's threads in this JVM and for the
 * PostgreSQL backends of the relay's own pool (application name {@value IdleCost#RELAY_APP}), so that the
 * writers' inserts are not counted; vacuum of the deleted rows is not in these figures.
 */
final class SteadyLoad {
    private static final int STEADY_CHUNK = 10;
    private static final int WARM_UP_SECONDS = 20;

    private final BenchContext ctx;
    private final IdleCost idleCost;
    private final double drainRate;

    SteadyLoad(BenchContext ctx, double drainRate) {
        this.ctx = ctx;
        this.idleCost = new IdleCost(ctx);
        this.drainRate = drainRate;
    }

    void run() throws Exception {
        ctx.report.line("## idle cost and steady loads (relay defaults: probe every "
                + Relay.Builder.DEFAULT_PROBE_INTERVAL.toMillis() + " ms, "
                + Relay.Builder.DEFAULT_PROBE_INTERVAL_UNDER_LOAD.toMillis()
                + " ms after a read that found rows, batch "
                + Relay.Builder.DEFAULT_BATCH_SIZE
                + "); best drain rate of this run " + Math.round(drainRate) + " msg/s");
        if (ctx.options.statements()) {
            ctx.execute("create extension if not exists pg_stat_statements");
        }
        String probeTopic = ctx.newTopic("steady-probe");
        String loadTopic = ctx.newTopic("steady-load");
        double[] rates = ctx.options.steadyRates().length > 0
                ? Arrays.stream(ctx.options.steadyRates()).asDoubleStream().toArray()
                : new double[] {drainRate * 0.25, drainRate * 0.5};
        List<RelayOptions.ProbeIntervals> intervals = ctx.options.probeIntervals();
        for (int r = 0; r < intervals.size(); r++) {
            if (intervals.size() > 1) {
                ctx.report.line("# " + intervals.get(r).describe());
            }
            run(intervals.get(r), rates, r == 0, probeTopic, loadTopic);
        }
        ctx.deleteTopic(probeTopic);
        ctx.deleteTopic(loadTopic);
    }

    /**
     * The idle cost and the levels of one relay, after a warm-up level if {@code warmUp}.
     *
     * @param interval the relay's probe interval and probe interval under load
     */
    private void run(
            RelayOptions.ProbeIntervals interval, double[] rates, boolean warmUp, String probeTopic, String loadTopic)
            throws Exception {
        HikariConfig hc = ctx.poolConfig();
        hc.setMaximumPoolSize(ctx.options.workers() + 4);
        hc.setMinimumIdle(ctx.options.workers() + 4);
        hc.addDataSourceProperty("ApplicationName", IdleCost.RELAY_APP);
        Relay.Builder builder = Relay.builder()
                .producerProperties(ctx.producerProperties())
                .workerThreads(ctx.options.workers())
                .vacuumAfterRows(ctx.options.vacuumAfterRows())
                .probeInterval(Duration.ofMillis(interval.probeMs()))
                .meterRegistry(new SimpleMeterRegistry());
        if (interval.underLoadMs() > 0) {
            builder.probeIntervalUnderLoad(Duration.ofMillis(interval.underLoadMs()));
        }
        try (HikariDataSource pool = new HikariDataSource(hc);
                Relay relay = builder.dataSource(pool).build()) {
            relay.start();
            idleCost.measure(relay);
            ctx.report.line(String.format(
                    Locale.ROOT,
                    "%-12s %-14s %-40s %s",
                    "target msg/s",
                    "achieved msg/s",
                    "probe commit -> consumed p50 / p99 / max",
                    "relay CPU per message: JVM threads + its PostgreSQL backends"));
            if (warmUp) {
                level(relay, rates[0], WARM_UP_SECONDS, "warm-up ", probeTopic, loadTopic);
            }
            for (double rate : rates) {
                level(relay, rate, ctx.options.steadySeconds(), "", probeTopic, loadTopic);
            }
        }
    }

    /** One level: {@code label} is empty for a measured level, {@code "warm-up "} for the warm-up. */
    private void level(Relay relay, double rate, int seconds, String label, String probeTopic, String loadTopic)
            throws Exception {
        AtomicBoolean running = new AtomicBoolean(true);
        AtomicLong appended = new AtomicLong();
        // one writer per 5,000 msg/s, at least two: 500 transactions of 10 messages a second each
        // (none at rate 0: the probe messages alone, on an otherwise idle relay)
        int writers = rate == 0 ? 0 : Math.max(2, (int) Math.ceil(rate / 5_000));
        List<Thread> threads = new ArrayList<>();
        for (int w = 0; w < writers; w++) {
            int writer = w;
            Thread t = new Thread(
                    () -> {
                        long perTx = (long) (1e9 * STEADY_CHUNK * writers / rate);
                        long next = System.nanoTime();
                        int i = writer * 1_000_000;
                        try (Connection c = ctx.db.connect()) {
                            c.setAutoCommit(false);
                            while (running.get()) {
                                LockSupport.parkNanos(next - System.nanoTime());
                                next += perTx;
                                List<OutboxMessage> chunk = new ArrayList<>(STEADY_CHUNK);
                                for (int k = 0; k < STEADY_CHUNK; k++, i++) {
                                    chunk.add(OutboxMessage.of(
                                            loadTopic,
                                            ctx.key(i),
                                            BenchContext.TYPE,
                                            BenchContext.CONTENT_TYPE,
                                            ctx.payload(i % 1000)));
                                }
                                ctx.outbox.appendAll(c, chunk);
                                c.commit();
                                appended.addAndGet(STEADY_CHUNK);
                            }
                        } catch (SQLException e) {
                            Report.progress("steady writer failed: %s", e);
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
        Thread reader = ctx.timingConsumer(probeTopic, consumed, reading);
        // the first records a new consumer fetches wait for its connections and fetch session, and the
        // relay's first record to the probe topic for its metadata: a marker goes through first, so
        // that the level times the relay under load, not the start of the pipeline
        ctx.awaitMarker(ctx.outbox, probeTopic, consumed);
        long appendedBefore = appended.get();
        HorizonSampler horizon = null;
        if (ctx.options.statements()) {
            ctx.execute("select pg_stat_statements_reset()");
            horizon = new HorizonSampler(ctx.db);
        }
        double[] cpuBefore = idleCost.relayCpu();
        long started = System.nanoTime();
        long next = started;
        List<UUID> order = new ArrayList<>();
        int i = 0;
        while (System.nanoTime() - started < seconds * 1_000_000_000L) {
            LockSupport.parkNanos(next - System.nanoTime());
            next += TimeUnit.MILLISECONDS.toNanos(20);
            OutboxMessage m = OutboxMessage.of(
                    probeTopic, "probe-" + (i++), BenchContext.TYPE, BenchContext.CONTENT_TYPE, ctx.payload(i));
            UUID id = ctx.dsl.transactionResult(tx -> ctx.outbox.append(tx.dsl(), m));
            committed.put(id, System.nanoTime());
            order.add(id);
        }
        long elapsed = System.nanoTime() - started;
        double[] cpuAfter = idleCost.relayCpu();
        long messages = appended.get() - appendedBefore + order.size();
        List<String> statements = new ArrayList<>();
        if (horizon != null) {
            statements.addAll(ctx.topStatements(messages));
            statements.add(horizon.summary());
        }
        running.set(false);
        for (Thread t : threads) {
            t.join(10_000);
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!consumed.keySet().containsAll(order) && System.nanoTime() < deadline) {
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
        ctx.report.line(String.format(
                Locale.ROOT,
                "%-12s %-14.0f %-40s JVM %.1f us + PostgreSQL %.1f us (load avg %s)",
                label + Math.round(rate),
                achieved,
                Report.latencies(ms, order.size(), " ms"),
                (cpuAfter[0] - cpuBefore[0]) * 1e6 / messages,
                (cpuAfter[1] - cpuBefore[1]) * 1e6 / messages,
                Report.loadAverage()));
        statements.forEach(ctx.report::line);
        // let the relay drain what the writers left before the next level
        long drainDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (ctx.scalar("select count(*) from " + ctx.db.schema() + ".outbox_message") > 0
                && System.nanoTime() < drainDeadline) {
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
        }
    }
}
