package dev.outbox.consumer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.MessageIds;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.testkit.TestDatabase;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.jooq.DSLContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link ProcessedMessages} on real PostgreSQL: the claim commits and rolls back with the business
 * write, a second claim of one id is refused, and a claim outside a transaction is refused
 * (guarantee G4 for consumers with their own listener runtime).
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class ProcessedMessagesIT {
    private static TestDatabase db;
    private final ProcessedMessages processed = ProcessedMessages.create();

    @BeforeAll
    static void setUp() throws Exception {
        db = TestDatabase.create();
        Fixtures.createPayments(db);
    }

    @AfterAll
    static void tearDown() {
        db.close();
    }

    /** G4: the business write of a redelivered id happens once, with a jOOQ transaction. */
    @Test
    void aSecondDeliveryIsSkippedWithJooq() {
        UUID id = MessageIds.next();
        DSLContext dsl = db.dsl();
        for (int delivery = 0; delivery < 3; delivery++) {
            dsl.transaction(cfg -> {
                if (processed.claim(cfg.dsl(), "payments-jooq", id)) {
                    cfg.dsl().execute("insert into payments(message_id, order_id, amount) values (?, 'o-1', 10)", id);
                }
            });
        }
        assertThat(payments(id)).isEqualTo(1);
    }

    /** G4: a claim rolled back with its business write is claimable again; a committed one is not. */
    @Test
    void aRolledBackClaimIsClaimableAgainWithJdbc() throws Exception {
        UUID id = MessageIds.next();
        try (Connection c = db.connect()) {
            c.setAutoCommit(false);
            assertThat(processed.claim(c, "payments-jdbc", id)).isTrue();
            c.rollback();
            assertThat(processed.claim(c, "payments-jdbc", id)).isTrue();
            c.commit();
            assertThat(processed.claim(c, "payments-jdbc", id)).isFalse();
            assertThat(processed.claim(c, "another-consumer", id))
                    .as("each consumer has its own scope")
                    .isTrue();
            c.commit();
        }
    }

    /** G4: two concurrent deliveries of one id: the second waits for the first and is refused. */
    @Test
    void concurrentClaimsOfOneIdLetOneWin() throws Exception {
        UUID id = MessageIds.next();
        try (Connection first = db.connect();
                Connection second = db.connect()) {
            first.setAutoCommit(false);
            second.setAutoCommit(false);
            assertThat(processed.claim(first, "payments-race", id)).isTrue();
            CompletableFuture<Boolean> waiting = CompletableFuture.supplyAsync(() -> {
                try {
                    return processed.claim(second, "payments-race", id);
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            await().atMost(Duration.ofSeconds(30)).until(ProcessedMessagesIT::aBackendWaitsOnALock);
            assertThat(waiting).isNotDone();
            first.commit();
            assertThat(waiting.get(30, TimeUnit.SECONDS)).isFalse();
            second.commit();
        }
    }

    @Test
    void refusesAnAutocommitConnection() throws Exception {
        try (Connection c = db.connect()) {
            c.setAutoCommit(true);
            assertThatThrownBy(() -> processed.claim(c, "payments", MessageIds.next()))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("autocommit");
        }
        assertThatThrownBy(() -> processed.claim(db.dsl(), "payments", MessageIds.next()))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("autocommit");
    }

    @Test
    void validatesItsArguments() {
        assertThatThrownBy(() -> processed.claim(db.dsl(), " ", MessageIds.next()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("consumer");
        assertThatThrownBy(() -> processed.claim(db.dsl(), "payments", null))
                .isInstanceOf(NullPointerException.class)
                .hasMessageContaining("messageId");
        assertThatThrownBy(() -> ProcessedMessages.create("Bad-Schema")).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void purgeDeletesOnlyOldRowsOfThatConsumer() throws Exception {
        UUID old = MessageIds.next();
        UUID fresh = MessageIds.next();
        try (Connection c = db.connect();
                Statement st = c.createStatement()) {
            c.setAutoCommit(false);
            processed.claim(c, "payments-purge", old);
            processed.claim(c, "payments-purge", fresh);
            c.commit();
            st.execute(
                    "update outbox.processed_message set processed_at = now() - interval '8 days' where message_id = '"
                            + old + "'");
            c.commit();
            c.setAutoCommit(true);
            assertThat(processed.purge(c, "payments-purge", Duration.ofDays(7))).isEqualTo(1);
            c.setAutoCommit(false);
            assertThat(processed.claim(c, "payments-purge", fresh)).isFalse();
            c.rollback();
        }
    }

    @Test
    void readsTheMessageIdHeader() {
        UUID id = MessageIds.next();
        RecordHeaders headers = new RecordHeaders();
        assertThat(ProcessedMessages.messageId(headers)).isEmpty();
        headers.add(OutboxHeaders.MESSAGE_ID, id.toString().getBytes(StandardCharsets.UTF_8));
        assertThat(ProcessedMessages.messageId(headers)).contains(id);
        headers.add(OutboxHeaders.MESSAGE_ID, "nope".getBytes(StandardCharsets.UTF_8));
        assertThatThrownBy(() -> ProcessedMessages.messageId(headers)).isInstanceOf(IllegalArgumentException.class);
    }

    private static boolean aBackendWaitsOnALock() throws Exception {
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs =
                        st.executeQuery("select count(*) from pg_stat_activity where datname = current_database()"
                                + " and wait_event_type = 'Lock'")) {
            rs.next();
            return rs.getInt(1) > 0;
        }
    }

    private static int payments(UUID id) {
        try (Connection c = db.connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select count(*) from payments where message_id = '" + id + "'")) {
            rs.next();
            return rs.getInt(1);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
