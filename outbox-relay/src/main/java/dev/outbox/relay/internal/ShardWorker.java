package dev.outbox.relay.internal;

import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.internal.Json;
import dev.outbox.relay.ParkPolicy;
import java.nio.charset.StandardCharsets;
import java.sql.SQLException;
import java.time.Duration;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.errors.InterruptException;

/**
 * The batch loop of one leased shard at one epoch. It runs as short tasks on the relay's worker pool
 * and never holds a thread while waiting for acks or sleeping: at most one task of a shard is queued
 * or running at a time ({@link #busy}).
 *
 * <p>One round: read up to batchSize publishable rows in id order; send them all; while the acks
 * come in, read the next rows (excluding the ones in flight); once every record is answered, delete
 * the acknowledged rows in one statement fenced by the lease, park the poison ones, and go on. After
 * a retriable failure nothing read ahead is kept: the next round re-reads what is left in the table,
 * so a key's rows always leave in id order.
 */
final class ShardWorker {
  private static final DateTimeFormatter CREATED_AT =
      DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSSSS'Z'").withZone(ZoneOffset.UTC);
  private static final long MIN_POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(10);
  /** While topics are held, a read may take up to this many batches of held rows besides a batch to send. */
  static final int HELD_WINDOW_BATCHES = 10;

  final int shard;
  final long epoch;
  final LeaseClock lease;
  private final RelayEngine engine;
  private final RelayConfig config;
  private final boolean holdKey;
  private final ShardPublisher publisher;

  // guarded by this
  private boolean busy;
  private boolean stopping;
  private boolean wakePending;
  private boolean wakeable;
  private ScheduledFuture<?> timer;
  private final CompletableFuture<Void> stopped = new CompletableFuture<>();

  // confined to the one running task
  private List<OutboxRow> prefetched;
  private long pollNanos = MIN_POLL_NANOS;
  private int attempt;
  // rows the last batch held (their topic without metadata): the next read takes as many more
  private int heldSeen;
  // reads that found rows and reads that found none, for the probe
  private volatile long rowReads;
  private volatile long emptyReads;
  // every publishable row up to this id was read and held (its topic has no metadata): the probe
  // asks only about rows above it; a row that commits late below it waits for the shard's own poll
  private volatile long heldUpTo = Long.MIN_VALUE;
  private boolean permitHeld;
  private final LeaderlessKeys leaderless = new LeaderlessKeys();

  ShardWorker(RelayEngine engine, int shard, long epoch, long claimStartedNanos) {
    this.engine = engine;
    this.config = engine.config();
    this.shard = shard;
    this.epoch = epoch;
    this.lease = new LeaseClock(config.leaseDuration(), claimStartedNanos);
    this.holdKey = config.parkPolicy() == ParkPolicy.HOLD_KEY;
    this.publisher = engine.publisherFor(shard);
    // a shard released, lost or dropped closes its own producer (transactional mode) once its loop stopped
    stopped.whenComplete((v, t) -> publisher.close());
  }

  void start() {
    synchronized (this) {
      busy = true;
    }
    submit(this::step);
  }

  /** Reads now if the shard is idle-waiting; a shard backing off after an error is not woken. */
  void wake() {
    synchronized (this) {
      if (stopping) {
        return;
      }
      if (busy) {
        wakePending = true;
        return;
      }
      if (!wakeable) {
        return;
      }
      if (timer != null) {
        timer.cancel(false);
        timer = null;
      }
      busy = true;
    }
    submit(this::step);
  }

  /**
   * Stops after the batch in flight, if any, is finished.
   *
   * @return completes when the loop has stopped
   */
  CompletableFuture<Void> stop() {
    synchronized (this) {
      stopping = true;
      if (!busy) {
        if (timer != null) {
          timer.cancel(false);
          timer = null;
        }
        stopped.complete(null);
      }
    }
    return stopped;
  }

  synchronized boolean isStopping() {
    return stopping;
  }

  /** @return whether the shard waits for new rows and a {@link #wake()} would read now */
  synchronized boolean idleWaiting() {
    return !busy && !stopping && wakeable;
  }

