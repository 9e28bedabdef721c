package dev.outbox.core;

import dev.outbox.core.internal.JooqOutbox;
import dev.outbox.core.internal.OpenTelemetryTraceContext;
import dev.outbox.core.internal.TraceContextOutbox;
import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.migrations.internal.JooqVersionCheck;
import dev.outbox.schemas.AvroCodec;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.List;
import java.util.Objects;
import java.util.UUID;
import java.util.function.Supplier;
import java.util.zip.CRC32C;
import org.apache.avro.generic.GenericContainer;
import org.jooq.DSLContext;

/**
 * Appends messages to the outbox inside the caller's jOOQ transaction, so that they commit or roll
 * back with the business write (guarantees G1 and G2).
 *
 * <pre>{@code
 * Outbox outbox = Outbox.builder().build();
 * dsl.transaction(tx -> {
 *   tx.dsl().insertInto(ORDERS).set(...).execute();
 *   outbox.append(tx.dsl(), "orders", orderId, orderPlaced);   // an Avro SpecificRecord
 * });
 * }</pre>
 *
 * <p>Users of JPA, Spring's {@code JdbcTemplate} or plain JDBC append on the transaction's
 * {@link Connection} instead: {@link #append(Connection, OutboxMessage)}.
 *
 * <p>An append is one INSERT and nothing else: it does not notify the relay, which finds new rows
 * by probing the outbox every few milliseconds, so the producer's commit costs what a hand-written
 * INSERT costs. The first append of each {@code Outbox} on a database also reads the installed shard
 * count once (one more statement, in that append's transaction): build one {@code Outbox} and share it.
 * {@link Builder#notifyInTransaction(boolean)} restores a {@code pg_notify} per append for relays
 * that LISTEN (see ENGINE.md, "Wake-up"). Thread-safe.
 */
public interface Outbox {

    /** @return a builder with the defaults documented on each setter */
    static Builder builder() {
        return new Builder();
    }

    /**
     * The channel a relay that LISTENs uses for a schema, and that {@link
     * Builder#notifyInTransaction(boolean)} notifies on. PostgreSQL channel names are identifiers of at
     * most 63 bytes: a schema of up to 56 characters gives {@code outbox_<schema>}; a longer one gives
     * {@code outbox_}, its first 47 characters, {@code _} and the CRC-32C of the whole name in 8 hex
     * digits, so that two long schemas that share a prefix still get two channels.
     *
     * @param schema the outbox schema
     * @return the channel, at most 63 characters
     */
    static String channel(String schema) {
        String plain = "outbox_" + schema;
        if (plain.length() <= 63) {
            return plain;
        }
        CRC32C crc = new CRC32C();
        crc.update(schema.getBytes(StandardCharsets.UTF_8));
        return "outbox_" + schema.substring(0, 47) + "_" + String.format("%08x", crc.getValue());
    }

    /**
     * Appends one message in the transaction of {@code tx}.
     *
     * @param tx the jOOQ context of the caller's transaction: {@code cfg.dsl()} inside {@code
     *     dsl.transaction(cfg -> ...)}, not the {@code dsl} the transaction was begun from, which
     *     takes another connection from the pool (refused when that connection is in autocommit mode;
     *     with a pool whose connections start with autocommit off, the row would be rolled back when
     *     that connection returns to the pool, without an error)
     * @param message the message
     * @return its message id
     * @throws IllegalStateException when {@code tx}'s connection is in autocommit mode (the row
     *     would commit on its own, apart from the business write), or when the install's shard count
     *     differs from {@link Builder#shards(int)}
     * @throws org.jooq.exception.DataAccessException when the insert fails; the transaction is then
     *     aborted, as with any failed statement
     */
    UUID append(DSLContext tx, OutboxMessage message);

    /**
     * Appends one message on a JDBC connection in the caller's transaction: the connection a JPA
     * {@code EntityManager}, Spring's {@code DataSourceUtils.getConnection} or the caller's own code
     * has open with autocommit off. The statement is a plain prepared INSERT, which the driver keeps
     * prepared on that connection; the connection is not closed and its transaction not ended.
     *
     * @param tx the connection of the caller's transaction, autocommit off
     * @param message the message
     * @return its message id
     * @throws IllegalStateException when {@code tx} is in autocommit mode (the row would commit on
     *     its own, apart from the business write), or when the install's shard count differs from
     *     {@link Builder#shards(int)}
     * @throws SQLException when the insert fails; the transaction is then aborted, as with any failed
     *     statement
     */
    UUID append(Connection tx, OutboxMessage message) throws SQLException;

    /**
     * Appends several messages on a JDBC connection in the caller's transaction, in one round trip
     * (a JDBC batch). Their ids, and so their publication order within a key, follow the list order.
     *
     * @param tx the connection of the caller's transaction, autocommit off
     * @param messages the messages
     * @return their message ids, in order
     * @throws IllegalStateException when {@code tx} is in autocommit mode, or when the install's
     *     shard count differs from {@link Builder#shards(int)}
     * @throws SQLException when the insert fails
     */
    List<UUID> appendAll(Connection tx, List<OutboxMessage> messages) throws SQLException;

    /**
     * Appends several messages in one round trip (a JDBC batch of one prepared INSERT). Their ids,
     * and so their publication order within a key, follow the list order.
     *
     * @param tx the jOOQ context of the caller's transaction
     * @param messages the messages
     * @return their message ids, in order
     * @throws IllegalStateException when {@code tx}'s connection is in autocommit mode, or when the
     *     install's shard count differs from {@link Builder#shards(int)}
     */
    List<UUID> appendAll(DSLContext tx, List<OutboxMessage> messages);

