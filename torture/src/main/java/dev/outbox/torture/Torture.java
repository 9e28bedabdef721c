package dev.outbox.torture;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.outbox.examples.OrdersService;
import dev.outbox.examples.Shop;
import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.testkit.PrivatePostgres;
import dev.outbox.testkit.TestKafka;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;

/**
 * {@code ./dev torture}: the whole pipeline under faults, checked at the end. Writers commit and
 * roll back messages for a few hundred keys (each carrying its key's sequence number, taken under
 * the key's row lock) and send orders over HTTP with an Idempotency-Key while responses are lost;
 * relay processes (the runnable jar) publish them; consumer-dedup processes apply one effect per
 * message. Meanwhile a seeded schedule kills and pauses those processes, cuts their database
 * connections, restarts the Kafka broker and a private PostgreSQL instance, and a duplicator
 * delivers records twice. Once everything drained, {@link Checker} judges the recorded
 * {@link History}; the last line reads {@code torture: PASS} or {@code torture: FAIL}.
 */
public final class Torture {
    /** The topic of the writers' messages. */
    static final String TOPIC = "torture";

    static final int PARTITIONS = 8;
    /**
     * Relay lease; a paused relay stays stopped past it. Its safety margin is a third of it, 4 s,
     * which must hold the producer's delivery timeout and the topic's timestamp bound below.
     */
    static final Duration LEASE = Duration.ofSeconds(12);
    /**
     * The relays' {@code delivery.timeout.ms} (and {@code request.timeout.ms}): the half of the
     * lease's margin the relay picks by default, so that the timestamp bound fits between it and the
     * margin (a loaded 2-core machine times some 2 s requests out; they are sent again).
     */
    static final Duration DELIVERY_TIMEOUT = Duration.ofSeconds(2);
    /**
     * The torture topic's {@code message.timestamp.before.max.ms}, between {@link #DELIVERY_TIMEOUT}
     * and the lease's margin (one host, so no clock skew): the broker refuses a record a relay
     * frozen past its lease sends when it thaws, as outbox-relay/ENGINE.md ("Fencing on the Kafka
     * side") tells users who need a key's last record to be its latest message.
     */
    static final Duration TIMESTAMP_BOUND = Duration.ofSeconds(3);

    static final String DATABASE = "torture";
    private static final long PROGRESS_SECONDS = 5;
    private static final Duration READY_TIMEOUT = Duration.ofMinutes(3);
    /** System property: {@code false} starts the child JVMs without a class-data archive. */
    static final String CLASS_DATA_ARCHIVE = "outbox.torture.class-data-archive";

    private final Options o;
    private final PrintStream out;
    private final long started = System.nanoTime();

    private Torture(Options o, PrintStream out) {
        this.o = o;
        this.out = out;
    }

