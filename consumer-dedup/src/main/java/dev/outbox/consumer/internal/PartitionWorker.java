package dev.outbox.consumer.internal;

import dev.outbox.consumer.DeadLetterHeaders;
import dev.outbox.consumer.FailureKind;
import dev.outbox.consumer.Message;
import dev.outbox.consumer.PermanentHandlerException;
import dev.outbox.consumer.TransientHandlerException;
import dev.outbox.core.OutboxHeaders;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.micrometer.core.instrument.Gauge;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.jooq.DSLContext;

/**
 * The work of one assigned partition: a queue of fetched records, processed strictly in offset
 * order by at most one worker thread at a time, one transaction (batch) per step.
 *
 * <p>The poll thread adds records and reads {@link #doneNext} (the offset after the last record
 * whose transaction committed) to commit it; a worker runs {@link #run()}, which holds {@link
 * #busy} while a transaction is in flight, so a revocation can wait for it.
 */
final class PartitionWorker implements Runnable {
  enum Next { IDLE, CONTINUE, DELAYED }

  /**
   * What one transaction did: its first {@code done} records settled (handled or duplicate) and
   * committed; {@code failure}, if any, is the handler failure of the record at {@code
   * failureIndex} ({@code >= done}; greater when the whole batch was rolled back).
   */
  record Outcome(int done, int handled, int duplicates, Throwable failure, int failureIndex, int replayed,
      int stale) {}

  final TopicPartition tp;
  final ReentrantLock busy = new ReentrantLock();
  final AtomicBoolean scheduled = new AtomicBoolean();
  final AtomicLong lag = new AtomicLong();
  volatile boolean revoked;
  /** Waiting for a retry (handler or infrastructure): the poll thread pauses the partition. */
  volatile boolean waiting;
  volatile long doneNext = -1;
  volatile long firstFetched = -1;

  // poll thread only
  long committed = -1;
  boolean paused;
  Gauge gauge;

  private final DedupConsumer owner;
  private final ArrayDeque<ConsumerRecord<byte[], byte[]>> queue = new ArrayDeque<>();

  // worker state, guarded by busy
  private int attempts;
  private Throwable lastFailure;
  private int infrastructureFailures;
  /** Transient handler failures in a row, for their backoff. */
  private int transientFailures;
  // when the head record first failed transiently (System.nanoTime), for maxTransientRetry
  private long transientSince;
  /** The head record failed permanently: dead-letter it without further attempts. */
  private boolean deadLetterNow;
  /** After a refused commit, records up to this offset run one per transaction, or -1. */
  private long isolateThrough = -1;
  private boolean headDeadLettered;
  /** The dead-letter topic refused the head for good: it is skipped without a copy. */
  private boolean headRefused;
  /** Offset of a record whose handler failed in a batch that was rolled back as a whole, or -1. */
  private long pendingFailureOffset = -1;
  private Throwable pendingFailure;

  PartitionWorker(DedupConsumer owner, TopicPartition tp) {
    this.owner = owner;
    this.tp = tp;
  }

  void enqueue(List<ConsumerRecord<byte[], byte[]>> records) {
    synchronized (queue) {
      if (firstFetched < 0 && !records.isEmpty()) {
        firstFetched = records.get(0).offset();
      }
      queue.addAll(records);
    }
  }

  int queued() {
    synchronized (queue) {
      return queue.size();
    }
  }

  void clear() {
    synchronized (queue) {
      queue.clear();
    }
  }

  private List<ConsumerRecord<byte[], byte[]>> peek(int max) {
    synchronized (queue) {
      List<ConsumerRecord<byte[], byte[]>> batch = new ArrayList<>(Math.min(max, queue.size()));
      for (ConsumerRecord<byte[], byte[]> r : queue) {
        if (batch.size() == max) {
          break;
        }
        batch.add(r);
      }
      return batch;
    }
  }

  private void complete(int count) {
    synchronized (queue) {
      long next = -1;
      for (int i = 0; i < count; i++) {
        ConsumerRecord<byte[], byte[]> done = queue.pollFirst();
        if (done == null) {
          break; // cleared by a revocation that stopped waiting for this transaction; nothing to commit
        }
        next = done.offset() + 1;
      }
      if (next >= 0) {
        doneNext = next;
      }
    }
  }

