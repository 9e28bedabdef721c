package dev.outbox.http.server.internal;

import dev.outbox.core.internal.Json;
import static dev.outbox.migrations.jooq.Tables.IDEMPOTENCY_KEY;

import dev.outbox.http.server.BusinessCall;
import dev.outbox.http.server.IdempotencyOutcome;
import dev.outbox.http.server.IdempotencyRequest;
import dev.outbox.http.server.IdempotencyStore;
import dev.outbox.http.server.StoredResponse;
import dev.outbox.migrations.OutboxMigrations;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Clock;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.Objects;
import org.jooq.Configuration;
import org.jooq.DSLContext;
import org.jooq.JSONB;
import org.jooq.Record5;
import org.jooq.conf.Settings;
import org.jooq.conf.SettingsTools;
import org.jooq.exception.DataAccessException;
import org.jooq.impl.DSL;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** {@link IdempotencyStore} on jOOQ and PostgreSQL. */
public final class JooqIdempotencyStore implements IdempotencyStore {
  private static final Logger LOG = LoggerFactory.getLogger(JooqIdempotencyStore.class);
  private static final String LOCK_NOT_AVAILABLE = "55P03";
  /** Rounds of insert / find / delete-expired before giving up with 409; each round needs a racing writer. */
  private static final int MAX_ROUNDS = 3;

  private final DSLContext dsl;
  private final Settings mapping;
  private final String lockTimeout;
  private final Duration retryAfter;
  private final Duration ttl;
  private final Clock clock;
  private final int purgeBatchSize;
  private final String log;
  private final Counter executed;
  private final Counter replayed;
  private final Counter conflict;
  private final Counter mismatch;
  private final Counter notStored;
  private final Counter failed;

  public JooqIdempotencyStore(
      DSLContext dsl, String schema, Duration lockTimeout, Duration retryAfter, Duration ttl, Clock clock,
      int purgeBatchSize, MeterRegistry registry, String name) {
    this.dsl = dsl;
    this.mapping = OutboxMigrations.jooqSettings(schema);
    this.lockTimeout = lockTimeout.toMillis() + "ms";
    this.retryAfter = retryAfter;
    this.ttl = ttl;
    this.clock = clock;
    this.purgeBatchSize = purgeBatchSize;
    this.log = "[idempotency-store " + name + "] ";
    this.executed = counter(registry, name, "executed");
    this.replayed = counter(registry, name, "replayed");
    this.conflict = counter(registry, name, "conflict");
    this.mismatch = counter(registry, name, "mismatch");
    this.notStored = counter(registry, name, "not_stored");
    this.failed = counter(registry, name, "failed");
  }

  private static Counter counter(MeterRegistry registry, String name, String outcome) {
    return Counter.builder(METRIC)
        .description("Requests with an Idempotency-Key, by outcome")
        .tag("store", name)
        .tag("outcome", outcome)
        .register(registry);
  }

  @Override
  public <X extends Exception> IdempotencyOutcome execute(IdempotencyRequest request, BusinessCall<X> call) throws X {
    Objects.requireNonNull(request, "request may not be null");
    Objects.requireNonNull(call, "call may not be null");
    IdempotencyOutcome outcome;
    try {
      outcome = dsl.transactionResult(cfg -> inTransaction(cfg, request, call));
    } catch (Rollback r) {
      outcome = r.outcome;
    } catch (CallFailed f) {
      failed.increment();
      @SuppressWarnings("unchecked")
      X cause = (X) f.getCause();
      throw cause;
    } catch (RuntimeException e) {
      failed.increment();
      throw e;
    }
    switch (outcome) {
      case IdempotencyOutcome.Executed e -> executed.increment();
      case IdempotencyOutcome.Replayed r -> replayed.increment();
      case IdempotencyOutcome.Mismatch m -> mismatch.increment();
      case IdempotencyOutcome.InFlight f -> conflict.increment();
      case IdempotencyOutcome.NotStored n -> notStored.increment();
    }
    if (LOG.isDebugEnabled()) {
      LOG.debug("{}{} key {} in scope {}", log, outcome.getClass().getSimpleName(), request.key(), request.scope());
    }
    return outcome;
  }

