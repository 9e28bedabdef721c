package dev.outbox.http.server;

import static dev.outbox.migrations.jooq.Tables.IDEMPOTENCY_KEY;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.outbox.http.MutableClock;
import dev.outbox.http.server.internal.JooqIdempotencyStore;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.jooq.DSLContext;
import org.jooq.ExecuteContext;
import org.jooq.ExecuteListener;
import org.jooq.JSONB;
import org.jooq.SQLDialect;
import org.jooq.Transaction;
import org.jooq.TransactionContext;
import org.jooq.TransactionProvider;
import org.jooq.exception.DataAccessException;
import org.jooq.impl.DSL;
import org.jooq.impl.DataSourceConnectionProvider;
import org.jooq.impl.DefaultConfiguration;
import org.jooq.impl.DefaultExecuteListenerProvider;
import org.jooq.impl.DefaultTransactionProvider;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.slf4j.LoggerFactory;

/** The framework-neutral key store against real PostgreSQL. */
@ExtendWith(RealServices.class)
class IdempotencyStoreIT {
    private static final MutableClock CLOCK = new MutableClock(Instant.parse("2026-01-01T00:00:00Z"));
    private static final SimpleMeterRegistry METRICS = new SimpleMeterRegistry();
    private static IdempotencyStore store;
    private static DSLContext dsl;

    private static final AtomicInteger PURGE_DELETES = new AtomicInteger();
    /** The same keys as {@link #store}, through a jOOQ context that counts the purge's DELETE statements. */
    private static IdempotencyStore counting;

    @BeforeAll
    static void setUp(TestDatabase db) {
        ExecuteListener countDeletes = new ExecuteListener() {
            @Override
            public void executeStart(ExecuteContext ctx) {
                if (ctx.sql() != null
                        && ctx.sql().stripLeading().toLowerCase(Locale.ROOT).startsWith("delete")) {
                    PURGE_DELETES.incrementAndGet();
                }
            }
        };
        counting = IdempotencyStore.builder()
                .dsl(DSL.using(new DefaultConfiguration()
                        .set(db.newDataSource(2))
                        .set(SQLDialect.POSTGRES)
                        .set(new DefaultExecuteListenerProvider(countDeletes))))
                .clock(CLOCK)
                .purgeBatchSize(7)
                .meterRegistry(METRICS)
                .name("store-it-counting")
                .build();
        dsl = db.dsl();
        dsl.execute("create table notes (key text primary key, body text not null)");
        store = IdempotencyStore.builder()
                .dataSource(db.newDataSource(8))
                .lockTimeout(Duration.ofMillis(300))
                .retryAfter(Duration.ofSeconds(2))
                .clock(CLOCK)
                .purgeBatchSize(7)
                .meterRegistry(METRICS)
                .name("store-it")
                .build();
    }

    private static StoredResponse write(DSLContext tx, String key, String body) {
        tx.execute("insert into notes (key, body) values ({0}, {1})", DSL.val(key), DSL.val(body));
        return new StoredResponse(
                201,
                Map.of("Content-Type", List.of("text/plain"), "Location", List.of("/notes/" + key)),
                body.getBytes(StandardCharsets.UTF_8));
    }

    private static int notes(String key) {
        return dsl.fetchCount(DSL.table("notes"), DSL.field("key").eq(key));
    }

    private static int keyRows(String key) {
        return dsl.fetchCount(IDEMPOTENCY_KEY, IDEMPOTENCY_KEY.IDEM_KEY.eq(key));
    }

    private static double count(String outcome) {
        return count("store-it", outcome);
    }

    private static double count(String store, String outcome) {
        return METRICS.counter(IdempotencyStore.METRIC, "store", store, "outcome", outcome)
                .count();
    }

    /** The timer of the waits for a held key of {@code store} that ended with {@code outcome}. */
    private static Timer waits(String store, String outcome) {
        return METRICS.timer(IdempotencyStore.WAIT_METRIC, "store", store, "outcome", outcome);
    }

    /** G5: a repeat replays the stored status, headers and body without running again. */
    @Test
    void executesOnceAndReplaysTheStoredResponse() {
        String key = UUID.randomUUID().toString();
        var request = new IdempotencyRequest("user:a POST /notes", key, "fp-1");
        var first = store.execute(request, tx -> write(tx, key, "hello"));
        assertThat(first).isInstanceOf(IdempotencyOutcome.Executed.class);
        var second = store.execute(request, tx -> write(tx, key, "must not run"));
        assertThat(second).isInstanceOf(IdempotencyOutcome.Replayed.class);
        assertThat(((IdempotencyOutcome.Replayed) second).response())
                .isEqualTo(((IdempotencyOutcome.Executed) first).response());
        assertThat(notes(key)).isOne();
        double mismatches = count("mismatch");
        assertThat(store.execute(
                        new IdempotencyRequest("user:a POST /notes", key, "fp-2"), tx -> write(tx, key, "other")))
                .isInstanceOf(IdempotencyOutcome.Mismatch.class);
        assertThat(notes(key)).isOne();
        assertThat(count("mismatch")).as("the 422 counted apart").isEqualTo(mismatches + 1);
    }

