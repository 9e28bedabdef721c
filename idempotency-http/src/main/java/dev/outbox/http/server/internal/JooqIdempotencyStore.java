package dev.outbox.http.server.internal;

import static dev.outbox.migrations.jooq.Tables.IDEMPOTENCY_KEY;

import dev.outbox.core.internal.Durations;
import dev.outbox.core.internal.Json;
import dev.outbox.core.internal.SqlStates;
import dev.outbox.http.server.BusinessCall;
import dev.outbox.http.server.IdempotencyOutcome;
import dev.outbox.http.server.IdempotencyRequest;
import dev.outbox.http.server.IdempotencyStore;
import dev.outbox.http.server.ResponsePolicy;
import dev.outbox.http.server.StoredResponse;
import dev.outbox.migrations.OutboxMigrations;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.sql.Connection;
import java.time.Clock;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jooq.Configuration;
import org.jooq.DSLContext;
import org.jooq.JSONB;
import org.jooq.Record5;
import org.jooq.conf.Settings;
import org.jooq.conf.SettingsTools;
import org.jooq.impl.DSL;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** {@link IdempotencyStore} on jOOQ and PostgreSQL. */
public final class JooqIdempotencyStore implements IdempotencyStore {
    private static final Logger LOG = LoggerFactory.getLogger(JooqIdempotencyStore.class);
    /** The stored scope of a store with an application: {@code app:<application> <scope>}. */
    private static final String APPLICATION_SCOPE = "app:";
    /** Rounds of insert / find / delete-expired before giving up with 409; each round needs a racing writer. */
    private static final int MAX_ROUNDS = 3;
    /** How long one look at a held key waits inside the database before giving the connection back. */
    private static final Duration PROBE = Duration.ofMillis(10);

    private static final long FIRST_PAUSE_NANOS = Duration.ofMillis(20).toNanos();
    private static final long MAX_PAUSE_NANOS = Duration.ofMillis(200).toNanos();
    private static final String HASHED_SCOPE = "#sha256:";
    private static final String SAVEPOINT = "outbox_idempotency_call";
    private static final Pattern GUC_DURATION = Pattern.compile("(\\d+)\\s*(ms|s|min|h|d)?");
    /** Marks a look that found the key held; the caller pauses and looks again until the lock timeout. */
    private static final IdempotencyOutcome HELD = new IdempotencyOutcome.InFlight(Duration.ZERO);

    private final DSLContext dsl;
    private final Settings mapping;
    private final long lockTimeoutNanos;
    private final String probeTimeout;
    private final Duration holdTimeout;
    private final long holdTimeoutMillis;
    // the prefix of every scope (app:<application> and a space), or "" for none
    private final String application;
    private final Duration retryAfter;
    private final Duration ttl;
    private final Clock clock;
    private final int purgeBatchSize;
    private final String log;
    // drops what the call holds in memory before its writes are rolled back
    private final Runnable onRollBackAndStore;
    // asked at each request: a stored refusal rolls the whole transaction back and is stored in a transaction
    // of its own
    private final BooleanSupplier refusalsApart;
    private final Counter executed;
    private final Counter rolledBack;
    private final Counter replayed;
    private final Counter conflict;
    private final Counter mismatch;
    private final Counter notStored;
    private final Counter failed;
    private final Counter holdTimeoutKills;
    private final Timer waitReleased;
    private final Timer waitConflict;

