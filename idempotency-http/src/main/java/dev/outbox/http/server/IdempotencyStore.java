package dev.outbox.http.server;

import dev.outbox.core.internal.Checks;
import dev.outbox.core.internal.Durations;
import dev.outbox.http.server.internal.JooqIdempotencyStore;
import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.migrations.internal.JooqVersionCheck;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Metrics;
import java.time.Clock;
import java.time.Duration;
import java.util.Objects;
import java.util.function.BooleanSupplier;
import java.util.regex.Pattern;
import javax.sql.DataSource;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;

/**
 * The server side of {@code Idempotency-Key}, independent of any web framework: runs a request's
 * work at most once per {@code (scope, key)} and replays its response to every repeat (guarantee
 * G5).
 *
 * <p>{@link #execute} does everything in <b>one</b> transaction:
 *
 * <ol>
 *   <li>{@code SET LOCAL lock_timeout} (a few milliseconds) for the key statements only;
 *   <li>insert the key row ({@code INSERT ... ON CONFLICT DO NOTHING}). The primary key decides
 *       races: a second request with the same key meets the first one's uncommitted row, never a
 *       check-then-insert. It does not wait for it inside the database: it rolls back, gives its
 *       connection back to the pool, and tries again after a short pause, for up to {@link
 *       Builder#lockTimeout} in all;
 *   <li>if the row was inserted: bound how long the request may hold the key ({@link
 *       Builder#holdTimeout}: {@code SET LOCAL statement_timeout} and {@code
 *       idle_in_transaction_session_timeout}, so that PostgreSQL itself ends a request that hangs
 *       or loses its application server, and releases the key); run the {@link BusinessCall} with
 *       the same transaction; then, as the {@link ResponsePolicy} decides from the response's
 *       status, commit the call's writes with the key and the response, or roll the writes back
 *       and store only the key and the response, or roll everything back;
 *   <li>if a committed row exists: same fingerprint → {@link IdempotencyOutcome.Replayed}; another
 *       fingerprint → {@link IdempotencyOutcome.Mismatch}; expired → deleted (only if still expired)
 *       and the key is used anew;
 *   <li>if another transaction still holds the key after the lock timeout → {@link
 *       IdempotencyOutcome.InFlight}.
 * </ol>
 *
 * <p>A call that throws rolls back (no key, no business row, no outbox row) and the exception
 * propagates. What happens to a call that returns is the {@link ResponsePolicy}'s decision; by
 * default ({@link ResponsePolicy#standard()}) only 2xx and 301/302/303 commit the call's writes, final refusals
 * such as 400, 404 and 422 are stored without them, and 5xx, 401, 403, 408, 409, 423, 425 and 429
 * roll everything back ({@link IdempotencyOutcome.NotStored}), so that a retry with the same key
 * runs anew.
 *
 * <p>Scopes longer than {@value #MAX_PLAIN_SCOPE_BYTES} bytes (UTF-8) are stored as their SHA-256
 * ({@code #sha256:<hex>}), so that no scope can push the key row past PostgreSQL's index row limit;
 * shorter ones are stored as they are. A store built with an {@link Builder#application
 * application} puts it before every scope ({@code app:<application> <scope>}), so that services
 * sharing one {@code idempotency_key} table keep their keys apart; without one (the default) the
 * scope is stored as given, as by earlier versions.
 *
 * <p>Run it at PostgreSQL's default isolation, READ COMMITTED: at REPEATABLE READ or above, a
 * request that meets a key committed after its snapshot fails with a serialization error instead
 * of replaying.
 *
 * <p><b>Metrics</b>, both tagged {@code store} (the {@link Builder#name name}) and {@code outcome}:
 *
 * <ul>
 *   <li>counter {@value #METRIC}, one count per call of {@link #execute}: {@code executed}, {@code
 *       rolled_back} (stored without the call's writes), {@code replayed}, {@code conflict} (409: the
 *       key still held by a request in flight after the lock timeout), {@code mismatch} (422: the key
 *       used with another request), {@code not_stored}, {@code failed} (an exception: the call's, or
 *       the database's). A request that PostgreSQL ended for holding its key longer than {@link
 *       Builder#holdTimeout} is counted {@code hold_timeout} as well as {@code failed}, so that an
 *       alert on {@code failed} keeps counting every failed request;
 *   <li>timer {@value #WAIT_METRIC}, once per request that found its key held by a request in flight
 *       and waited for it: {@code released} (the other request committed or rolled back within the
 *       lock timeout; this one then ran, or was answered from the stored row) or {@code conflict}
 *       (it was still held after the lock timeout: 409). A {@code max} near the lock timeout and a
 *       rising {@code conflict} count mean that duplicates arrive while their first request is still
 *       running, for longer than clients wait.
 * </ul>
 *
 * <p><b>Logs.</b> A 409 or 422 is logged at DEBUG only, like the filter's 400 and 401: they answer
 * a client (a retry sent while the first request runs, a key reused for another request), not a
 * fault of the service, and one line per request would flood the log at the rate of a client's
 * retry storm, which is when they come; the counters above are the signal (alert on their rate),
 * and DEBUG for {@code dev.outbox.http.server.internal.JooqIdempotencyStore} names each key, scope
 * and wait. A request that PostgreSQL ended for holding its key longer than {@code holdTimeout} is
 * logged at WARN, naming the key, its scope, the timeout that ended it and what to change: the fix
 * is the server's (a setting, or a call without a timeout), and a client cannot see it. Such a
 * kill is recognised when the failure reaches the store with PostgreSQL's SQLState ({@code 25P03}
 * idle in transaction; {@code 57014} a statement cancelled after the statement timeout had
 * passed); one a handler catches and answers with a 5xx is counted {@code not_stored}. Thread-safe.
 */
