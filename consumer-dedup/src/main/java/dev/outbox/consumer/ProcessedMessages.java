package dev.outbox.consumer;

import dev.outbox.consumer.internal.LockWaitBound;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.internal.Durations;
import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.migrations.internal.JooqVersionCheck;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.regex.Pattern;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;
import org.jooq.DSLContext;
import org.jooq.exception.DataAccessException;

/**
 * The dedup step of {@link IdempotentConsumer} as a primitive, for consumers that keep their own
 * listener runtime (a Spring {@code @KafkaListener}, Quarkus, Micronaut, a plain poll loop):
 * claim a message id for a consumer in the caller's transaction, and apply the message only when
 * the claim is new (guarantee G4).
 *
 * <pre>{@code
 * ProcessedMessages processed = ProcessedMessages.create();          // schema "outbox"
 * dsl.transaction(tx -> {
 *   if (processed.claim(tx.dsl(), "payments", messageId)) {
 *     tx.dsl().insertInto(PAYMENTS).set(...).execute();             // once per message id
 *   }
 * });
 * // then commit the Kafka offset
 * }</pre>
 *
 * <p>The claim inserts {@code (consumer, message_id)} into {@code processed_message} with {@code ON
 * CONFLICT DO NOTHING}: the primary key decides races between concurrent deliveries, never a
 * check-then-insert. It commits or rolls back with the business write, so a redelivery after a
 * rollback is applied, and a redelivery after a commit is skipped.
 *
 * <p>A claim of an id that another open transaction claimed too (a copy of the message processed
 * elsewhere, or a consumer instance that lost the partition with its transaction open: a process
 * paused or cut off) waits for that transaction at most 2 s, or the session's {@code lock_timeout}
 * when it is shorter: it then gets {@code false} (the other committed) or {@code true} (it rolled
 * back). Past the bound the claim throws {@link MessageIdHeldException}, so that a listener thread
 * does not wait for the other transaction beyond its poll interval: the caller's transaction is
 * aborted; roll it back and deliver the record again later (a listener that throws it is retried by
 * Spring Kafka's error handler). The bound applies to the claim's insert only: the caller's
 * statements after a successful claim wait as the session's {@code lock_timeout} says, and after a
 * failed claim the rollback (or a rollback to a savepoint taken before the claim) puts it back.
 *
 * <p>A session whose {@code statement_timeout} is shorter than the 2 s (and than its {@code
 * lock_timeout}) ends the wait first: the claim of a held id then fails with SQLState 57014 ({@code
 * query_canceled}), a plain {@link SQLException}, not a {@link MessageIdHeldException}. Treat 57014
 * from a claim the same way, as an id held elsewhere: roll back and deliver the record again later
 * (or give the listener's sessions a {@code statement_timeout} above 2 s).
 *
 * <p>The claim checks that its connection is not in autocommit mode, which catches a call outside
 * the caller's transaction only when the pool hands out autocommit connections. Over a pool whose
 * connections default to autocommit off (HikariCP's {@code autoCommit=false}, say), a {@code
 * DSLContext} of the pool outside a transaction passes the check: the claim runs on a connection of
 * its own, which the pool rolls back when the statement has given it back, so the business write
 * commits without its claim and a redelivery applies it again. Pass the transaction's context: {@code
 * cfg.dsl()} inside {@code dsl.transaction(cfg -> ...)}, or, with Spring, a {@code DSLContext} over a
 * {@code TransactionAwareDataSourceProxy} (as Spring Boot's is), inside the transaction.
 *
 * <p>How long the other transaction stays open depends on its process: cut off by a network
 * partition, until the server's TCP gives up on its session (about two hours by default); paused
 * with SIGSTOP (a frozen container, a debugger), for as long as the process lives, since its kernel
 * still answers TCP keepalives. Meanwhile every claim of the id throws. A server-side {@code
 * idle_in_transaction_session_timeout} for the consumers' role ends such a transaction (see the
 * README), and so does killing the paused process.
 *
 * <p>Rows are purged by the same retention as {@link IdempotentConsumer} rows of the same consumer
 * name ({@link IdempotentConsumer#purgeProcessed}); {@link #purge} does it for consumers that have
 * no {@code IdempotentConsumer}. The retention must exceed the longest redelivery window.
 * Thread-safe.
 */
public final class ProcessedMessages {
    private static final Pattern CANONICAL_UUID =
            Pattern.compile("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");

    private final String schema;
    private final String insertSql;
    private final String purgeSql;

