package dev.outbox.bench.relay;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.outbox.core.Shards;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.StringJoiner;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * Two builds of the relay side by side under the same steady loads: what each costs per relayed message
 * in its own JVM and in PostgreSQL while producers append at a fixed rate. Each build runs as the relay's
 * command-line process ({@code run --migrate}) from its own class path, on a schema of its own that its
 * own migrations create, publishing to a topic of its own; the builds alternate within every round, and
 * each level starts from an empty outbox.
 *
 * <p>The writers are the same for both builds: plain JDBC in this JVM, one multi-row INSERT of
 * {@code --chunk} messages of 1 KiB per transaction, keys {@code key-0 .. key-9999}, as {@code
 * Outbox.appendAll} writes them. A build given in {@code --notify} also gets, in each transaction, the
 * {@code pg_notify} that build's producers sent (channel {@code outbox_<schema>}, the shards touched), so
 * that its relay is woken the way it was built to be.
 *
 * <p>Counted over the measured seconds of a level: the relay process's CPU ({@code /proc}), the CPU of
 * its PostgreSQL backends (application name), and the whole server's CPU without the writers' backends
 * (so the relay's own vacuum, autovacuum, the WAL writer and the checkpointer are in it: work the inserts
 * cause too, the same for both builds). Messages relayed: the topic's end offsets.
 *
 * <pre>{@code
 * ./mvnw -q -pl benchmarks exec:exec@bench -Dbench.main=dev.outbox.bench.relay.BuildsUnderSteadyLoad \
 *     -Dbench.args="--build before=JAR --build after=JAR --notify before --rates 1000,5000 --rounds 2"
 * }</pre>
 *
 * {@code FILE} is a build's relay jar with its dependencies ({@code outbox-relay-*-all.jar}, what a
 * deployment runs), or a file holding a class path; without {@code --build}, one build named {@code
 * current} runs from this JVM's class path. Options: {@code --build NAME=FILE} (repeatable), {@code --notify
 * NAME[,NAME]}, {@code --rates N,N} (1000,5000), {@code --seconds N} (20 measured per level), {@code
 * --warmup-seconds N} (10 per level), {@code --rounds N} (2), {@code --chunk N} (10).
 */
public final class BuildsUnderSteadyLoad {
    private static final String WRITERS_APP = "bench-steady-writers";
    private static final int SHARDS = Shards.DEFAULT_COUNT;
    private static final int KEYS = 10_000;
    private static final int PAYLOAD_BYTES = 1024;

    private record Build(String name, String classPath, boolean wakes) {}

    private final BenchContext ctx;
    private final List<Build> builds;
    private final int[] rates;
    private final int seconds;
    private final int warmupSeconds;
    private final int rounds;
    private final int chunk;
    private int levels;

    private BuildsUnderSteadyLoad(
            BenchContext ctx, List<Build> builds, int[] rates, int seconds, int warmup, int rounds, int chunk) {
        this.ctx = ctx;
        this.builds = builds;
        this.rates = rates;
        this.seconds = seconds;
        this.warmupSeconds = warmup;
        this.rounds = rounds;
        this.chunk = chunk;
    }

    public static void main(String[] args) {
        Report.runAndExit(BuildsUnderSteadyLoad::run, args);
    }