public interface IdempotencyStore {

    /** The name of the counter of requests by outcome. */
    String METRIC = "outbox.idempotency.requests";

    /** The name of the timer of the waits for a key held by a request in flight, by how they ended. */
    String WAIT_METRIC = "outbox.idempotency.wait";

    /** The longest scope, in UTF-8 bytes, stored as it is; longer ones are stored as a hash. */
    int MAX_PLAIN_SCOPE_BYTES = 512;

    /** @return a builder with the defaults documented on each setter */
    static Builder builder() {
        return new Builder();
    }

    /**
     * Runs {@code call} once for the request's key, or answers without running it, with {@link
     * ResponsePolicy#standard()}.
     *
     * @param request scope, key and fingerprint
     * @param call the request's work, run inside the key's transaction
     * @param <X> the checked exception the call may throw
     * @return what happened
     * @throws X when the call throws it; nothing of the request remains
     * @throws NullPointerException when an argument is null, or the call returns null
     * @throws org.jooq.exception.DataAccessException when the database fails (SQLState kept), for
     *     example when no connection is available, the commit fails, or the request held its key
     *     longer than {@link Builder#holdTimeout} and PostgreSQL ended it; nothing is stored then.
     *     A {@code DSLContext} that translates jOOQ's exceptions throws its own instead
     * @throws IllegalStateException when the connection of the store's transaction is in autocommit
     *     mode (the {@code DSLContext}'s transactions are not this {@code DataSource}'s: under Spring,
     *     a transaction manager of another resource); refused before the key is inserted
     */
    default <X extends Exception> IdempotencyOutcome execute(IdempotencyRequest request, BusinessCall<X> call)
            throws X {
        return execute(request, ResponsePolicy.standard(), call);
    }

    /**
     * Runs {@code call} once for the request's key, or answers without running it; {@code policy}
     * decides from the call's response what is committed and what is stored.
     *
     * @param request scope, key and fingerprint
     * @param policy what to do with the call's writes and the key, by response status
     * @param call the request's work, run inside the key's transaction
     * @param <X> the checked exception the call may throw
     * @return what happened
     * @throws X when the call throws it; nothing of the request remains
     * @throws NullPointerException when an argument is null, or the call or the policy returns null
     * @throws org.jooq.exception.DataAccessException see {@link #execute(IdempotencyRequest,
     *     BusinessCall)}
     * @throws IllegalStateException see {@link #execute(IdempotencyRequest, BusinessCall)}
     */
    <X extends Exception> IdempotencyOutcome execute(
            IdempotencyRequest request, ResponsePolicy policy, BusinessCall<X> call) throws X;

