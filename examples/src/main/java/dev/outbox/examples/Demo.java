package dev.outbox.examples;

import static dev.outbox.examples.Shop.CLIENT_REF;
import static dev.outbox.examples.Shop.ORDERS;
import static dev.outbox.examples.Shop.ORDER_ID;
import static dev.outbox.examples.Shop.PAYMENTS;
import static dev.outbox.migrations.jooq.Tables.OUTBOX_MESSAGE;
import static org.jooq.impl.DSL.countDistinct;

import dev.outbox.consumer.IdempotentConsumer;
import dev.outbox.core.IdempotencyExempt;
import dev.outbox.core.retry.Backoff;
import dev.outbox.http.client.CallResult;
import dev.outbox.http.client.HttpCallException;
import dev.outbox.http.client.IdempotentHttpClient;
import dev.outbox.migrations.jooq.Tables;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.jooq.DSLContext;
import org.jooq.Record;
import org.jooq.impl.DSL;

/**
 * The whole flow under failure, in one command: an orders service behind Idempotency-Key, relays
 * in processes of their own, a payments consumer with consumer-dedup, and clients that retry.
 * Responses are lost on purpose (clients retry with the same key), some Kafka records are
 * delivered twice on purpose, and one relay is killed with SIGKILL half-way and replaced. The
 * summary at the end counts what matters: double charges and lost orders, both of which must be 0.
 */
public final class Demo {

    /** A header marking the records the demo duplicated on purpose, to tell them from the relay's own duplicates. */
    static final String INJECTED = "demo-injected-duplicate";

    /**
     * @param operations client operations (each one POST /orders, retried as needed)
     * @param clients concurrent clients
     * @param lostResponseRate share of committed responses the orders service loses
     * @param duplicateRate share of Kafka records delivered a second time
     * @param relays relay processes at the start (one is killed and replaced half-way)
     * @param timeout how long to wait for every order to be paid
     */
    public record Options(
            int operations, int clients, double lostResponseRate, double duplicateRate, int relays, Duration timeout) {
        /** @throws IllegalArgumentException for a value out of range, naming the option */
        public Options {
            if (operations < 1) {
                throw new IllegalArgumentException("--operations must be at least 1, got " + operations);
            }
            if (clients < 1 || clients > 512) {
                throw new IllegalArgumentException("--clients must be between 1 and 512, got " + clients);
            }
            if (lostResponseRate < 0 || lostResponseRate > 0.5) {
                throw new IllegalArgumentException(
                        "--lost-response-rate must be between 0 and 0.5, got " + lostResponseRate);
            }
            if (duplicateRate < 0 || duplicateRate > 1) {
                throw new IllegalArgumentException("--duplicate-rate must be between 0 and 1, got " + duplicateRate);
            }
            if (relays < 1 || relays > 8) {
                throw new IllegalArgumentException("--relays must be between 1 and 8, got " + relays);
            }
        }

        static Options defaults() {
            return new Options(2000, 16, 0.1, 0.05, 2, Duration.ofMinutes(3));
        }
    }

    /** What happened, as counted at the end from the database, the topic and the processor. */
    public record Summary(
            int operations,
            int operationsSucceeded,
            long attempts,
            long retries,
            long replayedResponses,
            long lostResponses,
            long ordersCreated,
            long duplicateOrders,
            long messagesPublished,
            long duplicatesPublished,
            long injectedDuplicates,
            long chargesApplied,
            long processorCalls,
            long paymentsRecorded,
            long doubleCharges,
            long lostOrders,
            double latencyP50Ms,
            double latencyP99Ms,
            String relayKilled) {

        /** @return whether every invariant holds */
        public boolean ok() {
            return doubleCharges == 0 && lostOrders == 0 && duplicateOrders == 0 && operationsSucceeded == operations;
        }

        void print(PrintStream out) {
            out.println();
            out.println("=== summary ===");
            row(out, "client operations", operations + " (" + operationsSucceeded + " succeeded)");
            row(
                    out,
                    "HTTP attempts",
                    attempts + " (" + retries + " retries; " + replayedResponses + " operations answered by a replay)");
            row(out, "responses lost on purpose", lostResponses);
            row(out, "orders created", ordersCreated + " (" + duplicateOrders + " created twice)");
            row(
                    out,
                    "messages published",
                    messagesPublished + " (" + duplicatesPublished + " duplicates from the relay)");
            row(out, "duplicates injected", injectedDuplicates);
            row(out, "relay killed", relayKilled);
            row(out, "charges applied", chargesApplied + " (" + processorCalls + " processor calls)");
            row(out, "payments recorded", paymentsRecorded);
            row(out, "double charges", doubleCharges);
            row(out, "lost orders", lostOrders);
            row(
                    out,
                    "order commit -> payment commit",
                    String.format("p50 %.1f ms, p99 %.1f ms", latencyP50Ms, latencyP99Ms));
            out.println(ok() ? "OK: every order charged exactly once." : "FAILED: see the counts above.");
        }

        private static void row(PrintStream out, String label, Object value) {
            out.printf("  %-32s %s%n", label, value);
        }
    }