    private ProcessedMessages(String schema) {
        JooqVersionCheck.quiet();
        this.schema = schema;
        String table = schema + ".processed_message";
        // the lock wait bounded for the insert alone, in the same round trip
        this.insertSql = LockWaitBound.around(
                "insert into " + table + " (consumer, message_id) values (?, ?) on conflict do nothing");
        this.purgeSql = "delete from " + table + " where ctid = any(array(select ctid from " + table
                + " where consumer = ? and processed_at < clock_timestamp() - make_interval(secs => ?) limit 1000"
                + " for update skip locked))";
    }

    /** @return the primitive on the default schema {@code outbox} */
    public static ProcessedMessages create() {
        return new ProcessedMessages(OutboxMigrations.DEFAULT_SCHEMA);
    }

    /**
     * @param schema the schema the outbox migrations were applied to
     * @return the primitive on that schema
     * @throws IllegalArgumentException when {@code schema} is not a plain SQL identifier
     */
    public static ProcessedMessages create(String schema) {
        return new ProcessedMessages(OutboxMigrations.requireValidSchema(schema));
    }

    /** @return the schema holding {@code processed_message} */
    public String schema() {
        return schema;
    }

    /**
     * Claims {@code messageId} for {@code consumer} in the transaction of {@code tx}.
     *
     * @param tx the jOOQ context of the caller's open transaction (for example {@code cfg.dsl()}
     *     inside {@code dsl.transaction(cfg -> ...)}, or Spring Boot's {@code DSLContext}, over a
     *     {@code TransactionAwareDataSourceProxy}, inside a {@code @Transactional} method). Not a
     *     context of the pool outside that transaction: over a pool whose connections default to
     *     autocommit off, the autocommit check cannot catch it, and the claim runs on a connection of
     *     its own that the pool rolls back after the statement
     * @param consumer the dedup scope: the service's name, the same on every instance; 1 to {@value
     *     IdempotentConsumer.Builder#MAX_CONSUMER_NAME_LENGTH} characters, without whitespace at either
     *     end and without control characters
     * @param messageId the message id ({@link #messageId(Headers)} reads it from a record)
     * @return {@code true} when this transaction claimed it (apply the message), {@code false} when
     *     it was already processed (skip it)
     * @throws NullPointerException when an argument is null
     * @throws IllegalArgumentException when {@code consumer} is blank, too long, starts or ends with
     *     whitespace or holds a control character
     * @throws IllegalStateException when the connection is in autocommit mode: the claim would
     *     commit on its own, and a crash before the business write would lose the message
     * @throws DataAccessException when the insert fails, with the {@link SQLException} as its cause
     *     (SQLState kept) and its message; the transaction is aborted. Its cause is a {@link
     *     MessageIdHeldException} when another transaction held the id past the claim's bound: roll
     *     back and retry the record later. With a session {@code statement_timeout} below that bound,
     *     the wait for a held id ends with SQLState 57014 instead: treat it the same way
     */
    public boolean claim(DSLContext tx, String consumer, UUID messageId) {
        Objects.requireNonNull(tx, "tx may not be null");
        checkArguments(consumer, messageId);
        return tx.connectionResult(connection -> {
            try {
                return claimOn(connection, consumer, messageId);
            } catch (SQLException e) {
                // jOOQ's own wrapping would say only "Error while running ConnectionCallable"
                throw new DataAccessException(e.getMessage(), e);
            }
        });
    }

    /**
     * Claims {@code messageId} for {@code consumer} in the transaction open on {@code tx}.
     *
     * @param tx a connection with autocommit off, in the caller's transaction
     * @param consumer the dedup scope, as in {@link #claim(DSLContext, String, UUID)}
     * @param messageId the message id
     * @return {@code true} when this transaction claimed it, {@code false} when it was already
     *     processed
     * @throws NullPointerException when an argument is null
     * @throws IllegalArgumentException when {@code consumer} is blank, too long, starts or ends with
     *     whitespace or holds a control character
     * @throws IllegalStateException when the connection is in autocommit mode
     * @throws MessageIdHeldException when another transaction held the id past the claim's bound; the
     *     transaction is aborted: roll back and retry the record later
     * @throws SQLException when the insert fails otherwise; the transaction is aborted. SQLState 57014
     *     ({@code statement_timeout} below the claim's bound) while the id is held means the same as
     *     {@link MessageIdHeldException}: roll back and retry the record later
     */
    public boolean claim(Connection tx, String consumer, UUID messageId) throws SQLException {
        Objects.requireNonNull(tx, "tx may not be null");
        checkArguments(consumer, messageId);
        return claimOn(tx, consumer, messageId);
    }

