package dev.outbox.bench.producer;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import com.zaxxer.hikari.HikariDataSource;
import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxMessage;
import dev.outbox.testkit.TestDatabase;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the outbox costs the producing service: single-row business transactions (one insert of a
 * uuid, a text, a bigint and a timestamptz, then commit) from N concurrent writers, alone and with
 * one outbox message in the same transaction, written by {@code Outbox.append} or as a
 * Debezium-style outbox row. Variants run in alternating rounds (the order rotates every round), so
 * that drifts of a shared machine spread over all of them; the report gives each variant's median
 * transactions per second over the rounds and its ratio to the business-only variant.
 *
 * <p>Options: {@code --writers 1,4,16,64}, {@code --rounds N} (3), {@code --seconds N} (measured
 * seconds per variant and round, 3), {@code --variants a,b512,...} (all), {@code --out FILE}. See
 * {@code benchmarks/PRODUCER.md}.
 */
public final class ProducerBenchmark {

    /** One way of writing a business transaction. */
    private enum Variant {
        A("a", "business insert only", 0),
        B512("b512", "+ Outbox.append(Connection), 512 B", 512),
        B4K("b4k", "+ Outbox.append(Connection), 4 KiB", 4096),
        BJ512("bj512", "+ Outbox.append(DSLContext), 512 B", 512),
        C512("c512", "+ Debezium-style outbox row, 512 B", 512),
        C4K("c4k", "+ Debezium-style outbox row, 4 KiB", 4096),
        H512("h512", "+ hand-written INSERT into outbox_message, 512 B", 512),
        N512("n512", "+ Outbox.append with notifyInTransaction(true), 512 B", 512);

        final String id;
        final String label;
        final int payloadBytes;

        Variant(String id, String label, int payloadBytes) {
            this.id = id;
            this.label = label;
            this.payloadBytes = payloadBytes;
        }
    }

    private final TestDatabase db;
    private final Options options;
    private final Outbox outbox = Outbox.builder().build();
    private final Outbox notifying = Outbox.builder().notifyInTransaction(true).build();
    private final List<String> report = new ArrayList<>();

    private ProducerBenchmark(TestDatabase db, Options options) {
        this.db = db;
        this.options = options;
    }

    public static void main(String[] args) throws Exception {
        Options options = Options.parse(args);
        if (LoggerFactory.getILoggerFactory() instanceof LoggerContext context) {
            context.getLogger(Logger.ROOT_LOGGER_NAME).setLevel(Level.WARN);
        }
        try (TestDatabase db = TestDatabase.create()) {
            new ProducerBenchmark(db, options).run();
        }
        System.exit(0);
    }

