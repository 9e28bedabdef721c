package dev.outbox.bench.relay;

import com.sun.management.OperatingSystemMXBean;
import com.zaxxer.hikari.HikariConfig;
import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.OutboxMessage;
import dev.outbox.relay.internal.ProducerSettings;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import java.util.function.DoubleSupplier;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.AppInfoParser;
import org.jooq.DSLContext;

/**
 * What every scenario of the relay benchmark works with: the options, the database, the broker, the
 * report, and the shared steps (topics with a leader per partition, the records' keys and payloads,
 * a consumer that times arrivals, the conditions line).
 */
final class BenchContext {
    static final String TYPE = "BenchPayload";
    static final String CONTENT_TYPE = "application/octet-stream";
    /** How many statements {@link #topStatements} reports. */
    private static final int TOP_STATEMENTS = 8;

    final RelayOptions options;
    final TestKafka kafka;
    final TestDatabase db;
    final DSLContext dsl;
    final Outbox outbox = Outbox.builder().build();
    final Report report;
    /** CPU seconds of the PostgreSQL processes the CPU figures count: all on the host unless a private server is used */
    private final DoubleSupplier postgresCpu;

    BenchContext(RelayOptions options, TestKafka kafka, TestDatabase db, Report report, DoubleSupplier postgresCpu) {
        this.options = options;
        this.postgresCpu = postgresCpu;
        this.kafka = kafka;
        this.db = db;
        this.dsl = db.dsl();
        this.report = report;
    }

    Map<String, Object> producerProperties() {
        Map<String, Object> p = new LinkedHashMap<>(options.producer());
        p.put("bootstrap.servers", kafka.bootstrapServers());
        return p;
    }

    String key(int i) {
        return "key-" + (i % options.keys());
    }

    /** Random bytes, the same for one index in every run (seeded by the index), not kept in memory. */
    byte[] payload(int i) {
        byte[] b = new byte[options.payloadBytes()];
        new SplittableRandom(0x5eed_0000L + i).nextBytes(b);
        return b;
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** @return a pool configuration for this run's database, to which the caller adds sizes and names */
    HikariConfig poolConfig() {
        HikariConfig hc = new HikariConfig();
        hc.setJdbcUrl(db.jdbcUrl());
        hc.setUsername(db.user());
        if (!db.password().isEmpty()) {
            hc.setPassword(db.password());
        }
        return hc;
    }

    /** @return CPU seconds used so far by this JVM and by the PostgreSQL processes this run counts */
    Cpu cpuNow() {
        return Cpu.now(postgresCpu);
    }

    /** @return CPU seconds used so far by the PostgreSQL processes this run counts */
    double postgresCpuSeconds() {
        return postgresCpu.getAsDouble();
    }

    /**
     * Creates a topic and writes one warm-up record to each partition with a throwaway producer, so
     * that every partition has a leader that takes writes before anything is measured (an idempotent
     * producer that meets a partition still electing its leader can retry for a long time). The
     * warm-up records are subtracted in {@link #endOffsets}.
     */
    String newTopic(String prefix) {
        String topic = "bench-" + prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
        kafka.createTopic(topic, options.partitions());
        Map<String, Object> props = new HashMap<>();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        try (KafkaProducer<byte[], byte[]> warmup = new KafkaProducer<>(props)) {
            for (int p = 0; p < options.partitions(); p++) {
                warmup.send(new ProducerRecord<>(topic, p, null, utf8("warm-up")))
                        .get(60, TimeUnit.SECONDS);
            }
        } catch (Exception e) {
            throw new IllegalStateException("topic " + topic + " did not take a warm-up record: " + e, e);
        }
        return topic;
    }

    void deleteTopic(String topic) {
        try (Admin admin = kafka.admin()) {
            admin.deleteTopics(List.of(topic)).all().get(60, TimeUnit.SECONDS);
        } catch (Exception e) {
            Report.progress("could not delete topic %s: %s", topic, e);
        }
    }

    long endOffsets(String topic) throws Exception {
        try (Admin admin = kafka.admin()) {
            Map<TopicPartition, OffsetSpec> request = new HashMap<>();
            for (int p = 0; p < options.partitions(); p++) {
                request.put(new TopicPartition(topic, p), OffsetSpec.latest());
            }
            long warmup = options.partitions();
            return admin.listOffsets(request).all().get(60, TimeUnit.SECONDS).values().stream()
                            .mapToLong(o -> o.offset())
                            .sum()
                    - warmup;
        }
    }

    /**
     * Waits until the timing consumer has recorded {@code id}, looking every 10 ms.
     *
     * @return whether it did within {@code seconds}
     */
    static boolean awaitConsumed(Map<UUID, Long> consumed, UUID id, int seconds) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (!consumed.containsKey(id) && System.nanoTime() < deadline) {
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
        }
        return consumed.containsKey(id);
    }

    /**
     * Appends marker messages with {@code appender} until the timing consumer of {@code topic} records
     * one, so that what is timed next finds the relay's, the producer's and the consumer's start behind
     * it (leases, metadata, fetch sessions); fails after a minute.
     */
    void awaitMarker(Outbox appender, String topic, Map<UUID, Long> consumed) {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(1);
        int sequence = 0;
        while (System.nanoTime() < deadline) {
            OutboxMessage m = OutboxMessage.of(topic, "marker-" + sequence++, TYPE, CONTENT_TYPE, payload(0));
            UUID marker = dsl.transactionResult(tx -> appender.append(tx.dsl(), m));
            if (awaitConsumed(consumed, marker, 5)) {
                return;
            }
        }
        throw new IllegalStateException("no marker on " + topic + " was consumed within a minute");
    }