    /**
     * Appends an Avro record, encoded with Avro single-object encoding: the payload names its writer
     * schema by fingerprint, and the message type is the schema's full name.
     *
     * @param tx the jOOQ context of the caller's transaction
     * @param topic the Kafka topic
     * @param key the ordering key, or {@code null} for a message without one; not empty
     * @param payload the record
     * @return its message id
     */
    UUID append(DSLContext tx, String topic, String key, GenericContainer payload);

    /**
     * @param topic the Kafka topic
     * @param key the ordering key, or {@code null} for a message without one; not empty
     * @param payload the record
     * @return the message the typed {@code append} would write, for use with {@link #appendAll}
     * @throws IllegalArgumentException when the topic is not a valid Kafka topic name, or the key is
     *     empty, too long or holds what PostgreSQL's text cannot store (see {@link OutboxMessage})
     */
    OutboxMessage avroMessage(String topic, String key, GenericContainer payload);

    /**
     * Appends a value written as JSON by {@link JsonMessages#create()}: content type {@code
     * application/json}, message type the value's full class name. For another mapper or type name,
     * append {@code JsonMessages.using(codec).message(...)}.
     *
     * @param tx the jOOQ context of the caller's transaction
     * @param topic the Kafka topic
     * @param key the ordering key, or {@code null} for a message without one; not empty
     * @param payload the value, for example a record
     * @return its message id
     * @throws dev.outbox.schemas.JsonCodecException when Jackson cannot write the value
     */
    default UUID appendJson(DSLContext tx, String topic, String key, Object payload) {
        return append(tx, JsonMessages.create().message(topic, key, payload));
    }

    /** @return the schema holding {@code outbox_message} */
    String schema();

    /** @return the installed shard count */
    int shardCount();

    /** @return the notification channel, {@link #channel(String)} of {@link #schema()} */
    String channel();

    /**
     * Builds an {@link Outbox}. Setters check their own argument at once ({@link
     * NullPointerException} for null, {@link IllegalArgumentException} for a bad value). Not
     * thread-safe; the built outbox is.
     */
    final class Builder {
        private String schema = OutboxMigrations.DEFAULT_SCHEMA;
        private int shards = Shards.DEFAULT_COUNT;
        private AvroCodec codec;
        private Supplier<String> traceparent;
        private boolean notifyInTransaction;

        private Builder() {}

        /**
         * Whether every append also runs {@code pg_notify} on {@link Outbox#channel()} in the caller's
         * transaction, so that a relay that LISTENs (relay setting {@code listen-jdbc-url}) is woken at
         * commit. Default false, and best left so: PostgreSQL serialises the commits of all notifying
         * transactions of the cluster under one lock held until their WAL flush, which halved the
         * producers' commit rate at 16 writers (benchmarks/PRODUCER.md), and {@code PREPARE TRANSACTION}
         * (XA) refuses a transaction that notified. The relay's probe finds new rows within a few
         * milliseconds without it.
         *
         * @param notifyInTransaction true to notify in every appending transaction
         * @return this builder
         */
        public Builder notifyInTransaction(boolean notifyInTransaction) {
            this.notifyInTransaction = notifyInTransaction;
            return this;
        }

        /**
         * @param schema the schema the migrations were applied to; default {@value
         *     OutboxMigrations#DEFAULT_SCHEMA}
         * @return this builder
         * @throws NullPointerException when it is null
         * @throws IllegalArgumentException when it is not a plain SQL identifier
         */
        public Builder schema(String schema) {
            this.schema = OutboxMigrations.requireValidSchema(schema);
            return this;
        }

        /**
         * @param shards the shard count installed by the migrations (placeholder {@code
         *     outbox_shards}); default {@value Shards#DEFAULT_COUNT}. The relay reads the count from the lease table, and every
         *     producer of one outbox must use the same: the first append of an {@code Outbox} compares
         *     this value with the lease table and fails with an {@link IllegalStateException} naming
         *     both counts when they differ, before anything is written.
         * @return this builder
         * @throws IllegalArgumentException when it is not between 1 and {@value Shards#MAX_COUNT}
         */
        public Builder shards(int shards) {
            this.shards = Shards.checkCount(shards, "shards");
            return this;
        }

        /**
         * @param codec the Avro codec for the typed API; default a codec with the project's schemas
         *     and whatever writer schemas appends bring
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder codec(AvroCodec codec) {
            this.codec = Objects.requireNonNull(codec, "codec may not be null");
            return this;
        }

        /**
         * @param traceparent supplies the W3C {@code traceparent} of the current request, or null;
         *     messages that carry none of their own get it. Default: when the OpenTelemetry API ({@code
         *     io.opentelemetry:opentelemetry-api}) is on the class path, the {@code traceparent} and
         *     {@code tracestate} of the current OpenTelemetry span, taken at append; else none. Setting
         *     a supplier replaces the OpenTelemetry capture. A supplier that gives a malformed value or
         *     throws does not fail the append: the message goes without an inherited trace, with one WARN.
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder traceparent(Supplier<String> traceparent) {
            this.traceparent = Objects.requireNonNull(traceparent, "traceparent may not be null");
            return this;
        }

        /** @return the outbox */
        public Outbox build() {
            JooqVersionCheck.quiet();
            Outbox outbox = new JooqOutbox(
                    schema,
                    shards,
                    codec != null ? codec : AvroCodec.create(),
                    traceparent != null ? traceparent : () -> null,
                    notifyInTransaction);
            return traceparent == null && OpenTelemetryTraceContext.available()
                    ? new TraceContextOutbox(outbox)
                    : outbox;
        }
    }
}