    private Demo() {}

    /**
     * Runs the demo. Options: {@code --operations N --clients N --lost-response-rate R --duplicate-rate R --relays N}.
     *
     * @param args options
     * @throws Exception when a part does not start
     */
    public static void main(String[] args) throws Exception {
        Options options;
        try {
            options = parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("demo: " + e.getMessage());
            System.exit(2);
            return;
        }
        Summary summary = run(options, System.out);
        summary.print(System.out);
        System.exit(summary.ok() ? 0 : 1);
    }

    static Options parse(String[] args) {
        Options d = Options.defaults();
        Map<String, String> given = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--help") || a.equals("-h")) {
                throw new IllegalArgumentException(
                        "usage: ./dev demo [--operations N] [--clients N] [--lost-response-rate R]"
                                + " [--duplicate-rate R] [--relays N]");
            }
            String[] kv = a.split("=", 2);
            if (!kv[0].startsWith("--")) {
                throw new IllegalArgumentException(
                        "unexpected argument '" + a + "'; options look like --operations=500");
            }
            String value = kv.length == 2 ? kv[1] : (i + 1 < args.length ? args[++i] : null);
            if (value == null) {
                throw new IllegalArgumentException("option " + kv[0] + " needs a value");
            }
            given.put(kv[0].substring(2), value);
        }
        try {
            Options o = new Options(
                    Integer.parseInt(given.getOrDefault("operations", String.valueOf(d.operations()))),
                    Integer.parseInt(given.getOrDefault("clients", String.valueOf(d.clients()))),
                    Double.parseDouble(given.getOrDefault("lost-response-rate", String.valueOf(d.lostResponseRate()))),
                    Double.parseDouble(given.getOrDefault("duplicate-rate", String.valueOf(d.duplicateRate()))),
                    Integer.parseInt(given.getOrDefault("relays", String.valueOf(d.relays()))),
                    d.timeout());
            Set<String> unknown = new HashSet<>(given.keySet());
            unknown.removeAll(Set.of("operations", "clients", "lost-response-rate", "duplicate-rate", "relays"));
            if (!unknown.isEmpty()) {
                throw new IllegalArgumentException(
                        "unknown option --" + unknown.iterator().next() + "; see --help");
            }
            return o;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("a numeric option has a value that is not a number: " + e.getMessage());
        }
    }

    /**
     * @param o the options
     * @param out where progress goes
     * @return the summary
     * @throws Exception when a part does not start
     */
    public static Summary run(Options o, PrintStream out) throws Exception {
        TestKafka kafka = RealServices.kafka();
        out.println("[demo] Kafka: " + kafka);
        try (TestDatabase db = TestDatabase.create()) {
            out.println("[demo] PostgreSQL: " + db.server() + ", database " + db.name());
            return run(o, out, db, kafka);
        }
    }

    private static Summary run(Options o, PrintStream out, TestDatabase db, TestKafka kafka) throws Exception {
        Shop.create(db.dataSource());
        kafka.createTopic(OrdersService.TOPIC, 8, OrdersService.TOPIC_CONFIGS);
        DSLContext dsl = db.dsl();
        Path logDir =
                Files.createDirectories(Path.of(System.getProperty("java.io.tmpdir"), "outbox-demo-" + db.name()));
        out.println("[demo] relay logs in " + logDir);

        List<RelayProcess> relays = new ArrayList<>();
        for (int i = 1; i <= o.relays(); i++) {
            relays.add(RelayProcess.start("relay-" + i, db, kafka.bootstrapServers(), logDir));
        }
        awaitShardsOwned(dsl, o.timeout(), out);
        CardProcessor processor = new CardProcessor();
        IdempotentConsumer payments = PaymentsConsumer.start(db.newDataSource(8), kafka.bootstrapServers(), processor);
        Duration attemptTimeout = Duration.ofSeconds(2);
        OrdersService orders = OrdersService.start(
                db.newDataSource(o.clients() + 2), 0, o.lostResponseRate(), attemptTimeout.plusMillis(500));
        Duplicator duplicator = new Duplicator(kafka, o.duplicateRate());
        Thread duplicatorThread = Thread.ofPlatform().name("demo-duplicator").start(duplicator);

        IdempotentHttpClient client = IdempotentHttpClient.builder()
                .idempotentTargets(orders.baseUri().toString())
                .attemptTimeout(attemptTimeout)
                .maxAttempts(8)
                .backoff(Backoff.of(Duration.ofMillis(50), Duration.ofSeconds(2)))
                .build();
        URI ordersUri = orders.baseUri().resolve("/orders");
        AtomicInteger next = new AtomicInteger();
        AtomicInteger done = new AtomicInteger();
        AtomicInteger succeeded = new AtomicInteger();
        AtomicLong attempts = new AtomicLong();
        AtomicLong replayed = new AtomicLong();
        String[] killed = {"none"};
        long started = System.nanoTime();

        try (var progress = Executors.newSingleThreadScheduledExecutor()) {
            progress.scheduleAtFixedRate(
                    () -> {
                        try {
                            long ordersNow = dsl.fetchCount(ORDERS);
                            long paid = dsl.select(countDistinct(ORDER_ID))
                                    .from(PAYMENTS)
                                    .fetchOne(0, Long.class);
                            long backlog = dsl.fetchCount(OUTBOX_MESSAGE);
                            out.printf(
                                    "[demo] %5.1fs  operations %d/%d  orders %d  outbox backlog %d  paid %d  relays alive %d%n",
                                    (System.nanoTime() - started) / 1e9,
                                    done.get(),
                                    o.operations(),
                                    ordersNow,
                                    backlog,
                                    paid,
                                    relays.stream()
                                            .filter(RelayProcess::isAlive)
                                            .count());
                        } catch (RuntimeException e) {
                            out.println("[demo] progress: " + e.getMessage());
                        }
                    },
                    1,
                    1,
                    TimeUnit.SECONDS);

            try (ExecutorService clients = Executors.newFixedThreadPool(o.clients())) {
                for (int c = 0; c < o.clients(); c++) {
                    clients.submit(() -> {
                        int op;
                        while ((op = next.getAndIncrement()) < o.operations()) {
                            String body = "clientRef=op-" + op + "&customerId=c-" + (op % 97) + "&amountCents="
                                    + (1000 + op) + "&currency=EUR&sku=sku-" + (op % 13) + "&quantity=" + (1 + op % 3);
                            HttpRequest request = HttpRequest.newBuilder(ordersUri)
                                    .header("Content-Type", "application/x-www-form-urlencoded")
                                    .POST(HttpRequest.BodyPublishers.ofString(body))
                                    .build();
                            try {
                                CallResult<String> result = perform(client, request, attempts, out);
                                if (result == null) {
                                    out.println("[demo] operation op-" + op + " gave up after repeated failures");
                                } else if (result.status() == 201) {
                                    succeeded.incrementAndGet();
                                    if (result.replayed()) {
                                        replayed.incrementAndGet();
                                    }
                                } else {
                                    out.println("[demo] operation op-" + op + " ended with " + result.status() + " "
                                            + result.body());
                                }
                            } catch (InterruptedException e) {
                                Thread.currentThread().interrupt();
                                return;
                            }
                            if (done.incrementAndGet() == o.operations() / 2) {
                                killAndReplace(relays, db, kafka, logDir, out, killed);
                            }
                        }
                    });
                }
            }
            out.println("[demo] all operations done; waiting for every order to be paid");
            long deadline = System.nanoTime() + o.timeout().toNanos();
            while (System.nanoTime() < deadline) {
                long ordersNow = dsl.fetchCount(ORDERS);
                long paid = dsl.select(countDistinct(ORDER_ID)).from(PAYMENTS).fetchOne(0, Long.class);
                if (paid >= ordersNow && dsl.fetchCount(OUTBOX_MESSAGE) == 0 && duplicator.caughtUp(kafka)) {
                    break;
                }
                Thread.sleep(200);
            }
            progress.shutdownNow();
        } finally {
            duplicator.stop();
            duplicatorThread.join(10_000);
            payments.close();
            orders.close();
            for (RelayProcess r : relays) {
                r.close();
            }
        }

        TopicCount topic = TopicCount.scan(kafka);
        long ordersCreated = dsl.fetchCount(ORDERS);
        long distinctOps = dsl.select(countDistinct(CLIENT_REF)).from(ORDERS).fetchOne(0, Long.class);
        long paymentsRecorded = dsl.fetchCount(PAYMENTS);
        long ordersPaidTwice = dsl.fetchCount(dsl.select(ORDER_ID)
                .from(PAYMENTS)
                .groupBy(ORDER_ID)
                .having(DSL.count().gt(1)));
        long lostOrders = dsl.fetchCount(dsl.select(ORDER_ID)
                .from(ORDERS)
                .whereNotExists(dsl.selectOne()
                        .from(PAYMENTS)
                        .where(org.jooq
                                .impl
                                .DSL
                                .field(DSL.name("payments", "order_id"))
                                .eq(DSL.field(DSL.name("orders", "order_id"))))));
        Record latency = dsl.fetchOne("""
        select percentile_cont(0.5) within group (order by ms) as p50, percentile_cont(0.99) within group (order by ms) as p99
        from (select extract(epoch from (min(p.created_at) - o.created_at)) * 1000 as ms
              from shop.orders o join shop.payments p on p.order_id = o.order_id group by o.order_id, o.created_at) t""");
        return new Summary(
                o.operations(),
                succeeded.get(),
                attempts.get(),
                attempts.get() - o.operations(),
                replayed.get(),
                orders.lostResponses(),
                ordersCreated,
                ordersCreated - distinctOps,
                topic.published(),
                topic.published() - topic.distinct(),
                topic.injected(),
                processor.charges(),
                processor.calls(),
                paymentsRecorded,
                ordersPaidTwice + processor.ordersChargedTwice(),
                lostOrders,
                latency.get("p50") == null ? 0 : latency.get("p50", Double.class),
                latency.get("p99") == null ? 0 : latency.get("p99", Double.class),
                killed[0]);
    }

    private static void awaitShardsOwned(DSLContext dsl, Duration timeout, PrintStream out)
            throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        var lease = Tables.OUTBOX_SHARD_LEASE;
        while (dsl.fetchCount(lease, lease.OWNER.isNull().or(lease.LEASE_UNTIL.lt(OffsetDateTime.now(ZoneOffset.UTC))))
                > 0) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException(
                        "the relays did not claim every shard within " + timeout + "; see their logs");
            }
            Thread.sleep(200);
        }
        out.println("[demo] relays own every shard; starting the clients");
    }

    /**
     * One logical operation: the client retries within its budget; when it gives up (breaker open,
     * attempts or budget exhausted) the operation is resumed a little later with the SAME key, as a
     * job queue or a user pressing the button again would.
     */
    @IdempotencyExempt(
            rules = IdempotencyExempt.RETRY_BUDGET,
            reason = "stands in for a user or a job queue resuming the"
                    + " operation with the same key, at most 30 times; every attempt goes through the budgeted client")
    private static CallResult<String> perform(
            IdempotentHttpClient client, HttpRequest request, AtomicLong attempts, PrintStream out)
            throws InterruptedException {
        String key = null;
        for (int resumption = 0; resumption < 30; resumption++) {
            try {
                CallResult<String> result = key == null
                        ? client.send(request, HttpResponse.BodyHandlers.ofString())
                        : client.send(request, HttpResponse.BodyHandlers.ofString(), key);
                attempts.addAndGet(result.attempts());
                if (result.status() < 500 && result.status() != 409 && result.status() != 429) {
                    return result;
                }
                key = result.idempotencyKey();
            } catch (HttpCallException e) {
                attempts.addAndGet(e.attempts());
                key = e.idempotencyKey();
            } catch (IOException e) {
                out.println("[demo] unexpected I/O failure: " + e);
            }
            Thread.sleep(500 + ThreadLocalRandom.current().nextInt(1000));
        }
        return null;
    }

    private static synchronized void killAndReplace(
            List<RelayProcess> relays,
            TestDatabase db,
            TestKafka kafka,
            Path logDir,
            PrintStream out,
            String[] killed) {
        try {
            RelayProcess victim = relays.get(0);
            victim.kill();
            killed[0] = victim.name() + " (SIGKILL half-way), replaced by relay-" + (relays.size() + 1);
            out.println("[demo] killed " + victim.name() + " with SIGKILL; starting relay-" + (relays.size() + 1));
            relays.add(RelayProcess.start("relay-" + (relays.size() + 1), db, kafka.bootstrapServers(), logDir));
        } catch (Exception e) {
            out.println("[demo] could not kill and replace a relay: " + e);
        }
    }
}
