package dev.outbox.bench.consumer;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import dev.outbox.consumer.IdempotentConsumer;
import dev.outbox.consumer.MessageHandler;
import dev.outbox.core.MessageIds;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import javax.sql.DataSource;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Throughput of {@link IdempotentConsumer} against a plain consumer loop that does the same INSERT
 * per record in a transaction and commits offsets the same way (commitSync after the database
 * commit), on the in-JVM Kafka broker and a fresh PostgreSQL database of the test kit.
 *
 * <p>Like with like: for each batch size every variant first runs once unreported (JIT, page
 * cache, connection pool and broker warm), then {@code rounds} measured rounds run every variant
 * once each, the order rotating from round to round, so that no variant always runs first or
 * last. Each round's ratio compares runs of that round; the report gives every round and the
 * median.
 *
 * <p>Arguments (all optional): {@code messages} (default 100000), {@code partitions} (4),
 * {@code payloadBytes} (100), {@code batches} (comma-separated records per transaction, default
 * {@code 50}), {@code concurrency} of the extra parallel dedup run (4, 1 = none), {@code rounds}
 * (3).
 *
 * <pre>
 * ./mvnw -q -pl benchmarks -am package -DskipTests dependency:build-classpath -Dmdep.outputFile=/tmp/bench.cp
 * java -Xms2g -Xmx2g -cp benchmarks/target/classes:$(cat /tmp/bench.cp) \
 *   dev.outbox.bench.consumer.ConsumerBenchmark 100000 4 100 50 4 3
 * </pre>
 */
public final class ConsumerBenchmark {
    private static final String INSERT = "insert into bench_payments(message_id, order_id, amount) values (?, ?, ?)";

    private ConsumerBenchmark() {}