    /** G5: while the first request holds the key, a duplicate gets InFlight after the lock timeout, not a second execution. */
    @Test
    void aKeyHeldByAnUncommittedTransactionIsInFlight() throws Exception {
        String key = UUID.randomUUID().toString();
        var request = new IdempotencyRequest("user:a POST /notes", key, "fp");
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CompletableFuture<IdempotencyOutcome> first = holdingTheKey(store, request, inside, release);
        try {
            assertThat(inside.await(30, TimeUnit.SECONDS)).isTrue();
            double conflicts = count("conflict");
            long waitedBefore = waits("store-it", "conflict").count();
            double waitedSecondsBefore = waits("store-it", "conflict").totalTime(TimeUnit.SECONDS);
            var second = store.execute(request, tx -> write(tx, key, "must not run"));
            assertThat(second).isEqualTo(new IdempotencyOutcome.InFlight(Duration.ofSeconds(2)));
            assertThat(count("conflict")).isEqualTo(conflicts + 1);
            assertThat(waits("store-it", "conflict").count())
                    .as("the wait that ended in 409, timed")
                    .isEqualTo(waitedBefore + 1);
            assertThat(waits("store-it", "conflict").totalTime(TimeUnit.SECONDS) - waitedSecondsBefore)
                    .as("it waited the lock timeout, 300 ms")
                    .isGreaterThanOrEqualTo(0.3);
        } finally {
            release.countDown();
        }
        assertThat(first.get(30, TimeUnit.SECONDS)).isInstanceOf(IdempotencyOutcome.Executed.class);
        assertThat(store.execute(request, tx -> write(tx, key, "must not run")))
                .isInstanceOf(IdempotencyOutcome.Replayed.class);
        assertThat(notes(key)).isOne();
    }

