package dev.outbox.core;

import static dev.outbox.migrations.jooq.Tables.OUTBOX_MESSAGE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.assertj.core.api.Assertions.within;

import dev.outbox.core.internal.Json;
import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.schemas.AvroCodec;
import dev.outbox.schemas.orders.OrderLine;
import dev.outbox.schemas.orders.OrderPlaced;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.UUID;
import org.jooq.DSLContext;
import org.jooq.exception.DataAccessException;
import org.jooq.exception.IntegrityConstraintViolationException;
import org.jooq.impl.DSL;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;

@ExtendWith(RealServices.class)
class OutboxIT {
    private final Outbox outbox = Outbox.builder().build();

    @Test
    void appendsInTheCallersTransaction(TestDatabase db) {
        DSLContext dsl = db.dsl();
        UUID id = dsl.transactionResult(tx -> outbox.append(
                tx.dsl(), OutboxMessage.of("orders", "order-7", "Raw", "application/octet-stream", new byte[] {1, 2})));
        var row = dsl.selectFrom(OUTBOX_MESSAGE)
                .where(OUTBOX_MESSAGE.MESSAGE_ID.eq(id))
                .fetchSingle();
        assertThat(row.getTopic()).isEqualTo("orders");
        assertThat(row.getMessageKey()).isEqualTo("order-7");
        assertThat(row.getShard()).isEqualTo(Shards.of("order-7", id, 64));
        assertThat(row.getPayload()).containsExactly(1, 2);
        assertThat(row.getParkedAt()).isNull();
        assertThat(row.getCreatedAt().toInstant()).isCloseTo(Instant.now(), within(1, ChronoUnit.MINUTES));
    }

