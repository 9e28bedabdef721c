package dev.outbox.http.server;

import dev.outbox.core.internal.Checks;
import dev.outbox.http.server.internal.JooqIdempotencyStore;
import dev.outbox.migrations.OutboxMigrations;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Metrics;
import java.time.Clock;
import java.time.Duration;
import java.util.Objects;
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
 *   <li>{@code SET LOCAL lock_timeout} to {@link Builder#lockTimeout} (for the key statements only;
 *       the business call runs with the session's own setting);
 *   <li>insert the key row ({@code INSERT ... ON CONFLICT DO NOTHING}). The primary key decides
 *       races: a second request with the same key waits on the first one's uncommitted row, never
 *       a check-then-insert;
 *   <li>if the row was inserted: run the {@link BusinessCall} with the same transaction, store its
 *       response in the key row, commit. Key, business rows, outbox rows and response commit
 *       together or not at all;
 *   <li>if a committed row exists: same fingerprint → {@link IdempotencyOutcome.Replayed}; another
 *       fingerprint → {@link IdempotencyOutcome.Mismatch}; expired → deleted (only if still expired)
 *       and the key is used anew;
 *   <li>if another transaction holds the key longer than the lock timeout (SQLState 55P03) →
 *       {@link IdempotencyOutcome.InFlight}.
 * </ol>
 *
 * <p>A call that throws rolls back (no key, no business row, no outbox row) and the exception
 * propagates; a call that returns a status of 500 or more also rolls back and yields {@link
 * IdempotencyOutcome.NotStored}. Either way a retry with the same key runs anew. Responses with
 * 2xx, 3xx and 4xx status are stored and replayed: a 4xx is the answer to that request, and
 * replaying it is what the client asked for by reusing the key.
 *
 * <p>Run it at PostgreSQL's default isolation, READ COMMITTED: at REPEATABLE READ or above, a
 * request that meets a key committed after its snapshot fails with a serialization error instead
 * of replaying. Metrics: counter {@value #METRIC} tagged {@code store} and {@code outcome} ({@code
 * executed}, {@code replayed}, {@code conflict}, {@code mismatch}, {@code not_stored}, {@code
 * failed}). Thread-safe.
 */
public interface IdempotencyStore {

  /** The name of the counter of requests by outcome. */
  String METRIC = "outbox.idempotency.requests";

  /** @return a builder with the defaults documented on each setter */
  static Builder builder() {
    return new Builder();
  }

  /**
   * Runs {@code call} once for the request's key, or answers without running it.
   *
   * @param request scope, key and fingerprint
   * @param call the request's work, run inside the key's transaction
   * @param <X> the checked exception the call may throw
   * @return what happened
   * @throws X when the call throws it; nothing of the request remains
   * @throws NullPointerException when an argument is null, or the call returns null
   * @throws org.jooq.exception.DataAccessException when the database fails (SQLState kept), for
   *     example when no connection is available or the commit fails; nothing is stored then
   */
  <X extends Exception> IdempotencyOutcome execute(IdempotencyRequest request, BusinessCall<X> call) throws X;

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

  /** Builds an {@link IdempotencyStore}. Not thread-safe; the built store is. */
  final class Builder {
    private DSLContext dsl;
    private DataSource dataSource;
    private String schema = OutboxMigrations.DEFAULT_SCHEMA;
    private Duration lockTimeout = Duration.ofSeconds(2);
    private Duration retryAfter = Duration.ofSeconds(1);
    private Duration ttl = Duration.ofHours(24);
    private Clock clock = Clock.systemUTC();
    private int purgeBatchSize = 1000;
    private MeterRegistry meterRegistry = Metrics.globalRegistry;
    private String name = "default";

    private Builder() {}

    /**
     * @param dsl the jOOQ context whose transactions the store uses (for example one bound to
     *     Spring's transaction manager); the business call gets the transaction with these
     *     settings. Give this or {@link #dataSource}, not both.
     * @return this builder
     */
    public Builder dsl(DSLContext dsl) {
      this.dsl = Objects.requireNonNull(dsl, "dsl may not be null");
      return this;
    }

    /**
     * @param dataSource the PostgreSQL data source; the store uses plain jOOQ transactions on it.
     *     Give this or {@link #dsl}, not both.
     * @return this builder
     */
    public Builder dataSource(DataSource dataSource) {
      this.dataSource = Objects.requireNonNull(dataSource, "dataSource may not be null");
      return this;
    }