  long rowReads() {
    return rowReads;
  }

  long emptyReads() {
    return emptyReads;
  }

  long heldUpTo() {
    return heldUpTo;
  }

  private void submit(Runnable task) {
    try {
      engine.workers().execute(task);
    } catch (RejectedExecutionException e) {
      synchronized (this) {
        busy = false;
        stopping = true;
        stopped.complete(null);
      }
    }
  }

  /** Ends the current task: runs the next one after {@code delayNanos}, or stops. */
  private void next(long delayNanos, boolean wakeableWait) {
    synchronized (this) {
      busy = false;
      if (stopping) {
        stopped.complete(null);
        return;
      }
      boolean now = delayNanos <= 0 || (wakeableWait && wakePending);
      wakePending = false;
      if (now) {
        busy = true;
      } else {
        wakeable = wakeableWait;
        try {
          timer = engine.workers().schedule(this::fire, delayNanos, TimeUnit.NANOSECONDS);
        } catch (RejectedExecutionException e) {
          stopping = true;
          stopped.complete(null);
        }
        return;
      }
    }
    submit(this::step);
  }

  private void fire() {
    synchronized (this) {
      timer = null;
      if (busy || stopping) {
        return;
      }
      busy = true;
    }
    step();
  }

  private void step() {
    try {
      round();
    } catch (Throwable t) {
      if (t instanceof InterruptedException || t instanceof InterruptException) {
        Thread.currentThread().interrupt();
      }
      engine.log().error("{} shard {}: unexpected failure in the batch loop, retrying: {}", engine.prefix(), shard, t.toString(), t);
      prefetched = null;
      releasePermit();
      next(backoff(), false);
    }
  }

  private void round() {
    if (isStopping()) {
      next(0, false);
      return;
    }
    if (!lease.mayPublish()) {
      // the lease may have expired in the database: nothing is sent until a renewal succeeds or the
      // shard is dropped; what was read ahead may already be another relay's to publish
      prefetched = null;
      next(leaseWaitNanos(), false);
      return;
    }
    try {
      publisher.init();
    } catch (RuntimeException e) {
      transactionFailed("initialise the shard's transactional producer", e);
      return;
    }
    if (RelayMetrics.breakerState(engine.breaker()) == 1) {
      // open: do not even read; the breaker decides when Kafka is tried again
      prefetched = null;
      next(backoff(), false);
      return;
    }
    List<OutboxRow> rows = prefetched;
    prefetched = null;
    int limit = config.batchSize();
    if (rows == null) {
      Set<String> heldTopics = engine.topics().held();
      try {
        String[] waiting = leaderless.isEmpty() ? null : leaderless.refresh(engine.publisher().current().producer());
        if (heldTopics.isEmpty() && waiting == null) {
          rows = engine.db().read(shard, limit);
        } else {
          // held rows stay at the head of the shard: read past them, up to a bound; the rows of keys
          // waiting for a partition leader are not read at all
          limit += Math.min(heldSeen, HELD_WINDOW_BATCHES * config.batchSize());
          rows = engine.db().readFiltered(shard, heldTopics, waiting == null ? new String[0] : waiting, limit);
        }
        engine.databaseAnswered();
      } catch (SQLException e) {
        databaseFailure("read", e);
        return;
      }
    }
    if (rows.isEmpty()) {
      emptyReads++;
      next(emptyWaitNanos(), true);
      return;
    }
    if (!engine.breaker().tryAcquirePermission()) {
      next(backoff(), false);
      return;
    }
    permitHeld = true;
    Publisher.Generation producer;
    try {
      producer = publisher.begin();
    } catch (RuntimeException e) {
      transactionFailed("begin a transaction", e);
      return;
    }
    send(new Batch(rows, producer, System.nanoTime(), rows.size() >= limit));
  }

