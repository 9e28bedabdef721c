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
import java.sql.SQLException;
import java.sql.SQLTransientException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.jooq.DSLContext;
import org.jooq.exception.DataAccessException;
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

    /**
     * G4: two concurrent deliveries of one id: the second waits for the first and is refused once it
     * committed, or claims the id once it rolled back. The second retries as a listener would when its
     * wait passes the bound (a slow machine between the two steps).
     */
    @Test
    void concurrentClaimsOfOneIdLetOneWin() throws Exception {
        for (boolean commit : new boolean[] {true, false}) {
            UUID id = MessageIds.next();
            try (Connection first = db.connect();
                    Connection second = db.connect()) {
                first.setAutoCommit(false);
                second.setAutoCommit(false);
                assertThat(processed.claim(first, "payments-race", id)).isTrue();
                CompletableFuture<Boolean> waiting = CompletableFuture.supplyAsync(() -> claimRetrying(second, id));
                await().atMost(Duration.ofSeconds(30)).until(ProcessedMessagesIT::aBackendWaitsOnALock);
                assertThat(waiting).isNotDone();
                if (commit) {
                    first.commit();
                } else {
                    first.rollback();
                }
                assertThat(waiting.get(30, TimeUnit.SECONDS)).isEqualTo(!commit);
                second.commit();
            }
        }
    }

    /**
     * A claim of an id another open transaction holds (an old owner of the partition paused or cut off
     * after its claim, before its commit) waits at most the claim's bound, 2 s, then fails with {@link
     * MessageIdHeldException}: SQLState 55P03, transient, a message that says what holds it and to
     * retry later. The caller's transaction is aborted, and its rollback puts the session's lock_timeout
     * back. Without the bound the claim waited for as long as the holder's transaction lived.
     */
    @Test
    void aClaimOfAnIdAnotherTransactionHoldsStopsWaitingAfterTheBound() throws Exception {
        UUID id = MessageIds.next();
        try (Connection holder = db.connect();
                Connection claimer = db.connect()) {
            holder.setAutoCommit(false);
            claimer.setAutoCommit(false);
            assertThat(processed.claim(holder, "payments-held", id)).isTrue();
            long start = System.nanoTime();
            assertThatThrownBy(() -> bounded(() -> processed.claim(claimer, "payments-held", id)))
                    .isInstanceOf(MessageIdHeldException.class)
                    .isInstanceOf(SQLTransientException.class)
                    .hasMessageContaining(id.toString())
                    .hasMessageContaining("\"payments-held\"")
                    .hasMessageContaining("held by another transaction")
                    .hasMessageContaining("retry the record later")
                    .hasCauseInstanceOf(SQLException.class)
                    .satisfies(e -> assertThat(((SQLException) e).getSQLState()).isEqualTo("55P03"));
            Duration waited = Duration.ofNanos(System.nanoTime() - start);
            assertThat(waited).as("waited the bound").isGreaterThanOrEqualTo(Duration.ofMillis(1900));

            assertThat(transactionAborted(claimer))
                    .as("the caller's transaction is aborted")
                    .isTrue();
            claimer.rollback();
            assertThat(setting(claimer, "lock_timeout")).isEqualTo("0");
            holder.commit();
            assertThat(processed.claim(claimer, "payments-held", id)).isFalse();
            claimer.commit();
        }
    }

    /** The jOOQ variant: a jOOQ DataAccessException whose message and cause say the id is held. */
    @Test
    void aHeldIdFailsAJooqClaimWithTheSameCause() throws Exception {
        UUID id = MessageIds.next();
        try (Connection holder = db.connect()) {
            holder.setAutoCommit(false);
            assertThat(processed.claim(holder, "payments-held-jooq", id)).isTrue();
            assertThatThrownBy(() -> bounded(() ->
                            db.dsl().transactionResult(cfg -> processed.claim(cfg.dsl(), "payments-held-jooq", id))))
                    .isInstanceOf(DataAccessException.class)
                    .hasMessageContaining("held by another transaction")
                    .hasCauseInstanceOf(MessageIdHeldException.class)
                    .satisfies(e ->
                            assertThat(((DataAccessException) e).sqlState()).isEqualTo("55P03"));
            holder.rollback();
        }
        boolean claimed = db.dsl().transactionResult(cfg -> processed.claim(cfg.dsl(), "payments-held-jooq", id));
        assertThat(claimed).as("claimable once the holder rolled back").isTrue();
    }

    /**
     * The bound is the claim's own: the caller's lock_timeout is the same after a claim, and a rollback
     * to a savepoint taken before a claim that failed puts it back and leaves the transaction usable.
     */
    @Test
    void theCallersLockTimeoutIsKeptAroundTheClaim() throws Exception {
        UUID held = MessageIds.next();
        try (Connection holder = db.connect();
                Connection c = db.connect();
                Statement st = c.createStatement()) {
            holder.setAutoCommit(false);
            assertThat(processed.claim(holder, "payments-setting", held)).isTrue();
            c.setAutoCommit(false);
            assertThat(processed.claim(c, "payments-setting", MessageIds.next()))
                    .isTrue();
            assertThat(setting(c, "lock_timeout")).isEqualTo("0");
            st.execute("set local lock_timeout = '7s'");
            assertThat(processed.claim(c, "payments-setting", MessageIds.next()))
                    .isTrue();
            assertThat(setting(c, "lock_timeout")).isEqualTo("7s");
            Savepoint savepoint = c.setSavepoint();
            assertThatThrownBy(() -> bounded(() -> processed.claim(c, "payments-setting", held)))
                    .isInstanceOf(MessageIdHeldException.class);
            c.rollback(savepoint);
            assertThat(setting(c, "lock_timeout")).isEqualTo("7s");
            c.commit();
            assertThat(setting(c, "lock_timeout")).isEqualTo("0");

            // a session's bound shorter than the claim's is kept
            st.execute("set lock_timeout = '300ms'");
            c.commit();
            long start = System.nanoTime();
            assertThatThrownBy(() -> bounded(() -> processed.claim(c, "payments-setting", held)))
                    .isInstanceOf(MessageIdHeldException.class);
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofMillis(1900));
            c.rollback();
            assertThat(setting(c, "lock_timeout")).isEqualTo("300ms");
            holder.rollback();
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

    /**
     * Runs {@code claim} on another thread and waits for it far longer than the claim's bound, so that a
     * claim that waits for the holder's transaction fails the test (TimeoutException) instead of blocking it.
     *
     * @throws Throwable what the claim threw
     */
    private static <T> T bounded(Callable<T> claim) throws Throwable {
        CompletableFuture<T> future = CompletableFuture.supplyAsync(() -> {
            try {
                return claim.call();
            } catch (Exception e) {
                throw new CompletionException(e);
            }
        });
        try {
            return future.get(30, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            throw e.getCause();
        }
    }

    /** Claims on its own connection as a listener would: a claim that waited past its bound is retried. */
    private Boolean claimRetrying(Connection connection, UUID id) {
        try {
            while (true) {
                try {
                    return processed.claim(connection, "payments-race", id);
                } catch (MessageIdHeldException e) {
                    connection.rollback();
                }
            }
        } catch (SQLException e) {
            throw new CompletionException(e);
        }
    }

    private static boolean transactionAborted(Connection c) {
        try (Statement st = c.createStatement()) {
            st.execute("select 1");
            return false;
        } catch (SQLException e) {
            return "25P02".equals(e.getSQLState());
        }
    }

    private static String setting(Connection c, String name) throws SQLException {
        try (Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("select current_setting('" + name + "')")) {
            rs.next();
            return rs.getString(1);
        }
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