  @Override
  public void run() {
    Next next;
    busy.lock();
    try {
      if (revoked) {
        next = Next.IDLE;
      } else {
        waiting = false;
        next = step();
      }
    } catch (RuntimeException | Error e) {
      owner.log().error("{} unexpected failure on {}; retrying with backoff", owner.prefix(), tp, e);
      next = infrastructureDelay(new InfrastructureException("unexpected failure: " + e, e));
    } finally {
      busy.unlock();
    }
    owner.afterStep(this, next);
  }

  private Next step() {
    List<ConsumerRecord<byte[], byte[]>> batch = peek(owner.settings().maxRecordsPerTransaction());
    if (batch.isEmpty()) {
      return Next.IDLE;
    }
    ConsumerRecord<byte[], byte[]> head = batch.get(0);
    MessageIdResult headId = owner.extractId(head);
    if (headId.id() == null) {
      return deadLetter(head, headId.reason(), null, 0, null);
    }
    if (attempts >= owner.settings().maxAttempts() || deadLetterNow) {
      return deadLetter(head, DeadLetterHeaders.REASON_HANDLER_FAILED, lastFailure, attempts, headId.id());
    }
    if (isolateThrough >= 0 && head.offset() > isolateThrough) {
      isolateThrough = -1;
    }
    if (isolateThrough >= 0) {
      batch = batch.subList(0, 1);
    }
    List<UUID> ids = new ArrayList<>(batch.size());
    ids.add(headId.id());
    for (int i = 1; i < batch.size(); i++) {
      UUID id = owner.extractId(batch.get(i)).id();
      if (id == null) {
        break; // dead-lettered on its own, when it reaches the head
      }
      ids.add(id);
    }
    batch = batch.subList(0, ids.size());
    if (pendingFailureOffset >= 0 && head.offset() > pendingFailureOffset) {
      pendingFailureOffset = -1;
      pendingFailure = null;
    }
    if (pendingFailureOffset >= 0) {
      if (head.offset() == pendingFailureOffset) {
        Throwable failure = pendingFailure;
        pendingFailureOffset = -1;
        pendingFailure = null;
        return handlerFailed(head, headId.id(), failure);
      }
      int before = 0;
      while (before < batch.size() && batch.get(before).offset() < pendingFailureOffset) {
        before++;
      }
      batch = batch.subList(0, before);
      ids = ids.subList(0, before);
    }

    CircuitBreaker breaker = owner.databaseBreaker();
    if (!breaker.tryAcquirePermission()) {
      return infrastructureDelay(null);
    }
    long start = System.nanoTime();
    Outcome outcome;
    try {
      outcome = owner.settings().savepointPerRecord() ? processWithSavepoints(batch, ids) : process(batch, ids);
    } catch (InfrastructureException e) {
      breaker.onError(System.nanoTime() - start, TimeUnit.NANOSECONDS, e);
      return infrastructureDelay(e);
    } catch (CommitRefusedException e) {
      // the database works: what the transaction wrote made it fail
      breaker.onSuccess(System.nanoTime() - start, TimeUnit.NANOSECONDS);
      infrastructureFailures = 0;
      if (batch.size() > 1) {
        isolateThrough = batch.get(batch.size() - 1).offset();
        owner.log().warn("{} {} for the batch {}@{}..{}; redoing it one record per transaction to find the record that"
            + " causes it", owner.prefix(), e.getMessage(), tp, head.offset(), isolateThrough);
        return Next.CONTINUE;
      }
      // one record: its handler's writes are the cause; retried, then dead-lettered like a handler failure
      return handlerFailed(head, headId.id(), e.sqlException(), FailureKind.RETRY);
    } catch (RuntimeException | Error e) {
      breaker.releasePermission(); // or a half-open breaker would wait for this call forever
      throw e;
    }
    breaker.onSuccess(System.nanoTime() - start, TimeUnit.NANOSECONDS);
    infrastructureFailures = 0;
    // counted before the offsets become committable, so a committed offset is never ahead of them
    owner.metrics().handled.increment(outcome.handled());
    owner.metrics().duplicates.increment(outcome.duplicates());
    owner.metrics().replayed.increment(outcome.replayed());
    owner.metrics().stale.increment(outcome.stale());
    if (outcome.done() > 0) {
      complete(outcome.done());
      attempts = 0;
      lastFailure = null;
      headDeadLettered = false;
      transientFailures = 0;
    }
    if (outcome.failure() == null) {
      return Next.CONTINUE;
    }
    if (outcome.failureIndex() > outcome.done()) {
      // the batch was rolled back as a whole: commit the records before the failing one first
      pendingFailureOffset = batch.get(outcome.failureIndex()).offset();
      pendingFailure = outcome.failure();
      return Next.CONTINUE;
    }
    return handlerFailed(batch.get(outcome.done()), ids.get(outcome.done()), outcome.failure());
  }