  /**
   * The shard's transactional producer could not be initialised or begin a transaction: fenced (a
   * later owner initialised the shard's transactional id), the shard is dropped; else the round is
   * retried after a backoff.
   */
  private void transactionFailed(String what, RuntimeException e) {
    prefetched = null;
    if (Errors.isFenced(e)) {
      releasePermit();
      fenced(what + " (" + Errors.describe(e) + ")");
      return;
    }
    engine.metrics().retriable.increment();
    if (permitHeld) {
      permitHeld = false;
      engine.breaker().onError(0, TimeUnit.NANOSECONDS, e);
    }
    long delay = backoff();
    engine.retryLog().warn("{} shard {}: could not {}, retrying in {} ms (attempt {}): {}", engine.prefix(), shard, what,
        TimeUnit.NANOSECONDS.toMillis(delay), attempt, Errors.describe(e));
    next(delay, false);
  }

  /** @return the wait after a read that found nothing to send: until the probe wakes the shard, or the next poll */
  private long emptyWaitNanos() {
    long delay = engine.probe().active() ? probedWaitNanos() : pollNanos;
    pollNanos = Math.min(config.idlePollInterval().toNanos(), pollNanos * 2);
    return delay;
  }

  /** One batch in flight: the rows in id order and, per row, what became of it. */
  private final class Batch {
    final List<OutboxRow> rows;
    final Publisher.Generation producer;
    final KeyOrder order;
    final long started;
    final Throwable[] errors;
    final boolean[] acked;
    final boolean[] sent;
    // not sent: its topic has no metadata, or an earlier row of its key was held
    final boolean[] held;
    // the read returned as many rows as asked for: more are likely waiting
    final boolean full;
    // the rows from this index on were not taken into the batch (a batch sends at most batchSize)
    int taken;
    int heldRows;
    int sentRows;
    // one per record sent, plus one held by the task until the read-ahead is done
    final AtomicInteger pending = new AtomicInteger(1);
    volatile boolean stoppedEarly;
    // the lease deadline passed during the send loop: the rows not sent wait for a renewal
    volatile boolean leaseExpired;
    // the batch's Kafka transaction was rolled back (transactional mode): no row of it was published
    boolean aborted;
    // some rows were neither sent nor held: their keys wait for a partition leader, or an earlier
    // row of their key failed in this batch
    volatile boolean skipped;

    Batch(List<OutboxRow> rows, Publisher.Generation producer, long started, boolean full) {
      this.rows = rows;
      this.producer = producer;
      this.order = new KeyOrder(engine.publisher(), producer);
      this.started = started;
      this.full = full;
      this.taken = rows.size();
      this.errors = new Throwable[rows.size()];
      this.acked = new boolean[rows.size()];
      this.sent = new boolean[rows.size()];
      this.held = new boolean[rows.size()];
    }

    void answered(int i, Throwable error) {
      if (error != null) {
        errors[i] = error;
      } else {
        acked[i] = true;
        engine.kafkaAnswered();
      }
      release();
    }

    void release() {
      if (pending.decrementAndGet() == 0) {
        try {
          engine.workers().execute(() -> completeSafely(this));
        } catch (RejectedExecutionException e) {
          synchronized (ShardWorker.this) {
            busy = false;
            stopped.complete(null);
          }
        }
      }
    }
  }

