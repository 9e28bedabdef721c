package dev.outbox.bench.relay;

import dev.outbox.testkit.PrivatePostgres;
import io.debezium.util.IoUtil;
import java.io.IOException;
import java.nio.file.Files;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Predicate;
import java.util.function.ToDoubleFunction;

/**
 * The relay against Debezium ({@code --compare-debezium}), in the same run and on the same private
 * PostgreSQL ({@link #SERVER_SETTINGS}) and in-JVM broker: alternating sessions of the relay ({@link
 * RelaySystem}) and of Debezium's embedded engine ({@link DebeziumSystem}), one of them running at a
 * time, each session measuring the same levels: idle (cost only), single probe messages every
 * {@value #PROBE_INTERVAL_MS} ms, and probes under a steady background load of a quarter and half the
 * best drain rate of this run (two writers, {@value #CHUNK} messages per transaction). Latency is
 * commit to consumed for both: from the probe's commit returning to a consumer's {@code poll}
 * returning the record. CPU: the threads of this JVM except the broker's, the benchmark's own and
 * {@code main} (so the relay's threads or the engine's and its producer's), and every process of the
 * private server except the backends of the benchmark's writers and probe connection (so
 * walsender, vacuum, WAL writer and checkpointer are counted).
 */
final class DebeziumComparison {
    /** The private server: logical decoding, and the durability settings of a stock server. */
    static final Map<String, String> SERVER_SETTINGS = Map.of(
            "wal_level", "logical",
            "max_wal_senders", "4",
            "max_replication_slots", "4",
            "fsync", "on",
            "synchronous_commit", "on",
            "full_page_writes", "on",
            "shared_buffers", "128MB");

    static final int PROBE_INTERVAL_MS = 50;
    private static final int CHUNK = 10;
    private static final int WRITERS = 2;
    private static final Predicate<String> SYSTEM_THREAD = name -> !name.equals("main")
            && !name.startsWith("bench-")
            && !name.startsWith("timing-consumer-")
            && !Cpu.threadGroup(name).equals("broker");

    private final BenchContext ctx;
    private final double drainRate;
    private final List<Row> rows = new ArrayList<>();

    DebeziumComparison(BenchContext ctx, double drainRate) {
        this.ctx = ctx;
        this.drainRate = drainRate;
    }

    /** @return the postmaster's pid, the first line of {@code postmaster.pid} */
    static long postmasterPid(PrivatePostgres pg) throws IOException {
        return Long.parseLong(Files.readAllLines(pg.directory().resolve("data/postmaster.pid"))
                .get(0)
                .trim());
    }

    /** One measured level of one session. */
    record Row(
            int round,
            String system,
            String level,
            double target,
            double achieved,
            double[] ms,
            int probes,
            double jvmCore,
            double pgCore,
            double jvmPerMessage,
            double pgPerMessage,
            String load) {
        String latency() {
            return ms.length == 0 ? "-" : Report.latencies(ms, probes, "");
        }
    }

    void run() throws Exception {
        try (Connection c = ctx.db.connect();
                Statement st = c.createStatement()) {
            st.execute(DebeziumSystem.DDL);
        }
        int seconds = ctx.options.compareSeconds();
        ctx.report.line("## against Debezium "
                + IoUtil.class.getPackage().getImplementationVersion()
                + " (embedded engine, PostgreSQL connector with pgoutput, outbox event router, poll.interval.ms "
                + DebeziumSystem.POLL_INTERVAL_MS + "), same server and broker, " + ctx.options.compareRounds()
                + " alternating rounds, " + seconds + " s per level");
        ctx.report.line("server: private PostgreSQL " + SERVER_SETTINGS + "; best drain rate of this run "
                + Math.round(drainRate) + " msg/s; probes every " + PROBE_INTERVAL_MS
                + " ms, commit -> consumed; load: " + WRITERS + " writers, " + CHUNK + " messages per transaction");
        ctx.report.line(String.format(
                Locale.ROOT,
                "%-5s %-8s %-6s %8s %8s  %-36s %6s %6s %8s %8s  %s",
                "round",
                "system",
                "level",
                "target",
                "achieved",
                "probe ms p50 / p99 / max (n)",
                "JVM %",
                "PG %",
                "JVM us",
                "PG us",
                "load avg"));
        try (Session nothing = new Session(0, null)) {
            print(nothing.level("idle", 0, false, seconds));
        }
        for (int round = 1; round <= ctx.options.compareRounds(); round++) {
            boolean relayFirst = round % 2 == 1;
            for (boolean relay : new boolean[] {relayFirst, !relayFirst}) {
                try (ComparedSystem system = relay ? new RelaySystem(ctx) : new DebeziumSystem(ctx);
                        Session session = new Session(round, system)) {
                    session.awaitCaughtUp();
                    Thread.sleep(5_000);
                    print(session.level("idle", 0, false, seconds));
                    print(session.level("probes", 0, true, seconds));
                    print(session.level("1/4", drainRate / 4, true, seconds));
                    print(session.level("1/2", drainRate / 2, true, seconds));
                }
            }
        }
        summary();
    }

