package dev.outbox.bench.relay;

import dev.outbox.core.OutboxHeaders;
import io.debezium.embedded.Connect;
import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.RecordChangeEvent;
import io.debezium.engine.format.ChangeEventFormat;
import java.nio.ByteBuffer;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.connect.header.Header;
import org.apache.kafka.connect.source.SourceRecord;

/**
 * The Debezium side of {@link DebeziumComparison}: a row in a Debezium-style outbox table ({@value
 * #TABLE}: id, aggregatetype, aggregateid, type, payload), read from the WAL by Debezium's embedded
 * engine with the PostgreSQL connector ({@code pgoutput}, a slot of its own, {@code poll.interval.ms}
 * {@value #POLL_INTERVAL_MS}) and the outbox event router, whose records this class sends with a
 * {@link KafkaProducer} of the relay's settings, waiting for every ack of a batch before it marks the
 * batch processed (as Debezium Server's Kafka sink does). The aggregate type is the topic, the
 * aggregate id the key, the payload the value, and the event id goes into the {@code
 * outbox-message-id} header.
 */
final class DebeziumSystem implements ComparedSystem {
    static final String TABLE = "public.debezium_outbox";
    static final String DDL = "create table if not exists " + TABLE
            + " (id uuid primary key, aggregatetype varchar(255) not null, aggregateid varchar(255) not null,"
            + " type varchar(255) not null, payload bytea)";
    static final int POLL_INTERVAL_MS = 10;
    private static final String SLOT = "bench_debezium";
    private static final String INSERT =
            "insert into " + TABLE + " (id, aggregatetype, aggregateid, type, payload) values (?, ?, ?, ?, ?)";

    private final BenchContext ctx;
    private final KafkaProducer<byte[], byte[]> producer;
    private final DebeziumEngine<RecordChangeEvent<SourceRecord>> engine;
    private final ExecutorService executor = Executors.newSingleThreadExecutor(r -> new Thread(r, "debezium-engine"));
    private final AtomicReference<Throwable> failure = new AtomicReference<>();