  private void send(Batch batch) {
    Set<String> held = holdKey ? new HashSet<>() : Set.of();
    // a topic whose metadata did not arrive within max.block.ms: its other rows are not sent in this
    // batch (each would wait max.block.ms again), nor the later rows of the failed key; other topics go on
    String missingTopic = null;
    String missingKey = null;
    // topics without metadata (TopicHealth): their rows are held, not sent, and so are the later rows
    // of their keys in this batch, so that a key's rows never overtake one another across topics
    Map<String, TopicHealth.Status> metadata = new HashMap<>();
    Set<String> waitingKeys = new HashSet<>();
    int sendable = 0;
    List<OutboxRow> rows = batch.rows;
    for (int i = 0; i < rows.size(); i++) {
      OutboxRow row = rows.get(i);
      if (sendable == config.batchSize()) {
        batch.taken = i;
        break;
      }
      if (row.key() != null && (held.contains(row.key()) || leaderless.contains(row.key()))) {
        continue;
      }
      if (missingTopic != null && (missingTopic.equals(row.topic()) || (row.key() != null && row.key().equals(missingKey)))) {
        continue;
      }
      // metadata first (a topic's first lookup may wait briefly), then the lease deadline, then the
      // record: nothing can make send() wait between the deadline check and the record's timestamp
      TopicHealth.Status status = metadata.computeIfAbsent(row.topic(), engine.topics()::status);
      if (status.state() == TopicHealth.State.HOLD || (row.key() != null && waitingKeys.contains(row.key()))) {
        batch.held[i] = true;
        batch.heldRows++;
        if (row.key() != null) {
          waitingKeys.add(row.key());
        }
        continue;
      }
      RuntimeException unusable = status.error();
      if (unusable == null && leaderless.hold(batch.producer.producer(), row.topic(), row.key())) {
        // its partition has no leader: the key waits, without an attempt, until it has one
        batch.skipped = true;
        continue;
      }
      sendable++;
      final int index = i;
      ProducerRecord<byte[], byte[]> record = null;
      if (unusable == null) {
        if (!lease.mayPublish()) {
          batch.leaseExpired = true;
          break;
        }
        try {
          record = record(row, System.currentTimeMillis());
        } catch (IllegalArgumentException e) {
          unusable = new Errors.MalformedRow("outbox row " + row.id() + " cannot be turned into a record: " + e.getMessage(), e);
        }
      }
      if (unusable == null && !batch.order.hand(row.key())) {
        // an earlier record of the key failed meanwhile: the rest of the key is re-read in order
        batch.skipped = true;
        continue;
      }
      batch.pending.incrementAndGet();
      batch.sent[i] = true;
      batch.sentRows++;
      if (unusable != null) {
        batch.answered(index, unusable);
      } else {
        try {
          batch.producer.producer().send(record, (md, error) -> {
            batch.order.answered(row.key(), error);
            batch.answered(index, error);
          });
        } catch (RuntimeException e) {
          // thrown rather than reported: a closed producer, an interrupt, a client-side bug
          batch.order.answered(row.key(), e);
          batch.answered(index, e);
        }
      }
      // errors found before the record left the relay have already reached the callback here
      Throwable early = batch.errors[i];
      if (early != null) {
        if (Errors.isPoison(early)) {
          if (holdKey && row.key() != null) {
            held.add(row.key());
          }
        } else if (missingTopic == null && !Errors.isFatal(early)) {
          // send() found no metadata for a topic whose lookup had succeeded (deleted meanwhile, or
          // the producer forgot it): that wait is the row's own failure; later batches look it up first
          if (early instanceof org.apache.kafka.common.errors.TimeoutException
              && !(early instanceof org.apache.kafka.clients.producer.BufferExhaustedException)) {
            batch.errors[i] = new Errors.TopicUnavailable(row.topic(), (RuntimeException) early);
          }
          engine.topics().suspect(row.topic());
          missingTopic = row.topic();
          missingKey = row.key();
        } else {
          // a second topic without metadata, or a broken producer: the broker is not reachable or the
          // client is unusable, and sending the rest would only wait max.block.ms per record
          batch.stoppedEarly = true;
          break;
        }
      }
    }
    heldSeen = batch.heldRows;
    if (missingTopic == null && !batch.stoppedEarly && !batch.leaseExpired && batch.heldRows == 0 && batch.full
        && batch.sentRows > 0 && leaderless.isEmpty() && !batch.skipped && !isStopping()) {
      long[] inFlight = new long[batch.taken];
      for (int i = 0; i < inFlight.length; i++) {
        inFlight[i] = rows.get(i).id();
      }
      try {
        prefetched = engine.db().readAhead(shard, inFlight, config.batchSize());
      } catch (SQLException e) {
        prefetched = null; // the next round reads again
      }
    }
    batch.release();
  }