    private static void run(String[] args) throws Exception {
        List<Build> builds = new ArrayList<>();
        TreeSet<String> notify = new TreeSet<>();
        int[] rates = {1000, 5000};
        int seconds = 20;
        int warmup = 10;
        int rounds = 2;
        int chunk = 10;
        List<String[]> given = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            String value = i + 1 < args.length ? args[i + 1] : null;
            if (value == null) {
                throw new IllegalArgumentException(args[i] + " needs a value");
            }
            switch (args[i]) {
                case "--build" -> given.add(value.split("=", 2));
                case "--notify" -> notify.addAll(Arrays.asList(value.split(",")));
                case "--rates" ->
                    rates = Arrays.stream(value.split(","))
                            .mapToInt(Integer::parseInt)
                            .toArray();
                case "--seconds" -> seconds = Integer.parseInt(value);
                case "--warmup-seconds" -> warmup = Integer.parseInt(value);
                case "--rounds" -> rounds = Integer.parseInt(value);
                case "--chunk" -> chunk = Integer.parseInt(value);
                default ->
                    throw new IllegalArgumentException("unknown option " + args[i]
                            + "; the options are --build NAME=FILE, --notify NAME[,NAME], --rates N,N, --seconds N,"
                            + " --warmup-seconds N, --rounds N, --chunk N");
            }
            i++;
        }
        for (String[] b : given) {
            if (b.length != 2 || !b[0].matches("[a-z0-9]+")) {
                throw new IllegalArgumentException("--build takes NAME=FILE, NAME in lower-case letters and digits");
            }
            String classPath = b[1].endsWith(".jar")
                    ? b[1]
                    : Files.readString(Path.of(b[1])).strip();
            builds.add(new Build(b[0], classPath, notify.contains(b[0])));
        }
        if (builds.isEmpty()) {
            builds.add(new Build("current", System.getProperty("java.class.path"), notify.contains("current")));
        }
        Report.quietLogs();
        TestKafka kafka = RealServices.kafka();
        try (TestDatabase db = TestDatabase.create()) {
            Report report = new Report();
            BenchContext ctx =
                    new BenchContext(RelayOptions.parse(new String[0]), kafka, db, report, Cpu::postgresCpuSeconds);
            new BuildsUnderSteadyLoad(ctx, builds, rates, seconds, warmup, rounds, chunk).run();
        }
    }

    private void run() throws Exception {
        ctx.report.line("## relay builds under steady loads: " + seconds + " s measured per level after "
                + warmupSeconds + " s, transactions of " + chunk + " messages of " + PAYLOAD_BYTES + " B, " + rounds
                + " rounds");
        for (Build b : builds) {
            ctx.report.line("build " + b.name() + (b.wakes() ? ": writers send pg_notify per transaction" : ""));
        }
        ctx.report.line(String.format(
                Locale.ROOT,
                "%-8s %-10s %6s %10s %10s %12s %14s %14s %8s",
                "round",
                "build",
                "rate",
                "appended/s",
                "relayed/s",
                "relay JVM us",
                "relay PG us",
                "server PG us",
                "backlog"));
        for (int round = 1; round <= rounds; round++) {
            List<Build> order = new ArrayList<>(builds);
            if (round % 2 == 0) {
                Collections.reverse(order);
            }
            for (int rate : rates) {
                for (Build b : order) {
                    level(round, b, rate);
                }
            }
        }
    }

    private void level(int round, Build build, int rate) throws Exception {
        levels++;
        String schema = "steady_" + build.name() + "_" + levels;
        String name = "bench-" + build.name() + "-" + levels;
        String topic = ctx.newTopic("steady-" + build.name());
        try (RelayChild relay = RelayChild.start(ctx, build.classPath(), schema, name, List.of("run", "--migrate"))) {
            relay.awaitAllShards();
            AtomicBoolean running = new AtomicBoolean(true);
            AtomicLong appended = new AtomicLong();
            int writers = Math.max(2, (rate + 2_499) / 2_500);
            List<Thread> threads = new ArrayList<>();
            try (HikariDataSource pool = writersPool(writers)) {
                for (int w = 0; w < writers; w++) {
                    int writer = w;
                    threads.add(Thread.ofPlatform()
                            .name("steady-writer-" + w)
                            .start(() -> write(
                                    pool,
                                    schema,
                                    topic,
                                    build.wakes(),
                                    (double) rate / writers,
                                    writer,
                                    running,
                                    appended)));
                }
                Thread.sleep(warmupSeconds * 1000L);
                long appendedBefore = appended.get();
                long offsetsBefore = ctx.endOffsets(topic);
                double[] before = cpu(relay, name);
                long t0 = System.nanoTime();
                Thread.sleep(seconds * 1000L);
                double[] after = cpu(relay, name);
                long offsetsAfter = ctx.endOffsets(topic);
                double elapsed = (System.nanoTime() - t0) / 1e9;
                long appendedDuring = appended.get() - appendedBefore;
                running.set(false);
                for (Thread t : threads) {
                    t.join(30_000);
                }
                long relayed = offsetsAfter - offsetsBefore;
                long backlog = ctx.scalar("select count(*) from " + schema + ".outbox_message");
                double perMessage = relayed == 0 ? Double.NaN : 1e6 / relayed;
                ctx.report.line(String.format(
                        Locale.ROOT,
                        "%-8d %-10s %6d %10.0f %10.0f %12.1f %14.1f %14.1f %8d",
                        round,
                        build.name(),
                        rate,
                        appendedDuring / elapsed,
                        relayed / elapsed,
                        (after[0] - before[0]) * perMessage,
                        (after[1] - before[1]) * perMessage,
                        (after[2] - before[2]) * perMessage,
                        backlog));
            } finally {
                running.set(false);
            }
        } finally {
            ctx.deleteTopic(topic);
            ctx.execute("drop schema if exists " + schema + " cascade");
        }
    }

    /**
     * @return CPU seconds so far of {the relay process, its PostgreSQL backends, every PostgreSQL process but
     *     the writers' backends}, read from {@code /proc} one right after the other once the backends are known
     */
    private double[] cpu(RelayChild relay, String relayApp) throws SQLException {
        List<Integer> relayBackends = new ArrayList<>();
        List<Integer> writerBackends = new ArrayList<>();
        try (Connection c = ctx.db.connect();
                PreparedStatement ps = c.prepareStatement(
                        "select pid, application_name = ? from pg_stat_activity where application_name in (?, ?)")) {
            ps.setString(1, relayApp);
            ps.setString(2, relayApp);
            ps.setString(3, WRITERS_APP);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    (rs.getBoolean(2) ? relayBackends : writerBackends).add(rs.getInt(1));
                }
            }
        }
        double jvm = relay.processCpu();
        double backends =
                relayBackends.stream().mapToDouble(Cpu::processCpuSeconds).sum();
        double writers =
                writerBackends.stream().mapToDouble(Cpu::processCpuSeconds).sum();
        return new double[] {jvm, backends, Cpu.postgresCpuSeconds() - writers};
    }

    private HikariDataSource writersPool(int writers) {
        HikariConfig hc = ctx.poolConfig();
        hc.setMaximumPoolSize(writers);
        hc.setMinimumIdle(writers);
        hc.setAutoCommit(false);
        hc.addDataSourceProperty("ApplicationName", WRITERS_APP);
        hc.setPoolName(WRITERS_APP);
        return new HikariDataSource(hc);
    }

    /** Appends transactions of {@link #chunk} messages at {@code perSecond} messages a second until stopped. */
    private void write(
            HikariDataSource pool,
            String schema,
            String topic,
            boolean notify,
            double perSecond,
            int writer,
            AtomicBoolean running,
            AtomicLong appended) {
        StringJoiner values = new StringJoiner(", ");
        for (int i = 0; i < chunk; i++) {
            values.add("(?, ?, ?, ?, ?, ?, ?)");
        }
        String insert = "insert into " + schema + ".outbox_message (message_id, shard, topic, message_key,"
                + " message_type, content_type, payload) values " + values;
        SplittableRandom random = new SplittableRandom(writer);
        long intervalNanos = (long) (chunk * 1e9 / perSecond);
        long next = System.nanoTime();
        try (Connection c = pool.getConnection();
                PreparedStatement ps = c.prepareStatement(insert);
                PreparedStatement wake = c.prepareStatement("select pg_notify(?, ?)")) {
            while (running.get()) {
                TreeSet<Integer> shards = new TreeSet<>();
                int p = 1;
                for (int i = 0; i < chunk; i++) {
                    UUID id = UUID.randomUUID();
                    String key = "key-" + random.nextInt(KEYS);
                    int shard = Shards.of(key, id, SHARDS);
                    shards.add(shard);
                    byte[] payload = new byte[PAYLOAD_BYTES];
                    random.nextBytes(payload);
                    ps.setObject(p++, id);
                    ps.setInt(p++, shard);
                    ps.setString(p++, topic);
                    ps.setString(p++, key);
                    ps.setString(p++, BenchContext.TYPE);
                    ps.setString(p++, BenchContext.CONTENT_TYPE);
                    ps.setBytes(p++, payload);
                }
                ps.executeUpdate();
                if (notify) {
                    StringJoiner list = new StringJoiner(",");
                    shards.forEach(s -> list.add(Integer.toString(s)));
                    wake.setString(1, "outbox_" + schema);
                    wake.setString(2, list.toString());
                    wake.execute();
                }
                c.commit();
                appended.addAndGet(chunk);
                next += intervalNanos;
                long wait = next - System.nanoTime();
                if (wait > 0) {
                    LockSupport.parkNanos(wait);
                }
            }
        } catch (SQLException e) {
            Report.progress("writer %d stopped: %s", writer, e);
            running.set(false);
        }
    }
}
