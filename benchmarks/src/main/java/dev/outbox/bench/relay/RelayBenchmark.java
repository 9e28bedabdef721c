package dev.outbox.bench.relay;

import dev.outbox.relay.Relay;
import dev.outbox.testkit.PrivatePostgres;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.DoubleSupplier;

/**
 * Throughput of the relay draining a pre-loaded backlog, next to a plain {@code KafkaProducer}
 * sending the same records to the same broker, and the latency from commit to consumption of single
 * messages appended to an idle relay. Runs on the test kit's PostgreSQL (a fresh database) and its
 * Kafka broker (started in this JVM unless {@code OUTBOX_TEST_KAFKA_BOOTSTRAP} names one).
 *
 * <p>This class runs the scenarios in order; each lives in a class of its own: {@link
 * DrainScenario}, {@link IdleLatency}, {@link ListenComparison}, {@link IdleCost}, {@link
 * SteadyLoad}, {@link DebeziumComparison}. Options: {@link RelayOptions}. See {@code benchmarks/RELAY.md}.
 */
public final class RelayBenchmark {
    private final BenchContext ctx;
    private final Report report = new Report();
    private final DrainScenario drain;

    RelayBenchmark(RelayOptions options, TestKafka kafka, TestDatabase db) {
        this(options, kafka, db, Cpu::postgresCpuSeconds);
    }

    /** @param postgresCpu CPU seconds of the PostgreSQL processes to count */
    RelayBenchmark(RelayOptions options, TestKafka kafka, TestDatabase db, DoubleSupplier postgresCpu) {
        this.ctx = new BenchContext(options, kafka, db, report, postgresCpu);
        this.drain = new DrainScenario(ctx);
    }

    public static void main(String[] args) {
        Report.runAndExit(RelayBenchmark::run, args);
    }

    private static void run(String[] args) throws Exception {
        RelayOptions options = RelayOptions.parse(args);
        Report.quietLogs();
        TestKafka kafka = RealServices.kafka();
        if (options.privateServer()) {
            // Debezium reads the WAL through a logical replication slot: a server of its own with
            // wal_level=logical; the relay runs on the same server, and only its processes are counted.
            // --statements needs pg_stat_statements loaded at the server's start.
            try (PrivatePostgres pg = PrivatePostgres.start(serverSettings(options));
                    TestDatabase db = TestDatabase.create(pg.server())) {
                long postmaster = DebeziumComparison.postmasterPid(pg);
                new RelayBenchmark(options, kafka, db, () -> Cpu.instanceCpuSeconds(postmaster)).run();
            }
        } else {
            try (TestDatabase db = TestDatabase.create()) {
                new RelayBenchmark(options, kafka, db).run();
            }
        }
    }

    /** @return the private server's settings: the Debezium comparison's, and pg_stat_statements for --statements */
    static Map<String, String> serverSettings(RelayOptions options) {
        Map<String, String> settings = new TreeMap<>(DebeziumComparison.SERVER_SETTINGS);
        if (options.statements()) {
            settings.put("shared_preload_libraries", "pg_stat_statements");
            settings.put("pg_stat_statements.track_planning", "on");
        }
        return settings;
    }