    public static void main(String[] args) throws Exception {
        quietLogs();
        int messages = args.length > 0 ? Integer.parseInt(args[0]) : 100_000;
        int partitions = args.length > 1 ? Integer.parseInt(args[1]) : 4;
        int payloadBytes = args.length > 2 ? Integer.parseInt(args[2]) : 100;
        int[] batches = args.length > 3
                ? Arrays.stream(args[3].split(",")).mapToInt(Integer::parseInt).toArray()
                : new int[] {50};
        int concurrency = args.length > 4 ? Integer.parseInt(args[4]) : 4;
        int rounds = args.length > 5 ? Integer.parseInt(args[5]) : 3;

        TestKafka kafka = RealServices.kafka();
        try (TestDatabase db = TestDatabase.create()) {
            try (Connection c = db.connect();
                    Statement st = c.createStatement()) {
                st.execute(
                        "create table bench_payments(id bigserial primary key, message_id uuid not null, order_id text,"
                                + " amount bigint)");
            }
            String topic = "bench-consumer-" + UUID.randomUUID().toString().substring(0, 8);
            kafka.createTopic(topic, partitions);
            long t0 = System.nanoTime();
            produce(kafka, topic, messages, payloadBytes);
            System.out.printf(
                    Locale.ROOT,
                    "produced %d messages (%d bytes payload) to %d partitions in %.1f s%n",
                    messages,
                    payloadBytes,
                    partitions,
                    (System.nanoTime() - t0) / 1e9);
            System.out.println("measured from the first handled record to the last; consumers start from offset 0;"
                    + " every variant warmed once, then " + rounds + " rounds in rotating order");
            DataSource pool = db.newDataSource(Math.max(4, concurrency + 1));
            List<String> lines = new ArrayList<>();
            for (int batch : batches) {
                List<Variant> variants = new ArrayList<>();
                variants.add(new Variant("plain loop (no dedup)", () -> plain(kafka, pool, topic, messages, batch)));
                variants.add(
                        new Variant("IdempotentConsumer", () -> dedup(kafka, pool, topic, messages, batch, 1, false)));
                if (batch > 1) {
                    variants.add(new Variant(
                            "IdempotentConsumer savepointPerRecord",
                            () -> dedup(kafka, pool, topic, messages, batch, 1, true)));
                }
                for (Variant v : variants) {
                    truncate(db);
                    Result warm = v.run().call();
                    System.out.printf(
                            Locale.ROOT, "warm-up %-40s batch %d: %.0f msgs/s%n", v.name(), batch, warm.perSecond());
                }
                double[][] perSecond = new double[variants.size()][rounds];
                for (int round = 0; round < rounds; round++) {
                    StringBuilder order = new StringBuilder();
                    for (int k = 0; k < variants.size(); k++) {
                        int i = (k + round) % variants.size();
                        truncate(db);
                        perSecond[i][round] = variants.get(i).run().call().perSecond();
                        order.append(k == 0 ? "" : ", ").append(variants.get(i).name());
                    }
                    int r = round;
                    System.out.printf(
                            Locale.ROOT,
                            "round %d (order: %s): msgs/s in variant order %s%n",
                            round + 1,
                            order,
                            Arrays.toString(Arrays.stream(perSecond)
                                    .mapToLong(v -> Math.round(v[r]))
                                    .toArray()));
                }
                lines.add(String.format(
                        Locale.ROOT,
                        "batch %d, %d rounds (msgs/s per round; median; median of the per-round"
                                + " ratios to the plain loop)",
                        batch,
                        rounds));
                for (int i = 0; i < variants.size(); i++) {
                    double[] ratios = new double[rounds];
                    StringBuilder figures = new StringBuilder();
                    for (int round = 0; round < rounds; round++) {
                        ratios[round] = perSecond[i][round] / perSecond[0][round];
                        figures.append(round == 0 ? "" : " ")
                                .append(String.format(Locale.ROOT, "%6.0f", perSecond[i][round]));
                    }
                    lines.add(String.format(
                            Locale.ROOT,
                            "  %-40s %s   median %6.0f   ratio %.2f (rounds: %s)",
                            variants.get(i).name(),
                            figures,
                            median(perSecond[i]),
                            median(ratios),
                            ratioList(ratios)));
                }
            }
            if (concurrency > 1) {
                int batch = batches[batches.length - 1];
                truncate(db);
                Result dedup = dedup(kafka, pool, topic, messages, batch, concurrency, false);
                lines.add(String.format(
                        Locale.ROOT,
                        "IdempotentConsumer batch %d, %d threads (after the rounds): %.0f msgs/s",
                        batch,
                        concurrency,
                        dedup.perSecond()));
            }
            System.out.println();
            System.out.printf(
                    Locale.ROOT,
                    "messages=%d partitions=%d payload=%dB jdk=%s cpus=%d%n",
                    messages,
                    partitions,
                    payloadBytes,
                    System.getProperty("java.version"),
                    Runtime.getRuntime().availableProcessors());
            lines.forEach(System.out::println);
        }
        System.exit(0);
    }

    /** One way of consuming the topic, run as a whole each time. */
    private record Variant(String name, Callable<Result> run) {}

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    private static String ratioList(double[] ratios) {
        StringBuilder out = new StringBuilder();
        for (double r : ratios) {
            out.append(out.length() == 0 ? "" : " ").append(String.format(Locale.ROOT, "%.2f", r));
        }
        return out.toString();
    }

    record Result(int messages, long nanos) {
        double perSecond() {
            return messages / (nanos / 1e9);
        }

        String line(String run, int batch, int threads) {
            return String.format(
                    Locale.ROOT, "%-34s %6d %11d %10.0f %8.2f", run, batch, threads, perSecond(), nanos / 1e9);
        }
    }