  private Next handlerFailed(ConsumerRecord<byte[], byte[]> failed, UUID failedId, Throwable failure) {
    return handlerFailed(failed, failedId, failure, classify(failure));
  }

  private Next handlerFailed(ConsumerRecord<byte[], byte[]> failed, UUID failedId, Throwable failure,
      FailureKind kind) {
    if (kind == FailureKind.TRANSIENT) {
      long now = System.nanoTime();
      if (transientFailures == 0) {
        transientSince = now;
      }
      if (now - transientSince >= owner.settings().maxTransientRetry().toNanos()) {
        attempts++;
        lastFailure = failure;
        deadLetterNow = true;
        owner.log().warn("{} message {} ({}@{}) failed transiently {} time(s) for longer than maxTransientRetry ({}):"
            + " dead-lettering it", owner.prefix(), failedId, tp, failed.offset(), transientFailures,
            owner.settings().maxTransientRetry(), failure);
        return Next.CONTINUE;
      }
      lastFailure = failure;
      Duration delay = owner.settings().backoff().delay(Math.min(transientFailures, 30));
      transientFailures++;
      owner.metrics().transientRetries.increment();
      owner.log().warn("{} transient failure on message {} ({}@{}), {} in a row; retrying in {} ms without using an"
          + " attempt: {}", owner.prefix(), failedId, tp, failed.offset(), transientFailures, delay.toMillis(),
          failure.toString());
      return delayed(delay);
    }
    attempts++;
    lastFailure = failure;
    if (kind == FailureKind.PERMANENT) {
      deadLetterNow = true;
      owner.log().warn("{} handler failed permanently on message {} ({}@{}); dead-lettering it", owner.prefix(),
          failedId, tp, failed.offset(), failure);
      return Next.CONTINUE;
    }
    int maxAttempts = owner.settings().maxAttempts();
    if (attempts >= maxAttempts) {
      owner.log().warn("{} handler failed on message {} ({}@{}) {} time(s), the maximum; dead-lettering it",
          owner.prefix(), failedId, tp, failed.offset(), attempts, failure);
      return Next.CONTINUE;
    }
    Duration delay = owner.settings().backoff().delay(attempts - 1);
    owner.metrics().handlerRetries.increment();
    owner.settings().hooks().retryScheduled(failedId, attempts, delay);
    owner.log().warn("{} handler failed on message {} ({}@{}), attempt {} of {}; retrying in {} ms: {}",
        owner.prefix(), failedId, tp, failed.offset(), attempts, maxAttempts, delay.toMillis(), failure.toString());
    return delayed(delay);
  }

  /**
   * What a handler failure means: lock contention raised by the handler's statements passes by
   * itself; otherwise the configured classifier decides, then the marker exceptions, then {@link
   * FailureKind#RETRY}.
   */
  private FailureKind classify(Throwable failure) {
    if (SqlErrors.isContention(failure)) {
      return FailureKind.TRANSIENT;
    }
    Function<Throwable, FailureKind> classifier = owner.settings().failureClassifier();
    if (classifier != null) {
      try {
        FailureKind kind = classifier.apply(failure);
        if (kind != null) {
          return kind;
        }
      } catch (RuntimeException e) {
        owner.log().warn("{} failureClassifier threw on {}; treating the failure as RETRY", owner.prefix(), failure, e);
        return FailureKind.RETRY;
      }
    }
    int depth = 0;
    for (Throwable t = failure; t != null && depth < 32; t = t.getCause(), depth++) {
      if (t instanceof PermanentHandlerException) {
        return FailureKind.PERMANENT;
      }
      if (t instanceof TransientHandlerException) {
        return FailureKind.TRANSIENT;
      }
    }
    return FailureKind.RETRY;
  }