  /**
   * @param timestamp the record's timestamp: the wall-clock time at which the lease deadline was
   *     checked, so a broker can refuse a record that arrives too long after it
   *     ({@code message.timestamp.before.max.ms})
   */
  private ProducerRecord<byte[], byte[]> record(OutboxRow row, long timestamp) {
    RecordHeaders headers = new RecordHeaders();
    headers.add(OutboxHeaders.MESSAGE_ID, utf8(row.messageId().toString()));
    headers.add(OutboxHeaders.MESSAGE_TYPE, utf8(row.type()));
    headers.add(OutboxHeaders.CONTENT_TYPE, utf8(row.contentType()));
    headers.add(OutboxHeaders.CREATED_AT, createdAt(row.createdAt()));
    headers.add(OutboxHeaders.OUTBOX_ID, utf8(Long.toString(row.id())));
    String json = row.headersJson();
    if (json != null && !json.equals("{}")) {
      for (Map.Entry<String, String> h : Json.read(json).entrySet()) {
        if (!OutboxHeaders.isReserved(h.getKey())) {
          headers.add(h.getKey(), utf8(h.getValue()));
        }
      }
    }
    byte[] key = row.key() == null ? null : utf8(row.key());
    return new ProducerRecord<>(row.topic(), null, timestamp, key, row.takePayload(), headers);
  }

  /** @return {@code uuuu-MM-dd'T'HH:mm:ss.SSSSSS'Z'} in UTC as ASCII bytes, without a formatter per record */
  static byte[] createdAt(java.time.OffsetDateTime t) {
    java.time.LocalDateTime u = t.getOffset() == ZoneOffset.UTC ? t.toLocalDateTime()
        : t.withOffsetSameInstant(ZoneOffset.UTC).toLocalDateTime();
    int year = u.getYear();
    if (year < 0 || year > 9999) {
      return utf8(CREATED_AT.format(t));
    }
    byte[] b = new byte[27];
    digits(b, 0, year, 4);
    b[4] = '-';
    digits(b, 5, u.getMonthValue(), 2);
    b[7] = '-';
    digits(b, 8, u.getDayOfMonth(), 2);
    b[10] = 'T';
    digits(b, 11, u.getHour(), 2);
    b[13] = ':';
    digits(b, 14, u.getMinute(), 2);
    b[16] = ':';
    digits(b, 17, u.getSecond(), 2);
    b[19] = '.';
    digits(b, 20, u.getNano() / 1000, 6);
    b[26] = 'Z';
    return b;
  }

