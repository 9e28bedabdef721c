package dev.outbox.core.internal;

import dev.outbox.core.MessageIds;
import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.OutboxMessage;
import dev.outbox.core.Shards;
import dev.outbox.schemas.AvroCodec;
import java.sql.BatchUpdateException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import org.apache.avro.generic.GenericContainer;
import org.jooq.DSLContext;
import org.jooq.exception.DataAccessException;
import org.jooq.exception.DataException;
import org.jooq.exception.IntegrityConstraintViolationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@link Outbox} on PostgreSQL. Every append, jOOQ or JDBC, is one constant prepared INSERT on
 * the caller's connection: no statement is rendered per call, and pgjdbc turns the constant SQL into
 * a server-side prepared statement of that connection after a few executions, so an append costs
 * what a hand-written INSERT costs (benchmarks/PRODUCER.md).
 */
public final class JooqOutbox implements Outbox {
    private static final Logger LOG = LoggerFactory.getLogger(JooqOutbox.class);

    /** Longer shard lists are sent as {@code *} (all shards): PostgreSQL caps payloads at 8000 bytes. */
    static final int NOTIFY_PAYLOAD_LIMIT = 4000;

    private static final String NO_HEADERS = "{}";

    private final String schema;
    private final int shards;
    private final AvroCodec codec;
    private final Supplier<String> traceparent;
    private volatile boolean invalidTraceReported;
    private final boolean notifyInTransaction;
    private final String channel;
    private final String insertSql;
    private final String shardCountSql;
    /**
     * The databases (by connection URL) whose install was found with {@link #shards} shards, 0 to {@code
     * shards - 1}: checked once per database, so that an Outbox shared by the pools of several databases
     * checks each.
     */
    private final Set<String> shardCountChecked = ConcurrentHashMap.newKeySet();

    public JooqOutbox(
            String schema, int shards, AvroCodec codec, Supplier<String> traceparent, boolean notifyInTransaction) {
        this.schema = schema;
        this.shards = shards;
        this.codec = codec;
        this.traceparent = traceparent;
        this.notifyInTransaction = notifyInTransaction;
        this.channel = Outbox.channel(schema);
        // attempts, created_at and the parking columns take their defaults
        this.insertSql =
                "insert into " + schema + ".outbox_message (message_id, shard, topic, message_key, message_type,"
                        + " content_type, headers, payload) values (?, ?, ?, ?, ?, ?, ?::jsonb, ?)";
        this.shardCountSql = "select count(*), coalesce(min(shard), 0), coalesce(max(shard), -1) from " + schema
                + ".outbox_shard_lease";
    }

    @Override
    public UUID append(DSLContext tx, OutboxMessage message) {
        return appendAll(tx, List.of(Objects.requireNonNull(message, "message may not be null")))
                .get(0);
    }

    @Override
    public UUID append(Connection tx, OutboxMessage message) throws SQLException {
        return appendAll(tx, List.of(Objects.requireNonNull(message, "message may not be null")))
                .get(0);
    }

    @Override
    public UUID append(DSLContext tx, String topic, String key, GenericContainer payload) {
        return append(tx, avroMessage(topic, key, payload));
    }

    @Override
    public OutboxMessage avroMessage(String topic, String key, GenericContainer payload) {
        Objects.requireNonNull(
                payload, "payload may not be null; use append(tx, OutboxMessage) with a null payload for a tombstone");
        return OutboxMessage.of(
                topic,
                key,
                payload.getSchema().getFullName(),
                AvroCodec.contentType(payload.getSchema()),
                codec.encode(payload));
    }

    @Override
    public List<UUID> appendAll(DSLContext tx, List<OutboxMessage> messages) {
        Objects.requireNonNull(tx, "tx may not be null");
        Objects.requireNonNull(messages, "messages may not be null");
        if (messages.isEmpty()) {
            return List.of();
        }
        // inside dsl.transaction(...) the provider hands out the transaction's connection
        return tx.connectionResult(c -> {
            try {
                return appendAll(c, messages);
            } catch (SQLException e) {
                throw translated("Outbox.append to " + schema + ".outbox_message failed: " + e.getMessage(), e);
            }
        });
    }

