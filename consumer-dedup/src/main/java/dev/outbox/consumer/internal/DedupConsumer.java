package dev.outbox.consumer.internal;

import dev.outbox.consumer.DeadLetterHeaders;
import dev.outbox.consumer.IdempotentConsumer;
import dev.outbox.consumer.Message;
import dev.outbox.consumer.internal.PartitionWorker.MessageIdResult;
import dev.outbox.consumer.internal.PartitionWorker.Next;
import dev.outbox.core.OutboxHeaders;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.micrometer.core.instrument.Gauge;
import java.nio.charset.StandardCharsets;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Pattern;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.header.Header;
import org.jooq.exception.DataAccessException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@link IdempotentConsumer}: one poll thread owns the {@link KafkaConsumer} (it is not
 * thread-safe: every call to it happens there, rebalance callbacks included), worker threads run
 * {@link PartitionWorker}s.
 */
public final class DedupConsumer implements IdempotentConsumer {
  private static final Logger LOG = LoggerFactory.getLogger(IdempotentConsumer.class);
  private static final AtomicInteger INSTANCES = new AtomicInteger();
  private static final Duration POLL_TIMEOUT = Duration.ofMillis(100);
  private static final long COMMIT_INTERVAL_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
  private static final Pattern CANONICAL_UUID =
      Pattern.compile("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");

  private enum State { NEW, RUNNING, CLOSING, CLOSED, FAILED }

  private final Settings settings;
  private final String instance;
  private final String prefix;
  private final Metrics metrics;
  private final Database database;
  private final DeadLetters deadLetters;
  private final CircuitBreaker databaseBreaker;
  private final CircuitBreaker deadLetterBreaker;
  private final List<Gauge> breakerGauges;
  private final KafkaConsumer<byte[], byte[]> consumer;
  private final ScheduledThreadPoolExecutor workers;
  private final ScheduledExecutorService purger;
  private final Map<TopicPartition, PartitionWorker> partitions = new ConcurrentHashMap<>();
  private final int pauseThreshold;
  private final Object lifecycle = new Object();
  private volatile State state = State.NEW;
  private volatile boolean commitsAllowed = true;
  /** The group gave this consumer its assignment (possibly empty) and did not take it away as lost. */
  private volatile boolean hasAssignment;
  private Thread pollThread;
  private long lastCommitNanos;