    /** G2 at the source: rows appended in a transaction that rolls back do not exist. */
    @Test
    void rolledBackAppendsLeaveNothing(TestDatabase db) {
        DSLContext dsl = db.dsl();
        List<UUID> ids = new ArrayList<>();
        assertThatThrownBy(() -> dsl.transaction(tx -> {
                    ids.add(outbox.append(
                            tx.dsl(),
                            OutboxMessage.of("orders", "k", "Raw", "application/octet-stream", new byte[] {1})));
                    throw new IllegalStateException("business rule failed");
                }))
                .hasMessage("business rule failed");
        assertThat(ids).hasSize(1);
        assertThat(dsl.fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.MESSAGE_ID.eq(ids.get(0))))
                .isZero();
    }

    /**
     * G1 and G3 against misconfiguration: a producer whose shard count differs from the install's
     * maps keys to other shards than the relay and the other producers. With more shards (128 against
     * 64) its rows could land on shards no relay leases; with fewer (32) one key's messages could sit
     * in two shards and lose their order. Its first append fails instead, naming both counts, and
     * nothing of the transaction remains; the same Outbox built with the right count appends.
     */
    @ParameterizedTest(name = "shards({0}) on a 64-shard install")
    @ValueSource(ints = {128, 32})
    void refusesAShardCountOtherThanTheInstalls(int configured, TestDatabase db) {
        Outbox wrong = Outbox.builder().shards(configured).build();
        String key = "wrong-count-" + configured;
        OutboxMessage message = OutboxMessage.of("orders", key, "Raw", "application/octet-stream", new byte[] {1});
        DSLContext dsl = db.dsl();
        assertThatThrownBy(() -> dsl.transaction(tx -> wrong.append(tx.dsl(), message)))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("spreads keys over " + configured + " shards")
                .hasMessageContaining("installed with 64")
                .hasMessageContaining("Outbox.builder().shards(64)");
        assertThat(dsl.fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.MESSAGE_KEY.eq(key)))
                .isZero();
        Outbox right = Outbox.builder().shards(64).build();
        UUID id = dsl.transactionResult(tx -> right.append(tx.dsl(), message));
        assertThat(dsl.fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.MESSAGE_ID.eq(id)))
                .isOne();
    }

    /**
     * A producer role with INSERT on the outbox but not SELECT on the lease table cannot append (the
     * shard count is read once per Outbox), and the error says which grant is missing. Before, it
     * asked whether the outbox was installed. Once granted, the same Outbox appends.
     */
    @Test
    void aProducerRoleWithoutSelectOnTheLeaseTableIsToldWhichGrantIsMissing(TestDatabase db) {
        String role = "outbox_insert_only_" + Long.toHexString(System.nanoTime());
        DSLContext dsl = db.dsl();
        dsl.execute("create role " + role);
        try {
            Outbox fresh = Outbox.builder().build();
            OutboxMessage message = OutboxMessage.of("orders", "grants", "Raw", "application/octet-stream", null);
            // both table grants, no USAGE on the schema: the hint names USAGE too (it named only the table grants)
            dsl.execute("grant insert on outbox.outbox_message to " + role);
            dsl.execute("grant select on outbox.outbox_shard_lease to " + role);
            assertThatThrownBy(() -> dsl.transaction(tx -> {
                        tx.dsl().execute("set local role " + role);
                        fresh.append(tx.dsl(), message);
                    }))
                    .hasStackTraceContaining("permission denied for schema outbox")
                    .satisfies(e -> assertThat(e).hasStackTraceContaining("needs USAGE on schema outbox"));
            dsl.execute("revoke select on outbox.outbox_shard_lease from " + role);
            dsl.execute("grant usage on schema outbox to " + role);
            assertThatThrownBy(() -> dsl.transaction(tx -> {
                        tx.dsl().execute("set local role " + role);
                        fresh.append(tx.dsl(), message);
                    }))
                    .hasStackTraceContaining("needs USAGE on schema outbox, SELECT on outbox.outbox_shard_lease")
                    .satisfies(e -> assertThat(e).hasStackTraceContaining("permission denied"));
            dsl.execute("grant select on outbox.outbox_shard_lease to " + role);
            UUID id = dsl.transactionResult(tx -> {
                tx.dsl().execute("set local role " + role);
                return fresh.append(tx.dsl(), message);
            });
            assertThat(dsl.fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.MESSAGE_ID.eq(id)))
                    .isOne();
        } finally {
            dsl.execute("drop owned by " + role);
            dsl.execute("drop role " + role);
        }
    }

    /**
     * A message id appended twice fails as jOOQ reports any statement's unique violation, so that a caller
     * catching {@link IntegrityConstraintViolationException} (a message id derived from an upstream id, already
     * emitted) sees it; it was a plain {@link DataAccessException}. The JDBC entry point throws the
     * {@link java.sql.SQLException} itself, SQLState 23505.
     */
    @Test
    void aMessageIdAppendedTwiceIsAnIntegrityConstraintViolation(TestDatabase db) throws Exception {
        OutboxMessage message = OutboxMessage.of("orders", "twice", "Raw", "application/octet-stream", null)
                .withMessageId(MessageIds.next());
        DSLContext dsl = db.dsl();
        dsl.transaction(tx -> outbox.append(tx.dsl(), message));
        assertThatThrownBy(() -> dsl.transaction(tx -> outbox.append(tx.dsl(), message)))
                .isInstanceOf(IntegrityConstraintViolationException.class)
                .satisfies(e -> assertThat(((DataAccessException) e).sqlState()).isEqualTo("23505"))
                .hasMessageContaining("Outbox.append to outbox.outbox_message failed");
        try (Connection c = db.connect()) {
            c.setAutoCommit(false);
            assertThatThrownBy(() -> outbox.append(c, message))
                    .isInstanceOf(SQLException.class)
                    .satisfies(e -> assertThat(((SQLException) e).getSQLState()).isEqualTo("23505"));
            c.rollback();
        }
        assertThat(dsl.fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.MESSAGE_ID.eq(message.messageId())))
                .isOne();
    }

    /**
     * A batch append that fails does not carry the rows' values into the exception: pgjdbc's message of a
     * failed batch holds the whole statement with every bound value (payload in hex, key, headers), which the
     * caller's log would then hold (card numbers, personal data, megabytes of payload). The failure keeps its
     * SQLState (here 23505, a message id appended twice) and the server's own message; before, the
     * exception's message and its cause's held the key and the payload.
     */
    @Test
    void aFailedBatchAppendDoesNotCarryTheRowsValues(TestDatabase db) throws Exception {
        String secretKey = "card-4111111111111111";
        byte[] payload = new byte[4096];
        for (int i = 0; i < payload.length; i += 4) {
            payload[i] = (byte) 0xCA;
            payload[i + 1] = (byte) 0xFE;
            payload[i + 2] = (byte) 0xBA;
            payload[i + 3] = (byte) 0xBE;
        }
        OutboxMessage first = OutboxMessage.of("orders", secretKey, "Raw", "application/octet-stream", payload)
                .withMessageId(MessageIds.next())
                .withHeader("x-pan", "4111111111111111");
        OutboxMessage other = OutboxMessage.of("orders", secretKey, "Raw", "application/octet-stream", payload);
        DSLContext dsl = db.dsl();
        dsl.transaction(tx -> outbox.append(tx.dsl(), first));

        Throwable viaJooq =
                catchThrowable(() -> dsl.transaction(tx -> outbox.appendAll(tx.dsl(), List.of(other, first))));
        assertThat(viaJooq).isInstanceOf(IntegrityConstraintViolationException.class);
        assertThat(((DataAccessException) viaJooq).sqlState()).isEqualTo("23505");
        assertThat(viaJooq).hasMessageContaining("the batch insert of 2 messages failed");
        assertCarriesNoValues(viaJooq, "4111111111111111", "cafebabe");

        try (Connection c = db.connect()) {
            c.setAutoCommit(false);
            Throwable viaJdbc = catchThrowable(() -> outbox.appendAll(c, List.of(other, first)));
            assertThat(viaJdbc).isInstanceOf(SQLException.class);
            assertThat(((SQLException) viaJdbc).getSQLState()).isEqualTo("23505");
            assertCarriesNoValues(viaJdbc, "4111111111111111", "cafebabe");
            c.rollback();
        }
        assertThat(dsl.fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.MESSAGE_KEY.eq(secretKey)))
                .isOne();
    }

    private static void assertCarriesNoValues(Throwable failure, String... values) {
        int depth = 0;
        for (Throwable t = failure; t != null && depth < 16; t = t.getCause(), depth++) {
            for (String value : values) {
                assertThat(String.valueOf(t.getMessage()).toLowerCase(Locale.ROOT))
                        .as("the message of %s", t.getClass().getName())
                        .doesNotContain(value);
            }
            if (t instanceof SQLException sql && sql.getNextException() != null) {
                for (String value : values) {
                    assertThat(String.valueOf(sql.getNextException().getMessage()))
                            .doesNotContain(value);
                }
            }
        }
    }

    /**
     * G1 and G3 against misconfiguration, for one Outbox shared by the pools of two databases (one per
     * tenant, say) installed with different shard counts: each database's count is checked at its first
     * append. Before, only the first database was checked, and appends to the second were spread over the
     * wrong shards without a word: a key's messages in another shard than its other producers put them,
     * their order lost.
     */
    @Test
    void oneOutboxOverTwoDatabasesChecksTheShardCountOfEach(TestDatabase db) {
        try (TestDatabase other = TestDatabase.create()) {
            OutboxMigrations.migrate(db.dataSource(), "tenant", 4);
            OutboxMigrations.migrate(other.dataSource(), "tenant", 8);
            Outbox shared = Outbox.builder().schema("tenant").shards(4).build();
            OutboxMessage message = OutboxMessage.of("orders", "k", "Raw", "application/octet-stream", null);
            DSLContext first = OutboxMigrations.dsl(db.dataSource(), "tenant");
            first.transaction(tx -> shared.append(tx.dsl(), message));
            DSLContext second = OutboxMigrations.dsl(other.dataSource(), "tenant");
            assertThatThrownBy(() -> second.transaction(tx -> shared.append(tx.dsl(), message)))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("spreads keys over 4 shards")
                    .hasMessageContaining("installed with 8");
            assertThat(second.fetchCount(DSL.table("tenant.outbox_message"))).isZero();
        }
    }

    /**
     * A lease table with as many rows as the Outbox has shards, but not numbered 0 to n-1 (a row edited
     * by hand), is refused: no relay leases a shard without its row, so a message on it would never be
     * published (G1). Only the count was checked before.
     */
    @Test
    void aLeaseTableNumberedOtherThanFromZeroIsRefused(TestDatabase db) {
        OutboxMigrations.migrate(db.dataSource(), "renumbered", 4);
        DSLContext dsl = OutboxMigrations.dsl(db.dataSource(), "renumbered");
        dsl.execute("update renumbered.outbox_shard_lease set shard = 4 where shard = 3");
        Outbox producer = Outbox.builder().schema("renumbered").shards(4).build();
        assertThatThrownBy(() -> dsl.transaction(tx -> producer.append(
                        tx.dsl(), OutboxMessage.of("orders", "k", "Raw", "application/octet-stream", null))))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("numbered 0 to 4")
                .hasMessageContaining("not 0 to 3");
    }

    /**
     * A traceparent supplier that throws (a request-scoped lookup called outside a request) does not fail
     * the business transaction: the message is appended without an inherited trace, as with a malformed
     * value. Before, the supplier's exception rolled the transaction back.
     */
    @Test
    void aTraceparentSupplierThatThrowsIsIgnored(TestDatabase db) {
        Outbox traced = Outbox.builder()
                .traceparent(() -> {
                    throw new IllegalStateException("No thread-bound request found");
                })
                .build();
        DSLContext dsl = db.dsl();
        UUID id = dsl.transactionResult(
                tx -> traced.append(tx.dsl(), OutboxMessage.of("orders", "o-3", "t", "text/plain", new byte[1])));
        var row = dsl.selectFrom(OUTBOX_MESSAGE)
                .where(OUTBOX_MESSAGE.MESSAGE_ID.eq(id))
                .fetchSingle();
        assertThat(row.getHeaders().data()).doesNotContain("traceparent");
    }

    /**
     * A lease table without rows (deleted, or a schema copied without its data) is named as such; the error
     * suggested shards(0), which the builder refuses.
     */
    @Test
    void anEmptyLeaseTableIsNamedAsSuch(TestDatabase db) {
        OutboxMigrations.migrate(db.dataSource(), "emptied", 4);
        DSLContext emptied = OutboxMigrations.dsl(db.dataSource(), "emptied");
        emptied.execute("delete from emptied.outbox_shard_lease");
        Outbox producer = Outbox.builder().schema("emptied").shards(4).build();
        assertThatThrownBy(() -> emptied.transaction(tx -> producer.append(
                        tx.dsl(), OutboxMessage.of("orders", "k", "Raw", "application/octet-stream", null))))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("has no shards: emptied.outbox_shard_lease is empty")
                .hasMessageContaining("restore one row per shard (shard 0 to 3")
                .hasMessageNotContaining("shards(0)");
        assertThat(emptied.fetchCount(OUTBOX_MESSAGE)).isZero();
    }

    @Test
    void refusesAutocommitConnections(TestDatabase db) {
        assertThatThrownBy(() -> outbox.append(
                        db.dsl(), OutboxMessage.of("orders", "k", "Raw", "application/octet-stream", null)))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("autocommit mode");
        assertThat(db.dsl()
                        .fetchCount(
                                OUTBOX_MESSAGE,
                                OUTBOX_MESSAGE.MESSAGE_KEY.eq("k").and(OUTBOX_MESSAGE.PAYLOAD.isNull())))
                .isZero();
    }

    @Test
    void appendsABatchInOrderAndNotifiesAtCommitOnlyWhenAsked(TestDatabase db) throws Exception {
        Outbox outbox = Outbox.builder().notifyInTransaction(true).build();
        try (Connection listener = db.connect();
                Statement st = listener.createStatement()) {
            st.execute("listen \"" + outbox.channel() + "\"");
            PGConnection pg = listener.unwrap(PGConnection.class);
            List<OutboxMessage> batch = new ArrayList<>();
            for (int i = 0; i < 12_000; i++) {
                batch.add(OutboxMessage.of(
                        "batch", "key-" + (i % 10), "Raw", "application/octet-stream", new byte[] {(byte) i}));
            }
            DSLContext dsl = db.dsl();
            List<UUID> ids = dsl.transactionResult(tx -> {
                List<UUID> appended = outbox.appendAll(tx.dsl(), batch);
                // not visible to the relay before commit
                assertThat(pg.getNotifications(200)).isNullOrEmpty();
                return appended;
            });
            assertThat(ids).hasSize(12_000).doesNotHaveDuplicates();
            List<UUID> inIdOrder = dsl.select(OUTBOX_MESSAGE.MESSAGE_ID)
                    .from(OUTBOX_MESSAGE)
                    .where(OUTBOX_MESSAGE.TOPIC.eq("batch"))
                    .orderBy(OUTBOX_MESSAGE.ID)
                    .fetch(OUTBOX_MESSAGE.MESSAGE_ID);
            assertThat(inIdOrder).containsExactlyElementsOf(ids);
            // returns as soon as the notification is there; the bound only matters on a loaded machine
            PGNotification[] notes = pg.getNotifications(30_000);
            assertThat(notes).isNotEmpty();
            assertThat(notes[0].getName()).isEqualTo(outbox.channel());
            List<Integer> shards = dsl.selectDistinct(OUTBOX_MESSAGE.SHARD)
                    .from(OUTBOX_MESSAGE)
                    .where(OUTBOX_MESSAGE.TOPIC.eq("batch"))
                    .orderBy(OUTBOX_MESSAGE.SHARD)
                    .fetch(OUTBOX_MESSAGE.SHARD);
            assertThat(notes[0].getParameter())
                    .isEqualTo(String.join(
                            ",", shards.stream().map(String::valueOf).toList()));
        }
    }

    @Test
    void typedAvroAppendCarriesTheWriterSchemaAndTraceparent(TestDatabase db) {
        String trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        Outbox traced = Outbox.builder().traceparent(() -> trace).build();
        OrderPlaced order = OrderPlaced.newBuilder()
                .setOrderId("o-1")
                .setCustomerId("c-1")
                .setAmountCents(1250)
                .setCurrency("EUR")
                .setPlacedAt(Instant.parse("2026-11-29T10:00:00Z"))
                .setLines(List.of(
                        OrderLine.newBuilder().setSku("sku-1").setQuantity(2).build()))
                .build();
        DSLContext dsl = db.dsl();
        UUID id = dsl.transactionResult(tx -> traced.append(tx.dsl(), "orders", "o-1", order));
        var row = dsl.selectFrom(OUTBOX_MESSAGE)
                .where(OUTBOX_MESSAGE.MESSAGE_ID.eq(id))
                .fetchSingle();
        assertThat(row.getMessageType()).isEqualTo("dev.outbox.schemas.orders.OrderPlaced");
        assertThat(row.getContentType()).isEqualTo(AvroCodec.contentType(OrderPlaced.getClassSchema()));
        assertThat(row.getHeaders().data()).contains(trace);
        assertThat(AvroCodec.create().decode(row.getPayload(), OrderPlaced.class))
                .isEqualTo(order);
    }

    /**
     * G1 whatever the trace header: a supplier that forwards a client's traceparent as it came (upper
     * case here) does not fail the business transaction; the message is appended without it. Before,
     * the append threw and the request failed on every retry.
     */
    @Test
    void aMalformedTraceparentFromTheSupplierIsDroppedNotThrown(TestDatabase db) {
        Outbox traced = Outbox.builder()
                .traceparent(() -> "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01")
                .build();
        DSLContext dsl = db.dsl();
        UUID id = dsl.transactionResult(
                tx -> traced.append(tx.dsl(), OutboxMessage.of("orders", "o-2", "t", "text/plain", new byte[1])));
        var row = dsl.selectFrom(OUTBOX_MESSAGE)
                .where(OUTBOX_MESSAGE.MESSAGE_ID.eq(id))
                .fetchSingle();
        assertThat(row.getHeaders().data()).doesNotContain("traceparent");
    }

    /**
     * A supplier's traceparent of a later version than 00 is read as version 00 (W3C Trace Context,
     * "Versioning of traceparent") and kept as it came; a version-00 one with characters after it is
     * dropped, and the append goes on without it.
     */
    @Test
    void aLaterVersionTraceparentFromTheSupplierIsKept(TestDatabase db) {
        String later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra";
        assertThat(Json.read(appendedHeaders(db, later))).containsEntry(OutboxHeaders.TRACEPARENT, later);
        String longVersion00 = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra";
        assertThat(appendedHeaders(db, longVersion00)).doesNotContain("traceparent");
    }

    private static String appendedHeaders(TestDatabase db, String suppliedTraceparent) {
        Outbox traced = Outbox.builder().traceparent(() -> suppliedTraceparent).build();
        DSLContext dsl = db.dsl();
        UUID id = dsl.transactionResult(
                tx -> traced.append(tx.dsl(), OutboxMessage.of("orders", "o-4", "t", "text/plain", new byte[1])));
        return dsl.selectFrom(OUTBOX_MESSAGE)
                .where(OUTBOX_MESSAGE.MESSAGE_ID.eq(id))
                .fetchSingle()
                .getHeaders()
                .data();
    }

    /**
     * A tracestate belongs to the traceparent it came with: a message that carries a tracestate and no
     * traceparent, appended where the supplier gives one, is stored with the supplier's traceparent and
     * without that tracestate; a message with both keeps both. Before, the first was stored with the
     * supplier's traceparent beside its own, unrelated, tracestate.
     */
    @Test
    void anInheritedTraceparentDoesNotKeepTheMessagesOwnTracestate(TestDatabase db) {
        String trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        String own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        Outbox traced = Outbox.builder().traceparent(() -> trace).build();
        DSLContext dsl = db.dsl();
        OutboxMessage stateOnly = OutboxMessage.of("orders", "o-3", "t", "text/plain", new byte[1])
                .withHeader("tracestate", "v=1");
        OutboxMessage both = stateOnly.withTraceparent(own);
        List<UUID> ids = dsl.transactionResult(tx -> traced.appendAll(tx.dsl(), List.of(stateOnly, both)));
        Map<UUID, String> headers = dsl.select(OUTBOX_MESSAGE.MESSAGE_ID, OUTBOX_MESSAGE.HEADERS)
                .from(OUTBOX_MESSAGE)
                .where(OUTBOX_MESSAGE.MESSAGE_ID.in(ids))
                .fetchMap(r -> r.value1(), r -> r.value2().data());
        assertThat(headers.get(ids.get(0))).contains(trace).doesNotContain("tracestate");
        assertThat(headers.get(ids.get(1)))
                .contains(own)
                .contains("\"tracestate\"")
                .doesNotContain(trace);
    }

    /**
     * G7 for any key append accepts: a row with the longest key ({@link OutboxMessage#MAX_KEY_BYTES}
     * bytes that do not compress) can be parked, as the relay parks a poison row; one with a key of
     * two and a half times that, which append refuses, could not be (PostgreSQL refuses its entry in the
     * index of parked rows, SQLState 54000), so its row would be retried for ever.
     */
    @Test
    void aRowWithTheLongestKeyCanBeParked(TestDatabase db) {
        DSLContext dsl = db.dsl();
        String longest = randomKey(OutboxMessage.MAX_KEY_BYTES);
        UUID id = dsl.transactionResult(
                tx -> outbox.append(tx.dsl(), OutboxMessage.of("orders", longest, "t", "text/plain", new byte[1])));
        assertThat(dsl.update(OUTBOX_MESSAGE)
                        .set(OUTBOX_MESSAGE.PARKED_AT, OffsetDateTime.now())
                        .where(OUTBOX_MESSAGE.MESSAGE_ID.eq(id))
                        .execute())
                .isOne();

        String tooLong = randomKey(5 * OutboxMessage.MAX_KEY_BYTES / 2);
        assertThatThrownBy(() -> OutboxMessage.of("orders", tooLong, "t", "text/plain", new byte[1]))
                .isInstanceOf(IllegalArgumentException.class);
        UUID other = UUID.randomUUID();
        dsl.execute(
                "insert into outbox.outbox_message (message_id, shard, topic, message_key, message_type, content_type,"
                        + " headers) values (?, 0, 'orders', ?, 't', 'text/plain', '{}')",
                other,
                tooLong);
        assertThatThrownBy(() -> dsl.update(OUTBOX_MESSAGE)
                        .set(OUTBOX_MESSAGE.PARKED_AT, OffsetDateTime.now())
                        .where(OUTBOX_MESSAGE.MESSAGE_ID.eq(other))
                        .execute())
                .hasMessageContaining("index row");
        dsl.deleteFrom(OUTBOX_MESSAGE)
                .where(OUTBOX_MESSAGE.MESSAGE_ID.in(id, other))
                .execute();
    }

    /** @return a key of {@code bytes} random ASCII letters and digits, which PostgreSQL cannot compress much */
    private static String randomKey(int bytes) {
        String alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        var random = new SplittableRandom(bytes);
        StringBuilder key = new StringBuilder(bytes);
        for (int i = 0; i < bytes; i++) {
            key.append(alphabet.charAt(random.nextInt(alphabet.length())));
        }
        return key.toString();
    }

    @Test
    void mapsToACustomSchema(TestDatabase db) throws Exception {
        try (Connection c = db.connect()) {
            OutboxMigrations.migrate(db.dataSource(), "billing", 8);
        }
        Outbox billing = Outbox.builder().schema("billing").shards(8).build();
        DSLContext dsl = db.dsl();
        UUID id = dsl.transactionResult(tx ->
                billing.append(tx.dsl(), OutboxMessage.of("invoices", "i-1", "Raw", "application/octet-stream", null)));
        assertThat(OutboxMigrations.dsl(db.dataSource(), "billing")
                        .fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.MESSAGE_ID.eq(id)))
                .isOne();
        assertThat(dsl.fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.MESSAGE_ID.eq(id)))
                .isZero();
        assertThatThrownBy(() -> Outbox.builder().schema("Bad-Name"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("not a plain SQL identifier");
    }

    /**
     * G1 and G2 for JDBC users: an append on a plain {@link Connection} joins the caller's
     * transaction, so a rollback takes the row with the business write and a commit keeps both.
     */
    @Test
    void jdbcAppendJoinsTheCallersTransaction(TestDatabase db) throws Exception {
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            st.execute("create table jdbc_order (id text primary key)");
            c.setAutoCommit(false);
            st.execute("insert into jdbc_order values ('rolled-back')");
            UUID lost = outbox.append(
                    c, OutboxMessage.of("orders", "jdbc-1", "Raw", "application/octet-stream", new byte[] {1}));
            c.rollback();
            st.execute("insert into jdbc_order values ('kept')");
            List<UUID> kept = outbox.appendAll(
                    c,
                    List.of(
                            OutboxMessage.of("orders", "jdbc-2", "Raw", "application/octet-stream", new byte[] {2}),
                            OutboxMessage.of("orders", "jdbc-2", "Raw", "application/octet-stream", null)
                                    .withHeader("tenant", "t-1")));
            // not visible to another session before the caller commits
            assertThat(db.dsl().fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.MESSAGE_ID.in(kept)))
                    .isZero();
            c.commit();
            DSLContext dsl = db.dsl();
            assertThat(dsl.fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.MESSAGE_ID.eq(lost)))
                    .isZero();
            assertThat(dsl.select(OUTBOX_MESSAGE.MESSAGE_ID)
                            .from(OUTBOX_MESSAGE)
                            .where(OUTBOX_MESSAGE.MESSAGE_KEY.eq("jdbc-2"))
                            .orderBy(OUTBOX_MESSAGE.ID)
                            .fetch(OUTBOX_MESSAGE.MESSAGE_ID))
                    .containsExactlyElementsOf(kept);
            var second = dsl.selectFrom(OUTBOX_MESSAGE)
                    .where(OUTBOX_MESSAGE.MESSAGE_ID.eq(kept.get(1)))
                    .fetchSingle();
            assertThat(second.getPayload()).isNull();
            assertThat(second.getHeaders().data()).contains("\"tenant\"").contains("\"t-1\"");
            assertThat(dsl.fetchCount(dsl.selectFrom("jdbc_order").where("id = 'kept'")))
                    .isOne();
            assertThat(dsl.fetchCount(dsl.selectFrom("jdbc_order").where("id = 'rolled-back'")))
                    .isZero();
        }
    }

    /** G1: a JDBC append on an autocommit connection is refused before anything is written. */
    @Test
    void jdbcAppendRefusesAutocommit(TestDatabase db) throws Exception {
        try (Connection c = db.connect()) {
            assertThat(c.getAutoCommit()).isTrue();
            assertThatThrownBy(() -> outbox.append(
                            c, OutboxMessage.of("orders", "jdbc-auto", "Raw", "application/octet-stream", null)))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("autocommit mode");
        }
        assertThat(db.dsl().fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.MESSAGE_KEY.eq("jdbc-auto")))
                .isZero();
    }

    /** G1 and G3 against misconfiguration, on the JDBC entry point: a wrong shard count is refused. */
    @Test
    void jdbcAppendRefusesAShardCountOtherThanTheInstalls(TestDatabase db) throws Exception {
        Outbox wrong = Outbox.builder().shards(16).build();
        try (Connection c = db.connect()) {
            c.setAutoCommit(false);
            assertThatThrownBy(() -> wrong.append(
                            c, OutboxMessage.of("orders", "jdbc-16", "Raw", "application/octet-stream", null)))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("installed with 64");
            c.rollback();
        }
    }

    /** By default an append notifies nobody: the producer's commit takes no notify lock. */
    @Test
    void doesNotNotifyByDefault(TestDatabase db) throws Exception {
        try (Connection listener = db.connect();
                Statement st = listener.createStatement()) {
            st.execute("listen \"" + outbox.channel() + "\"");
            PGConnection pg = listener.unwrap(PGConnection.class);
            db.dsl()
                    .transaction(tx -> outbox.append(
                            tx.dsl(), OutboxMessage.of("orders", "quiet", "Raw", "application/octet-stream", null)));
            assertThat(db.dsl().fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.MESSAGE_KEY.eq("quiet")))
                    .isOne();
            assertThat(pg.getNotifications(500)).isNullOrEmpty();
        }
    }

    /**
     * A schema name of the longest legal length (63 characters) works: the appends land in it, and
     * the notifying variant's channel is a legal identifier, distinct for two long names that share a
     * prefix, on which a LISTENing session receives the notification.
     */
    @Test
    void aSchemaOfSixtyThreeCharactersWorks(TestDatabase db) throws Exception {
        String schema = "s".repeat(60) + "_63";
        assertThat(schema).hasSize(63);
        OutboxMigrations.migrate(db.dataSource(), schema, 4);
        Outbox longOne = Outbox.builder()
                .schema(schema)
                .shards(4)
                .notifyInTransaction(true)
                .build();
        assertThat(longOne.channel())
                .hasSizeLessThanOrEqualTo(63)
                .startsWith("outbox_sss")
                .isNotEqualTo(Outbox.channel("s".repeat(60) + "_64"));
        try (Connection listener = db.connect();
                Statement st = listener.createStatement()) {
            st.execute("listen \"" + longOne.channel() + "\"");
            PGConnection pg = listener.unwrap(PGConnection.class);
            DSLContext dsl = db.dsl();
            UUID id = dsl.transactionResult(tx -> longOne.append(
                    tx.dsl(), OutboxMessage.of("orders", "long", "Raw", "application/octet-stream", null)));
            assertThat(OutboxMigrations.dsl(db.dataSource(), schema)
                            .fetchCount(OUTBOX_MESSAGE, OUTBOX_MESSAGE.MESSAGE_ID.eq(id)))
                    .isOne();
            PGNotification[] notes = pg.getNotifications(30_000);
            assertThat(notes).isNotEmpty();
            assertThat(notes[0].getName()).isEqualTo(longOne.channel());
        }
    }
}