  /** Whether the record asks to be handled again although its id was dead-lettered. */
  private static boolean isReplay(ConsumerRecord<byte[], byte[]> record) {
    Header header = record.headers().lastHeader(DeadLetterHeaders.REPLAY);
    return header != null && header.value() != null
        && "true".equalsIgnoreCase(new String(header.value(), StandardCharsets.UTF_8).strip());
  }

  /**
   * Whether the record is older than the retention of processed ids, so that its id may have been
   * purged and a copy processed before would not be recognised. Its age is read from the outbox's
   * created-at header, else from the record's timestamp.
   */
  private boolean isStale(ConsumerRecord<byte[], byte[]> record) {
    long born = record.timestamp();
    Header header = record.headers().lastHeader(OutboxHeaders.CREATED_AT);
    if (header != null && header.value() != null) {
      try {
        born = Instant.parse(new String(header.value(), StandardCharsets.UTF_8)).toEpochMilli();
      } catch (DateTimeParseException e) {
        // the record's timestamp then
      }
    }
    return born > 0 && System.currentTimeMillis() - born > owner.settings().retention().toMillis();
  }

  private void warnStale(ConsumerRecord<byte[], byte[]> record, UUID id) {
    owner.log().warn("{} message {} ({}@{}) is older than the retention of processed ids ({}): its id may have been"
        + " purged, so it is handled as new; if it was processed before, this applies it again (logged for the first"
        + " such message of a transaction; outbox.consumer.stale counts them all)", owner.prefix(), id, tp,
        record.offset(), owner.settings().retention());
  }

  /**
   * One transaction over {@code batch}, optimistic: one statement inserts every dedup row, then the
   * handlers run without savepoints. When a handler fails, the whole transaction rolls back (the
   * records before it are then redone, and their handlers called again) and the failure is
   * reported at its index.
   */
  private Outcome process(List<ConsumerRecord<byte[], byte[]>> batch, List<UUID> ids)
      throws InfrastructureException, CommitRefusedException {
    return inTransaction((connection, tx) -> {
      Set<UUID> replay = new HashSet<>();
      for (int i = 0; i < batch.size(); i++) {
        if (isReplay(batch.get(i))) {
          replay.add(ids.get(i));
        }
      }
      Set<UUID> fresh = owner.database().insertProcessed(connection, owner.settings().consumerName(), ids, replay);
      int handled = 0;
      int duplicates = 0;
      int replayed = 0;
      int stale = 0;
      for (int i = 0; i < batch.size(); i++) {
        UUID id = ids.get(i);
        if (!fresh.remove(id)) { // processed before, or an earlier copy in this batch
          duplicates++;
          continue;
        }
        Throwable thrown = handle(connection, tx, batch.get(i), id);
        if (thrown != null) {
          connection.rollback();
          return new Outcome(0, 0, 0, thrown, i, 0, 0);
        }
        handled++;
        replayed += replay.contains(id) ? 1 : 0;
        if (isStale(batch.get(i)) && stale++ == 0) { // the first of a transaction: a replay can hold thousands
          warnStale(batch.get(i), id);
        }
      }
      commit(connection);
      return new Outcome(batch.size(), handled, duplicates, null, -1, replayed, stale);
    });
  }

  /**
   * Commits; a refusal that is not a lost connection (after which the commit's fate is unknown and
   * the whole batch is redone) is blamed on what the transaction wrote.
   */
  private static void commit(Connection connection) throws SQLException, CommitRefusedException {
    try {
      connection.commit();
    } catch (SQLException e) {
      if (SqlErrors.isTransient(e) && !SqlErrors.isContention(e)) {
        throw e;
      }
      throw new CommitRefusedException(e);
    }
  }

  /** The work of one transaction; it ends the transaction (commit or rollback) before it returns. */
  @FunctionalInterface
  private interface TransactionWork {
    Outcome run(Connection connection, DSLContext tx)
        throws SQLException, InfrastructureException, CommitRefusedException;
  }