    /**
     * Runs {@code ./dev torture}. Exit code 0 on PASS, 1 on FAIL, 2 for bad options or a part that
     * did not start.
     *
     * @param args options, see {@code --help}
     */
    public static void main(String[] args) {
        Options options;
        try {
            options = Options.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage().startsWith("usage:") ? e.getMessage() : "torture: " + e.getMessage());
            System.exit(2);
            return;
        }
        int code;
        try {
            Verdict v = run(options, System.out);
            code = v.passed() ? 0 : 1;
        } catch (Exception e) {
            System.err.println("torture: could not run: " + e);
            e.printStackTrace();
            code = 2;
        }
        System.out.flush();
        // the in-JVM broker's threads would keep the JVM alive
        Runtime.getRuntime().halt(code);
    }

    /**
     * Runs a torture run and prints its ledger.
     *
     * @param options what to run
     * @param out where progress and the ledger go
     * @return the checker's verdict
     * @throws Exception when a part (PostgreSQL, Kafka, a process) does not start
     */
    public static Verdict run(Options options, PrintStream out) throws Exception {
        Options o = options.relayJar() == null ? options.withRelayJar(findRelayJar()) : options;
        if (!Files.isRegularFile(o.relayJar())) {
            throw new IllegalArgumentException("no relay jar at " + o.relayJar()
                    + "; build it with ./mvnw -B package -DskipTests -pl outbox-relay -am," + " or pass --relay-jar");
        }
        return new Torture(o, out).run();
    }

    private static Path findRelayJar() throws IOException {
        String configured = System.getProperty("outbox.torture.relay-jar");
        if (configured != null) {
            return Path.of(configured);
        }
        for (Path dir : List.of(Path.of("outbox-relay", "target"), Path.of("..", "outbox-relay", "target"))) {
            if (Files.isDirectory(dir)) {
                try (var files = Files.list(dir)) {
                    Optional<Path> jar = files.filter(
                                    p -> p.getFileName().toString().matches("outbox-relay-.*-all\\.jar"))
                            .findFirst();
                    if (jar.isPresent()) {
                        return jar.get();
                    }
                }
            }
        }
        return Path.of("outbox-relay", "target", "outbox-relay-all.jar");
    }

    private Verdict run() throws Exception {
        Path base = Files.createTempDirectory("outbox-torture-");
        Path logs = Files.createDirectories(base.resolve("logs"));
        log("seed " + o.seed() + "; " + o.messages() + " messages over " + o.keys() + " keys in "
                + o.duration().toSeconds() + " s, " + o.relays() + " relays, " + o.consumers() + " consumers; faults "
                + o.faults() + "; logs in " + logs);
        log(configuration());
        Ledger ledger = new Ledger();
        // the broker starts while PostgreSQL is created: both take seconds on a loaded machine
        // a restarted broker waits for the controller to expire its previous session before it serves:
        // 2 s instead of 9 s
        var kafkaStart = CompletableFuture.supplyAsync(() -> TestKafka.startInJvm(
                Map.of("broker.session.timeout.ms", "2000", "broker.heartbeat.interval.ms", "500")));
        try (PrivatePostgres pg = PrivatePostgres.start();
                TestKafka kafka = kafkaStart.join()) {
            log(pg + " (data in " + pg.directory() + ")");
            log("Kafka: " + kafka);
            pg.createDatabase(DATABASE);
            String jdbcUrl = pg.server().jdbcUrl(DATABASE);
            try (HikariDataSource ds = dataSource(jdbcUrl, o.writers() + 4, "torture-writer");
                    HikariDataSource ordersDs = dataSource(jdbcUrl, 8, "torture-orders")) {
                prepare(ds);
                createTortureTopic(kafka);
                kafka.createTopic(OrdersService.TOPIC, 4);
                log("schema and topics ready; starting the relays and consumers");
                List<Child> relays = new ArrayList<>();
                List<Child> consumers = new ArrayList<>();
                for (int i = 1; i <= o.relays(); i++) {
                    relays.add(
                            ChildCommands.relay("relay-" + i, jdbcUrl, kafka.bootstrapServers(), logs, o.relayJar()));
                }
                for (int i = 1; i <= o.consumers(); i++) {
                    consumers.add(ChildCommands.consumer("consumer-" + i, jdbcUrl, kafka.bootstrapServers(), logs));
                }
                List<Child> children = new ArrayList<>(relays);
                children.addAll(consumers);
                // when this JVM is stopped (Ctrl-C), its relays and consumers go with it
                Thread reaper = new Thread(() -> children.forEach(Child::destroyNow), "torture-reaper");
                Runtime.getRuntime().addShutdownHook(reaper);
                try {
                    for (Child c : children) {
                        c.start();
                    }
                    // no wait for the relays to claim their shards: the writers' first rows wait for them, as
                    // rows committed during a deployment would
                    History history = load(ds, ordersDs, jdbcUrl, kafka, pg, relays, consumers, children, ledger);
                    Verdict v = Checker.check(history);
                    out.println();
                    out.println("configuration");
                    out.println("  " + configuration());
                    v.print(out);
                    if (!v.passed()) {
                        out.println("logs kept in " + logs);
                    }
                    return v;
                } finally {
                    for (Child c : children) {
                        c.resume();
                    }
                    Child.closeAll(children);
                    Runtime.getRuntime().removeShutdownHook(reaper);
                }
            }
        } finally {
            if (!kafkaStart.isDone()) {
                kafkaStart.cancel(true);
            }
        }
    }

    private History load(
            HikariDataSource ds,
            HikariDataSource ordersDs,
            String jdbcUrl,
            TestKafka kafka,
            PrivatePostgres pg,
            List<Child> relays,
            List<Child> consumers,
            List<Child> children,
            Ledger ledger)
            throws Exception {
        awaitReady(children);
        DSLContext dsl = DSL.using(ds, SQLDialect.POSTGRES);
        Writers writers = new Writers(o, dsl);
        OrdersService orders = OrdersService.start(ordersDs, 0, o.lostResponseRate(), Duration.ofMillis(2500));
        HttpLoad http = new HttpLoad(o, orders.baseUri().resolve("/orders"));
        Duplicator duplicator = new Duplicator(kafka, TOPIC, o.duplicateRate(), new Random(o.seed() * 31 + 7), ledger);
        Faults faults = new Faults(o, kafka, pg, jdbcUrl, children, ledger, this::log);
        ScheduledExecutorService ticker = Executors.newSingleThreadScheduledExecutor();
        try {
            long[] lastCommitted = {0};
            ticker.scheduleAtFixedRate(
                    () -> progress(dsl, writers, http, ledger, lastCommitted),
                    PROGRESS_SECONDS,
                    PROGRESS_SECONDS,
                    TimeUnit.SECONDS);
            ticker.scheduleWithFixedDelay(() -> faults.restartExited(), 2, 2, TimeUnit.SECONDS);
            Thread dup = Thread.ofPlatform().name("torture-duplicator").start(duplicator);
            writers.start();
            http.start();
            long writing = System.nanoTime();
            faults.runSchedule();
            log("fault schedule done; waiting for the writers");
            writers.await();
            double seconds = (System.nanoTime() - writing) / 1e9;
            log(String.format(
                    "writers done: %d committed in %d transactions in %.0f s (%.0f messages/s), %d rolled back, %d with an unknown"
                            + " outcome, %d transactions failed (database gone)",
                    writers.committed(),
                    writers.transactions(),
                    seconds,
                    writers.committed() / seconds,
                    writers.rolledBack(),
                    writers.uncertain(),
                    writers.failures()));
            http.await();
            faults.healAll();
            log("HTTP done; draining");
            long deadline = System.nanoTime() + o.drainTimeout().toNanos();
            while (System.nanoTime() < deadline && backlog(dsl) > 0) {
                Thread.sleep(250);
            }
            log("outbox empty; stopping the relays");
            ticker.shutdownNow();
            // a relay that was paused may still hold a batch in flight: a relay stops gracefully by
            // finishing its batches in flight, so once its process has exited nothing of it lands any more
            Child.closeAll(relays);
            duplicator.stop();
            dup.join(30_000);
            log("relays stopped; waiting for the consumers");
            awaitConsumersCaughtUp(kafka, deadline);
            Child.closeAll(consumers);
            log("drained; recording the history");
            orders.close();
            History history = Recorder.record(dsl, kafka, TOPIC, writers, http, ledger);
            log("history recorded");
            return history;
        } finally {
            ticker.shutdownNow();
            duplicator.stop();
            faults.close();
        }
    }

    /**
     * Waits until every relay and consumer says it runs, so that the schedule's first faults hit
     * running processes and the writers' pace is not spent on JVMs still starting.
     */
    private void awaitReady(List<Child> children) throws InterruptedException {
        long t0 = System.nanoTime();
        long deadline = t0 + READY_TIMEOUT.toNanos();
        while (!children.stream().allMatch(Child::ready)) {
            if (System.nanoTime() > deadline) {
                log("not every process said it runs within " + READY_TIMEOUT.toSeconds() + " s; starting anyway: "
                        + children.stream()
                                .filter(c -> !c.ready())
                                .map(Child::toString)
                                .toList());
                return;
            }
            Thread.sleep(200);
        }
        log(String.format("relays and consumers running after %.1f s", (System.nanoTime() - t0) / 1e9));
    }

    private void progress(DSLContext dsl, Writers writers, HttpLoad http, Ledger ledger, long[] lastCommitted) {
        try {
            long charged = Recorder.count(dsl, "select count(*) from torture.charge");
            long committed = writers.committed();
            log(String.format(
                    "committed %d (%d/s)  rolled back %d  outbox backlog %d  charged %d  http %d/%d  faults %d",
                    committed,
                    (committed - lastCommitted[0]) / PROGRESS_SECONDS,
                    writers.rolledBack(),
                    backlog(dsl),
                    charged,
                    http.done(),
                    o.httpOperations(),
                    ledger.total()));
            lastCommitted[0] = committed;
        } catch (RuntimeException e) {
            log("progress: " + e.getMessage());
        }
    }

    private static long backlog(DSLContext dsl) {
        try {
            return Recorder.count(dsl, "select count(*) from outbox.outbox_message where parked_at is null");
        } catch (RuntimeException e) {
            return Long.MAX_VALUE;
        }
    }

    private void awaitConsumersCaughtUp(TestKafka kafka, long deadline) throws InterruptedException {
        while (System.nanoTime() < deadline) {
            try (Admin admin = kafka.admin()) {
                Map<TopicPartition, OffsetSpec> specs = new HashMap<>();
                for (int p = 0; p < PARTITIONS; p++) {
                    specs.put(new TopicPartition(TOPIC, p), OffsetSpec.latest());
                }
                var ends = admin.listOffsets(specs).all().get(10, TimeUnit.SECONDS);
                Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(TortureConsumer.NAME)
                        .partitionsToOffsetAndMetadata()
                        .get(10, TimeUnit.SECONDS);
                boolean caughtUp = ends.entrySet().stream()
                        .allMatch(e -> e.getValue().offset() == 0
                                || (committed.get(e.getKey()) != null
                                        && committed.get(e.getKey()).offset()
                                                >= e.getValue().offset()));
                if (caughtUp) {
                    return;
                }
            } catch (Exception e) {
                log("waiting for the consumers: " + e.getMessage());
            }
            Thread.sleep(500);
        }
        log("the consumers did not catch up before --drain-timeout; the checker will show what is missing");
    }

    private void prepare(HikariDataSource ds) {
        OutboxMigrations.migrate(ds);
        Shop.create(ds);
        DSLContext dsl = DSL.using(ds, SQLDialect.POSTGRES);
        dsl.execute("create schema torture");
        dsl.execute("create table torture.key_seq (key text primary key, seq bigint not null)");
        // what committed, written in the writer's transaction: the ground truth when a commit's outcome is unknown
        dsl.execute(
                "create table torture.written (message_id uuid primary key, key text not null, seq bigint not null, amount bigint not null)");
        // no unique constraint: a double effect shows up as a second row
        dsl.execute(
                "create table torture.charge (message_id uuid not null, key text not null, seq bigint not null, amount bigint not null,"
                        + " consumer text not null, created_at timestamptz not null default clock_timestamp())");
        dsl.execute("create index on torture.charge (message_id)");
        dsl.execute(
                "create table torture.running_total (key text primary key, applied bigint not null, total bigint not null)");
        dsl.execute(
                "insert into torture.key_seq select 'key-' || g, 0 from generate_series(0, " + (o.keys() - 1) + ") g");
    }

    /** The settings that decide whether a thawed relay can end a key on a stale record. */
    private static String configuration() {
        return "relays: publish-mode idempotent, lease " + LEASE.toSeconds() + " s (margin "
                + LEASE.dividedBy(3).toMillis()
                + " ms), kafka delivery.timeout.ms = request.timeout.ms = " + DELIVERY_TIMEOUT.toMillis() + "; topic "
                + TOPIC
                + ": message.timestamp.before.max.ms = " + TIMESTAMP_BOUND.toMillis();
    }

    /** The torture topic, with the timestamp bound that keeps a thawed relay's stale copies out. */
    private static void createTortureTopic(TestKafka kafka) throws Exception {
        try (Admin admin = kafka.admin()) {
            admin.createTopics(List.of(new NewTopic(TOPIC, PARTITIONS, (short) 1)
                            .configs(Map.of(
                                    "message.timestamp.before.max.ms", String.valueOf(TIMESTAMP_BOUND.toMillis())))))
                    .all()
                    .get(30, TimeUnit.SECONDS);
        }
        kafka.createTopic(TOPIC, PARTITIONS); // exists: waits for the leaders
    }

    static HikariDataSource dataSource(String jdbcUrl, int size, String applicationName) {
        HikariConfig c = new HikariConfig();
        c.setJdbcUrl(jdbcUrl);
        c.setUsername("postgres");
        c.setMaximumPoolSize(size);
        c.setConnectionTimeout(5_000);
        c.setInitializationFailTimeout(-1);
        c.addDataSourceProperty("ApplicationName", applicationName);
        PoolWatchdog.boundConnectionAttempts(c);
        return new HikariDataSource(c);
    }

    static Connection adminConnection(String jdbcUrl) throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", "postgres");
        p.setProperty("ApplicationName", "torture-admin");
        p.setProperty("connectTimeout", "5");
        return DriverManager.getConnection(jdbcUrl, p);
    }

    synchronized void log(String line) {
        out.printf("[torture %6.1fs] %s%n", (System.nanoTime() - started) / 1e9, line);
    }
}