    DebeziumSystem(BenchContext ctx) {
        this.ctx = ctx;
        Map<String, Object> props = ctx.relayProducerConfig();
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "debezium-sink");
        this.producer = new KafkaProducer<>(props);
        this.engine = DebeziumEngine.create(ChangeEventFormat.of(Connect.class))
                .using(config())
                .notifying(this::handleBatch)
                .using((success, message, error) -> {
                    if (!success) {
                        failure.compareAndSet(null, error != null ? error : new IllegalStateException(message));
                        Report.progress("Debezium engine stopped: %s", message);
                    }
                })
                .build();
        executor.execute(engine);
    }

    private Properties config() {
        String url = ctx.db.jdbcUrl(); // jdbc:postgresql://host:port/db
        String hostPortDb = url.substring(url.indexOf("//") + 2).replaceAll("\\?.*", "");
        String host = hostPortDb.substring(0, hostPortDb.indexOf(':'));
        String port = hostPortDb.substring(hostPortDb.indexOf(':') + 1, hostPortDb.indexOf('/'));
        Properties p = new Properties();
        p.setProperty("name", "bench-debezium");
        p.setProperty("connector.class", "io.debezium.connector.postgresql.PostgresConnector");
        p.setProperty("offset.storage", "org.apache.kafka.connect.storage.MemoryOffsetBackingStore");
        p.setProperty("offset.flush.interval.ms", "1000");
        p.setProperty("database.hostname", host);
        p.setProperty("database.port", port);
        p.setProperty("database.user", ctx.db.user());
        if (!ctx.db.password().isEmpty()) {
            p.setProperty("database.password", ctx.db.password());
        }
        p.setProperty("database.dbname", ctx.db.name());
        p.setProperty("topic.prefix", "bench");
        p.setProperty("plugin.name", "pgoutput");
        p.setProperty("slot.name", SLOT);
        p.setProperty("slot.drop.on.stop", "true");
        p.setProperty("publication.name", "bench_debezium_publication");
        p.setProperty("publication.autocreate.mode", "filtered");
        p.setProperty("table.include.list", TABLE);
        p.setProperty("snapshot.mode", "no_data");
        p.setProperty("poll.interval.ms", Integer.toString(POLL_INTERVAL_MS));
        p.setProperty("transforms", "outbox");
        p.setProperty("transforms.outbox.type", "io.debezium.transforms.outbox.EventRouter");
        p.setProperty("transforms.outbox.route.topic.replacement", "${routedByValue}");
        p.setProperty("transforms.outbox.table.fields.additional.placement", "id:header:" + OutboxHeaders.MESSAGE_ID);
        return p;
    }

    /** Sends a batch, waits for every ack, then marks it processed. */
    private void handleBatch(
            List<RecordChangeEvent<SourceRecord>> batch,
            DebeziumEngine.RecordCommitter<RecordChangeEvent<SourceRecord>> committer)
            throws InterruptedException {
        List<Future<RecordMetadata>> acks = new ArrayList<>(batch.size());
        for (RecordChangeEvent<SourceRecord> event : batch) {
            SourceRecord r = event.record();
            if (r.value() == null) {
                continue; // a tombstone
            }
            RecordHeaders headers = new RecordHeaders();
            for (Header h : r.headers()) {
                headers.add(h.key(), BenchContext.utf8(String.valueOf(h.value())));
            }
            byte[] key = r.key() == null ? null : BenchContext.utf8(String.valueOf(r.key()));
            acks.add(producer.send(new ProducerRecord<>(r.topic(), null, null, key, bytes(r.value()), headers)));
        }
        for (Future<RecordMetadata> ack : acks) {
            try {
                ack.get(60, TimeUnit.SECONDS);
            } catch (Exception e) {
                failure.compareAndSet(null, e);
                throw new IllegalStateException("Kafka did not acknowledge a Debezium record: " + e, e);
            }
        }
        for (RecordChangeEvent<SourceRecord> event : batch) {
            committer.markProcessed(event);
        }
        committer.markBatchFinished();
    }

    private static byte[] bytes(Object value) {
        if (value instanceof byte[] b) {
            return b;
        }
        if (value instanceof ByteBuffer bb) {
            byte[] b = new byte[bb.remaining()];
            bb.duplicate().get(b);
            return b;
        }
        return BenchContext.utf8(value.toString());
    }

    @Override
    public String name() {
        return "Debezium";
    }

    @Override
    public UUID appendOne(Connection c, String topic, String key, byte[] payload) throws SQLException {
        UUID id = UUID.randomUUID();
        try (PreparedStatement ps = c.prepareStatement(INSERT)) {
            bind(ps, id, topic, key, payload);
            ps.executeUpdate();
        }
        c.commit();
        return id;
    }

    @Override
    public void appendMany(Connection c, String topic, int first, int count) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(INSERT)) {
            for (int i = first; i < first + count; i++) {
                bind(ps, UUID.randomUUID(), topic, ctx.key(i), ctx.payload(i % 1000));
                ps.addBatch();
            }
            ps.executeBatch();
        }
        c.commit();
    }

    private static void bind(PreparedStatement ps, UUID id, String topic, String key, byte[] payload)
            throws SQLException {
        ps.setObject(1, id);
        ps.setString(2, topic);
        ps.setString(3, key);
        ps.setString(4, BenchContext.TYPE);
        ps.setBytes(5, payload);
    }

    @Override
    public boolean drained() {
        if (failure.get() != null) {
            throw new IllegalStateException("the Debezium engine failed: " + failure.get(), failure.get());
        }
        return true; // the rows stay; the table is truncated when the session ends
    }

    @Override
    public void close() throws Exception {
        engine.close();
        executor.shutdown();
        if (!executor.awaitTermination(60, TimeUnit.SECONDS)) {
            Report.progress("the Debezium engine did not stop within 60 s");
        }
        producer.close();
        try (Connection c = ctx.db.connect();
                Statement st = c.createStatement()) {
            // slot.drop.on.stop drops the slot; make sure, so that no WAL is kept for the relay's sessions
            st.execute("select pg_drop_replication_slot(slot_name) from pg_replication_slots" + " where slot_name = '"
                    + SLOT + "' and not active");
            st.execute("truncate " + TABLE);
        }
    }
}