    private static void produce(TestKafka kafka, String topic, int messages, int payloadBytes) throws Exception {
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(kafka.producerProperties())) {
            for (int i = 0; i < messages; i++) {
                String prefix = "order-" + i + ":" + (i % 10_000) + ":";
                byte[] value =
                        Arrays.copyOf(prefix.getBytes(StandardCharsets.UTF_8), Math.max(prefix.length(), payloadBytes));
                Arrays.fill(value, prefix.length(), value.length, (byte) 'x');
                RecordHeaders headers = new RecordHeaders();
                headers.add(
                        OutboxHeaders.MESSAGE_ID, MessageIds.next().toString().getBytes(StandardCharsets.UTF_8));
                producer.send(new ProducerRecord<>(
                        topic, null, ("order-" + i).getBytes(StandardCharsets.UTF_8), value, headers));
            }
            producer.flush();
        }
    }

    /** The handler both runs share: one INSERT through jOOQ. */
    private static void insert(DSLContext tx, UUID id, byte[] payload) {
        String[] parts = new String(payload, StandardCharsets.UTF_8).split(":", 3);
        tx.execute(INSERT, id, parts[0], Long.parseLong(parts[1]));
    }

    private static Result dedup(
            TestKafka kafka, DataSource pool, String topic, int messages, int batch, int threads, boolean savepoints)
            throws Exception {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        String name = "bench-" + UUID.randomUUID().toString().substring(0, 8);
        MessageHandler handler = (m, tx) -> insert(tx, m.messageId(), m.payload());
        try (IdempotentConsumer consumer = IdempotentConsumer.builder()
                .kafkaProperties(Map.of("bootstrap.servers", kafka.bootstrapServers(), "group.id", name))
                .topics(topic)
                .consumerName(name)
                .dataSource(pool)
                .handler(handler)
                .maxRecordsPerTransaction(batch)
                .savepointPerRecord(savepoints)
                .concurrency(threads)
                .meterRegistry(registry)
                .purgeInterval(Duration.ZERO)
                .build()) {
            Counter handled = registry.get("outbox.consumer.handled").counter();
            consumer.start();
            while (handled.count() < 1) {
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(1));
            }
            long start = System.nanoTime();
            double first = handled.count();
            while (handled.count() < messages) {
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(1));
            }
            return new Result((int) (messages - first), System.nanoTime() - start);
        }
    }

    /** The comparison: poll, then per partition a transaction per {@code batch} records, then commitSync. */
    private static Result plain(TestKafka kafka, DataSource pool, String topic, int messages, int batch)
            throws Exception {
        var props = kafka.consumerProperties("plain-" + UUID.randomUUID());
        int done = 0;
        long start = 0;
        int first = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props);
                Connection connection = pool.getConnection()) {
            connection.setAutoCommit(false);
            DSLContext tx = DSL.using(connection, SQLDialect.POSTGRES);
            consumer.subscribe(List.of(topic));
            while (done < messages) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (TopicPartition tp : records.partitions()) {
                    List<ConsumerRecord<byte[], byte[]>> list = records.records(tp);
                    for (int from = 0; from < list.size(); from += batch) {
                        List<ConsumerRecord<byte[], byte[]>> chunk =
                                list.subList(from, Math.min(list.size(), from + batch));
                        for (ConsumerRecord<byte[], byte[]> r : chunk) {
                            UUID id = UUID.fromString(new String(
                                    r.headers()
                                            .lastHeader(OutboxHeaders.MESSAGE_ID)
                                            .value(),
                                    StandardCharsets.UTF_8));
                            insert(tx, id, r.value());
                        }
                        connection.commit();
                        if (start == 0) {
                            start = System.nanoTime();
                            first = chunk.size();
                        }
                        done += chunk.size();
                        offsets.put(
                                tp,
                                new OffsetAndMetadata(
                                        chunk.get(chunk.size() - 1).offset() + 1));
                    }
                }
                if (!offsets.isEmpty()) {
                    consumer.commitSync(offsets);
                }
            }
        }
        return new Result(messages - first, System.nanoTime() - start);
    }

    private static void truncate(TestDatabase db) throws SQLException {
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("truncate bench_payments");
            st.execute("truncate outbox.processed_message");
            st.execute("checkpoint");
        }
    }

    private static void quietLogs() {
        if (LoggerFactory.getILoggerFactory() instanceof LoggerContext context) {
            context.getLogger(Logger.ROOT_LOGGER_NAME).setLevel(Level.INFO);
            for (String name : List.of(
                    "org.apache.kafka",
                    "kafka",
                    "state.change.logger",
                    "org.jooq",
                    "com.zaxxer",
                    "org.flywaydb",
                    "org.testcontainers",
                    "io.zonky")) {
                context.getLogger(name).setLevel(Level.WARN);
            }
        }
    }
}