    /**
     * Deletes expired keys in batches of {@link Builder#purgeBatchSize}, each in its own short
     * transaction, until none is left. Keys that have not expired stay. Run it periodically (for
     * example hourly) from one or all instances; concurrent purges are safe.
     *
     * @return how many keys were deleted
     * @throws org.jooq.exception.DataAccessException when the database fails
     */
    long purgeExpired();

    /** @return how long a key is kept after its request */
    Duration ttl();

    /**
     * Builds an {@link IdempotencyStore}. Setters check their own argument at once ({@link
     * NullPointerException} for null, {@link IllegalArgumentException} for a bad value); {@link
     * #build()} checks the combination ({@link IllegalStateException}). Not thread-safe; the built
     * store is.
     */
    final class Builder {
        /** Default {@link #lockTimeout(Duration)}: 2 s. */
        public static final Duration DEFAULT_LOCK_TIMEOUT = Duration.ofSeconds(2);

        /** Shortest {@link #lockTimeout(Duration)}: 1 ms. */
        public static final Duration MIN_LOCK_TIMEOUT = Duration.ofMillis(1);

        /** Longest {@link #lockTimeout(Duration)}: 10 minutes. */
        public static final Duration MAX_LOCK_TIMEOUT = Duration.ofMinutes(10);

        /** Default {@link #retryAfter(Duration)}: 1 s. */
        public static final Duration DEFAULT_RETRY_AFTER = Duration.ofSeconds(1);

        /** Longest {@link #retryAfter(Duration)}: 1 hour. */
        public static final Duration MAX_RETRY_AFTER = Duration.ofHours(1);

        /** Default {@link #holdTimeout(Duration)}: 60 s. */
        public static final Duration DEFAULT_HOLD_TIMEOUT = Duration.ofSeconds(60);

        /** Shortest {@link #holdTimeout(Duration)}: 1 s. */
        public static final Duration MIN_HOLD_TIMEOUT = Duration.ofSeconds(1);

        /** Longest {@link #holdTimeout(Duration)}: 24 h. */
        public static final Duration MAX_HOLD_TIMEOUT = Duration.ofHours(24);

        /** Default {@link #ttl(Duration)}: 24 h. */
        public static final Duration DEFAULT_TTL = Duration.ofHours(24);

        /** Default {@link #purgeBatchSize(int)}. */
        public static final int DEFAULT_PURGE_BATCH_SIZE = 1000;

        /** Largest {@link #purgeBatchSize(int)}. */
        public static final int MAX_PURGE_BATCH_SIZE = 100_000;

        /** Default {@link #name(String)}. */
        public static final String DEFAULT_NAME = "default";

        /** Longest {@link #application(String)}: 64 characters. */
        public static final int MAX_APPLICATION_LENGTH = 64;

        private static final Pattern APPLICATION = Pattern.compile("[A-Za-z0-9._-]+");

        private DSLContext dsl;
        private DataSource dataSource;
        private String schema = OutboxMigrations.DEFAULT_SCHEMA;
        private Duration lockTimeout = DEFAULT_LOCK_TIMEOUT;
        private Duration retryAfter = DEFAULT_RETRY_AFTER;
        private Duration holdTimeout = DEFAULT_HOLD_TIMEOUT;
        private Duration ttl = DEFAULT_TTL;
        private Clock clock = Clock.systemUTC();
        private int purgeBatchSize = DEFAULT_PURGE_BATCH_SIZE;
        private MeterRegistry meterRegistry = Metrics.globalRegistry;
        private String name = DEFAULT_NAME;
        private String application;
        private Runnable onRollBackAndStore = () -> {};
        private BooleanSupplier refusalsInTransactionOfTheirOwn = () -> false;

        private Builder() {}