    /** @return each index of the outbox table with its size in pages, and the table's */
    private String indexPages() throws SQLException {
        String sql = "select c.relname, pg_relation_size(c.oid) / current_setting('block_size')::int"
                + " from pg_class c where c.oid = ?::regclass or c.oid in"
                + " (select indexrelid from pg_index where indrelid = ?::regclass) order by c.relname";
        StringBuilder out = new StringBuilder();
        try (Connection c = ctx.db.connect();
                PreparedStatement ps = c.prepareStatement(sql)) {
            String table = ctx.db.schema() + ".outbox_message";
            ps.setString(1, table);
            ps.setString(2, table);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.append(out.isEmpty() ? "" : ", ")
                            .append(rs.getString(1))
                            .append(' ')
                            .append(rs.getLong(2))
                            .append(" pages");
                }
            }
        }
        return out.toString();
    }

    /** @return the drain scenario, whose publish mode PublishModeBenchmark alternates */
    DrainScenario drain() {
        return drain;
    }

    void run() throws Exception {
        report.line("# relay benchmark, " + Instant.now());
        ctx.conditions();
        if (ctx.options.privateServer()) {
            report.line("PostgreSQL: a private server with " + serverSettings(ctx.options)
                    + "; PostgreSQL CPU figures count its processes only");
        }
        if (ctx.options.warmup() > 0) {
            Report.progress(
                    "warm-up (not reported): %d messages through the relay and the plain producer",
                    ctx.options.warmup());
            drain.drainWithRelay(ctx.options.warmup(), Relay.Builder.DEFAULT_BATCH_SIZE);
            drain.plainProducer(ctx.options.warmup());
            report.line("after an unreported warm-up of " + ctx.options.warmup() + " messages through the relay (batch "
                    + Relay.Builder.DEFAULT_BATCH_SIZE + ") and the plain producer, in this JVM");
        }
        report.line("");
        try (Connection c = ctx.db.connect();
                Statement st = c.createStatement()) {
            // leave no autovacuum work behind the warm-up
            st.execute("vacuum analyze " + ctx.db.schema() + ".outbox_message");
        }
        IdleLatency latency = new IdleLatency(ctx);
        latency.measure(IdleLatency.WakeUp.PROBE);
        if (ctx.options.relayProcess()) {
            report.line("");
            latency.measureInOwnProcess();
        }
        if (ctx.options.compareListen()) {
            new ListenComparison(latency).run();
        }
        report.line("");
        report.line("## drain a backlog of " + ctx.options.messages() + " messages of " + ctx.options.payloadBytes()
                + " B (random bytes), " + ctx.options.keys() + " keys over 64 shards, topic with "
                + ctx.options.partitions()
                + " partitions");
        report.line(String.format(
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
        for (int batchSize : ctx.options.batchSizes()) {
            DrainScenario.Drain relay = drain.drainWithRelay(ctx.options.messages(), batchSize);
            drainRate = Math.max(drainRate, relay.rate());
            DrainScenario.Drain plain = drain.plainProducer(ctx.options.messages());
            report.line(String.format(
                    Locale.ROOT,
                    "%-6d %11.0f %11.0f %6.2f %5d  %-34s %-34s %s / %s",
                    batchSize,
                    relay.rate(),
                    plain.rate(),
                    relay.rate() / plain.rate(),
                    relay.duplicates(),
                    relay.cpu().perMessage(relay.messages()),
                    plain.cpu().perMessage(plain.messages()),
                    relay.loadBefore(),
                    relay.loadAfter()));
        }
        if (ctx.options.steadySeconds() > 0) {
            report.line("");
            if (ctx.options.reindexAfterDrain()) {
                report.line("outbox indexes after the drains: " + indexPages());
                long started = System.nanoTime();
                try (Connection c = ctx.db.connect();
                        Statement st = c.createStatement()) {
                    st.execute("reindex table concurrently " + ctx.db.schema() + ".outbox_message");
                }
                report.line(String.format(
                        Locale.ROOT,
                        "rebuilt with REINDEX TABLE CONCURRENTLY in %.0f ms",
                        (System.nanoTime() - started) / 1e6));
            }
            report.line("outbox indexes before the steady loads: " + indexPages());
            new SteadyLoad(ctx, drainRate).run();
        }
        if (ctx.options.compareDebezium()) {
            report.line("");
            new DebeziumComparison(ctx, drainRate).run();
        }
        if (!ctx.options.skipMillion()) {
            report.line("");
            report.line("## drain a backlog of 1000000 messages, batch size " + ctx.options.millionBatchSize());
            DrainScenario.Drain million = drain.drainWithRelay(1_000_000, ctx.options.millionBatchSize());
            report.line(String.format(
                    Locale.ROOT,
                    "relay: %.0f msg/s (%.1f s, %d duplicates, CPU per message %s, load avg %s / %s)",
                    million.rate(),
                    million.nanos() / 1e9,
                    million.duplicates(),
                    million.cpu().perMessage(million.messages()),
                    million.loadBefore(),
                    million.loadAfter()));
        }
        report.line("");
        report.line("load average at the end: " + Report.loadAverage());
        report.write(ctx.options.out());
    }
}