    public JooqIdempotencyStore(
            DSLContext dsl,
            String schema,
            Duration lockTimeout,
            Duration retryAfter,
            Duration holdTimeout,
            Duration ttl,
            Clock clock,
            int purgeBatchSize,
            MeterRegistry registry,
            String name,
            String application,
            Runnable onRollBackAndStore,
            BooleanSupplier refusalsApart) {
        this.dsl = dsl;
        this.mapping = OutboxMigrations.jooqSettings(schema);
        this.lockTimeoutNanos = lockTimeout.toNanos();
        this.probeTimeout = Math.min(PROBE.toMillis(), lockTimeout.toMillis()) + "ms";
        this.holdTimeout = holdTimeout;
        this.holdTimeoutMillis = holdTimeout.toMillis();
        this.application = application == null ? "" : APPLICATION_SCOPE + application + " ";
        this.retryAfter = retryAfter;
        this.ttl = ttl;
        this.clock = clock;
        this.purgeBatchSize = purgeBatchSize;
        this.log = "[idempotency-store " + name + "] ";
        this.onRollBackAndStore = onRollBackAndStore;
        this.refusalsApart = refusalsApart;
        this.executed = counter(registry, name, "executed");
        this.rolledBack = counter(registry, name, "rolled_back");
        this.replayed = counter(registry, name, "replayed");
        this.conflict = counter(registry, name, "conflict");
        this.mismatch = counter(registry, name, "mismatch");
        this.notStored = counter(registry, name, "not_stored");
        this.failed = counter(registry, name, "failed");
        this.holdTimeoutKills = counter(registry, name, "hold_timeout");
        this.waitReleased = waitTimer(registry, name, "released");
        this.waitConflict = waitTimer(registry, name, "conflict");
    }

    private static Counter counter(MeterRegistry registry, String name, String outcome) {
        return Counter.builder(METRIC)
                .description("Requests with an Idempotency-Key, by outcome")
                .tag("store", name)
                .tag("outcome", outcome)
                .register(registry);
    }

    private static Timer waitTimer(MeterRegistry registry, String name, String outcome) {
        return Timer.builder(WAIT_METRIC)
                .description("Waits of requests that found their key held by a request in flight, by how they ended")
                .tag("store", name)
                .tag("outcome", outcome)
                .register(registry);
    }