    /** @return CPU seconds of this database's PostgreSQL backends whose application name is {@code app} */
    double backendCpuSeconds(String app) throws SQLException {
        double cpu = 0;
        try (Connection c = db.connect();
                PreparedStatement ps =
                        c.prepareStatement("select pid from pg_stat_activity where application_name = ?")) {
            ps.setString(1, app);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    cpu += Cpu.processCpuSeconds(rs.getInt(1));
                }
            }
        }
        return cpu;
    }

    void execute(String sql) throws SQLException {
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute(sql);
        }
    }

    long scalar(String sql) throws SQLException {
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    void conditions() throws SQLException {
        String pg;
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("show server_version")) {
            rs.next();
            pg = rs.getString(1);
        }
        long memory = ((OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getTotalMemorySize();
        report.line(String.format(
                Locale.ROOT,
                "machine: %d cpus, %.1f GiB RAM; JDK %s (%s); PostgreSQL %s at %s; Kafka clients %s," + " broker %s",
                Runtime.getRuntime().availableProcessors(),
                memory / (1024.0 * 1024 * 1024),
                Runtime.version(),
                System.getProperty("java.vm.name"),
                pg,
                db.jdbcUrl().replaceAll("\\?.*", ""),
                AppInfoParser.getVersion(),
                kafka));
        report.line("JVM: max heap " + Runtime.getRuntime().maxMemory() / (1024 * 1024) + " MiB, args "
                + ManagementFactory.getRuntimeMXBean().getInputArguments());
        report.line("relay: " + options.workers() + " worker threads, vacuum after " + options.vacuumAfterRows()
                + " rows deleted (0: autovacuum only), producer " + producerPropertiesForDisplay()
                + "; plain producer: the same properties");
        report.line("load average at the start: " + Report.loadAverage());
    }

    /**
     * @return the configuration the relay gives its own producer (acks, idempotence, linger, batch
     *     size, timeouts), for the plain producers the relay is compared with
     */
    Map<String, Object> relayProducerConfig() {
        return new HashMap<>(ProducerSettings.validate(producerProperties(), "bench"));
    }

    String producerPropertiesForDisplay() {
        Map<String, Object> shown = new TreeMap<>(relayProducerConfig());
        shown.keySet().removeAll(List.of("bootstrap.servers", "client.id", "key.serializer", "value.serializer"));
        return shown.toString();
    }

    /**
     * Starts a consumer thread that reads {@code topic} from its end and records, per message id, when
     * {@code poll} returned it, until {@code running} is false.
     */
    Thread timingConsumer(String topic, Map<UUID, Long> consumed, AtomicBoolean running) {
        Properties cp = kafka.consumerProperties("unused");
        cp.remove("group.id");
        cp.put("fetch.min.bytes", "1");
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp);
        List<TopicPartition> partitions = new ArrayList<>();
        consumer.partitionsFor(topic).forEach(p -> partitions.add(new TopicPartition(topic, p.partition())));
        consumer.assign(partitions);
        consumer.seekToEnd(partitions);
        partitions.forEach(consumer::position);
        Thread reader = new Thread(
                () -> {
                    try (consumer) {
                        while (running.get()) {
                            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(50))) {
                                long now = System.nanoTime();
                                Header h = r.headers().lastHeader(OutboxHeaders.MESSAGE_ID);
                                consumed.putIfAbsent(
                                        UUID.fromString(new String(h.value(), StandardCharsets.UTF_8)), now);
                            }
                        }
                    }
                },
                "timing-consumer-" + topic);
        reader.start();
        return reader;
    }

    /**
     * @return the statements that took the most execution time since the last {@code
     *     pg_stat_statements_reset()}, as report lines: calls, rows and execution time per call, and
     *     time per message (writers' inserts included where they ran, so that the relay's statements
     *     can be weighed against them)
     */
    List<String> topStatements(long messages) throws SQLException {
        List<String> lines = new ArrayList<>();
        try (Connection c = db.connect();
                var st = c.createStatement();
                var rs = st.executeQuery("select calls, rows, total_exec_time, shared_blks_hit + shared_blks_read,"
                        + " wal_bytes, regexp_replace(query, '\\s+', ' ', 'g'), plans, total_plan_time from pg_stat_statements"
                        + " where dbid = (select oid from pg_database where datname = current_database())"
                        + " order by total_exec_time + total_plan_time desc limit " + TOP_STATEMENTS)) {
            while (rs.next()) {
                long calls = rs.getLong(1);
                String query = rs.getString(6);
                lines.add(String.format(
                        Locale.ROOT,
                        "  statement: %7d calls, %6.1f rows, %7.3f ms, %6.1f buffers, %7.0f B WAL per call;"
                                + " %7d plans, %7.3f ms each; %5.1f us per message: %s",
                        calls,
                        rs.getLong(2) / (double) calls,
                        rs.getDouble(3) / calls,
                        rs.getLong(4) / (double) calls,
                        rs.getDouble(5) / calls,
                        rs.getLong(7),
                        rs.getLong(7) == 0 ? 0.0 : rs.getDouble(8) / rs.getLong(7),
                        (rs.getDouble(3) + rs.getDouble(8)) * 1e3 / messages,
                        query.length() > 160 ? query.substring(0, 160) + "..." : query));
            }
        }
        return lines;
    }
}