    /**
     * @param schema the schema the outbox migrations were applied to; default {@code outbox}
     * @return this builder
     * @throws IllegalArgumentException when it is not a plain SQL identifier
     */
    public Builder schema(String schema) {
      this.schema = OutboxMigrations.requireValidSchema(schema);
      return this;
    }

    /**
     * @param lockTimeout how long a request waits for another transaction that holds the same key
     *     before it gets {@link IdempotencyOutcome.InFlight} (409); default 2 s. Waiting a little
     *     lets a duplicate that arrives while the first request is finishing get the replay instead
     *     of a 409; waiting long holds a connection per waiting duplicate.
     * @return this builder
     * @throws IllegalArgumentException when it is not between 1 ms and 10 minutes
     */
    public Builder lockTimeout(Duration lockTimeout) {
      Objects.requireNonNull(lockTimeout, "lockTimeout may not be null");
      if (lockTimeout.toMillis() < 1 || lockTimeout.compareTo(Duration.ofMinutes(10)) > 0) {
        throw new IllegalArgumentException(
            "lockTimeout must be between 1 ms and 10 minutes, got " + lockTimeout + "; the default is 2 s");
      }
      this.lockTimeout = lockTimeout;
      return this;
    }

    /**
     * @param retryAfter what {@link IdempotencyOutcome.InFlight} tells the client to wait; sent as
     *     {@code Retry-After} in whole seconds, rounded up; default 1 s
     * @return this builder
     * @throws IllegalArgumentException when it is negative or longer than 1 hour
     */
    public Builder retryAfter(Duration retryAfter) {
      Objects.requireNonNull(retryAfter, "retryAfter may not be null");
      if (retryAfter.isNegative() || retryAfter.compareTo(Duration.ofHours(1)) > 0) {
        throw new IllegalArgumentException("retryAfter must be between 0 and 1 hour, got " + retryAfter + "; the default is 1 s");
      }
      this.retryAfter = retryAfter;
      return this;
    }

    /**
     * @param ttl how long a key is remembered after its request; default 24 h. A key reused after
     *     that runs anew. Pick it longer than any client's retry horizon.
     * @return this builder
     * @throws IllegalArgumentException when it is not positive
     */
    public Builder ttl(Duration ttl) {
      this.ttl = Checks.requirePositive(ttl, "ttl", "; the default is 24 h");
      return this;
    }

    /**
     * @param clock the clock that stamps {@code expires_at} and judges expiry; default the system
     *     UTC clock. Expiry follows the application servers' clocks, so keep them in sync (NTP);
     *     seconds of skew are immaterial against a TTL of hours.
     * @return this builder
     */
    public Builder clock(Clock clock) {
      this.clock = Objects.requireNonNull(clock, "clock may not be null");
      return this;
    }

    /**
     * @param purgeBatchSize keys deleted per statement by {@link #purgeExpired()}; default 1000.
     *     Small batches keep each delete's locks and WAL burst short.
     * @return this builder
     * @throws IllegalArgumentException when it is not between 1 and 100,000
     */
    public Builder purgeBatchSize(int purgeBatchSize) {
      this.purgeBatchSize = Checks.requireBetween(purgeBatchSize, 1, 100_000, "purgeBatchSize", "");
      return this;
    }

    /**
     * @param meterRegistry where the counters go; default Micrometer's global registry
     * @return this builder
     */
    public Builder meterRegistry(MeterRegistry meterRegistry) {
      this.meterRegistry = Objects.requireNonNull(meterRegistry, "meterRegistry may not be null");
      return this;
    }

    /**
     * @param name names this store in log lines and in the metrics' {@code store} tag; default
     *     {@code default}
     * @return this builder
     * @throws IllegalArgumentException when it is empty
     */
    public Builder name(String name) {
      this.name = Checks.requireNonBlank(name, "name");
      return this;
    }

    /**
     * @return the store
     * @throws IllegalStateException when neither or both of {@link #dsl} and {@link #dataSource}
     *     were given
     */
    public IdempotencyStore build() {
      if (dsl == null && dataSource == null) {
        throw new IllegalStateException("IdempotencyStore needs a database: call dsl(DSLContext) or dataSource(DataSource)");
      }
      if (dsl != null && dataSource != null) {
        throw new IllegalStateException(
            "IdempotencyStore got both dsl(...) and dataSource(...); give one: the DSLContext if it carries your transaction setup");
      }
      DSLContext context = dsl != null ? dsl : DSL.using(dataSource, SQLDialect.POSTGRES);
      return new JooqIdempotencyStore(
          context, schema, lockTimeout, retryAfter, ttl, clock, purgeBatchSize, meterRegistry, name);
    }
  }
}