        /**
         * @param dsl the jOOQ context whose transactions the store uses (for example one bound to
         *     Spring's transaction manager); the business call gets the transaction with these
         *     settings. Its transactions must turn autocommit off on the connections it gives (a
         *     Spring transaction manager of the same {@code DataSource} does), else every request is
         *     refused. Its ExecuteListeners may translate jOOQ's exceptions: the store reads the
         *     SQLState from the cause chain. Give this or {@link #dataSource}, not both.
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder dsl(DSLContext dsl) {
            this.dsl = Objects.requireNonNull(dsl, "dsl may not be null");
            return this;
        }

        /**
         * @param dataSource the PostgreSQL data source; the store uses plain jOOQ transactions on it.
         *     Give this or {@link #dsl}, not both.
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder dataSource(DataSource dataSource) {
            this.dataSource = Objects.requireNonNull(dataSource, "dataSource may not be null");
            return this;
        }

        /**
         * @param schema the schema the outbox migrations were applied to; default {@value
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
         * @param lockTimeout how long a request waits for another transaction that holds the same key
         *     before it gets {@link IdempotencyOutcome.InFlight} (409); default {@link
         *     #DEFAULT_LOCK_TIMEOUT} (2 s). Waiting a little
         *     lets a duplicate that arrives while the first request is finishing get the replay instead
         *     of a 409. A waiting duplicate holds no pooled connection: it looks at the key for a few
         *     milliseconds at a time, and pauses (up to 200 ms) between looks with its connection
         *     returned to the pool.
         * @return this builder
         * @throws NullPointerException when it is null
         * @throws IllegalArgumentException when it is not between {@link #MIN_LOCK_TIMEOUT} (1 ms) and
         *     {@link #MAX_LOCK_TIMEOUT} (10 minutes)
         */
        public Builder lockTimeout(Duration lockTimeout) {
            this.lockTimeout = Checks.requireBetween(
                    lockTimeout,
                    MIN_LOCK_TIMEOUT,
                    MAX_LOCK_TIMEOUT,
                    "lockTimeout",
                    "; the default is " + Durations.format(DEFAULT_LOCK_TIMEOUT));
            return this;
        }

        /**
         * @param retryAfter what {@link IdempotencyOutcome.InFlight} tells the client to wait; sent as
         *     {@code Retry-After} in whole seconds, rounded up; default {@link #DEFAULT_RETRY_AFTER} (1 s)
         * @return this builder
         * @throws NullPointerException when it is null
         * @throws IllegalArgumentException when it is negative or longer than {@link #MAX_RETRY_AFTER}
         *     (1 hour)
         */
        public Builder retryAfter(Duration retryAfter) {
            this.retryAfter = Checks.requireBetween(
                    retryAfter,
                    Duration.ZERO,
                    MAX_RETRY_AFTER,
                    "retryAfter",
                    "; the default is " + Durations.format(DEFAULT_RETRY_AFTER));
            return this;
        }

        /**
         * @param holdTimeout the longest any one statement of the key's transaction, or any wait between
         *     two of them, may take; default {@link #DEFAULT_HOLD_TIMEOUT} (60 s). It does not bound the
         *     request as a whole: a handler that keeps issuing statements holds its key while it runs. The key's
         *     transaction runs with {@code statement_timeout} and {@code
         *     idle_in_transaction_session_timeout} at most this long (a shorter session setting is
         *     kept), so PostgreSQL ends a request whose handler hangs (for example on a call to another
         *     system without a timeout) or whose application server lost the database, and its key is
         *     released for a retry; without it, every retry would get 409 until the server noticed,
         *     which after a network partition takes the TCP keepalive time (hours by default). Ending
         *     an idle transaction closes its connection, which the pool replaces. Pick it above the
         *     slowest legitimate request.
         * @return this builder
         * @throws NullPointerException when it is null
         * @throws IllegalArgumentException when it is not between {@link #MIN_HOLD_TIMEOUT} (1 s) and
         *     {@link #MAX_HOLD_TIMEOUT} (24 h)
         */
        public Builder holdTimeout(Duration holdTimeout) {
            this.holdTimeout = Checks.requireBetween(
                    holdTimeout,
                    MIN_HOLD_TIMEOUT,
                    MAX_HOLD_TIMEOUT,
                    "holdTimeout",
                    "; the default is " + Durations.format(DEFAULT_HOLD_TIMEOUT));
            return this;
        }