    @Override
    public List<UUID> appendAll(Connection tx, List<OutboxMessage> messages) throws SQLException {
        Objects.requireNonNull(tx, "tx may not be null");
        Objects.requireNonNull(messages, "messages may not be null");
        if (messages.isEmpty()) {
            return List.of();
        }
        if (tx.getAutoCommit()) {
            throw new IllegalStateException(
                    "Outbox.append needs the caller's transaction, but the connection is in autocommit mode: the outbox row"
                            + " would commit on its own, apart from the business write. Call it inside dsl.transaction(cfg -> ...)"
                            + " with cfg.dsl(), or on a connection with autocommit off.");
        }
        String database = Objects.requireNonNullElse(tx.getMetaData().getURL(), "");
        if (!shardCountChecked.contains(database)) {
            checkShardCount(tx);
            shardCountChecked.add(database);
        }
        String inheritedTrace = inheritedTrace();
        List<UUID> ids = new ArrayList<>(messages.size());
        TreeSet<Integer> touched = notifyInTransaction ? new TreeSet<>() : null;
        boolean batch = messages.size() > 1;
        try (PreparedStatement ps = tx.prepareStatement(insertSql)) {
            for (OutboxMessage m : messages) {
                Objects.requireNonNull(m, "messages may not contain null");
                UUID id = m.messageId() != null ? m.messageId() : MessageIds.next();
                int shard = Shards.of(m.key(), id, shards);
                ids.add(id);
                if (touched != null) {
                    touched.add(shard);
                }
                ps.setObject(1, id);
                ps.setInt(2, shard);
                ps.setString(3, m.topic());
                ps.setString(4, m.key());
                ps.setString(5, m.type());
                ps.setString(6, m.contentType());
                ps.setString(7, headersJson(m, inheritedTrace));
                if (m.payload() == null) {
                    ps.setNull(8, Types.BINARY);
                } else {
                    ps.setBytes(8, m.payload());
                }
                if (batch) {
                    ps.addBatch();
                }
            }
            if (batch) {
                try {
                    ps.executeBatch();
                } catch (BatchUpdateException e) {
                    throw batchFailure(e, messages.size());
                }
            } else {
                ps.executeUpdate();
            }
        }
        if (touched != null) {
            // delivered at commit, dropped on rollback; the payload tells the relay which shards to read
            String shardList = touched.stream().map(String::valueOf).collect(Collectors.joining(","));
            try (PreparedStatement ps = tx.prepareStatement("select pg_notify(?, ?)")) {
                ps.setString(1, channel);
                ps.setString(2, shardList.length() > NOTIFY_PAYLOAD_LIMIT ? "*" : shardList);
                ps.execute();
            }
        }
        return ids;
    }

    /**
     * The supplier's {@code traceparent}, or null when it supplies none or one that is not a W3C trace
     * context ({@link OutboxMessage#isTraceparent}; e.g. a client's header forwarded as it came, in upper
     * case): a trace header must not fail the business transaction, and W3C has receivers drop what
     * they cannot parse. A later version than 00 that parses as version 00 is kept.
     */
    private String inheritedTrace() {
        String value;
        try {
            value = traceparent.get();
        } catch (RuntimeException e) {
            // e.g. a request-scoped lookup called outside a request
            if (!invalidTraceReported) {
                invalidTraceReported = true;
                LOG.warn(
                        "the traceparent supplier threw {}; messages are appended without an inherited trace"
                                + " (reported once; later ones at DEBUG)",
                        e.toString(),
                        e);
            } else {
                LOG.debug("the traceparent supplier threw {}", e.toString());
            }
            return null;
        }
        if (value == null || OutboxMessage.isTraceparent(value)) {
            return value;
        }
        if (!invalidTraceReported) {
            invalidTraceReported = true;
            LOG.warn(
                    "the traceparent supplier gave '{}', which is not a W3C trace context (version-traceid-parentid-flags,"
                            + " lower-case hex); messages are appended without it (reported once; later ones at DEBUG)",
                    value);
        } else {
            LOG.debug("dropped the supplier's traceparent '{}', not a W3C trace context", value);
        }
        return null;
    }

    private static String headersJson(OutboxMessage m, String inheritedTrace) {
        if (inheritedTrace != null && !m.headers().containsKey(OutboxHeaders.TRACEPARENT)) {
            return Json.write(InheritedTrace.headers(m.headers(), Map.of(OutboxHeaders.TRACEPARENT, inheritedTrace)));
        }
        return m.headers().isEmpty() ? NO_HEADERS : Json.write(m.headers());
    }