    /**
     * Runs {@code request} on another thread through {@code store}: its call writes a note, counts
     * {@code inside} down and holds the key's transaction open until {@code release}.
     */
    private CompletableFuture<IdempotencyOutcome> holdingTheKey(
            IdempotencyStore store, IdempotencyRequest request, CountDownLatch inside, CountDownLatch release) {
        return CompletableFuture.supplyAsync(() -> store.execute(request, tx -> {
            StoredResponse r = write(tx, request.key(), "slow");
            inside.countDown();
            try {
                assertThat(release.await(60, TimeUnit.SECONDS)).isTrue();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
            return r;
        }));
    }

    /**
     * A duplicate that waits for a key held by a request in flight, and gets it back within the lock
     * timeout, has its wait timed with outcome {@code released}: whether the first request committed
     * (the duplicate is replayed) or failed (the duplicate runs). Nothing is timed for a request that
     * found its key free, and no {@code conflict} is counted. Before, no wait was timed at all.
     */
    @Test
    void aWaitForAHeldKeyThatIsReleasedIsTimed(TestDatabase db) throws Exception {
        IdempotencyStore patient = IdempotencyStore.builder()
                .dataSource(db.newDataSource(4))
                .lockTimeout(Duration.ofSeconds(20))
                .meterRegistry(METRICS)
                .name("store-it-wait")
                .build();
        for (boolean firstFails : List.of(false, true)) {
            String key = UUID.randomUUID().toString();
            var request = new IdempotencyRequest("user:a POST /notes", key, "fp");
            CountDownLatch inside = new CountDownLatch(1);
            CountDownLatch release = new CountDownLatch(1);
            CompletableFuture<IdempotencyOutcome> first = CompletableFuture.supplyAsync(() -> {
                try {
                    return patient.execute(request, tx -> {
                        StoredResponse r = write(tx, key, "slow");
                        inside.countDown();
                        assertThat(release.await(60, TimeUnit.SECONDS)).isTrue();
                        if (firstFails) {
                            throw new IOException("downstream broke");
                        }
                        return r;
                    });
                } catch (Exception e) {
                    throw new CompletionException(e);
                }
            });
            assertThat(inside.await(30, TimeUnit.SECONDS)).isTrue();
            long released = waits("store-it-wait", "released").count();
            double conflicts = count("store-it-wait", "conflict");
            CompletableFuture<IdempotencyOutcome> second = CompletableFuture.supplyAsync(
                    () -> patient.execute(request, tx -> write(tx, key + "-second", "second")));
            Thread.sleep(500); // the duplicate finds the key held and waits
            assertThat(second).as("still waiting for the key").isNotDone();
            release.countDown();
            assertThat(second.get(30, TimeUnit.SECONDS))
                    .as("first fails: %s", firstFails)
                    .isInstanceOf(firstFails ? IdempotencyOutcome.Executed.class : IdempotencyOutcome.Replayed.class);
            if (firstFails) {
                assertThat(first).failsWithin(30, TimeUnit.SECONDS);
            } else {
                assertThat(first).succeedsWithin(30, TimeUnit.SECONDS).isInstanceOf(IdempotencyOutcome.Executed.class);
            }
            assertThat(waits("store-it-wait", "released").count())
                    .as("first fails: %s", firstFails)
                    .isEqualTo(released + 1);
            assertThat(count("store-it-wait", "conflict")).isEqualTo(conflicts);
        }
        assertThat(waits("store-it-wait", "released").totalTime(TimeUnit.MILLISECONDS))
                .as("each waited about 500 ms")
                .isGreaterThanOrEqualTo(2 * 400.0);
        assertThat(waits("store-it-wait", "conflict").count()).isZero();
        long timed = waits("store-it-wait", "released").count();
        patient.execute(
                new IdempotencyRequest("user:a POST /notes", UUID.randomUUID().toString(), "fp"),
                tx -> StoredResponse.of(204, null, new byte[0]));
        assertThat(waits("store-it-wait", "released").count())
                .as("a request whose key was free did not wait")
                .isEqualTo(timed);
    }

    /**
     * A request that PostgreSQL ends for holding its key longer than holdTimeout (1 s), with a
     * statement that runs longer (statement_timeout) or by sitting idle in its transaction
     * (idle_in_transaction_session_timeout), is counted {@code hold_timeout} as well as {@code
     * failed}, and logged at WARN naming the key's scope, the timeout and what to change; its key is
     * free. A statement the call cancelled with a shorter statement timeout of its own is a failure
     * only. Before, such a kill was an ordinary {@code failed}, logged by no one but the container.
     */
    @Test
    void aRequestEndedForHoldingItsKeyTooLongIsCountedAndLogged(TestDatabase db) throws Exception {
        IdempotencyStore bounded = IdempotencyStore.builder()
                .dataSource(db.newDataSource(2))
                .holdTimeout(Duration.ofSeconds(1))
                .meterRegistry(METRICS)
                .name("store-it-hold")
                .build();
        ListAppender<ILoggingEvent> warnings = new ListAppender<>();
        Logger logger = (Logger) LoggerFactory.getLogger(JooqIdempotencyStore.class);
        warnings.start();
        logger.addAppender(warnings);
        try {
            String slow = UUID.randomUUID().toString();
            assertThatThrownBy(() -> bounded.execute(new IdempotencyRequest("user:a POST /slow", slow, "f"), tx -> {
                        write(tx, slow, "half done");
                        tx.execute("select pg_sleep(3)");
                        return StoredResponse.of(201, null, new byte[0]);
                    }))
                    .isInstanceOf(DataAccessException.class);
            assertThat(count("store-it-hold", "hold_timeout")).isEqualTo(1);
            assertThat(count("store-it-hold", "failed")).isEqualTo(1);
            assertThat(keyRows(slow)).isZero();
            assertThat(notes(slow)).isZero();

            String idle = UUID.randomUUID().toString();
            assertThatThrownBy(() -> bounded.execute(new IdempotencyRequest("user:a POST /idle", idle, "f"), tx -> {
                        StoredResponse r = write(tx, idle, "half done");
                        Thread.sleep(2_500); // on another system without a timeout, say
                        return r;
                    }))
                    .isInstanceOf(DataAccessException.class);
            assertThat(count("store-it-hold", "hold_timeout")).isEqualTo(2);
            assertThat(count("store-it-hold", "failed")).isEqualTo(2);
            assertThat(keyRows(idle)).isZero();
            assertThat(notes(idle)).isZero();
            assertThat(bounded.execute(
                            new IdempotencyRequest("user:a POST /idle", idle, "f"), tx -> write(tx, idle, "done")))
                    .as("the key is free for the retry")
                    .isInstanceOf(IdempotencyOutcome.Executed.class);

            String cancelled = UUID.randomUUID().toString();
            assertThatThrownBy(() ->
                            bounded.execute(new IdempotencyRequest("user:a POST /cancelled", cancelled, "f"), tx -> {
                                tx.execute("set local statement_timeout = '50ms'");
                                tx.execute("select pg_sleep(1)");
                                return StoredResponse.of(201, null, new byte[0]);
                            }))
                    .isInstanceOf(DataAccessException.class);
            assertThat(count("store-it-hold", "failed")).isEqualTo(3);
            assertThat(count("store-it-hold", "hold_timeout"))
                    .as("cancelled by the call's own shorter timeout, not by holdTimeout")
                    .isEqualTo(2);
        } finally {
            logger.detachAppender(warnings);
        }
        List<String> warned = warnings.list.stream()
                .filter(e -> e.getLevel() == Level.WARN)
                .map(ILoggingEvent::getFormattedMessage)
                .toList();
        assertThat(warned).hasSize(2);
        assertThat(warned.get(0))
                .startsWith("[idempotency-store store-it-hold] PostgreSQL ended the transaction holding key ")
                .contains("in scope user:a POST /slow (SQLState 57014, seen ")
                .contains(
                        " ms after the key was claimed): one of its statements ran longer than statement_timeout (1000 ms),"
                                + " which the store sets to holdTimeout (1s)")
                .contains("the key is free")
                .contains("raise holdTimeout above its slowest run")
                .contains("outbox.idempotency.hold-timeout")
                .contains("give that call a timeout shorter than holdTimeout");
        assertThat(warned.get(1))
                .contains("in scope user:a POST /idle (SQLState 25P03, seen ")
                .contains("): it sat idle in its transaction")
                .contains("longer than idle_in_transaction_session_timeout (1000 ms), which the store sets to"
                        + " holdTimeout (1s)");
    }

    /**
     * G5 with a DSLContext that translates jOOQ's exceptions into its own, as Spring Boot's jOOQ
     * auto-configuration does (Spring's {@code CannotAcquireLockException}, the driver's SQLException
     * its cause): a duplicate of a request in flight waits and gets InFlight, as with jOOQ's own
     * exceptions. Before, the lock timeout was recognised only in jOOQ's DataAccessException, and the
     * duplicate failed with the translated exception (500).
     */
    @Test
    void aKeyHeldIsInFlightAlsoWhenTheDslContextTranslatesExceptions(TestDatabase db) throws Exception {
        ExecuteListener translating = new ExecuteListener() {
            @Override
            public void exception(ExecuteContext ctx) {
                SQLException e = ctx.sqlException();
                if (e != null) {
                    ctx.exception(new TranslatedException("jOOQ; SQL [" + ctx.sql() + "]", e));
                }
            }
        };
        IdempotencyStore translated = IdempotencyStore.builder()
                .dsl(DSL.using(new DefaultConfiguration()
                        .set(db.newDataSource(4))
                        .set(SQLDialect.POSTGRES)
                        .set(new DefaultExecuteListenerProvider(translating))))
                .lockTimeout(Duration.ofMillis(300))
                .retryAfter(Duration.ofSeconds(2))
                .meterRegistry(METRICS)
                .name("store-it-translated")
                .build();
        String key = UUID.randomUUID().toString();
        var request = new IdempotencyRequest("user:a POST /notes", key, "fp");
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CompletableFuture<IdempotencyOutcome> first = holdingTheKey(translated, request, inside, release);
        try {
            assertThat(inside.await(30, TimeUnit.SECONDS)).isTrue();
            assertThat(translated.execute(request, tx -> write(tx, key, "must not run")))
                    .isEqualTo(new IdempotencyOutcome.InFlight(Duration.ofSeconds(2)));
        } finally {
            release.countDown();
        }
        assertThat(first.get(30, TimeUnit.SECONDS)).isInstanceOf(IdempotencyOutcome.Executed.class);
        assertThat(translated.execute(request, tx -> write(tx, key, "must not run")))
                .isInstanceOf(IdempotencyOutcome.Replayed.class);
        assertThat(notes(key)).isOne();
    }

    /** An exception of the application's own, as an ExecuteListener may put in place of jOOQ's. */
    static final class TranslatedException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        TranslatedException(String message, SQLException cause) {
            super(message, cause);
        }
    }