  private IdempotencyOutcome inTransaction(Configuration cfg, IdempotencyRequest request, BusinessCall<?> call) {
    DSLContext caller = cfg.dsl();
    DSLContext db = DSL.using(cfg.derive(withMapping(caller.settings())));
    String previousLockTimeout;
    try {
      // offset 0 keeps the subquery from being flattened, so the old value is read before the set
      previousLockTimeout = db.resultQuery(
              "select s.old, set_config('lock_timeout', {0}, true) from (select current_setting('lock_timeout') as old offset 0) s",
              DSL.val(lockTimeout))
          .fetchSingle()
          .get(0, String.class);
      IdempotencyOutcome decided = claim(db, request);
      if (decided != null) {
        return decided;
      }
      db.resultQuery("select set_config('lock_timeout', {0}, true)", DSL.val(previousLockTimeout)).fetch();
    } catch (DataAccessException e) {
      if (LOCK_NOT_AVAILABLE.equals(e.sqlState())) {
        // the transaction is aborted; roll it back and tell the client to come back
        throw new Rollback(new IdempotencyOutcome.InFlight(retryAfter));
      }
      throw e;
    }
    StoredResponse response;
    try {
      response = call.execute(caller);
    } catch (RuntimeException e) {
      throw e;
    } catch (Exception e) {
      throw new CallFailed(e);
    }
    Objects.requireNonNull(response, "the business call returned null; return the StoredResponse to send");
    if (response.status() >= 500) {
      throw new Rollback(new IdempotencyOutcome.NotStored(response));
    }
    db.update(IDEMPOTENCY_KEY)
        .set(IDEMPOTENCY_KEY.RESPONSE_STATUS, response.status())
        .set(IDEMPOTENCY_KEY.RESPONSE_HEADERS, JSONB.valueOf(Json.writeLists(response.headers())))
        .set(IDEMPOTENCY_KEY.RESPONSE_BODY, response.body())
        .where(IDEMPOTENCY_KEY.SCOPE.eq(request.scope()), IDEMPOTENCY_KEY.IDEM_KEY.eq(request.key()))
        .execute();
    return new IdempotencyOutcome.Executed(response);
  }

  /**
   * Inserts the key row, or decides the outcome from the committed row that holds the key.
   *
   * @return null when this transaction now holds the key and the call must run
   */
  private IdempotencyOutcome claim(DSLContext db, IdempotencyRequest request) {
    for (int round = 0; round < MAX_ROUNDS; round++) {
      OffsetDateTime now = OffsetDateTime.now(clock).withOffsetSameInstant(ZoneOffset.UTC);
      boolean inserted = db.insertInto(IDEMPOTENCY_KEY)
          .set(IDEMPOTENCY_KEY.SCOPE, request.scope())
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
      Record5<String, Integer, JSONB, byte[], OffsetDateTime> existing = db
          .select(IDEMPOTENCY_KEY.FINGERPRINT, IDEMPOTENCY_KEY.RESPONSE_STATUS, IDEMPOTENCY_KEY.RESPONSE_HEADERS,
              IDEMPOTENCY_KEY.RESPONSE_BODY, IDEMPOTENCY_KEY.EXPIRES_AT)
          .from(IDEMPOTENCY_KEY)
          .where(IDEMPOTENCY_KEY.SCOPE.eq(request.scope()), IDEMPOTENCY_KEY.IDEM_KEY.eq(request.key()))
          .fetchOne();
      if (existing == null) {
        continue; // purged or replaced after expiry between the two statements: try the insert again
      }
      if (!existing.value5().isAfter(now)) {
        // expired keys count as absent; the condition keeps a concurrent fresh row safe
        db.deleteFrom(IDEMPOTENCY_KEY)
            .where(IDEMPOTENCY_KEY.SCOPE.eq(request.scope()), IDEMPOTENCY_KEY.IDEM_KEY.eq(request.key()),
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
          headers == null ? java.util.Map.of() : Json.readLists(headers.data()),
          body == null ? new byte[0] : body));
    }
    LOG.warn("{}key {} in scope {} changed hands {} times in one request; answering 409", log, request.key(), request.scope(), MAX_ROUNDS);
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
      int deleted = db.transactionResult(cfg -> DSL.using(cfg).deleteFrom(IDEMPOTENCY_KEY)
          .where(DSL.row(IDEMPOTENCY_KEY.SCOPE, IDEMPOTENCY_KEY.IDEM_KEY).in(batch))
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

  /** Rolls the transaction back and carries the outcome out of it. */
  private static final class Rollback extends RuntimeException {
    final transient IdempotencyOutcome outcome;

    Rollback(IdempotencyOutcome outcome) {
      super(null, null, false, false);
      this.outcome = outcome;
    }
  }

  /** Carries a checked exception of the business call through jOOQ's transaction. */
  private static final class CallFailed extends RuntimeException {
    CallFailed(Exception cause) {
      super(cause.getMessage(), cause, false, false);
    }
  }

}