    private void print(Row r) {
        rows.add(r);
        ctx.report.line(String.format(
                Locale.ROOT,
                "%-5d %-8s %-6s %8.0f %8.0f  %-36s %6.2f %6.2f %8s %8s  %s",
                r.round(),
                r.system(),
                r.level(),
                r.target(),
                r.achieved(),
                r.latency(),
                r.jvmCore(),
                r.pgCore(),
                perMessage(r.jvmPerMessage()),
                perMessage(r.pgPerMessage()),
                r.load()));
    }

    private static String perMessage(double us) {
        return Double.isNaN(us) ? "-" : String.format(Locale.ROOT, "%.1f", us);
    }

    /** Medians over the rounds, per system and level. */
    private void summary() {
        ctx.report.line(
                "medians over the rounds (probe p50 / p99 ms; JVM and PostgreSQL % of one core; us per message):");
        for (String system : List.of("relay", "Debezium")) {
            for (String level : List.of("idle", "probes", "1/4", "1/2")) {
                List<Row> of = rows.stream()
                        .filter(r -> r.system().equals(system) && r.level().equals(level))
                        .toList();
                if (of.isEmpty()) {
                    continue;
                }
                ctx.report.line(String.format(
                        Locale.ROOT,
                        "  %-8s %-6s p50 %s, p99 %s; JVM %.2f %%, PG %.2f %%; JVM %s us, PG %s us",
                        system,
                        level,
                        median(of, r -> r.ms().length == 0 ? Double.NaN : Report.percentile(r.ms(), 50)),
                        median(of, r -> r.ms().length == 0 ? Double.NaN : Report.percentile(r.ms(), 99)),
                        Double.parseDouble(median(of, Row::jvmCore)),
                        Double.parseDouble(median(of, Row::pgCore)),
                        median(of, Row::jvmPerMessage),
                        median(of, Row::pgPerMessage)));
            }
        }
    }

    private static String median(List<Row> rows, ToDoubleFunction<Row> f) {
        double[] v = rows.stream().mapToDouble(f).sorted().toArray();
        double m = v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
        return Double.isNaN(m) ? "-" : String.format(Locale.ROOT, "%.1f", m);
    }

    /**
     * One session of one system: a timing consumer on the system's probe topic, a probe connection,
     * and the levels measured in turn. With no system, only the cost of the JVM and server with
     * neither running is measured.
     */
    private final class Session implements AutoCloseable {
        private final int round;
        private final ComparedSystem system;
        private final String probeTopic;
        private final String loadTopic;
        private final Map<UUID, Long> consumed = new ConcurrentHashMap<>();
        private final AtomicBoolean reading = new AtomicBoolean(true);
        private final Thread reader;
        private final Connection prober;
        private final int proberPid;
        private int sequence;

        Session(int round, ComparedSystem system) throws SQLException {
            this.round = round;
            this.system = system;
            String name = system == null ? "none" : system.name().toLowerCase(Locale.ROOT);
            this.probeTopic = ctx.newTopic(name + "-probe");
            this.loadTopic = ctx.newTopic(name + "-load");
            this.reader = ctx.timingConsumer(probeTopic, consumed, reading);
            this.prober = ctx.db.connect();
            prober.setAutoCommit(false);
            this.proberPid = backendPid(prober);
            prober.commit();
        }

        /**
         * Sends markers until one is consumed and then the system's table is drained; fails after 3
         * minutes. The table is given a few seconds after the marker arrives: a relay deletes a row
         * after Kafka acknowledged it, and may let a short batch's delete wait for others (up to 20
         * ms), so the consumer often sees the marker before its row is gone.
         */
        void awaitCaughtUp() throws Exception {
            long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
            while (System.nanoTime() < deadline) {
                UUID marker = system.appendOne(prober, probeTopic, "marker-" + sequence++, ctx.payload(0));
                if (BenchContext.awaitConsumed(consumed, marker, 10) && awaitDrained(TimeUnit.SECONDS.toNanos(5))) {
                    return;
                }
                Thread.sleep(500);
            }
            throw new IllegalStateException(system.name() + " did not catch up within 3 minutes");
        }