    /**
     * G5: a DSLContext whose transactions leave the connection in autocommit mode (its
     * TransactionProvider begins none on it; under Spring, a transaction manager of another
     * DataSource) is refused before the key is inserted, naming the cause and the fix; the call does
     * not run and nothing is stored. Before, the key committed on its own without a response, the
     * request failed, and every retry with the key got 409 until it expired.
     */
    @Test
    void aTransactionThatLeavesAutocommitOnIsRefusedBeforeTheKeyIsInserted(TestDatabase db) {
        TransactionProvider none = new TransactionProvider() {
            @Override
            public void begin(TransactionContext ctx) {
                ctx.transaction(new Transaction() {});
            }

            @Override
            public void commit(TransactionContext ctx) {}

            @Override
            public void rollback(TransactionContext ctx) {}
        };
        IdempotencyStore unmanaged = IdempotencyStore.builder()
                .dsl(DSL.using(new DefaultConfiguration()
                        .set(new DataSourceConnectionProvider(db.newDataSource(2)))
                        .set(none)
                        .set(SQLDialect.POSTGRES)))
                .name("store-it-autocommit")
                .build();
        String key = UUID.randomUUID().toString();
        AtomicBoolean ran = new AtomicBoolean();
        assertThatThrownBy(() -> unmanaged.execute(new IdempotencyRequest("s", key, "f"), tx -> {
                    ran.set(true);
                    return write(tx, key, "outside any transaction");
                }))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageStartingWith("[idempotency-store store-it-autocommit] the key's statements are not in a"
                        + " transaction: the connection the store's DSLContext gives inside its transaction is in"
                        + " autocommit mode")
                .hasMessageContaining("the transaction manager in use does not manage it")
                .hasMessageContaining("Build the store on a DSLContext whose transactions are this DataSource's");
        assertThat(ran).isFalse();
        assertThat(keyRows(key)).isZero();
        assertThat(notes(key)).isZero();
    }

    /** The bounded lock_timeout covers the key statements only: the business call runs with the session's setting. */
    @Test
    void theBusinessCallKeepsTheSessionLockTimeout() {
        String key = UUID.randomUUID().toString();
        String[] seen = new String[1];
        store.execute(new IdempotencyRequest("s", key, "f"), tx -> {
            seen[0] = tx.fetchValue(DSL.field("current_setting('lock_timeout')", String.class));
            return StoredResponse.of(204, null, new byte[0]);
        });
        assertThat(seen[0])
                .isEqualTo(dsl.fetchValue(DSL.field("current_setting('lock_timeout')", String.class)))
                .isNotEqualTo("300ms");
    }

    /** G5 / no phantom: a call that throws leaves no key and no write, and a retry with the key runs normally. */
    @Test
    void aThrowingCallRollsEverythingBack() {
        String key = UUID.randomUUID().toString();
        var request = new IdempotencyRequest("s", key, "f");
        double failed = count("failed");
        assertThatThrownBy(() -> store.execute(request, tx -> {
                    write(tx, key, "half done");
                    throw new IOException("downstream broke");
                }))
                .isInstanceOf(IOException.class)
                .hasMessage("downstream broke");
        assertThat(count("failed")).isEqualTo(failed + 1);
        assertThat(notes(key)).isZero();
        assertThat(keyRows(key)).isZero();
        assertThat(store.execute(request, tx -> write(tx, key, "done")))
                .isInstanceOf(IdempotencyOutcome.Executed.class);
        assertThat(notes(key)).isOne();
    }

    /** A 5xx response is not stored: the transaction rolls back and the key can be used again. */
    @Test
    void aServerErrorResponseIsNotStored() {
        String key = UUID.randomUUID().toString();
        var request = new IdempotencyRequest("s", key, "f");
        var outcome = store.execute(request, tx -> {
            write(tx, key, "half done");
            return StoredResponse.of(503, "text/plain", "later".getBytes(StandardCharsets.UTF_8));
        });
        assertThat(outcome).isInstanceOf(IdempotencyOutcome.NotStored.class);
        assertThat(((IdempotencyOutcome.NotStored) outcome).response().status()).isEqualTo(503);
        assertThat(notes(key)).isZero();
        assertThat(keyRows(key)).isZero();
        assertThat(store.execute(request, tx -> write(tx, key, "done")))
                .isInstanceOf(IdempotencyOutcome.Executed.class);
    }