    private void run() throws Exception {
        line("# producer benchmark, " + Instant.now());
        line(String.format(
                Locale.ROOT,
                "%d CPUs, JDK %s, PostgreSQL %s, load average %s; %d rounds of %d s per variant," + " alternating",
                Runtime.getRuntime().availableProcessors(),
                System.getProperty("java.version"),
                scalarText("show server_version"),
                loadAverage(),
                options.rounds,
                options.seconds));
        line("synchronous_commit " + scalarText("show synchronous_commit") + ", shared_buffers "
                + scalarText("show shared_buffers") + ", max_connections " + scalarText("show max_connections"));
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute(
                    "create table business_order (id uuid primary key, customer text not null, amount bigint not null,"
                            + " placed_at timestamptz not null)");
            // what a Debezium outbox event router user writes
            st.execute("create table debezium_outbox (id uuid primary key, aggregatetype varchar(255) not null,"
                    + " aggregateid varchar(255) not null, type varchar(255) not null, payload bytea)");
        }
        for (int writers : options.writers) {
            Map<Variant, List<Double>> rates = new LinkedHashMap<>();
            options.variants.forEach(v -> rates.put(v, new ArrayList<>()));
            try (HikariDataSource pool = db.newDataSource(writers)) {
                pool.setMinimumIdle(writers);
                for (int round = 0; round < options.rounds; round++) {
                    List<Variant> order = new ArrayList<>(options.variants);
                    Collections.rotate(order, -round);
                    for (Variant v : order) {
                        truncate();
                        double rate = measure(pool, writers, v);
                        rates.get(v).add(rate);
                        System.err.printf(
                                Locale.ROOT,
                                "[producer-bench] %d writers, round %d, %s: %.0f tx/s (load %s)%n",
                                writers,
                                round + 1,
                                v.id,
                                rate,
                                loadAverage());
                    }
                }
            }
            line("");
            line("## " + writers + " writer" + (writers == 1 ? "" : "s"));
            line("| variant | median tx/s | rounds | / (a) | / (c) same payload |");
            line("|---|---:|---|---:|---:|");
            double a = rates.containsKey(Variant.A) ? median(rates.get(Variant.A)) : Double.NaN;
            for (var e : rates.entrySet()) {
                double m = median(e.getValue());
                Variant c = e.getKey().payloadBytes == 4096 ? Variant.C4K : Variant.C512;
                double cRate = rates.containsKey(c) ? median(rates.get(c)) : Double.NaN;
                boolean vsC = e.getKey().payloadBytes > 0 && e.getKey() != Variant.C512 && e.getKey() != Variant.C4K;
                line(String.format(
                        Locale.ROOT,
                        "| (%s) %s | %.0f | %s | %.2f | %s |",
                        e.getKey().id,
                        e.getKey().label,
                        m,
                        e.getValue().stream()
                                .map(r -> String.format(Locale.ROOT, "%.0f", r))
                                .toList(),
                        m / a,
                        vsC ? String.format(Locale.ROOT, "%.2f", m / cRate) : ""));
            }
        }
        line("");
        line("load average at the end: " + loadAverage());
        if (options.out != null) {
            Files.write(options.out, report);
        }
    }

    private void truncate() throws SQLException {
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("truncate business_order, debezium_outbox, " + db.schema() + ".outbox_message");
            st.execute("checkpoint");
        }
    }

    /** @return committed transactions per second over the measured seconds, after a one-second warm-up */
    private double measure(HikariDataSource pool, int writers, Variant v) throws Exception {
        LongAdder committed = new LongAdder();
        AtomicBoolean counting = new AtomicBoolean(false);
        AtomicBoolean running = new AtomicBoolean(true);
        AtomicReference<Exception> failure = new AtomicReference<>();
        CountDownLatch done = new CountDownLatch(writers);
        CountDownLatch connected = new CountDownLatch(writers);
        for (int w = 0; w < writers; w++) {
            long seed = w * 7919L + v.ordinal();
            Thread t = new Thread(
                    () -> {
                        SplittableRandom random = new SplittableRandom(seed);
                        byte[][] payloads = new byte[16][];
                        for (int i = 0; i < payloads.length; i++) {
                            payloads[i] = new byte[Math.max(1, v.payloadBytes)];
                            random.nextBytes(payloads[i]);
                        }
                        try (Connection c = pool.getConnection()) {
                            connected.countDown();
                            c.setAutoCommit(false);
                            DSLContext dsl = DSL.using(c, SQLDialect.POSTGRES);
                            int i = 0;
                            while (running.get()) {
                                transaction(c, dsl, v, payloads[i++ & 15], random);
                                if (counting.get()) {
                                    committed.increment();
                                }
                            }
                        } catch (Exception e) {
                            failure.compareAndSet(null, e);
                            connected.countDown();
                        } finally {
                            done.countDown();
                        }
                    },
                    "writer-" + w);
            t.setDaemon(true);
            t.start();
        }
        // the pool's connections are opened before the warm-up, not inside the measurement
        connected.await(120, TimeUnit.SECONDS);
        Thread.sleep(1_000);
        counting.set(true);
        long started = System.nanoTime();
        Thread.sleep(options.seconds * 1_000L);
        counting.set(false);
        long elapsed = System.nanoTime() - started;
        running.set(false);
        done.await(60, TimeUnit.SECONDS);
        if (failure.get() != null) {
            throw new IllegalStateException(
                    v.id + " with " + writers + " writers failed: " + failure.get(), failure.get());
        }
        return committed.sum() / (elapsed / 1e9);
    }

    private void transaction(Connection c, DSLContext dsl, Variant v, byte[] payload, SplittableRandom random)
            throws SQLException {
        UUID order = new UUID(random.nextLong(), random.nextLong());
        try (PreparedStatement ps = c.prepareStatement(
                "insert into business_order (id, customer, amount, placed_at) values (?, ?, ?, ?)")) {
            ps.setObject(1, order);
            ps.setString(2, "customer-" + (random.nextInt(10_000)));
            ps.setLong(3, random.nextLong(1_000_000));
            ps.setTimestamp(4, Timestamp.from(Instant.now()));
            ps.executeUpdate();
        }
        String key = order.toString();
        switch (v) {
            case A -> {}
            case B512, B4K ->
                outbox.append(c, OutboxMessage.of("orders", key, "OrderPlaced", "application/octet-stream", payload));
            case BJ512 ->
                outbox.append(dsl, OutboxMessage.of("orders", key, "OrderPlaced", "application/octet-stream", payload));
            case N512 ->
                notifying.append(
                        c, OutboxMessage.of("orders", key, "OrderPlaced", "application/octet-stream", payload));
            case C512, C4K -> {
                try (PreparedStatement ps = c.prepareStatement(
                        "insert into debezium_outbox (id, aggregatetype, aggregateid, type, payload) values (?, ?, ?, ?, ?)")) {
                    ps.setObject(1, UUID.randomUUID());
                    ps.setString(2, "order");
                    ps.setString(3, key);
                    ps.setString(4, "OrderPlaced");
                    ps.setBytes(5, payload);
                    ps.executeUpdate();
                }
            }
            case H512 -> {
                try (PreparedStatement ps =
                        c.prepareStatement("insert into " + db.schema() + ".outbox_message (message_id, shard, topic,"
                                + " message_key, message_type, content_type, payload) values (?, ?, ?, ?, ?, ?, ?)")) {
                    ps.setObject(1, UUID.randomUUID());
                    ps.setInt(2, random.nextInt(64));
                    ps.setString(3, "orders");
                    ps.setString(4, key);
                    ps.setString(5, "OrderPlaced");
                    ps.setString(6, "application/octet-stream");
                    ps.setBytes(7, payload);
                    ps.executeUpdate();
                }
            }
            default -> throw new IllegalStateException(v.toString());
        }
        c.commit();
    }

    private String scalarText(String sql) {
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                var rs = st.executeQuery(sql)) {
            rs.next();
            return rs.getString(1);
        } catch (SQLException e) {
            return "?";
        }
    }

    private static double median(List<Double> values) {
        double[] sorted =
                values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        int n = sorted.length;
        return n == 0 ? Double.NaN : n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    private static String loadAverage() {
        try {
            String[] parts = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return parts[0] + " " + parts[1] + " " + parts[2];
        } catch (Exception e) {
            return "?";
        }
    }

    private void line(String s) {
        report.add(s);
        System.out.println(s);
        System.out.flush();
    }

    /** The command-line options. */
    private record Options(int[] writers, int rounds, int seconds, List<Variant> variants, Path out) {
        static Options parse(String[] args) {
            int[] writers = {1, 4, 16, 64};
            int rounds = 3;
            int seconds = 3;
            List<Variant> variants = List.of(Variant.values());
            Path out = null;
            for (int i = 0; i < args.length; i++) {
                String name = args[i];
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException(name + " needs a value");
                }
                String v = args[++i];
                switch (name) {
                    case "--writers" ->
                        writers = Arrays.stream(v.split(","))
                                .mapToInt(Integer::parseInt)
                                .toArray();
                    case "--rounds" -> rounds = Integer.parseInt(v);
                    case "--seconds" -> seconds = Integer.parseInt(v);
                    case "--variants" ->
                        variants = Arrays.stream(v.split(","))
                                .map(ProducerBenchmark::variant)
                                .toList();
                    case "--out" -> out = Path.of(v);
                    default ->
                        throw new IllegalArgumentException(
                                "unknown option " + name + "; use --writers, --rounds, --seconds, --variants or --out");
                }
            }
            return new Options(writers, rounds, seconds, variants, out);
        }
    }

    private static Variant variant(String id) {
        for (Variant v : Variant.values()) {
            if (v.id.equals(id)) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown variant " + id + "; use one of "
                + Arrays.stream(Variant.values()).map(x -> x.id).toList());
    }
}