    /**
     * Deletes {@code consumer}'s rows older than {@code olderThanSeconds}, 1,000 per statement, each
     * statement in its own transaction (the connection must be in autocommit mode), until none is
     * left. Concurrent purges of several instances skip each other's rows.
     *
     * @param connection a connection in autocommit mode
     * @param consumer the dedup scope, as in {@link #claim(DSLContext, String, UUID)}
     * @param olderThan the retention, at least 1 hour
     * @return how many rows were deleted
     * @throws IllegalArgumentException when {@code olderThan} is shorter than 1 hour, or {@code
     *     consumer} is not a valid consumer name
     * @throws IllegalStateException when the connection is not in autocommit mode
     * @throws SQLException when a statement fails
     */
    public long purge(Connection connection, String consumer, Duration olderThan) throws SQLException {
        Objects.requireNonNull(connection, "connection may not be null");
        checkArguments(consumer, UUID.randomUUID());
        Objects.requireNonNull(olderThan, "olderThan may not be null");
        if (olderThan.compareTo(IdempotentConsumer.Builder.MIN_RETENTION) < 0) {
            throw new IllegalArgumentException("olderThan must be at least "
                    + Durations.format(IdempotentConsumer.Builder.MIN_RETENTION) + ", got "
                    + Durations.format(olderThan) + "; it must exceed the longest redelivery window");
        }
        if (!connection.getAutoCommit()) {
            throw new IllegalStateException("ProcessedMessages.purge runs short transactions of its own; pass a"
                    + " connection in autocommit mode, not one inside a transaction");
        }
        long total = 0;
        try (PreparedStatement ps = connection.prepareStatement(purgeSql)) {
            ps.setString(1, consumer);
            ps.setLong(2, olderThan.toSeconds());
            int deleted;
            do {
                deleted = ps.executeUpdate();
                total += deleted;
            } while (deleted > 0);
        }
        return total;
    }

    /**
     * Reads the message id the relay puts on every record ({@link OutboxHeaders#MESSAGE_ID}).
     *
     * @param headers the record's headers
     * @return the id, or empty when the record has no such header
     * @throws IllegalArgumentException when the header is not a UUID in canonical form
     */
    public static Optional<UUID> messageId(Headers headers) {
        Objects.requireNonNull(headers, "headers may not be null");
        Header header = headers.lastHeader(OutboxHeaders.MESSAGE_ID);
        if (header == null || header.value() == null) {
            return Optional.empty();
        }
        String text = new String(header.value(), StandardCharsets.UTF_8);
        if (!CANONICAL_UUID.matcher(text).matches()) {
            throw new IllegalArgumentException("header " + OutboxHeaders.MESSAGE_ID + " is not a UUID: '" + text + "'");
        }
        return Optional.of(UUID.fromString(text));
    }

    private boolean claimOn(Connection connection, String consumer, UUID messageId) throws SQLException {
        if (connection.getAutoCommit()) {
            throw new IllegalStateException(
                    "ProcessedMessages.claim needs the caller's transaction, but the connection is in"
                            + " autocommit mode: the claim would commit on its own, apart from the business write. Call it inside the"
                            + " transaction of the business write (dsl.transaction(cfg -> ...) with cfg.dsl(), a @Transactional"
                            + " method, or a connection with autocommit off).");
        }
        try (PreparedStatement ps = connection.prepareStatement(insertSql)) {
            ps.setString(1, consumer);
            ps.setObject(2, messageId);
            ps.execute(); // the bound's row, then the insert's count, then the session's value put back
            if (ps.getMoreResults(Statement.CLOSE_CURRENT_RESULT) || ps.getUpdateCount() < 0) {
                throw new SQLException("no update count from the processed_message insert", "XX000");
            }
            return ps.getUpdateCount() == 1;
        } catch (SQLException e) {
            if (LockWaitBound.SQLSTATE.equals(e.getSQLState())) {
                throw new MessageIdHeldException(schema, consumer, messageId, e);
            }
            throw e;
        }
    }

    private static void checkArguments(String consumer, UUID messageId) {
        Objects.requireNonNull(consumer, "consumer may not be null");
        Objects.requireNonNull(messageId, "messageId may not be null");
        ConsumerBuilderBase.requireConsumerName(consumer, "consumer");
    }
}