    /**
     * G5 / G2: the response policy decides per status. Standard: a 404 is stored without the call's
     * writes and replayed; a 408 is not stored and its writes are gone. A custom policy that commits
     * 303 keeps the writes of a POST-redirect-GET answer.
     */
    @Test
    void theResponsePolicyDecidesWhatIsCommittedAndStored() {
        String refused = UUID.randomUUID().toString();
        var outcome = store.execute(new IdempotencyRequest("s", refused, "f"), tx -> {
            write(tx, refused, "half done");
            return StoredResponse.of(404, "text/plain", "no such customer".getBytes(StandardCharsets.UTF_8));
        });
        assertThat(outcome)
                .isEqualTo(new IdempotencyOutcome.Executed(
                        StoredResponse.of(404, "text/plain", "no such customer".getBytes(StandardCharsets.UTF_8)),
                        false));
        assertThat(notes(refused)).isZero();
        assertThat(keyRows(refused)).isOne();
        assertThat(store.execute(new IdempotencyRequest("s", refused, "f"), tx -> write(tx, refused, "must not run")))
                .isInstanceOf(IdempotencyOutcome.Replayed.class);
        assertThat(notes(refused)).isZero();

        String timedOut = UUID.randomUUID().toString();
        assertThat(store.execute(new IdempotencyRequest("s", timedOut, "f"), tx -> {
                    write(tx, timedOut, "half done");
                    return StoredResponse.of(408, null, new byte[0]);
                }))
                .isInstanceOf(IdempotencyOutcome.NotStored.class);
        assertThat(notes(timedOut)).isZero();
        assertThat(keyRows(timedOut)).isZero();

        String redirected = UUID.randomUUID().toString();
        ResponsePolicy commit303 = status -> status == 303
                ? ResponsePolicy.Action.COMMIT
                : ResponsePolicy.standard().action(status);
        assertThat(store.execute(new IdempotencyRequest("s", redirected, "f"), commit303, tx -> {
                    write(tx, redirected, "created");
                    return new StoredResponse(303, Map.of("Location", List.of("/notes/" + redirected)), new byte[0]);
                }))
                .isInstanceOfSatisfying(
                        IdempotencyOutcome.Executed.class,
                        e -> assertThat(e.writesCommitted()).isTrue());
        assertThat(notes(redirected)).isOne();
    }

    /**
     * G5 with writes kept in memory until a flush (JPA): the onRollBackAndStore action runs only for a
     * stored refusal, in the request's transaction and before its writes are rolled back (a row it
     * writes there is rolled back with them); when it throws, nothing of the request is stored.
     */
    @Test
    void theRollBackAndStoreActionRunsBeforeTheRollbackAndOnlyThen(TestDatabase db) {
        AtomicReference<DSLContext> transaction = new AtomicReference<>();
        AtomicInteger runs = new AtomicInteger();
        AtomicBoolean fail = new AtomicBoolean();
        String refused = UUID.randomUUID().toString();
        IdempotencyStore withAction = IdempotencyStore.builder()
                .dataSource(db.newDataSource(2))
                .meterRegistry(METRICS)
                .name("store-it-action")
                .onRollBackAndStore(() -> {
                    runs.incrementAndGet();
                    if (fail.get()) {
                        throw new IllegalStateException("flush refused");
                    }
                    write(transaction.get(), refused + "-by-action", "written by the action");
                })
                .build();
        assertThat(withAction.execute(new IdempotencyRequest("s", refused, "f"), tx -> {
                    transaction.set(tx);
                    write(tx, refused, "half done");
                    return StoredResponse.of(422, null, new byte[0]);
                }))
                .isInstanceOf(IdempotencyOutcome.Executed.class);
        assertThat(runs).hasValue(1);
        assertThat(notes(refused)).isZero();
        assertThat(notes(refused + "-by-action"))
                .as("the action ran before the rollback to the savepoint, in the request's transaction")
                .isZero();
        assertThat(keyRows(refused)).isOne();

        String committed = UUID.randomUUID().toString();
        withAction.execute(new IdempotencyRequest("s", committed, "f"), tx -> write(tx, committed, "done"));
        String released = UUID.randomUUID().toString();
        withAction.execute(new IdempotencyRequest("s", released, "f"), tx -> StoredResponse.of(503, null, new byte[0]));
        assertThat(runs).as("not run for COMMIT or RELEASE").hasValue(1);

        fail.set(true);
        String failed = UUID.randomUUID().toString();
        assertThatThrownBy(() -> withAction.execute(new IdempotencyRequest("s", failed, "f"), tx -> {
                    write(tx, failed, "half done");
                    return StoredResponse.of(422, null, new byte[0]);
                }))
                .hasMessage("flush refused");
        assertThat(keyRows(failed)).isZero();
        assertThat(notes(failed)).isZero();
    }

    /** Keys are scoped: the same key in another scope is another key. */
    @Test
    void scopesAreIsolated() {
        String key = UUID.randomUUID().toString();
        var a = store.execute(new IdempotencyRequest("user:a POST /notes", key, "f"), tx -> write(tx, key, "a"));
        var b = store.execute(new IdempotencyRequest("user:b POST /notes", key, "f"), tx -> write(tx, key + "-b", "b"));
        assertThat(a).isInstanceOf(IdempotencyOutcome.Executed.class);
        assertThat(b).isInstanceOf(IdempotencyOutcome.Executed.class);
        var replayB =
                store.execute(new IdempotencyRequest("user:b POST /notes", key, "f"), tx -> write(tx, key + "-c", "c"));
        assertThat(new String(((IdempotencyOutcome.Replayed) replayB).response().body(), StandardCharsets.UTF_8))
                .isEqualTo("b");
    }