  /**
   * Runs {@code work} on a pooled connection in manual-commit mode. When the work throws, the
   * transaction is rolled back; a {@link SQLException} becomes an {@link InfrastructureException}
   * (the database's failure, not the handler's). The connection goes back to the pool in the
   * auto-commit mode it came in.
   */
  private Outcome inTransaction(TransactionWork work) throws InfrastructureException, CommitRefusedException {
    Database db = owner.database();
    Connection connection = acquire(db);
    boolean restoreAutoCommit = false;
    boolean finished = false;
    try {
      if (connection.getAutoCommit()) {
        connection.setAutoCommit(false);
        restoreAutoCommit = true;
      }
      Outcome outcome = work.run(connection, db.handlerContext(connection));
      finished = true;
      return outcome;
    } catch (SQLException e) {
      throw new InfrastructureException("database failure (SQLState " + e.getSQLState() + "): " + e.getMessage(), e);
    } finally {
      finish(db, connection, finished, restoreAutoCommit);
    }
  }

  /**
   * Calls the handler and checks the transaction is still usable.
   *
   * @return the handler's failure, or null
   * @throws InfrastructureException when the failure is the database's, not the handler's
   */
  private Throwable handle(Connection connection, DSLContext tx, ConsumerRecord<byte[], byte[]> record, UUID id)
      throws InfrastructureException {
    Throwable thrown = callHandler(owner.toMessage(record, id), tx);
    if (thrown == null && Database.transactionFailed(connection)) {
      thrown = new IllegalStateException("the handler of message " + id + " returned normally, but a statement"
          + " in its transaction failed and the exception was not rethrown; its writes were rolled back");
    }
    if (thrown instanceof InterruptedException) {
      Thread.currentThread().interrupt();
      throw new InfrastructureException("interrupted in the handler of message " + id, thrown);
    }
    if (thrown != null && SqlErrors.isTransient(thrown) && !SqlErrors.isContention(thrown)) {
      throw new InfrastructureException("database failure in the handler of message " + id + " (SQLState "
          + SqlErrors.sqlState(thrown) + "): " + thrown.getMessage(), thrown);
    }
    return thrown;
  }

  private static Connection acquire(Database db) throws InfrastructureException {
    try {
      return db.acquire();
    } catch (SQLException e) {
      throw new InfrastructureException("cannot get a database connection: " + e.getMessage(), e);
    }
  }

  private static void finish(Database db, Connection connection, boolean finished, boolean restoreAutoCommit) {
    if (!finished) {
      try {
        connection.rollback();
      } catch (SQLException | RuntimeException ignored) {
        // the connection is broken; the pool discards it
      }
    }
    if (restoreAutoCommit) {
      try {
        connection.setAutoCommit(true);
      } catch (SQLException | RuntimeException ignored) {
        // as above
      }
    }
    db.release(connection);
  }

  /**
   * One transaction over {@code batch}, each record inside its own savepoint: a failing handler
   * rolls back only its record, and the records before it commit without being redone.
   */
  private Outcome processWithSavepoints(List<ConsumerRecord<byte[], byte[]>> batch, List<UUID> ids)
      throws InfrastructureException, CommitRefusedException {
    Database db = owner.database();
    String consumer = owner.settings().consumerName();
    return inTransaction((connection, tx) -> {
      boolean savepoints = batch.size() > 1;
      int done = 0;
      int handled = 0;
      int duplicates = 0;
      int replayed = 0;
      int stale = 0;
      Throwable failure = null;
      for (int i = 0; i < batch.size(); i++) {
        UUID id = ids.get(i);
        boolean replay = isReplay(batch.get(i));
        if (!db.insertProcessed(connection, consumer, id, savepoints, replay)) {
          duplicates++;
          done = i + 1;
          continue;
        }
        Throwable thrown = handle(connection, tx, batch.get(i), id);
        if (thrown != null) {
          if (savepoints) {
            db.rollbackToSavepoint(connection);
          }
          failure = thrown;
          break;
        }
        handled++;
        done = i + 1;
        replayed += replay ? 1 : 0;
        if (isStale(batch.get(i)) && stale++ == 0) { // the first of a transaction: a replay can hold thousands
          warnStale(batch.get(i), id);
        }
      }
      if (done == 0) {
        connection.rollback();
      } else {
        commit(connection);
      }
      return new Outcome(done, handled, duplicates, failure, failure == null ? -1 : done, replayed, stale);
    });
  }