        /**
         * @param ttl how long a key is remembered after its request; default {@link #DEFAULT_TTL} (24
         *     h). A key reused after that runs anew. Pick it longer than any client's retry horizon.
         * @return this builder
         * @throws NullPointerException when it is null
         * @throws IllegalArgumentException when it is not positive
         */
        public Builder ttl(Duration ttl) {
            this.ttl = Checks.requirePositive(ttl, "ttl", "; the default is " + Durations.format(DEFAULT_TTL));
            return this;
        }

        /**
         * @param clock the clock that stamps {@code expires_at} and judges expiry; default the system
         *     UTC clock. Expiry follows the application servers' clocks, so keep them in sync (NTP);
         *     seconds of skew are immaterial against a TTL of hours.
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder clock(Clock clock) {
            this.clock = Objects.requireNonNull(clock, "clock may not be null");
            return this;
        }

        /**
         * @param purgeBatchSize keys deleted per statement by {@link #purgeExpired()}; default {@value
         *     #DEFAULT_PURGE_BATCH_SIZE}. Small batches keep each delete's locks and WAL burst short.
         * @return this builder
         * @throws IllegalArgumentException when it is not between 1 and {@value #MAX_PURGE_BATCH_SIZE}
         */
        public Builder purgeBatchSize(int purgeBatchSize) {
            this.purgeBatchSize = Checks.requireBetween(
                    purgeBatchSize,
                    1,
                    MAX_PURGE_BATCH_SIZE,
                    "purgeBatchSize",
                    "; the default is " + DEFAULT_PURGE_BATCH_SIZE);
            return this;
        }

        /**
         * @param meterRegistry where the counters go; default Micrometer's global registry ({@link
         *     Metrics#globalRegistry})
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder meterRegistry(MeterRegistry meterRegistry) {
            this.meterRegistry = Objects.requireNonNull(meterRegistry, "meterRegistry may not be null");
            return this;
        }

        /**
         * @param name names this store in log lines and in the metrics' {@code store} tag; default
         *     {@value #DEFAULT_NAME}
         * @return this builder
         * @throws NullPointerException when it is null
         * @throws IllegalArgumentException when it is blank
         */
        public Builder name(String name) {
            this.name = Checks.requireNonBlank(name, "name");
            return this;
        }

        /**
         * Puts every key of this store in one application's scope: for services that share one {@code
         * idempotency_key} table (one schema of one database). A key's scope names the caller, the
         * method and the path inside the application ({@link ScopeResolver}), not the host, port or
         * context path, so two services with the same paths and callers otherwise share keys, and one
         * answers a request it never ran with the other's stored response. With an application, a
         * scope is stored as {@code app:<application> <scope>}; without one (the default) as it is, as
         * by earlier versions, so an upgrade leaves the keys of a running service as they were. The
         * application is not the {@link #name name}, which names the store in logs and metrics only and
         * may change freely.
         *
         * <p><b>Setting it changes the scope of every key</b>, as does changing or removing it: a retry
         * of a request stored before the change finds no key and runs again, and while old and new
         * instances run side by side (a rolling deployment) each runs the other's retries again. Treat
         * it as a change of the key format: drain the service first (no client still retrying a request
         * it sent before), or accept that requests stored within the last {@link #ttl ttl} run again
         * when retried. Services sharing a table must each set their own, different application.
         *
         * @param application the application's name, 1 to {@value #MAX_APPLICATION_LENGTH} ASCII
         *     letters, digits, {@code .}, {@code _} or {@code -}, compared as written ({@code orders}
         *     and {@code Orders} are two applications), e.g. {@code order-service}; default none
         * @return this builder
         * @throws NullPointerException when it is null
         * @throws IllegalArgumentException when it is blank, longer than {@value #MAX_APPLICATION_LENGTH}
         *     characters or holds another character
         */
        public Builder application(String application) {
            Objects.requireNonNull(application, "application may not be null; leave it unset for none");
            if (application.isBlank()) {
                throw new IllegalArgumentException("application may not be blank; name the application whose keys"
                        + " these are (e.g. order-service), or leave it unset for none");
            }
            if (application.length() > MAX_APPLICATION_LENGTH
                    || !APPLICATION.matcher(application).matches()) {
                throw new IllegalArgumentException("application must be 1 to " + MAX_APPLICATION_LENGTH
                        + " ASCII letters, digits, '.', '_' or '-', got '" + application + "' ("
                        + application.length() + " characters); e.g. order-service");
            }
            this.application = application;
            return this;
        }