  /**
   * @param settings validated by the builder
   */
  public DedupConsumer(Settings settings) {
    this.settings = Objects.requireNonNull(settings, "settings may not be null");
    this.instance = settings.consumerName() + "#" + INSTANCES.incrementAndGet();
    this.prefix = "[consumer-dedup " + instance + "]";
    this.metrics = new Metrics(settings.meterRegistry(), settings.consumerName(), instance);
    this.database = new Database(settings);
    this.deadLetters = new DeadLetters(settings);
    this.databaseBreaker = breaker(instance + "-database", "database");
    this.deadLetterBreaker = breaker(instance + "-dead-letter", "dead-letter producer");
    this.breakerGauges = List.of(metrics.breakerState(databaseBreaker, "database"),
        metrics.breakerState(deadLetterBreaker, "dead-letter"));
    this.pauseThreshold = Math.max(1000, 4 * settings.maxRecordsPerTransaction());
    this.consumer = new KafkaConsumer<>(new HashMap<>(settings.consumerProperties()));
    AtomicInteger workerIds = new AtomicInteger();
    this.workers = new ScheduledThreadPoolExecutor(settings.concurrency(), r -> {
      Thread t = new Thread(r, "outbox-consumer-" + instance + "-worker-" + workerIds.incrementAndGet());
      t.setDaemon(true);
      return t;
    });
    this.workers.setRemoveOnCancelPolicy(true);
    // a partition waiting for its retry must not hold up close()
    this.workers.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
    this.purger = settings.purgeInterval().isZero() ? null : Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "outbox-consumer-" + instance + "-purge");
      t.setDaemon(true);
      return t;
    });
    if (settings.retention().compareTo(Duration.ofDays(1)) < 0) {
      LOG.warn("{} retention is {}: a message redelivered more than {} after it was processed (relay republishing"
          + " after an outage, an offset reset, a replay) will be handled again", prefix, settings.retention(),
          settings.retention());
    }
  }

  private CircuitBreaker breaker(String name, String what) {
    CircuitBreaker breaker = CircuitBreaker.of(name, CircuitBreakerConfig.custom()
        .slidingWindowType(CircuitBreakerConfig.SlidingWindowType.COUNT_BASED)
        .slidingWindowSize(10)
        .minimumNumberOfCalls(5)
        .failureRateThreshold(50)
        .waitDurationInOpenState(Duration.ofSeconds(5))
        .permittedNumberOfCallsInHalfOpenState(1)
        .automaticTransitionFromOpenToHalfOpenEnabled(false)
        .build());
    breaker.getEventPublisher().onStateTransition(e ->
        LOG.warn("{} {} circuit breaker: {}", prefix, what, e.getStateTransition()));
    return breaker;
  }

  // --- accessors for PartitionWorker

  Settings settings() {
    return settings;
  }

  String prefix() {
    return prefix;
  }

  Logger log() {
    return LOG;
  }

  Metrics metrics() {
    return metrics;
  }

  Database database() {
    return database;
  }

  DeadLetters deadLetters() {
    return deadLetters;
  }

  CircuitBreaker databaseBreaker() {
    return databaseBreaker;
  }

  CircuitBreaker deadLetterBreaker() {
    return deadLetterBreaker;
  }

  // --- public API

  @Override
  public void start() {
    synchronized (lifecycle) {
      if (state != State.NEW) {
        throw new IllegalStateException("consumer " + settings.consumerName() + " was already started (state "
            + state + "); build a new one");
      }
      state = State.RUNNING;
      pollThread = new Thread(this::pollLoop, "outbox-consumer-" + instance + "-poll");
      pollThread.start();
      Thread guard = new Thread(this::checkTopicRetention, "outbox-consumer-" + instance + "-retention-check");
      guard.setDaemon(true);
      guard.start();
      if (purger != null) {
        long interval = settings.purgeInterval().toMillis();
        purger.scheduleWithFixedDelay(this::scheduledPurge, interval, interval, TimeUnit.MILLISECONDS);
      }
    }
    LOG.info("{} started on topics {} with group {}, concurrency {}, {} record(s) per transaction", prefix,
        settings.topics(), settings.consumerProperties().get("group.id"), settings.concurrency(),
        settings.maxRecordsPerTransaction());
  }

  @Override
  public long purgeProcessed(Duration olderThan) {
    Objects.requireNonNull(olderThan, "olderThan may not be null");
    if (olderThan.compareTo(Duration.ofHours(1)) < 0) {
      throw new IllegalArgumentException("olderThan must be at least 1 hour, got " + olderThan
          + "; it must exceed the longest redelivery window");
    }
    double seconds = olderThan.toNanos() / 1e9;
    long total = 0;
    try {
      int deleted;
      do {
        deleted = database.purgeBatch(settings.consumerName(), seconds);
        total += deleted;
        metrics.purged.increment(deleted);
      } while (deleted == Database.PURGE_BATCH);
    } catch (SQLException e) {
      throw new DataAccessException(prefix + " purging processed_message rows older than " + olderThan + " failed after"
          + " deleting " + total + " (SQLState " + e.getSQLState() + "): " + e.getMessage(), e);
    }
    return total;
  }

  private void scheduledPurge() {
    try {
      long deleted = purgeProcessed(settings.retention());
      if (deleted > 0) {
        LOG.info("{} purged {} processed message id(s) older than {}", prefix, deleted, settings.retention());
      }
    } catch (RuntimeException e) {
      metrics.purgeFailures.increment();
      LOG.warn("{} scheduled purge failed; next try in {}", prefix, settings.purgeInterval(), e);
    }
  }

  /**
   * The retention guard: a topic that keeps records longer than this consumer keeps their ids can
   * replay (group reset, a new group) messages whose ids were purged, and they would be applied
   * again. Asks the brokers for each topic's {@code retention.ms} and warns; a failure to ask is
   * logged and otherwise ignored.
   */
  private void checkTopicRetention() {
    Map<String, Object> props = new HashMap<>();
    settings.consumerProperties().forEach((k, v) -> {
      if (k.equals("bootstrap.servers") || k.startsWith("security.") || k.startsWith("ssl.") || k.startsWith("sasl.")
          || k.equals("client.dns.lookup")) {
        props.put(k, v);
      }
    });
    props.put("client.id", "outbox-consumer-retention-check-" + instance);
    List<ConfigResource> resources = settings.topics().stream()
        .map(t -> new ConfigResource(ConfigResource.Type.TOPIC, t)).toList();
    try (Admin admin = Admin.create(props)) {
      Map<ConfigResource, Config> configs = admin.describeConfigs(resources).all()
          .get(settings.closeTimeout().toMillis(), TimeUnit.MILLISECONDS);
      long keptMillis = settings.retention().toMillis();
      configs.forEach((resource, config) -> {
        ConfigEntry entry = config.get(TopicConfig.RETENTION_MS_CONFIG);
        if (entry == null || entry.value() == null) {
          return;
        }
        long topicMillis = Long.parseLong(entry.value());
        if (topicMillis < 0 || topicMillis > keptMillis) {
          LOG.warn("{} topic {} keeps records for {} (retention.ms={}), longer than this consumer keeps processed ids"
              + " ({}): a replay from older offsets (an offset reset, a new group) would apply again messages whose ids"
              + " were purged. Set retention(...) above the topic's retention.ms plus its segment.ms, or lower the"
              + " topic's retention.ms", prefix, resource.name(), topicMillis < 0 ? "ever" : Duration.ofMillis(topicMillis),
              topicMillis, settings.retention());
        }
      });
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (Exception e) {
      LOG.info("{} could not compare the topics' retention.ms with the retention of processed ids ({}): {}", prefix,
          settings.retention(), e.toString());
    }
  }

  @Override
  public Readiness readiness() {
    boolean running = state == State.RUNNING;
    boolean isAssigned = running && hasAssignment;
    boolean databaseClosed = databaseBreaker.getState() == CircuitBreaker.State.CLOSED;
    boolean deadLetterClosed = deadLetterBreaker.getState() == CircuitBreaker.State.CLOSED;
    List<String> problems = new ArrayList<>();
    if (!running) {
      problems.add("not running (" + state.name().toLowerCase(java.util.Locale.ROOT) + ")");
    } else if (!isAssigned) {
      problems.add("no partition assignment from group " + settings.consumerProperties().get("group.id") + " yet");
    }
    if (!databaseClosed) {
      problems.add("database circuit breaker " + databaseBreaker.getState());
    }
    if (!deadLetterClosed) {
      problems.add("dead-letter circuit breaker " + deadLetterBreaker.getState());
    }
    return new Readiness(problems.isEmpty(), running, isAssigned, running ? partitions.size() : 0, databaseClosed,
        deadLetterClosed, String.join("; ", problems));
  }

  @Override
  public int readmitDeadLettered(Collection<UUID> messageIds) {
    Objects.requireNonNull(messageIds, "messageIds may not be null");
    messageIds.forEach(id -> Objects.requireNonNull(id, "messageIds may not contain null"));
    if (messageIds.isEmpty()) {
      return 0;
    }
    try {
      int readmitted = database.readmit(settings.consumerName(), messageIds);
      LOG.info("{} re-admitted {} of {} dead-lettered message id(s)", prefix, readmitted, messageIds.size());
      return readmitted;
    } catch (SQLException e) {
      throw new DataAccessException(prefix + " re-admitting dead-lettered message ids failed (SQLState "
          + e.getSQLState() + "): " + e.getMessage(), e);
    }
  }

  @Override
  public String name() {
    return settings.consumerName();
  }

  @Override
  public boolean isRunning() {
    return state == State.RUNNING;
  }

  @Override
  public void close() {
    Thread poll;
    synchronized (lifecycle) {
      switch (state) {
        case NEW -> {
          state = State.CLOSED;
          shutdownResources();
          consumer.close(Duration.ZERO);
          return;
        }
        case CLOSED -> {
          return;
        }
        case RUNNING -> state = State.CLOSING;
        default -> {
          // CLOSING by another caller, or FAILED: wait for the poll thread below
        }
      }
      poll = pollThread;
    }
    if (poll != null && poll != Thread.currentThread()) {
      try {
        poll.join(settings.closeTimeout().toMillis() * 2 + 10_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      if (poll.isAlive()) {
        LOG.warn("{} poll thread did not stop within {}", prefix, settings.closeTimeout().multipliedBy(2));
      }
    }
  }

  // --- poll thread

  private void pollLoop() {
    boolean clean = false;
    try {
      consumer.subscribe(settings.topics(), new Listener());
      while (state == State.RUNNING) {
        ConsumerRecords<byte[], byte[]> records = consumer.poll(POLL_TIMEOUT);
        for (TopicPartition tp : records.partitions()) {
          PartitionWorker worker = partitions.get(tp);
          if (worker == null) {
            LOG.warn("{} got records of {}, which is not assigned to this consumer; ignoring them", prefix, tp);
            continue;
          }
          worker.enqueue(records.records(tp));
          schedule(worker);
        }
        updatePauses();
        commit(false);
        updateLag();
      }
      if (state == State.CLOSING) {
        stopPartitions(new ArrayList<>(partitions.keySet()), true);
        clean = true;
      }
    } catch (Throwable t) {
      commitsAllowed = false;
      state = State.FAILED;
      LOG.error("{} poll loop failed; stopping without committing further offsets", prefix, t);
    } finally {
      try {
        for (PartitionWorker w : partitions.values()) {
          w.revoked = true;
        }
        consumer.close(settings.closeTimeout());
      } catch (RuntimeException e) {
        LOG.warn("{} closing the Kafka consumer failed", prefix, e);
      }
      shutdownResources();
      synchronized (lifecycle) {
        if (state != State.FAILED) {
          state = State.CLOSED;
        }
      }
      LOG.info("{} stopped{}", prefix, clean ? "" : " after a failure");
    }
  }

  private void shutdownResources() {
    workers.shutdown();
    try {
      if (!workers.awaitTermination(settings.closeTimeout().toMillis(), TimeUnit.MILLISECONDS)) {
        workers.shutdownNow();
      }
    } catch (InterruptedException e) {
      workers.shutdownNow();
      Thread.currentThread().interrupt();
    }
    if (purger != null) {
      purger.shutdownNow();
    }
    deadLetters.close();
    breakerGauges.forEach(metrics::remove);
    for (PartitionWorker w : partitions.values()) {
      if (w.gauge != null) {
        metrics.remove(w.gauge);
      }
    }
    partitions.clear();
  }

  private void schedule(PartitionWorker worker) {
    if (!worker.revoked && worker.scheduled.compareAndSet(false, true)) {
      try {
        workers.execute(worker);
      } catch (RejectedExecutionException e) {
        worker.scheduled.set(false);
      }
    }
  }

  /** Called by a worker after each step. */
  void afterStep(PartitionWorker worker, Next next) {
    switch (next) {
      case CONTINUE -> {
        try {
          workers.execute(worker);
        } catch (RejectedExecutionException e) {
          worker.scheduled.set(false);
        }
      }
      case DELAYED -> {
        // scheduleLater already queued the next run
      }
      case IDLE -> {
        worker.scheduled.set(false);
        if (worker.queued() > 0) {
          schedule(worker);
        }
      }
    }
  }

  boolean scheduleLater(PartitionWorker worker, Duration delay) {
    try {
      workers.schedule(worker, delay.toNanos(), TimeUnit.NANOSECONDS);
      return true;
    } catch (RejectedExecutionException e) {
      return false;
    }
  }

  private void updatePauses() {
    List<TopicPartition> pause = new ArrayList<>();
    List<TopicPartition> resume = new ArrayList<>();
    for (PartitionWorker w : partitions.values()) {
      boolean want = w.waiting || w.queued() >= pauseThreshold;
      if (want && !w.paused) {
        pause.add(w.tp);
        w.paused = true;
      } else if (!want && w.paused) {
        resume.add(w.tp);
        w.paused = false;
      }
    }
    if (!pause.isEmpty()) {
      consumer.pause(pause);
    }
    if (!resume.isEmpty()) {
      consumer.resume(resume);
    }
  }

  private void updateLag() {
    for (PartitionWorker w : partitions.values()) {
      OptionalLong lag = consumer.currentLag(w.tp);
      if (lag.isPresent()) {
        long end = consumer.position(w.tp) + lag.getAsLong();
        long next = w.doneNext >= 0 ? w.doneNext : w.firstFetched >= 0 ? w.firstFetched : consumer.position(w.tp);
        w.lag.set(Math.max(0, end - next));
      }
    }
  }

  /** Commits the offsets of every record whose transaction committed; on the poll thread only. */
  private void commit(boolean force) {
    if (!commitsAllowed) {
      return;
    }
    long now = System.nanoTime();
    if (!force && now - lastCommitNanos < COMMIT_INTERVAL_NANOS) {
      return;
    }
    commit(partitions.values());
    lastCommitNanos = now;
  }

  private void commit(Collection<PartitionWorker> workers) {
    Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
    Map<TopicPartition, Long> done = new HashMap<>();
    for (PartitionWorker w : workers) {
      long next = w.doneNext;
      if (next > w.committed) {
        offsets.put(w.tp, new OffsetAndMetadata(next));
        done.put(w.tp, next);
      }
    }
    if (offsets.isEmpty()) {
      return;
    }
    settings.hooks().beforeOffsetCommit(offsets);
    try {
      consumer.commitSync(offsets, settings.closeTimeout());
      for (PartitionWorker w : workers) {
        Long next = done.get(w.tp);
        if (next != null) {
          w.committed = next;
        }
      }
    } catch (CommitFailedException | RebalanceInProgressException e) {
      LOG.warn("{} offset commit refused during a rebalance ({}); the records will be redelivered and skipped as"
          + " duplicates", prefix, e.getMessage());
    } catch (RetriableException e) {
      LOG.warn("{} offset commit failed ({}); retrying with the next commit", prefix, e.toString());
    }
  }

  /**
   * Stops the workers of the given partitions after their transaction in flight, and commits what
   * they finished when {@code commit} is set.
   */
  private void stopPartitions(Collection<TopicPartition> tps, boolean commit) {
    List<PartitionWorker> stopped = new ArrayList<>();
    for (TopicPartition tp : tps) {
      PartitionWorker w = partitions.remove(tp);
      if (w != null) {
        w.revoked = true;
        stopped.add(w);
      }
    }
    long deadline = System.nanoTime() + settings.closeTimeout().toNanos();
    List<PartitionWorker> settled = new ArrayList<>();
    for (PartitionWorker w : stopped) {
      boolean idle = false;
      if (commit) {
        try {
          idle = w.busy.tryLock(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        if (idle) {
          w.busy.unlock();
        } else {
          LOG.warn("{} transaction in flight on {} did not finish within {}; committing the offsets done before it",
              prefix, w.tp, settings.closeTimeout());
        }
      }
      settled.add(w);
      int left = w.queued();
      if (left > 0) {
        LOG.info("{} {}: {} fetched record(s) from offset {} left for redelivery", prefix, w.tp, left,
            w.doneNext >= 0 ? w.doneNext : w.firstFetched);
      }
      w.clear();
      if (w.gauge != null) {
        metrics.remove(w.gauge);
      }
    }
    if (commit && commitsAllowed) {
      commit(settled);
    }
  }

  private final class Listener implements ConsumerRebalanceListener {
    @Override
    public void onPartitionsRevoked(Collection<TopicPartition> revoked) {
      if (!revoked.isEmpty()) {
        LOG.info("{} partitions revoked: {}", prefix, revoked);
      }
      stopPartitions(revoked, true);
    }

    @Override
    public void onPartitionsLost(Collection<TopicPartition> lost) {
      hasAssignment = false;
      LOG.warn("{} partitions lost (not committing their offsets): {}", prefix, lost);
      stopPartitions(lost, false);
    }

    @Override
    public void onPartitionsAssigned(Collection<TopicPartition> assigned) {
      if (!assigned.isEmpty()) {
        LOG.info("{} partitions assigned: {}", prefix, assigned);
      }
      for (TopicPartition tp : assigned) {
        PartitionWorker w = new PartitionWorker(DedupConsumer.this, tp);
        w.gauge = metrics.lagGauge(tp, w.lag);
        partitions.put(tp, w);
      }
      hasAssignment = true;
    }
  }

  // --- records

  MessageIdResult extractId(ConsumerRecord<byte[], byte[]> record) {
    if (settings.messageIdExtractor() != null) {
      try {
        Optional<UUID> id = settings.messageIdExtractor().apply(record);
        return id != null && id.isPresent()
            ? new MessageIdResult(id.get(), null)
            : new MessageIdResult(null, DeadLetterHeaders.REASON_MISSING_MESSAGE_ID);
      } catch (RuntimeException e) {
        return new MessageIdResult(null, DeadLetterHeaders.REASON_INVALID_MESSAGE_ID);
      }
    }
    Header header = record.headers().lastHeader(OutboxHeaders.MESSAGE_ID);
    if (header == null || header.value() == null) {
      return new MessageIdResult(null, DeadLetterHeaders.REASON_MISSING_MESSAGE_ID);
    }
    String text = new String(header.value(), StandardCharsets.UTF_8);
    if (!CANONICAL_UUID.matcher(text).matches()) {
      return new MessageIdResult(null, DeadLetterHeaders.REASON_INVALID_MESSAGE_ID);
    }
    return new MessageIdResult(UUID.fromString(text), null);
  }

  Message toMessage(ConsumerRecord<byte[], byte[]> record, UUID id) {
    Map<String, String> headers = new HashMap<>();
    for (Header h : record.headers()) {
      headers.put(h.key(), h.value() == null ? "" : new String(h.value(), StandardCharsets.UTF_8));
    }
    return new Message(id, record.topic(), record.partition(), record.offset(), record.timestamp(), record.key(),
        headers, record.value(), settings.codec());
  }
}