  private Throwable callHandler(Message message, DSLContext tx) {
    long start = System.nanoTime();
    try {
      owner.settings().handler().handle(message, tx);
      return null;
    } catch (Throwable t) {
      // an Error of the handler (an assertion, a class that fails to initialise, a deep recursion) is
      // its failure like an exception; only a JVM in trouble (out of memory) is not the record's fault
      if (t instanceof VirtualMachineError && !(t instanceof StackOverflowError)) {
        throw (VirtualMachineError) t;
      }
      return t;
    } finally {
      owner.metrics().handlerTimer.record(System.nanoTime() - start, TimeUnit.NANOSECONDS);
    }
  }

  private Next deadLetter(ConsumerRecord<byte[], byte[]> record, String reason, Throwable failure, int attempts,
      UUID id) {
    if (!headDeadLettered) {
      CircuitBreaker breaker = owner.deadLetterBreaker();
      if (!breaker.tryAcquirePermission()) {
        return infrastructureDelay(null);
      }
      long start = System.nanoTime();
      try {
        owner.deadLetters().publish(record, reason, failure, attempts);
      } catch (InfrastructureException e) {
        breaker.onError(System.nanoTime() - start, TimeUnit.NANOSECONDS, e);
        return infrastructureDelay(e);
      } catch (DeadLetterRefusedException e) {
        breaker.onSuccess(System.nanoTime() - start, TimeUnit.NANOSECONDS); // the broker answered
        headRefused = true;
        owner.metrics().deadLetterRefused.increment();
        owner.log().error("{} {}; skipping {}@{} (message id {}, {}) without a dead-letter copy: read it from the source"
            + " topic at that offset while the topic keeps it", owner.prefix(), e.getMessage(), tp, record.offset(), id,
            reason, failure);
      } catch (RuntimeException | Error e) {
        breaker.releasePermission();
        throw e;
      }
      if (!headRefused) {
        breaker.onSuccess(System.nanoTime() - start, TimeUnit.NANOSECONDS);
      }
      headDeadLettered = true;
    }
    if (id != null) {
      try {
        owner.database().insertDeadLettered(owner.settings().consumerName(), id);
      } catch (SQLException e) {
        return infrastructureDelay(new InfrastructureException("recording dead-lettered message " + id
            + " failed (SQLState " + e.getSQLState() + "): " + e.getMessage(), e));
      }
    }
    if (!headRefused) {
      switch (reason) {
        case DeadLetterHeaders.REASON_MISSING_MESSAGE_ID -> owner.metrics().deadLetteredMissingId.increment();
        case DeadLetterHeaders.REASON_INVALID_MESSAGE_ID -> owner.metrics().deadLetteredInvalidId.increment();
        default -> owner.metrics().deadLetteredHandlerFailed.increment();
      }
      owner.log().warn("{} dead-lettered {}@{} (message id {}) to {}: {}", owner.prefix(), tp, record.offset(),
          id, owner.deadLetters().topicFor(record.topic()), reason);
    }
    complete(1);
    this.attempts = 0;
    this.lastFailure = null;
    this.headDeadLettered = false;
    this.headRefused = false;
    this.deadLetterNow = false;
    infrastructureFailures = 0;
    transientFailures = 0;
    return Next.CONTINUE;
  }

  /** @param failure what failed, or null when a circuit breaker refused the attempt */
  private Next infrastructureDelay(InfrastructureException failure) {
    Duration delay = owner.settings().backoff().delay(Math.min(infrastructureFailures, 30));
    infrastructureFailures++;
    owner.metrics().infrastructureRetries.increment();
    if (failure != null) {
      owner.log().warn("{} {} on {} (failure {} in a row); retrying in {} ms", owner.prefix(), failure.getMessage(), tp,
          infrastructureFailures, delay.toMillis());
    } else {
      owner.log().debug("{} circuit breaker open; {} waits {} ms", owner.prefix(), tp, delay.toMillis());
    }
    return delayed(delay);
  }

  private Next delayed(Duration delay) {
    waiting = true;
    return owner.scheduleLater(this, delay) ? Next.DELAYED : Next.IDLE;
  }

  /** A record's message id, or why it has none. */
  record MessageIdResult(UUID id, String reason) {}
}