    /**
     * Services sharing one {@code idempotency_key} table keep their keys apart with an application
     * each: the same scope, key and fingerprint run once in each application, and each replays its own
     * response, also through another store of the same application. A store without an application
     * stores the scope as given, as earlier versions did, so an upgrade keeps replaying the keys stored
     * before it. Before, there was no application, and the second service replayed the first one's
     * response.
     */
    @Test
    void storesOfDifferentApplicationsOnOneTableKeepTheirKeysApart(TestDatabase db) {
        IdempotencyStore orders = IdempotencyStore.builder()
                .dataSource(db.newDataSource(2))
                .application("order-service")
                .meterRegistry(METRICS)
                .name("store-it-orders")
                .build();
        IdempotencyStore billing = IdempotencyStore.builder()
                .dataSource(db.newDataSource(2))
                .application("billing-service")
                .meterRegistry(METRICS)
                .name("store-it-billing")
                .build();
        IdempotencyStore ordersElsewhere = IdempotencyStore.builder()
                .dataSource(db.newDataSource(2))
                .application("order-service")
                .meterRegistry(METRICS)
                .name("store-it-orders-2")
                .build();
        String key = UUID.randomUUID().toString();
        var request = new IdempotencyRequest("user:a POST /notes", key, "f");
        assertThat(orders.execute(request, tx -> write(tx, key + "-orders", "orders")))
                .isInstanceOf(IdempotencyOutcome.Executed.class);
        assertThat(billing.execute(request, tx -> write(tx, key + "-billing", "billing")))
                .as("another application's key is another key")
                .isInstanceOf(IdempotencyOutcome.Executed.class);
        assertThat(store.execute(request, tx -> write(tx, key + "-none", "none")))
                .as("and so is the key of a store without an application")
                .isInstanceOf(IdempotencyOutcome.Executed.class);
        assertThat(ordersElsewhere.execute(request, tx -> write(tx, key + "-again", "must not run")))
                .as("the same application, through another store")
                .isInstanceOfSatisfying(
                        IdempotencyOutcome.Replayed.class,
                        r -> assertThat(new String(r.response().body(), StandardCharsets.UTF_8))
                                .isEqualTo("orders"));
        assertThat(billing.execute(request, tx -> write(tx, key + "-again", "must not run")))
                .isInstanceOfSatisfying(
                        IdempotencyOutcome.Replayed.class,
                        r -> assertThat(new String(r.response().body(), StandardCharsets.UTF_8))
                                .isEqualTo("billing"));
        assertThat(store.execute(request, tx -> write(tx, key + "-again", "must not run")))
                .isInstanceOfSatisfying(
                        IdempotencyOutcome.Replayed.class,
                        r -> assertThat(new String(r.response().body(), StandardCharsets.UTF_8))
                                .isEqualTo("none"));
        assertThat(notes(key + "-again")).isZero();
        assertThat(dsl.select(IDEMPOTENCY_KEY.SCOPE)
                        .from(IDEMPOTENCY_KEY)
                        .where(IDEMPOTENCY_KEY.IDEM_KEY.eq(key))
                        .fetch(IDEMPOTENCY_KEY.SCOPE))
                .containsExactlyInAnyOrder(
                        "app:order-service user:a POST /notes",
                        "app:billing-service user:a POST /notes",
                        "user:a POST /notes");
    }

    /**
     * Expired keys count as absent: a key reused after its TTL runs anew, and purgeExpired removes
     * only expired keys, in batches of purgeBatchSize (counted: one DELETE per batch).
     */
    @Test
    void expiredKeysRunAnewAndArePurgedInBatches() {
        String reused = UUID.randomUUID().toString();
        var request = new IdempotencyRequest("s", reused, "f");
        store.execute(request, tx -> write(tx, reused, "first"));
        for (int i = 0; i < 20; i++) {
            String k = "old-" + i + "-" + UUID.randomUUID();
            store.execute(new IdempotencyRequest("s", k, "f"), tx -> StoredResponse.of(200, null, new byte[0]));
        }
        CLOCK.advance(store.ttl().plusSeconds(1));
        String fresh = UUID.randomUUID().toString();
        store.execute(new IdempotencyRequest("s", fresh, "f"), tx -> StoredResponse.of(200, null, new byte[0]));

        var again = store.execute(request, tx -> write(tx, reused + "-2", "second"));
        assertThat(again).isInstanceOf(IdempotencyOutcome.Executed.class);
        assertThat(keyRows(reused)).isOne();

        long expiredBefore = dsl.fetchCount(
                IDEMPOTENCY_KEY,
                IDEMPOTENCY_KEY.EXPIRES_AT.le(OffsetDateTime.ofInstant(CLOCK.instant(), ZoneOffset.UTC)));
        assertThat(expiredBefore).isGreaterThanOrEqualTo(20);
        PURGE_DELETES.set(0);
        assertThat(counting.purgeExpired()).isEqualTo(expiredBefore);
        // batches of 7: as many full batches as fit, then one that deletes fewer than 7 (maybe none)
        assertThat(PURGE_DELETES.get()).isEqualTo(expiredBefore / 7 + 1);
        assertThat(dsl.fetchCount(IDEMPOTENCY_KEY, IDEMPOTENCY_KEY.IDEM_KEY.like("old-%")))
                .isZero();
        assertThat(keyRows(fresh)).isOne();
        assertThat(keyRows(reused)).isOne();
        assertThat(counting.purgeExpired()).isZero();
    }