        /**
         * @param action run just before a call's writes are rolled back for a stored refusal ({@link
         *     ResponsePolicy.Action#ROLL_BACK_AND_STORE}: to the savepoint taken after the key was
         *     inserted, or with the whole transaction under {@link
         *     #refusalsInTransactionOfTheirOwn}), in the request's transaction and on its thread;
         *     default none. Code that keeps writes in memory
         *     until it flushes them must drop them here, or they are written when the key and the
         *     response commit: with JPA, clear the transaction's {@code EntityManager} (the Spring
         *     Boot starter does so for every {@code EntityManager} bound to the transaction). When it
         *     throws, nothing of the request is stored and the exception propagates.
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder onRollBackAndStore(Runnable action) {
            this.onRollBackAndStore = Objects.requireNonNull(action, "onRollBackAndStore action may not be null");
            return this;
        }

        /**
         * How a stored refusal ({@link ResponsePolicy.Action#ROLL_BACK_AND_STORE}) leaves the request's
         * transaction. By default (false) the call's writes are rolled back to a savepoint taken after the
         * key was inserted, and the key and the refusal commit in the request's transaction, which holds
         * the key throughout. That transaction commits, so whatever its transaction manager runs at
         * commit runs for the refused request: with Spring, the transaction synchronisations the call
         * registered ({@code @TransactionalEventListener} methods, whose {@code BEFORE_COMMIT} writes
         * commit with the key and whose {@code AFTER_COMMIT} work runs).
         *
         * <p>True: the request's whole transaction is rolled back (its synchronisations see a rollback),
         * and the key is stored with the refusal in a transaction of its own. Between the two the key is
         * free for a moment: a duplicate that claims it then runs anew, and this refusal is answered
         * without being stored ({@link IdempotencyOutcome.NotStored}). The Spring Boot starter sets it.
         *
         * @param apart whether a stored refusal rolls the request's transaction back and is stored in a
         *     transaction of its own; default false
         * @return this builder
         */
        public Builder refusalsInTransactionOfTheirOwn(boolean apart) {
            return refusalsInTransactionOfTheirOwn(() -> apart);
        }

        /**
         * Like {@link #refusalsInTransactionOfTheirOwn(boolean)}, asked at the start of each request: only
         * a request whose transaction is its own may be rolled back whole. One that joins a transaction of
         * its caller (a store called inside the caller's {@code @Transactional}) must not end the caller's
         * transaction; its refusal is rolled back to the savepoint. The Spring Boot starter passes
         * whether no Spring transaction is active yet.
         *
         * @param apart asked at each request: whether its stored refusal rolls its transaction back and is
         *     stored in a transaction of its own
         * @return this builder
         * @throws NullPointerException when it is null
         */
        public Builder refusalsInTransactionOfTheirOwn(BooleanSupplier apart) {
            this.refusalsInTransactionOfTheirOwn =
                    Objects.requireNonNull(apart, "refusalsInTransactionOfTheirOwn may not be null");
            return this;
        }

        /**
         * @return the store
         * @throws IllegalStateException when neither or both of {@link #dsl} and {@link #dataSource}
         *     were given
         */
        public IdempotencyStore build() {
            if (dsl == null && dataSource == null) {
                throw new IllegalStateException(
                        "IdempotencyStore needs a database: call dsl(DSLContext) or dataSource(DataSource)");
            }
            if (dsl != null && dataSource != null) {
                throw new IllegalStateException(
                        "IdempotencyStore got both dsl(...) and dataSource(...); give one: the DSLContext if it carries your transaction setup");
            }
            JooqVersionCheck.quiet();
            DSLContext context = dsl != null ? dsl : DSL.using(dataSource, SQLDialect.POSTGRES);
            return new JooqIdempotencyStore(
                    context,
                    schema,
                    lockTimeout,
                    retryAfter,
                    holdTimeout,
                    ttl,
                    clock,
                    purgeBatchSize,
                    meterRegistry,
                    name,
                    application,
                    onRollBackAndStore,
                    refusalsInTransactionOfTheirOwn);
        }
    }
}