  private static void digits(byte[] b, int at, int value, int width) {
    for (int i = at + width - 1; i >= at; i--) {
      b[i] = (byte) ('0' + value % 10);
      value /= 10;
    }
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private void completeSafely(Batch batch) {
    try {
      complete(batch);
    } catch (Throwable t) {
      if (t instanceof InterruptedException || t instanceof InterruptException) {
        Thread.currentThread().interrupt();
      }
      engine.log().error("{} shard {}: unexpected failure completing a batch, retrying: {}", engine.prefix(), shard, t.toString(), t);
      prefetched = null;
      releasePermit();
      next(backoff(), false);
    }
  }

  private void complete(Batch batch) {
    if (batch.sentRows > 0) {
      rowReads++;
    } else {
      emptyReads++;
    }
    boolean sawAll = batch.heldRows > 0 && !batch.full && batch.taken == batch.rows.size() && !batch.leaseExpired
        && !batch.stoppedEarly && !batch.skipped;
    heldUpTo = sawAll ? batch.rows.get(batch.rows.size() - 1).id() : Long.MIN_VALUE;
    if (publisher.atomic() && !settle(batch)) {
      return;
    }
    List<OutboxRow> rows = batch.rows;
    List<Long> delete = new ArrayList<>(rows.size());
    List<Integer> poison = new ArrayList<>();
    List<Integer> retriable = new ArrayList<>();
    Set<String> blocked = new HashSet<>();
    Throwable failure = null;
    boolean fatal = false;
    boolean keepReadAhead = true;
    for (int i = 0; i < batch.taken; i++) {
      OutboxRow row = rows.get(i);
      Throwable error = batch.errors[i];
      if (batch.held[i]) {
        // not sent, not failed: read again (and sent in order) once its topic has metadata
        if (row.key() != null) {
          blocked.add(row.key());
        }
        continue;
      }
      if (batch.acked[i]) {
        // a row after a failed row of its key stays, so the key is re-read and re-sent in order
        if (row.key() == null || !blocked.contains(row.key())) {
          delete.add(row.id());
        }
      } else if (error != null && Errors.isPoison(error)) {
        poison.add(i);
        keepReadAhead = false;
      } else {
        keepReadAhead = false;
        if (row.key() != null) {
          blocked.add(row.key());
        }
        if (error != null) {
          retriable.add(i);
          failure = failure == null ? error : failure;
          fatal |= Errors.isFatal(error);
        } else if (batch.aborted) {
          // rolled back with its transaction: sent again in the next round
        } else if (batch.sent[i]) {
          failure = failure == null ? new IllegalStateException("record was neither acknowledged nor failed") : failure;
        } else if (batch.leaseExpired) {
          // not sent: the lease deadline passed; kept for a renewal or the next owner
        } else if (batch.stoppedEarly && failure == null) {
          failure = new IllegalStateException("batch stopped before this record was sent");
        }
      }
    }
    long elapsed = System.nanoTime() - batch.started;
    // Kafka acknowledged a record (of any shard) or answered the readiness probe after this batch was
    // sent: the failures are the rows' own (unknown topic, partition without leader), not an outage.
    // They count toward maxAttempts and do not count against the breaker; without that evidence
    // nothing is counted and the breaker decides.
    // Only a failure that is the row's own counts: its topic's metadata did not arrive while Kafka
    // answered. A partition without a leader, a broker down, a timeout on an existing topic are not the
    // row's fault and are retried without limit (counting them would park healthy rows).
    List<Integer> counted = new ArrayList<>();
    for (int i : retriable) {
      if (batch.errors[i] instanceof Errors.TopicUnavailable) {
        counted.add(i);
      }
    }
    boolean countAttempts = !counted.isEmpty() && !fatal && engine.kafkaAnsweredSince(batch.started);
    // held rows of a topic that failed a metadata check (with Kafka answering) since this shard last
    // counted one: one attempt each per failed check, so maxAttempts still parks them (G7)
    Map<String, TopicHealth.Uncounted> checks = heldChecks(batch);
    List<Integer> failures = new ArrayList<>(countAttempts ? counted : List.of());
    for (int i = 0; i < batch.taken; i++) {
      TopicHealth.Uncounted check = batch.held[i] ? checks.get(rows.get(i).topic()) : null;
      if (check != null) {
        batch.errors[i] = check.error();
        failures.add(i);
      }
    }
    permitHeld = false;
    if (failure != null) {
      engine.metrics().retriable.increment();
      if (countAttempts) {
        engine.breaker().onSuccess(elapsed, TimeUnit.NANOSECONDS);
      } else if (!publisher.isCurrent(batch.producer) && !batch.order.stoppedProducer()) {
        // the producer was replaced (and closed) while this batch was in flight: that failure says
        // nothing new about Kafka, and every shard reporting it would open the breaker at once
        engine.breaker().releasePermission();
      } else {
        engine.breaker().onError(elapsed, TimeUnit.NANOSECONDS, failure);
      }
      if (fatal) {
        publisher.replace(batch.producer, failure);
      }
    } else if (batch.sentRows == 0) {
      // every row was held or waits for its partition's leader: Kafka was not asked anything
      engine.breaker().releasePermission();
    } else {
      engine.breaker().onSuccess(elapsed, TimeUnit.NANOSECONDS);
      engine.kafkaAnswered();
    }
    if (!keepReadAhead) {
      prefetched = null;
    }
    try {
      if (!delete.isEmpty()) {
        Db.Fenced result = engine.db().delete(shard, epoch, toArray(delete));
        engine.databaseAnswered();
        if (!result.leaseHeld()) {
          fenced("delete " + delete.size() + " published rows");
          return;
        }
        engine.metrics().published.increment(result.rows());
      }
      if (!poison.isEmpty() || !failures.isEmpty()) {
        if (!recordFailures(batch, poison, failures)) {
          return;
        }
        checks.forEach((topic, check) -> engine.topics().counted(topic, shard, check));
      }
    } catch (SQLException e) {
      prefetched = null;
      databaseFailure("delete or park", e);
      return;
    }
    if (failure == null && batch.leaseExpired) {
      prefetched = null;
      next(leaseWaitNanos(), false);
      return;
    }
    if (failure == null && batch.aborted) {
      // only rows that can never be published failed, and they are parked now: the rest goes again at once
      prefetched = null;
      next(0, false);
      return;
    }
    if (failure != null) {
      prefetched = null;
      long delay = backoff();
      engine.retryLog().warn("{} shard {}: publishing failed, retrying in {} ms (attempt {}{}): {}", engine.prefix(), shard,
          TimeUnit.NANOSECONDS.toMillis(delay), attempt, countAttempts ? ", counted toward max attempts" : "",
          Errors.describe(failure));
      next(delay, false);
      return;
    }
    attempt = 0;
    if (batch.sentRows == 0) {
      // nothing to send (every row held): wait like an empty read, so the probe leaves the shard alone
      next(leaderWait(emptyWaitNanos()), true);
      return;
    }
    pollNanos = MIN_POLL_NANOS;
    engine.metrics().batch.record(Duration.ofNanos(System.nanoTime() - batch.started));
    next(leaderWait(idleAfter(batch.full)), true);
  }

  /** @return {@code wait}, or less while keys wait for a partition leader: no new row wakes them */
  private long leaderWait(long wait) {
    return leaderless.isEmpty() ? wait : Math.min(wait, config.idlePollInterval().toNanos());
  }

  /** @return per topic of the batch's held rows, the failed metadata check this shard has not counted yet */
  private Map<String, TopicHealth.Uncounted> heldChecks(Batch batch) {
    Map<String, TopicHealth.Uncounted> checks = new HashMap<>();
    Set<String> asked = new HashSet<>();
    for (int i = 0; i < batch.taken; i++) {
      String topic = batch.rows.get(i).topic();
      if (batch.held[i] && asked.add(topic)) {
        TopicHealth.Uncounted check = engine.topics().uncountedCheck(topic, shard);
        if (check != null) {
          checks.put(topic, check);
        }
      }
    }
    return checks;
  }

  /**
   * Ends the batch's Kafka transaction (transactional mode): commits it when every record sent was
   * acknowledged, else aborts it, so that none of the batch's records becomes visible to {@code
   * read_committed} consumers and none of its rows is deleted. A failed record's error stays with
   * its row (a poison row is parked, a retriable failure backs off as in the idempotent mode); what
   * the other records report after the first failure is the transaction's state, not theirs, and is
   * dropped when a poison row explains the abort. A commit that fails is a retriable failure of
   * every row sent.
   *
   * @return false when the producer was fenced: the shard is being dropped
   */
  private boolean settle(Batch batch) {
    Throwable first = null;
    boolean poisoned = false;
    boolean fenced = false;
    for (Throwable e : batch.errors) {
      if (e != null) {
        first = first == null ? e : first;
        poisoned |= Errors.isPoison(e);
        fenced |= Errors.isFenced(e);
      }
    }
    if (first == null) {
      try {
        publisher.commit(batch.producer);
        return true;
      } catch (RuntimeException e) {
        first = e;
        fenced = Errors.isFenced(e);
        for (int i = 0; i < batch.rows.size(); i++) {
          if (batch.sent[i]) {
            batch.errors[i] = e;
          }
        }
      }
    } else if (poisoned) {
      for (int i = 0; i < batch.rows.size(); i++) {
        Throwable e = batch.errors[i];
        if (e != null && !Errors.isPoison(e) && !(e instanceof Errors.TopicUnavailable)) {
          batch.errors[i] = null;
        }
      }
    }
    publisher.abort(batch.producer, first);
    engine.metrics().aborted.increment();
    java.util.Arrays.fill(batch.acked, false);
    batch.aborted = true;
    if (fenced) {
      releasePermit();
      fenced("commit a batch of " + batch.rows.size() + " rows (" + Errors.describe(first) + ")");
      return false;
    }
    return true;
  }

  /**
   * Parks the poison rows and counts an attempt of the rows that failed retriably, parking those that
   * reached maxAttempts, in one fenced statement.
   *
   * @return false when the lease was lost (the shard is being dropped)
   */
  private boolean recordFailures(Batch batch, List<Integer> poison, List<Integer> retriable) throws SQLException {
    int n = poison.size() + retriable.size();
    long[] ids = new long[n];
    String[] errors = new String[n];
    boolean[] park = new boolean[n];
    Map<Long, Integer> index = new HashMap<>();
    int k = 0;
    for (List<Integer> group : List.of(poison, retriable)) {
      for (int i : group) {
        ids[k] = batch.rows.get(i).id();
        errors[k] = Errors.describe(batch.errors[i]);
        park[k] = group == poison;
        index.put(ids[k], i);
        k++;
      }
    }
    Db.Failed result = engine.db().fail(shard, epoch, ids, errors, park, config.maxAttempts());
    engine.databaseAnswered();
    if (!result.leaseHeld()) {
      fenced("record the failure of " + n + " rows");
      return false;
    }
    for (Db.FailedRow r : result.rows()) {
      int i = index.get(r.id());
      OutboxRow row = batch.rows.get(i);
      String error = Errors.describe(batch.errors[i]);
      boolean isPoison = Errors.isPoison(batch.errors[i]);
      if (isPoison) {
        engine.metrics().nonRetriable.increment();
      }
      if (r.parked()) {
        heldUpTo = Long.MIN_VALUE; // rows of its key behind it may be publishable now
        engine.metrics().parked.increment();
        engine.log().error("{} shard {}: parked outbox row {} (message {}, topic {}, key {}) after {} attempt(s){}: {}; requeue it"
                + " once the cause is fixed", engine.prefix(), shard, row.id(), row.messageId(), row.topic(), row.key(),
            r.attempts(), isPoison ? "" : " (max attempts " + config.maxAttempts() + ")", error);
      }
    }
    return true;
  }

  private void fenced(String what) {
    prefetched = null;
    engine.metrics().fenced.increment();
    engine.log().warn("{} shard {}: lease epoch {} no longer held, could not {}; dropping the shard", engine.prefix(), shard,
        epoch, what);
    synchronized (this) {
      stopping = true;
    }
    engine.dropped(this);
    next(0, false);
  }

  private void databaseFailure(String what, SQLException e) {
    engine.metrics().database.increment();
    long delay = backoff();
    engine.retryLog().warn("{} shard {}: database {} failed (SQLState {}), retrying in {} ms (attempt {}): {}", engine.prefix(),
        shard, what, e.getSQLState(), TimeUnit.NANOSECONDS.toMillis(delay), attempt, e.getMessage());
    next(delay, false);
  }

  /**
   * @return 0 to read again at once after a full batch (more rows are likely waiting); after a
   *     shorter one, which took every row visible when it was read, the idle wait, from which the
   *     probe wakes the shard once new rows are there (one read per round instead of two)
   */
  private long idleAfter(boolean fullRead) {
    return !fullRead && prefetched == null && engine.probe().active() ? probedWaitNanos() : 0;
  }

  /**
   * @return the idle wait while the probe works: it wakes the shard when rows arrive, so the shard
   *     reads on its own only once per lease renewal interval, as a safeguard; while the probe
   *     fails, the shard polls from 10 ms up to the idle poll interval instead
   */
  private long probedWaitNanos() {
    return Math.max(config.idlePollInterval().toNanos(), config.renewInterval().toNanos());
  }

  /** @return how long a shard whose lease deadline passed waits before it looks again */
  private long leaseWaitNanos() {
    return Math.max(MIN_POLL_NANOS, config.renewInterval().toNanos() / 20);
  }

  /** Gives the breaker's permit back when a batch ended without an outcome (an unexpected exception). */
  private void releasePermit() {
    if (permitHeld) {
      permitHeld = false;
      engine.breaker().releasePermission();
    }
  }

  /** @return the next retry delay of this shard, counted in the backoff metric */
  private long backoff() {
    Duration d = config.backoff().delay(Math.min(attempt, 40));
    attempt++;
    engine.metrics().backoff.record(d);
    return Math.max(1, d.toNanos());
  }

  private static long[] toArray(List<Long> ids) {
    long[] out = new long[ids.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = ids.get(i);
    }
    return out;
  }
}