    /**
     * G5 for a request that runs longer than the TTL: the key is remembered for the TTL after the
     * request completed, not after it began, so a repeat right after it is replayed rather than run
     * again (before, the stored key had expired already and the repeat ran anew).
     */
    @Test
    void theTtlCountsFromTheRequestsCompletion() {
        String key = UUID.randomUUID().toString();
        var request = new IdempotencyRequest("s", key, "f");
        var first = store.execute(request, tx -> {
            CLOCK.advance(store.ttl().plusSeconds(1));
            return write(tx, key, "slow");
        });
        assertThat(first).isInstanceOf(IdempotencyOutcome.Executed.class);
        assertThat(store.execute(request, tx -> write(tx, key + "-again", "must not run")))
                .isInstanceOf(IdempotencyOutcome.Replayed.class);
        assertThat(notes(key + "-again")).isZero();
    }

    /**
     * G5 when the request's transaction cannot commit after a refusal, as when a participant marked it
     * rollback-only (a Spring {@code @Transactional} method that threw before an exception handler
     * answered 4xx): the refusal is stored in a transaction of its own and replayed, none of the
     * call's writes is kept, and an expired row of the key does not stop it. A success whose commit
     * fails the same way is not stored, and its writes are gone; nor is a refusal whose commit fails
     * with a serialization failure, whose reads may be stale. A refusal whose commit went through
     * unacknowledged stands; one of the same status and another body that another request stored
     * meanwhile is not taken for this one's. Before, the refusal failed with the commit, and every retry with the key
     * ran the call again and failed again.
     */
    @Test
    void aRefusalWhoseTransactionCannotCommitIsStoredInATransactionOfItsOwn(TestDatabase db) {
        AtomicBoolean doomed = new AtomicBoolean();
        AtomicReference<String> failsWith = new AtomicReference<>();
        AtomicBoolean ackLost = new AtomicBoolean();
        // runs between the doomed commit's rollback and the refusal's own transaction: another request's answer
        AtomicReference<Runnable> racer = new AtomicReference<>();
        var connections = new DataSourceConnectionProvider(db.newDataSource(2));
        var transactions = new DefaultTransactionProvider(connections);
        TransactionProvider rollbackOnly = new TransactionProvider() {
            @Override
            public void begin(TransactionContext ctx) {
                transactions.begin(ctx);
            }

            @Override
            public void commit(TransactionContext ctx) {
                if (doomed.getAndSet(false)) {
                    ctx.configuration().data("rolled back", true);
                    transactions.rollback(ctx);
                    Runnable other = racer.getAndSet(null);
                    if (other != null) {
                        other.run();
                    }
                    String state = failsWith.getAndSet(null);
                    throw state == null
                            ? new DataAccessException(
                                    "Transaction rolled back because it has been marked as rollback-only")
                            : new DataAccessException("commit failed", new SQLException("commit failed", state));
                }
                transactions.commit(ctx);
                if (ackLost.getAndSet(false)) {
                    ctx.configuration().data("rolled back", true);
                    throw new DataAccessException("I/O error", new SQLException("connection reset", "08006"));
                }
            }

            @Override
            public void rollback(TransactionContext ctx) {
                if (ctx.configuration().data("rolled back") == null) {
                    transactions.rollback(ctx);
                }
            }
        };
        IdempotencyStore dooming = IdempotencyStore.builder()
                .dsl(DSL.using(new DefaultConfiguration()
                        .set(connections)
                        .set(rollbackOnly)
                        .set(SQLDialect.POSTGRES)))
                .clock(CLOCK)
                .name("store-it-rollback-only")
                .build();
        StoredResponse refusal =
                StoredResponse.of(404, "text/plain", "no such customer".getBytes(StandardCharsets.UTF_8));

        String refused = UUID.randomUUID().toString();
        var request = new IdempotencyRequest("s", refused, "f");
        assertThat(dooming.execute(request, tx -> {
                    write(tx, refused, "half done");
                    doomed.set(true);
                    return refusal;
                }))
                .isEqualTo(new IdempotencyOutcome.Executed(refusal, false));
        assertThat(notes(refused)).isZero();
        assertThat(dooming.execute(request, tx -> write(tx, refused, "must not run")))
                .isEqualTo(new IdempotencyOutcome.Replayed(refusal));
        assertThat(notes(refused)).isZero();

        CLOCK.advance(dooming.ttl().plusSeconds(1));
        StoredResponse later =
                StoredResponse.of(404, "text/plain", "still no such customer".getBytes(StandardCharsets.UTF_8));
        assertThat(dooming.execute(request, tx -> {
                    doomed.set(true);
                    return later;
                }))
                .isEqualTo(new IdempotencyOutcome.Executed(later, false));
        assertThat(dooming.execute(request, tx -> write(tx, refused, "must not run")))
                .isEqualTo(new IdempotencyOutcome.Replayed(later));

        // another request with the key and body stored a refusal of the same status but another body between the
        // failed commit and the refusal's own transaction: this one is answered without being stored, and replays
        // give the stored one. Before, it took that row for its own and reported itself executed and stored
        String raced = UUID.randomUUID().toString();
        StoredResponse theirs = StoredResponse.of(
                404, "text/plain", "no such customer, said the other".getBytes(StandardCharsets.UTF_8));
        racer.set(() -> dsl.insertInto(IDEMPOTENCY_KEY)
                .set(IDEMPOTENCY_KEY.SCOPE, "s")
                .set(IDEMPOTENCY_KEY.IDEM_KEY, raced)
                .set(IDEMPOTENCY_KEY.FINGERPRINT, "f")
                .set(IDEMPOTENCY_KEY.EXPIRES_AT, OffsetDateTime.now(CLOCK).plus(dooming.ttl()))
                .set(IDEMPOTENCY_KEY.RESPONSE_STATUS, 404)
                .set(IDEMPOTENCY_KEY.RESPONSE_HEADERS, JSONB.valueOf("{\"Content-Type\": [\"text/plain\"]}"))
                .set(IDEMPOTENCY_KEY.RESPONSE_BODY, theirs.body())
                .execute());
        assertThat(dooming.execute(new IdempotencyRequest("s", raced, "f"), tx -> {
                    doomed.set(true);
                    return refusal;
                }))
                .isEqualTo(new IdempotencyOutcome.NotStored(refusal));
        assertThat(dooming.execute(new IdempotencyRequest("s", raced, "f"), tx -> write(tx, raced, "must not run")))
                .isInstanceOfSatisfying(
                        IdempotencyOutcome.Replayed.class,
                        r -> assertThat(r.response().body()).isEqualTo(theirs.body()));

        // a serialization failure at commit: the reads the refusal rests on may be stale, so it is not
        // stored and a retry runs anew
        String stale = UUID.randomUUID().toString();
        assertThatThrownBy(() -> dooming.execute(new IdempotencyRequest("s", stale, "f"), tx -> {
                    doomed.set(true);
                    failsWith.set("40001");
                    return refusal;
                }))
                .hasRootCauseMessage("commit failed");
        assertThat(keyRows(stale)).isZero();

        // a commit that went through but whose acknowledgement was lost: the refusal it stored stands
        String unacknowledged = UUID.randomUUID().toString();
        assertThat(dooming.execute(new IdempotencyRequest("s", unacknowledged, "f"), tx -> {
                    ackLost.set(true);
                    return refusal;
                }))
                .isEqualTo(new IdempotencyOutcome.Executed(refusal, false));
        assertThat(keyRows(unacknowledged)).isOne();

        String succeeded = UUID.randomUUID().toString();
        assertThatThrownBy(() -> dooming.execute(new IdempotencyRequest("s", succeeded, "f"), tx -> {
                    StoredResponse created = write(tx, succeeded, "created");
                    doomed.set(true);
                    return created;
                }))
                .hasMessageContaining("rollback-only");
        assertThat(notes(succeeded)).isZero();
        assertThat(keyRows(succeeded)).isZero();
    }