    /**
     * Compares {@link #shards} with the install's shard count (the rows of the lease table, numbered 0 to
     * {@code shards - 1}), once per database, in the caller's transaction. A producer with another count than the install maps keys
     * to other shards than the relay and the other producers expect: with more, its rows could land on
     * shards no relay leases; with fewer, one key's messages could sit in two shards and lose their
     * order. Either way the append fails here, before anything is written.
     */
    private void checkShardCount(Connection tx) throws SQLException {
        int installed;
        int lowest;
        int highest;
        try (PreparedStatement ps = tx.prepareStatement(shardCountSql);
                ResultSet rs = ps.executeQuery()) {
            rs.next();
            installed = rs.getInt(1);
            lowest = rs.getInt(2);
            highest = rs.getInt(3);
        } catch (SQLException e) {
            throw new SQLException(
                    "reading the installed shard count (" + shardCountSql + ") failed: " + e.getMessage()
                            + shardCountHint(e.getSQLState()),
                    e.getSQLState(),
                    e);
        }
        if (installed == 0) {
            throw new IllegalStateException("the outbox in schema " + schema + " has no shards: " + schema
                    + ".outbox_shard_lease is empty (its rows were deleted, or the schema was copied without its"
                    + " data), so no relay could publish a message appended to it; restore one row per shard"
                    + " (shard 0 to " + (shards - 1) + " for this Outbox's " + shards + ") as the migrations"
                    + " insert them");
        }
        if (installed != shards) {
            throw new IllegalStateException(
                    "this Outbox spreads keys over " + shards + " shards, but the outbox in schema "
                            + schema + " was installed with " + installed + " (the rows of " + schema
                            + ".outbox_shard_lease); set"
                            + " Outbox.builder().shards(" + installed
                            + "), the outbox_shards value the migrations were installed with");
        }
        if (lowest != 0 || highest != shards - 1) {
            throw new IllegalStateException("the outbox in schema " + schema + " has " + installed + " shards, but"
                    + " numbered " + lowest + " to " + highest + " in " + schema + ".outbox_shard_lease, not 0 to "
                    + (shards - 1) + ": no relay leases a shard without its row, so messages appended to it would"
                    + " never be published; restore one row per shard, 0 to " + (shards - 1)
                    + ", as the migrations insert them");
        }
    }

    /**
     * @return the failure of a batch insert without the rows' values: the driver's message of a failed batch
     *     holds the whole statement with every bound value of the row (its payload in hex, its key and
     *     headers), which would land in the application's logs; the server's error for it does not
     */
    private static SQLException batchFailure(BatchUpdateException e, int size) {
        SQLException server = e.getNextException();
        String what = "the batch insert of " + size + " messages failed";
        if (server == null) {
            return new SQLException(
                    what + " (SQLState " + e.getSQLState() + "; the driver's message is left out: it holds the rows'"
                            + " values)",
                    e.getSQLState());
        }
        return new SQLException(what + ": " + server.getMessage(), server.getSQLState(), server);
    }

    /**
     * @return the failure of an append through jOOQ as jOOQ reports a failed statement: an integrity
     *     constraint violation (SQLState class 23, a message id appended twice, say) as {@link
     *     IntegrityConstraintViolationException}, a data exception (class 22) as {@link DataException},
     *     anything else as {@link DataAccessException}; the {@link SQLException} is the cause, and
     *     {@link DataAccessException#sqlState()} gives its SQLState
     */
    static DataAccessException translated(String message, SQLException e) {
        String state = e.getSQLState();
        if (state != null && state.startsWith("23")) {
            return new IntegrityConstraintViolationException(message, e);
        }
        if (state != null && state.startsWith("22")) {
            return new DataException(message, e);
        }
        return new DataAccessException(message, e);
    }

    /** @return what to do about a failed read of the shard count, by its SQLState */
    private String shardCountHint(String sqlState) {
        if ("42501".equals(sqlState)) {
            return "; the producer's role needs USAGE on schema " + schema + ", SELECT on " + schema
                    + ".outbox_shard_lease (read once per Outbox to check the shard count) and INSERT on " + schema
                    + ".outbox_message";
        }
        if ("25P02".equals(sqlState)) {
            return "; an earlier statement of the caller's transaction failed, and PostgreSQL refuses every"
                    + " statement after it until the transaction is rolled back";
        }
        if ("42P01".equals(sqlState) || "3F000".equals(sqlState)) {
            return "; is the outbox installed in schema " + schema + "?";
        }
        return "";
    }

    @Override
    public String schema() {
        return schema;
    }

    @Override
    public int shardCount() {
        return shards;
    }

    @Override
    public String channel() {
        return channel;
    }
}