        /** @return whether the system's table drained within {@code nanos} */
        private boolean awaitDrained(long nanos) throws Exception {
            long deadline = System.nanoTime() + nanos;
            while (!system.drained()) {
                if (System.nanoTime() - deadline > 0) {
                    return false;
                }
                Thread.sleep(10);
            }
            return true;
        }

        Row level(String level, double rate, boolean probes, int seconds) throws Exception {
            AtomicBoolean running = new AtomicBoolean(true);
            AtomicLong appended = new AtomicLong();
            List<Integer> benchPids = Collections.synchronizedList(new ArrayList<>(List.of(proberPid)));
            List<Thread> writers = new ArrayList<>();
            for (int w = 0; rate > 0 && w < WRITERS; w++) {
                int first = w * 10_000_000 + sequence * 100;
                Thread t = new Thread(
                        () -> write(first, rate, running, appended, benchPids), "bench-writer-" + level + "-" + w);
                t.setDaemon(true);
                writers.add(t);
                t.start();
            }
            if (rate > 0) {
                Thread.sleep(2_000);
            }
            Map<Long, Long> jvmBefore = Cpu.threadCpuById(SYSTEM_THREAD);
            double pgBefore = ctx.postgresCpuSeconds() - benchCpu(benchPids);
            long appendedBefore = appended.get();
            Map<UUID, Long> committed = new ConcurrentHashMap<>();
            List<UUID> order = new ArrayList<>();
            long started = System.nanoTime();
            long next = started;
            while (System.nanoTime() - started < seconds * 1_000_000_000L) {
                LockSupport.parkNanos(next - System.nanoTime());
                next += TimeUnit.MILLISECONDS.toNanos(PROBE_INTERVAL_MS);
                if (probes) {
                    int i = sequence++;
                    UUID id = system.appendOne(prober, probeTopic, "probe-" + i, ctx.payload(i % 1000));
                    committed.put(id, System.nanoTime());
                    order.add(id);
                }
            }
            long elapsed = System.nanoTime() - started;
            double jvm = Cpu.threadCpuSince(jvmBefore, Cpu.threadCpuById(SYSTEM_THREAD));
            double pg = ctx.postgresCpuSeconds() - benchCpu(benchPids) - pgBefore;
            long messages = appended.get() - appendedBefore + order.size();
            String load = Report.loadAverage();
            running.set(false);
            for (Thread t : writers) {
                t.join(30_000);
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!consumed.keySet().containsAll(order) && System.nanoTime() < deadline) {
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
            }
            if (system != null) {
                awaitCaughtUp();
            }
            double[] ms = order.stream()
                    .filter(consumed::containsKey)
                    .mapToDouble(id -> (consumed.get(id) - committed.get(id)) / 1e6)
                    .sorted()
                    .toArray();
            double secs = elapsed / 1e9;
            return new Row(
                    round,
                    system == null ? "neither" : system.name(),
                    level,
                    rate,
                    messages / secs,
                    ms,
                    order.size(),
                    jvm * 100 / secs,
                    pg * 100 / secs,
                    messages == 0 ? Double.NaN : jvm * 1e6 / messages,
                    messages == 0 ? Double.NaN : pg * 1e6 / messages,
                    load);
        }

        /** A background writer: paced transactions of {@value #CHUNK} messages until {@code running} is false. */
        private void write(int first, double rate, AtomicBoolean running, AtomicLong appended, List<Integer> pids) {
            long perTx = (long) (1e9 * CHUNK * WRITERS / rate);
            long next = System.nanoTime();
            int i = first;
            try (Connection c = ctx.db.connect()) {
                c.setAutoCommit(false);
                pids.add(backendPid(c));
                c.commit();
                while (running.get()) {
                    LockSupport.parkNanos(next - System.nanoTime());
                    next += perTx;
                    system.appendMany(c, loadTopic, i, CHUNK);
                    i += CHUNK;
                    appended.addAndGet(CHUNK);
                }
            } catch (SQLException e) {
                Report.progress("%s writer failed: %s", system.name(), e);
            }
        }

        private double benchCpu(List<Integer> pids) {
            synchronized (pids) {
                return pids.stream().mapToDouble(Cpu::processCpuSeconds).sum();
            }
        }

        private int backendPid(Connection c) throws SQLException {
            try (Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery("select pg_backend_pid()")) {
                rs.next();
                return rs.getInt(1);
            }
        }

        @Override
        public void close() throws Exception {
            reading.set(false);
            reader.join(10_000);
            prober.close();
            ctx.deleteTopic(probeTopic);
            ctx.deleteTopic(loadTopic);
        }
    }
}