    /**
     * G5 with refusalsInTransactionOfTheirOwn: a stored refusal rolls the request's transaction back,
     * so that nothing its transaction manager would run at commit runs, and stores the key with the
     * refusal in a transaction of its own, replayed after; none of the call's writes is kept. A
     * success commits in the request's transaction, as without it.
     */
    @Test
    void aRefusalStoredApartRollsTheRequestsTransactionBack(TestDatabase db) {
        List<String> ends = new CopyOnWriteArrayList<>();
        var connections = new DataSourceConnectionProvider(db.newDataSource(2));
        var transactions = new DefaultTransactionProvider(connections);
        TransactionProvider recording = new TransactionProvider() {
            @Override
            public void begin(TransactionContext ctx) {
                transactions.begin(ctx);
            }

            @Override
            public void commit(TransactionContext ctx) {
                transactions.commit(ctx);
                ends.add("commit");
            }

            @Override
            public void rollback(TransactionContext ctx) {
                transactions.rollback(ctx);
                ends.add("rollback");
            }
        };
        IdempotencyStore apart = IdempotencyStore.builder()
                .dsl(DSL.using(new DefaultConfiguration()
                        .set(connections)
                        .set(recording)
                        .set(SQLDialect.POSTGRES)))
                .refusalsInTransactionOfTheirOwn(true)
                .name("store-it-apart")
                .build();
        StoredResponse refusal =
                StoredResponse.of(422, "text/plain", "no such carrier".getBytes(StandardCharsets.UTF_8));
        String refused = UUID.randomUUID().toString();
        assertThat(apart.execute(new IdempotencyRequest("s", refused, "f"), tx -> {
                    write(tx, refused, "half done");
                    return refusal;
                }))
                .isEqualTo(new IdempotencyOutcome.Executed(refusal, false));
        assertThat(ends).as("the request's transaction, then the refusal's own").containsExactly("rollback", "commit");
        assertThat(notes(refused)).isZero();
        assertThat(keyRows(refused)).isOne();
        assertThat(apart.execute(new IdempotencyRequest("s", refused, "f"), tx -> write(tx, refused, "must not run")))
                .isEqualTo(new IdempotencyOutcome.Replayed(refusal));
        assertThat(notes(refused)).isZero();

        ends.clear();
        String created = UUID.randomUUID().toString();
        assertThat(apart.execute(new IdempotencyRequest("s", created, "f"), tx -> write(tx, created, "done")))
                .isInstanceOfSatisfying(
                        IdempotencyOutcome.Executed.class,
                        e -> assertThat(e.writesCommitted()).isTrue());
        assertThat(ends).containsExactly("commit");
        assertThat(notes(created)).isOne();
    }

    /** Replays survive the trip through jsonb: several values per header, any order of names. */
    @Test
    void storesSelectedHeadersWithSeveralValues() {
        String key = UUID.randomUUID().toString();
        var request = new IdempotencyRequest("s", key, "f");
        StoredResponse response = new StoredResponse(
                200,
                Map.of("Link", List.of("</a>; rel=\"next\"", "</b>; rel=\"prev\""), "ETag", List.of("\"v1\"")),
                new byte[] {1, 2, 3});
        store.execute(request, tx -> response);
        await().atMost(Duration.ofSeconds(10))
                .untilAsserted(() -> assertThat(
                                ((IdempotencyOutcome.Replayed) store.execute(request, tx -> response)).response())
                        .isEqualTo(response));
    }
}