    @Override
    public <X extends Exception> IdempotencyOutcome execute(
            IdempotencyRequest request, ResponsePolicy policy, BusinessCall<X> call) throws X {
        Objects.requireNonNull(request, "request may not be null");
        Objects.requireNonNull(policy, "policy may not be null");
        Objects.requireNonNull(call, "call may not be null");
        String scoped = application + request.scope();
        String scope = storedScope(scoped);
        long started = System.nanoTime();
        long deadline = started + lockTimeoutNanos;
        long pause = FIRST_PAUSE_NANOS;
        boolean apart = refusalsApart.getAsBoolean();
        boolean waited = false;
        IdempotencyOutcome outcome;
        while (true) {
            long look = System.nanoTime();
            IdempotencyOutcome looked = null;
            try {
                looked = look(request, scoped, scope, policy, call, apart);
            } finally {
                if (waited && !isHeld(looked)) {
                    // the key was released (committed or rolled back) while this request waited: the wait ended
                    // when this look began, whatever the look then did with the key (unless it found the key
                    // taken again by another request, and answers 409 after all)
                    (looked instanceof IdempotencyOutcome.InFlight ? waitConflict : waitReleased)
                            .record(look - started, TimeUnit.NANOSECONDS);
                }
            }
            if (!isHeld(looked)) {
                outcome = looked;
                break;
            }
            waited = true;
            // held by a request in flight: wait for it without a pooled connection, then look again
            long left = deadline - System.nanoTime();
            if (left <= 0 || !pause(Math.min(pause, left))) {
                waitConflict.record(System.nanoTime() - started, TimeUnit.NANOSECONDS);
                outcome = new IdempotencyOutcome.InFlight(retryAfter);
                break;
            }
            pause = Math.min(pause * 2, MAX_PAUSE_NANOS);
        }
        switch (outcome) {
            case IdempotencyOutcome.Executed e -> (e.writesCommitted() ? executed : rolledBack).increment();
            case IdempotencyOutcome.Replayed r -> replayed.increment();
            case IdempotencyOutcome.Mismatch m -> mismatch.increment();
            case IdempotencyOutcome.InFlight f -> conflict.increment();
            case IdempotencyOutcome.NotStored n -> notStored.increment();
        }
        // 409 and 422 answer a client (a retry while the first request runs, a key reused for another request),
        // as 400 and 401 do: DEBUG, and counted, so that a client's retry storm does not flood the log
        if (LOG.isDebugEnabled()) {
            switch (outcome) {
                case IdempotencyOutcome.InFlight f ->
                    LOG.debug(
                            "{}409 for key {} in scope {}: a request with it was still in flight after {} ms",
                            log,
                            request.key(),
                            scoped,
                            TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started));
                case IdempotencyOutcome.Mismatch m ->
                    LOG.debug(
                            "{}422 for key {} in scope {}: it was used with another request (another fingerprint)",
                            log,
                            request.key(),
                            scoped);
                default ->
                    LOG.debug(
                            "{}{} key {} in scope {}", log, outcome.getClass().getSimpleName(), request.key(), scoped);
            }
        }
        return outcome;
    }

    /**
     * One look at the key, in one transaction: claim it and run the call, or answer from its row, or
     * find it held by a request in flight ({@link #HELD}).
     */
    private <X extends Exception> IdempotencyOutcome look(
            IdempotencyRequest request,
            String scoped,
            String scope,
            ResponsePolicy policy,
            BusinessCall<X> call,
            boolean apart)
            throws X {
        Refusal refusal = new Refusal(apart);
        Hold hold = new Hold();
        try {
            return dsl.transactionResult(cfg -> inTransaction(cfg, request, scope, policy, call, refusal, hold));
        } catch (Rollback r) {
            return r.outcome;
        } catch (RolledBackRefusal r) {
            for (Throwable t : r.getSuppressed()) {
                // the rollback itself failed (a connection lost): the transaction ends all the same
                LOG.warn(
                        "{}rolling back the transaction of a {} refusal failed: {}",
                        log,
                        r.response.status(),
                        t.toString());
            }
            return storeApart(request, scoped, scope, r.response, null);
        } catch (CallFailed f) {
            failed(f.getCause(), request, scoped, hold);
            @SuppressWarnings("unchecked")
            X cause = (X) f.getCause();
            throw cause;
        } catch (RuntimeException e) {
            if (refusal.response == null || SqlStates.isSerializationFailure(e)) {
                // a serialization failure at commit says the reads the refusal rests on may be stale:
                // nothing is stored, and a retry with the key runs anew
                failed(e, request, scoped, hold);
                throw e;
            }
            return storeApart(request, scoped, scope, refusal.response, e);
        }
    }

    /**
     * Counts a request that failed after it looked at its key, and tells when PostgreSQL ended it for
     * holding the key past {@link #holdTimeout}: counted as {@code hold_timeout} too, and logged at
     * WARN with what to change, since the fix is a setting or a handler, not the client.
     */
    private void failed(Throwable failure, IdempotencyRequest request, String scoped, Hold hold) {
        failed.increment();
        String state = SqlStates.of(failure);
        if (hold.since < 0 || state == null) {
            return; // the key was never held by this request, or the failure is not PostgreSQL's
        }
        long heldMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - hold.since);
        String what;
        long limit;
        String setting;
        if (SqlStates.IDLE_IN_TRANSACTION_TIMEOUT.equals(state)) {
            limit = hold.idleMillis;
            setting = "idle_in_transaction_session_timeout";
            what = "it sat idle in its transaction (between two statements: the handler waited on another system, a"
                    + " lock of the application's or a stalled thread) longer than";
        } else if (SqlStates.QUERY_CANCELED.equals(state) && heldMillis >= hold.statementMillis) {
            limit = hold.statementMillis;
            setting = "statement_timeout";
            what = "one of its statements ran longer than";
        } else {
            return;
        }
        holdTimeoutKills.increment();
        String bound;
        String change;
        if (limit < holdTimeoutMillis) {
            bound = "the session's own setting, shorter than holdTimeout (" + Durations.format(holdTimeout)
                    + ") and kept by the store";
            change = "If the request is legitimately this slow, raise " + setting
                    + " where the session gets it (the database, the role or the connection pool)";
        } else {
            bound = "which the store sets to holdTimeout (" + Durations.format(holdTimeout) + ")";
            change = "If the request is legitimately this slow, raise holdTimeout above its slowest run"
                    + " (IdempotencyStore.Builder.holdTimeout; outbox.idempotency.hold-timeout in the Spring Boot"
                    + " starter); if it waited on another system, give that call a timeout shorter than holdTimeout";
        }
        LOG.warn(
                "{}PostgreSQL ended the transaction holding key {} in scope {} (SQLState {}, seen {} ms after the key"
                        + " was claimed): {} {} ({} ms), {}."
                        + " Nothing of it was stored and its writes were rolled back; the key is free, and a retry runs"
                        + " the request anew. {}",
                log,
                request.key(),
                scoped,
                state,
                heldMillis,
                what,
                setting,
                limit,
                bound,
                change);
    }

    /**
     * @return whether the outcome is the {@link #HELD} marker, told by identity: an InFlight the
     *     store answers may equal it (a {@code retryAfter} of zero)
     */
    @SuppressWarnings("ReferenceEquality")
    private static boolean isHeld(IdempotencyOutcome outcome) {
        return outcome == HELD;
    }

    /** @return false when interrupted (the flag is restored) */
    private static boolean pause(long nanos) {
        try {
            Thread.sleep(Duration.ofNanos(nanos));
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /**
     * The scope as stored in the key's primary key: as it is when short, else its SHA-256, so that
     * no scope can exceed the index row limit. A short scope that looks like a hash is hashed too,
     * which keeps the mapping one-to-one.
     */
    static String storedScope(String scope) {
        byte[] bytes = scope.getBytes(StandardCharsets.UTF_8);
        if (bytes.length <= MAX_PLAIN_SCOPE_BYTES && !scope.startsWith(HASHED_SCOPE)) {
            return scope;
        }
        try {
            return HASHED_SCOPE
                    + HexFormat.of()
                            .formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JVM has no SHA-256, which every Java platform must provide", e);
        }
    }

    private IdempotencyOutcome inTransaction(
            Configuration cfg,
            IdempotencyRequest request,
            String scope,
            ResponsePolicy policy,
            BusinessCall<?> call,
            Refusal refusal,
            Hold hold) {
        DSLContext caller = cfg.dsl();
        DSLContext db = DSL.using(cfg.derive(withMapping(caller.settings())));
        requireTransaction(db);
        try {
            // offset 0 keeps the subquery from being flattened, so the old values are read before the set
            var previous = db.resultQuery(
                            "select s.lock, s.stmt, s.idle, set_config('lock_timeout', {0}, true) from (select"
                                    + " current_setting('lock_timeout') as lock, current_setting('statement_timeout') as stmt,"
                                    + " current_setting('idle_in_transaction_session_timeout') as idle offset 0) s",
                            DSL.val(probeTimeout))
                    .fetchSingle();
            IdempotencyOutcome decided = claim(db, request, scope);
            if (decided != null) {
                return decided;
            }
            // the key is ours: the call runs with the session's lock timeout, and holds the key for at
            // most holdTimeout, enforced by PostgreSQL even if this process hangs or loses the network
            long statementMillis = bounded(previous.get(1, String.class));
            long idleMillis = bounded(previous.get(2, String.class));
            db.resultQuery(
                            "select set_config('lock_timeout', {0}, true), set_config('statement_timeout', {1}, true),"
                                    + " set_config('idle_in_transaction_session_timeout', {2}, true)",
                            DSL.val(previous.get(0, String.class)),
                            DSL.val(statementMillis + "ms"),
                            DSL.val(idleMillis + "ms"))
                    .fetch();
            hold.held(statementMillis, idleMillis);
        } catch (RuntimeException e) {
            // the SQLState wherever it is in the cause chain: a DSLContext may translate jOOQ's exception into
            // another (Spring Boot's jOOQ auto-configuration throws Spring's CannotAcquireLockException)
            if (SqlStates.LOCK_NOT_AVAILABLE.equals(SqlStates.of(e))) {
                // the transaction is aborted; roll it back, hand the connection back, and look again later
                throw new Rollback(HELD);
            }
            throw e;
        }
        db.execute("savepoint " + SAVEPOINT);
        StoredResponse response;
        try {
            response = call.execute(caller);
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new CallFailed(e);
        }
        Objects.requireNonNull(response, "the business call returned null; return the StoredResponse to send");
        ResponsePolicy.Action action = Objects.requireNonNull(
                policy.action(response.status()),
                () -> "the ResponsePolicy returned null for status " + response.status()
                        + "; return COMMIT, ROLL_BACK_AND_STORE or RELEASE");
        switch (action) {
            case RELEASE -> throw new Rollback(new IdempotencyOutcome.NotStored(response));
            case ROLL_BACK_AND_STORE -> {
                onRollBackAndStore.run();
                if (refusal.apart) {
                    // nothing of the request's transaction commits, not even what its transaction manager
                    // would run at commit (Spring's synchronisations: @TransactionalEventListener)
                    throw new RolledBackRefusal(response);
                }
                db.execute("rollback to savepoint " + SAVEPOINT);
            }
            case COMMIT -> {}
        }
        // remembered for the TTL after the request completed: one that ran longer than the TTL would
        // otherwise be stored already expired, and its retry run anew
        OffsetDateTime completed = OffsetDateTime.now(clock).withOffsetSameInstant(ZoneOffset.UTC);
        db.update(IDEMPOTENCY_KEY)
                .set(IDEMPOTENCY_KEY.EXPIRES_AT, completed.plus(ttl))
                .set(IDEMPOTENCY_KEY.RESPONSE_STATUS, response.status())
                .set(IDEMPOTENCY_KEY.RESPONSE_HEADERS, JSONB.valueOf(Json.writeLists(response.headers())))
                .set(IDEMPOTENCY_KEY.RESPONSE_BODY, response.body())
                .where(IDEMPOTENCY_KEY.SCOPE.eq(scope), IDEMPOTENCY_KEY.IDEM_KEY.eq(request.key()))
                .execute();
        if (action == ResponsePolicy.Action.ROLL_BACK_AND_STORE) {
            // from here only the commit is left; should it fail, the refusal does not depend on it
            refusal.response = response;
        }
        return new IdempotencyOutcome.Executed(response, action == ResponsePolicy.Action.COMMIT);
    }

    /**
     * Stores a refusal in a transaction of its own, once the request's transaction has ended without
     * it: rolled back on purpose ({@code commitFailure} null, refusals stored apart), or failed to
     * commit. The refusal kept none of the call's writes, so it does not depend on that transaction:
     * one that a participant marked rollback-only (a Spring {@code @Transactional} method that threw
     * before an exception handler turned the exception into a 4xx) would otherwise answer 500 to this
     * request and to every retry with the key.
     *
     * @return the refusal, stored; or not stored when the key was taken meanwhile (or the first commit
     *     had succeeded after all) or the key could not be written
     * @throws RuntimeException {@code commitFailure} (or, without one, the failure of this
     *     transaction) when the database cannot be reached either
     */
    private IdempotencyOutcome storeApart(
            IdempotencyRequest request,
            String scoped,
            String scope,
            StoredResponse response,
            RuntimeException commitFailure) {
        boolean stored;
        try {
            stored = dsl.transactionResult(cfg -> insertAnswered(cfg, request, scope, response));
        } catch (RuntimeException e) {
            if (!SqlStates.LOCK_NOT_AVAILABLE.equals(SqlStates.of(e))) {
                failed.increment();
                if (commitFailure == null) {
                    throw e;
                }
                commitFailure.addSuppressed(e);
                throw commitFailure;
            }
            stored = false; // another request holds the key
        }
        if (commitFailure != null) {
            LOG.info(
                    "{}the transaction of key {} in scope {} failed to commit after a {} refusal ({}); {}",
                    log,
                    request.key(),
                    scoped,
                    response.status(),
                    commitFailure.toString(),
                    stored
                            ? "the refusal was stored in a transaction of its own"
                            : "the refusal was answered without being stored: the key is taken");
        } else if (!stored) {
            LOG.info(
                    "{}the {} refusal of key {} in scope {} was answered without being stored: another request"
                            + " took the key between the rollback of this one's transaction and the refusal's own",
                    log,
                    response.status(),
                    request.key(),
                    scoped);
        }
        return stored ? new IdempotencyOutcome.Executed(response, false) : new IdempotencyOutcome.NotStored(response);
    }

    /**
     * @return whether the key now holds {@code response}: it was free (or expired) and this stored it, or
     *     the failed commit had gone through after all and stored the same answer
     */
    private boolean insertAnswered(
            Configuration cfg, IdempotencyRequest request, String scope, StoredResponse response) {
        DSLContext db = DSL.using(cfg.derive(withMapping(cfg.dsl().settings())));
        // a request in flight with the key holds its row: do not wait for it
        db.resultQuery("select set_config('lock_timeout', {0}, true)", DSL.val(probeTimeout))
                .fetch();
        OffsetDateTime completed = OffsetDateTime.now(clock).withOffsetSameInstant(ZoneOffset.UTC);
        JSONB headers = JSONB.valueOf(Json.writeLists(response.headers()));
        // an expired row the failed transaction had deleted is back with its rollback: it counts as absent
        if (db.insertInto(IDEMPOTENCY_KEY)
                        .set(IDEMPOTENCY_KEY.SCOPE, scope)
                        .set(IDEMPOTENCY_KEY.IDEM_KEY, request.key())
                        .set(IDEMPOTENCY_KEY.FINGERPRINT, request.fingerprint())
                        .set(IDEMPOTENCY_KEY.EXPIRES_AT, completed.plus(ttl))
                        .set(IDEMPOTENCY_KEY.RESPONSE_STATUS, response.status())
                        .set(IDEMPOTENCY_KEY.RESPONSE_HEADERS, headers)
                        .set(IDEMPOTENCY_KEY.RESPONSE_BODY, response.body())
                        .onConflict(IDEMPOTENCY_KEY.SCOPE, IDEMPOTENCY_KEY.IDEM_KEY)
                        .doUpdate()
                        .setNonConflictingKeyToExcluded()
                        .where(IDEMPOTENCY_KEY.EXPIRES_AT.le(completed))
                        .execute()
                == 1) {
            return true;
        }
        // a commit whose acknowledgement was lost may have stored this very answer; another request's refusal
        // of the same status stored meanwhile is not it, and its body is what replays give
        return db.fetchExists(db.selectOne()
                .from(IDEMPOTENCY_KEY)
                .where(
                        IDEMPOTENCY_KEY.SCOPE.eq(scope),
                        IDEMPOTENCY_KEY.IDEM_KEY.eq(request.key()),
                        IDEMPOTENCY_KEY.FINGERPRINT.eq(request.fingerprint()),
                        IDEMPOTENCY_KEY.RESPONSE_STATUS.eq(response.status()),
                        IDEMPOTENCY_KEY.RESPONSE_BODY.isNotDistinctFrom(response.body())));
    }

    /**
     * Refuses to claim a key on a connection in autocommit mode: each statement would commit on its
     * own, the key first, without its response, and it would answer 409 to every retry until it
     * expired, whatever became of the request.
     *
     * @throws IllegalStateException when the connection of the store's transaction is in autocommit mode
     */
    private void requireTransaction(DSLContext db) {
        if (db.connectionResult(Connection::getAutoCommit)) {
            throw new IllegalStateException(log
                    + "the key's statements are not in a transaction: the connection the store's DSLContext gives"
                    + " inside its transaction is in autocommit mode, so the key would commit on its own, before the"
                    + " request's work and without its response, and answer 409 to every retry until it expired."
                    + " The DSLContext's TransactionProvider began no transaction on this DataSource: under Spring,"
                    + " the transaction manager in use does not manage it (a @Primary transaction manager of another"
                    + " DataSource, a KafkaTransactionManager). Build the store on a DSLContext whose transactions are"
                    + " this DataSource's (with Spring, those of a DataSourceTransactionManager, JdbcTransactionManager"
                    + " or JpaTransactionManager of it), or give the store the DataSource itself (dataSource(...))");
        }
    }

    /**
     * @param setting a duration setting as {@code current_setting} shows it ({@code 0}, {@code 250ms},
     *     {@code 30s}, {@code 5min}, {@code 1h}, {@code 1d})
     * @return the hold timeout, or the session's setting when it is shorter and on, in milliseconds
     */
    long bounded(String setting) {
        Matcher m = GUC_DURATION.matcher(setting == null ? "" : setting.strip().toLowerCase(Locale.ROOT));
        if (!m.matches()) {
            return holdTimeoutMillis;
        }
        long value = Long.parseLong(m.group(1));
        long millis = switch (m.group(2) == null ? "ms" : m.group(2)) {
            case "s" -> value * 1_000L;
            case "min" -> value * 60_000L;
            case "h" -> value * 3_600_000L;
            case "d" -> value * 86_400_000L;
            default -> value;
        };
        return millis > 0 && millis < holdTimeoutMillis ? millis : holdTimeoutMillis;
    }

    /**
     * Inserts the key row, or decides the outcome from the committed row that holds the key.
     *
     * @return null when this transaction now holds the key and the call must run
     */
    private IdempotencyOutcome claim(DSLContext db, IdempotencyRequest request, String scope) {
        for (int round = 0; round < MAX_ROUNDS; round++) {
            OffsetDateTime now = OffsetDateTime.now(clock).withOffsetSameInstant(ZoneOffset.UTC);
            boolean inserted = db.insertInto(IDEMPOTENCY_KEY)
                    .set(IDEMPOTENCY_KEY.SCOPE, scope)
                    .set(IDEMPOTENCY_KEY.IDEM_KEY, request.key())
                    .set(IDEMPOTENCY_KEY.FINGERPRINT, request.fingerprint())
                    .set(IDEMPOTENCY_KEY.EXPIRES_AT, now.plus(ttl))
                    .onConflict(IDEMPOTENCY_KEY.SCOPE, IDEMPOTENCY_KEY.IDEM_KEY)
                    .doNothing()
                    .returning(IDEMPOTENCY_KEY.SCOPE)
                    .fetchOptional()
                    .isPresent();
            if (inserted) {
                return null;
            }
            Record5<String, Integer, JSONB, byte[], OffsetDateTime> existing = db.select(
                            IDEMPOTENCY_KEY.FINGERPRINT,
                            IDEMPOTENCY_KEY.RESPONSE_STATUS,
                            IDEMPOTENCY_KEY.RESPONSE_HEADERS,
                            IDEMPOTENCY_KEY.RESPONSE_BODY,
                            IDEMPOTENCY_KEY.EXPIRES_AT)
                    .from(IDEMPOTENCY_KEY)
                    .where(IDEMPOTENCY_KEY.SCOPE.eq(scope), IDEMPOTENCY_KEY.IDEM_KEY.eq(request.key()))
                    .fetchOne();
            if (existing == null) {
                continue; // purged or replaced after expiry between the two statements: try the insert again
            }
            if (!existing.value5().isAfter(now)) {
                // expired keys count as absent; the condition keeps a concurrent fresh row safe
                db.deleteFrom(IDEMPOTENCY_KEY)
                        .where(
                                IDEMPOTENCY_KEY.SCOPE.eq(scope),
                                IDEMPOTENCY_KEY.IDEM_KEY.eq(request.key()),
                                IDEMPOTENCY_KEY.EXPIRES_AT.le(now))
                        .execute();
                continue;
            }
            if (!existing.value1().equals(request.fingerprint())) {
                return new IdempotencyOutcome.Mismatch();
            }
            if (existing.value2() == null) {
                // a committed row without response: not written by this store, treat as still in flight
                return new IdempotencyOutcome.InFlight(retryAfter);
            }
            JSONB headers = existing.value3();
            byte[] body = existing.value4();
            return new IdempotencyOutcome.Replayed(new StoredResponse(
                    existing.value2(),
                    headers == null ? Map.of() : Json.readLists(headers.data()),
                    body == null ? new byte[0] : body));
        }
        LOG.warn(
                "{}key {} in scope {} changed hands {} times in one request; answering 409",
                log,
                request.key(),
                scope,
                MAX_ROUNDS);
        return new IdempotencyOutcome.InFlight(retryAfter);
    }

    @Override
    public long purgeExpired() {
        DSLContext db = DSL.using(dsl.configuration().derive(withMapping(dsl.settings())));
        long total = 0;
        while (true) {
            OffsetDateTime now = OffsetDateTime.now(clock).withOffsetSameInstant(ZoneOffset.UTC);
            var batch = DSL.select(IDEMPOTENCY_KEY.SCOPE, IDEMPOTENCY_KEY.IDEM_KEY)
                    .from(IDEMPOTENCY_KEY)
                    .where(IDEMPOTENCY_KEY.EXPIRES_AT.le(now))
                    .orderBy(IDEMPOTENCY_KEY.EXPIRES_AT)
                    .limit(purgeBatchSize)
                    .forUpdate()
                    .skipLocked();
            int deleted = db.transactionResult(cfg -> DSL.using(cfg)
                    .deleteFrom(IDEMPOTENCY_KEY)
                    .where(DSL.row(IDEMPOTENCY_KEY.SCOPE, IDEMPOTENCY_KEY.IDEM_KEY)
                            .in(batch))
                    .and(IDEMPOTENCY_KEY.EXPIRES_AT.le(now))
                    .execute());
            total += deleted;
            if (deleted < purgeBatchSize) {
                break;
            }
        }
        if (total > 0) {
            LOG.info("{}purged {} expired idempotency keys", log, total);
        }
        return total;
    }

    @Override
    public Duration ttl() {
        return ttl;
    }

    private Settings withMapping(Settings callers) {
        return SettingsTools.clone(callers).withRenderMapping(mapping.getRenderMapping());
    }

    /** How long one look's transaction may hold its key, once it holds it. */
    private static final class Hold {
        // System.nanoTime() when the key's timeouts were set; -1 while the key is not this transaction's
        long since = -1;
        long statementMillis;
        long idleMillis;

        void held(long statementMillis, long idleMillis) {
            this.statementMillis = statementMillis;
            this.idleMillis = idleMillis;
            this.since = System.nanoTime();
        }
    }

    /** The refusal a transaction stored, once only its commit is left. */
    private static final class Refusal {
        // a stored refusal rolls the transaction back and is stored apart
        final boolean apart;
        StoredResponse response;

        Refusal(boolean apart) {
            this.apart = apart;
        }
    }

    /** Rolls the transaction back and carries the outcome out of it. */
    private static final class Rollback extends RuntimeException {
        final transient IdempotencyOutcome outcome;

        Rollback(IdempotencyOutcome outcome) {
            super(null, null, false, false);
            this.outcome = outcome;
        }
    }

    /** Rolls the transaction back and carries a refusal out of it, to be stored in a transaction of its own. */
    private static final class RolledBackRefusal extends RuntimeException {
        final transient StoredResponse response;

        RolledBackRefusal(StoredResponse response) {
            // suppression on: a failed rollback is attached to it
            super(null, null, true, false);
            this.response = response;
        }
    }

    /** Carries a checked exception of the business call through jOOQ's transaction. */
    private static final class CallFailed extends RuntimeException {
        CallFailed(Exception cause) {
            super(cause.getMessage(), cause, false, false);
        }
    }
}
