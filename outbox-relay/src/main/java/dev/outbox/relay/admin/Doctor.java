package dev.outbox.relay.admin;

import dev.outbox.core.OutboxException;
import dev.outbox.core.internal.Checks;
import dev.outbox.migrations.OutboxMigrations;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import javax.sql.DataSource;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.TopicConfig;

/**
 * Inspects a live deployment for the known failure modes of idempotency implementations and gives
 * a verdict per check, with the evidence it read: the unique constraints that decide races, key and
 * processed-id expiry and whether the purges keep up, stored responses, keys stuck in flight,
 * processed-id retention against the retention of the topics each consumer reads (asked of Kafka),
 * and parked or long-unpublished outbox rows. Failure modes a live system cannot show (a client
 * retrying without a budget, a key minted per attempt, a listener writing without dedup, a
 * select-then-insert check, an endpoint without the filter) are listed with the build-time rule or
 * start-up gate that catches them.
 *
 * <p>The relay process's {@code doctor} command is a text and JSON face of this class. It reads
 * only (catalog views, {@code pg_stat_activity}, {@code pg_locks}, the outbox tables, Kafka topic
 * configurations and consumer-group offsets) and needs no running relay. Thread-safe.
 *
 * <pre>{@code
 * Doctor.Report report = Doctor.builder()
 *     .dataSource(dataSource)
 *     .consumer("payments", "orders")                  // consumer name -> topics it reads
 *     .kafkaProperties(Map.of("bootstrap.servers", "kafka:9092"))
 *     .build()
 *     .run();
 * if (report.failed()) { ... }
 * }</pre>
 *
 * <p>Which consumer reads which topic: given with {@link Builder#consumer}; for consumers that are
 * in {@code processed_message} but not given, the doctor looks up the Kafka consumer group of the
 * same name (the usual setup: consumer name = {@code group.id}) and takes the topics it has
 * committed offsets for.
 */
public final class Doctor {

  /** A check's outcome. */
  public enum Verdict {
    /** Checked, healthy. */
    PASS,
    /** Checked, not a failure by itself but worth a look. */
    WARN,
    /** Checked, the failure mode is present. */
    FAIL,
    /** Not checked: a prerequisite (e.g. Kafka's address) was not given. */
    SKIP,
    /** Cannot be seen in a live system; the named build-time rule or start-up gate checks it. */
    BUILD_TIME
  }

  /**
   * One check.
   *
   * @param id a stable name, e.g. {@code unique-constraints}
   * @param title what is checked
   * @param verdict the outcome
   * @param summary one line on what was found
   * @param evidence what was read, one item per line
   * @param fix what to do when it did not pass, or {@code null}
   */
  public record Check(String id, String title, Verdict verdict, String summary, List<String> evidence, String fix) {
    /** Copies the evidence. */
    public Check {
      evidence = List.copyOf(evidence);
    }
  }

  /**
   * The doctor's findings.
   *
   * @param schema the schema inspected
   * @param at the database clock when the run started
   * @param checks every check, in a fixed order
   */
  public record Report(String schema, Instant at, List<Check> checks) {
    /** Copies the checks. */
    public Report {
      checks = List.copyOf(checks);
    }

    /** @return whether any check failed */
    public boolean failed() {
      return checks.stream().anyMatch(c -> c.verdict() == Verdict.FAIL);
    }

    /**
     * @param id a check's id
     * @return that check
     * @throws IllegalArgumentException when there is none with that id
     */
    public Check check(String id) {
      return checks.stream().filter(c -> c.id().equals(id)).findFirst()
          .orElseThrow(() -> new IllegalArgumentException("no check '" + id + "'"));
    }
  }

  /** The build-time rules, by the failure mode only they can see. */
  static final List<String[]> BUILD_TIME_RULES = List.of(
      new String[] {"client-retry-budget", "Clients retry under a budget or circuit breaker",
          "dev.outbox.archunit.IdempotencyRules.retriesHaveABudget() (Resilience4j Retry, Spring Retry and hand-written"
              + " retry loops need a RetryBudget or a circuit breaker)"},
      new String[] {"key-per-operation", "Clients mint one key per operation, not per attempt",
          "dev.outbox.archunit.IdempotencyRules.nonIdempotentHttpGoesThroughTheIdempotentClient() (POST/PATCH sent"
              + " through IdempotentHttpClient, which keeps one key across attempts)"},
      new String[] {"listener-dedup", "Kafka listeners write through the dedup primitive",
          "dev.outbox.archunit.IdempotencyRules.kafkaListenersWriteThroughDedup()"},
      new String[] {"insert-first", "Idempotency checks rely on the unique constraint, not select-then-insert",
          "dev.outbox.archunit.IdempotencyRules.noSelectThenInsert()"},
      new String[] {"endpoint-coverage", "Every POST/PATCH endpoint is behind the Idempotency-Key filter",
          "dev.outbox.http.server.gate.IdempotencyGate at application start"});

  private final DataSource dataSource;
  private final String schema;
  private final Duration keyTtl;
  private final Duration lockTimeout;
  private final Duration processedRetention;
  private final Map<String, Duration> consumerRetention;
  private final Map<String, List<String>> consumerTopics;
  private final Map<String, Object> kafkaProperties;
  private final Duration purgeGrace;
  private final Duration maxUnpublishedAge;
  private final Duration kafkaTimeout;

  private Doctor(Builder b) {
    this.dataSource = b.dataSource;
    this.schema = b.schema;
    this.keyTtl = b.keyTtl;
    this.lockTimeout = b.lockTimeout;
    this.processedRetention = b.processedRetention;
    this.consumerRetention = Map.copyOf(b.consumerRetention);
    this.consumerTopics = new TreeMap<>(b.consumerTopics);
    this.kafkaProperties = b.kafkaProperties == null ? null : Map.copyOf(b.kafkaProperties);
    this.purgeGrace = b.purgeGrace;
    this.maxUnpublishedAge = b.maxUnpublishedAge;
    this.kafkaTimeout = b.kafkaTimeout;
  }

  /** @return a builder with the defaults documented on each setter */
  public static Builder builder() {
    return new Builder();
  }

  /**
   * Runs every check.
   *
   * @return the report
   * @throws OutboxException when the database cannot be read at all; the cause keeps the SQLState.
   *     Kafka being unreachable is a {@link Verdict#FAIL} of its check, not an exception.
   */
  public Report run() {
    try (Connection c = dataSource.getConnection()) {
      c.setReadOnly(true);
      c.setAutoCommit(true);
      Instant at;
      try (PreparedStatement st = c.prepareStatement("select clock_timestamp()");
          ResultSet rs = st.executeQuery()) {
        rs.next();
        at = rs.getObject(1, OffsetDateTime.class).toInstant();
      }
      List<Check> checks = new ArrayList<>();
      checks.add(uniqueConstraints(c));
      checks.add(keyExpiry(c));
      Map<String, Duration> oldestProcessed = oldestProcessed(c);
      checks.add(processedExpiry(oldestProcessed));
      checks.add(storedResponses(c));
      checks.add(inFlight(c));
      checks.add(topicRetention(oldestProcessed.keySet()));
      checks.add(parked(c));
      checks.add(unpublished(c));
      for (String[] rule : BUILD_TIME_RULES) {
        checks.add(new Check(rule[0], rule[1], Verdict.BUILD_TIME, "not visible in a live system; checked by " + rule[2],
            List.of(), null));
      }
      return new Report(schema, at, checks);
    } catch (SQLException e) {
      throw new OutboxException("Doctor[" + schema + "]: reading the database failed (SQLState " + e.getSQLState() + "): "
          + e.getMessage(), e);
    }
  }

  // ---------------------------------------------------------------- unique constraints

  private Check uniqueConstraints(Connection c) throws SQLException {
    String title = "Unique constraints on the key, processed-id and outbox tables are present and valid";
    List<String> evidence = new ArrayList<>();
    List<String> missing = new ArrayList<>();
    Map<String, Set<String>> expected = new LinkedHashMap<>();
    expected.put("idempotency_key", Set.of("scope", "idem_key"));
    expected.put("processed_message", Set.of("consumer", "message_id"));
    expected.put("outbox_message", Set.of("message_id"));
    String sql =
        "select i.indexrelid::regclass::text as name, i.indisvalid and i.indisready as valid, i.indpred is not null as partial,"
            + " array(select a.attname::text from unnest(i.indkey) with ordinality k(attnum, ord)"
            + "   join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum order by k.ord) as columns,"
            + " exists(select 1 from pg_constraint x where x.conindid = i.indexrelid) as constraint_backed"
            + " from pg_index i where i.indrelid = to_regclass(?) and i.indisunique order by 1";
    for (var e : expected.entrySet()) {
      String table = schema + "." + e.getKey();
      boolean ok = false;
      int found = 0;
      try (PreparedStatement st = c.prepareStatement(sql)) {
        st.setString(1, table);
        try (ResultSet rs = st.executeQuery()) {
          while (rs.next()) {
            found++;
            Set<String> cols = new LinkedHashSet<>(List.of((String[]) rs.getArray("columns").getArray()));
            boolean valid = rs.getBoolean("valid");
            boolean partial = rs.getBoolean("partial");
            evidence.add(table + ": unique index " + rs.getString("name") + " (" + String.join(", ", cols) + ")"
                + (valid ? " valid" : " INVALID") + (partial ? ", partial" : "")
                + (rs.getBoolean("constraint_backed") ? "" : ", not a constraint"));
            if (valid && !partial && cols.equals(e.getValue())) {
              ok = true;
            }
          }
        }
      }
      if (found == 0) {
        evidence.add(table + ": no unique index" + (tableExists(c, table) ? "" : " (the table does not exist)"));
      }
      if (!ok) {
        missing.add(table + " (" + String.join(", ", new TreeSet<>(e.getValue())) + ")");
      }
    }
    if (missing.isEmpty()) {
      return new Check("unique-constraints", title, Verdict.PASS, "all three are in place and valid", evidence, null);
    }
    return new Check("unique-constraints", title, Verdict.FAIL,
        "no valid, complete unique index on " + String.join(", ", missing)
            + ": concurrent duplicates are no longer decided by the database",
        evidence,
        "Recreate it: the migrations' primary keys are idempotency_key_pkey (scope, idem_key), processed_message_pkey"
            + " (consumer, message_id), outbox_message_message_id_key unique (message_id). Remove duplicate rows first; an"
            + " INVALID index is left by a failed CREATE INDEX CONCURRENTLY: drop and build it again.");
  }

  private static boolean tableExists(Connection c, String table) throws SQLException {
    try (PreparedStatement st = c.prepareStatement("select to_regclass(?) is not null")) {
      st.setString(1, table);
      try (ResultSet rs = st.executeQuery()) {
        rs.next();
        return rs.getBoolean(1);
      }
    }
  }

  // ---------------------------------------------------------------- expiry

  private Check keyExpiry(Connection c) throws SQLException {
    String title = "Idempotency keys expire and the purge keeps up";
    String sql =
        "select count(*) as keys,"
            + " count(*) filter (where expires_at < clock_timestamp() - ?::interval) as overdue,"
            + " extract(epoch from clock_timestamp() - min(expires_at)) as oldest_expired_seconds,"
            + " case when isfinite(max(expires_at)) then extract(epoch from max(expires_at) - clock_timestamp()) end"
            + " as farthest_expiry_seconds,"
            + " count(*) filter (where expires_at > clock_timestamp() + ?::interval) as beyond_ttl"
            + " from " + schema + ".idempotency_key";
    try (PreparedStatement st = c.prepareStatement(sql)) {
      st.setString(1, interval(purgeGrace));
      st.setString(2, interval(keyTtl.plus(purgeGrace)));
      try (ResultSet rs = st.executeQuery()) {
        rs.next();
        long keys = rs.getLong("keys");
        long overdue = rs.getLong("overdue");
        long beyond = rs.getLong("beyond_ttl");
        double oldestExpired = rs.getDouble("oldest_expired_seconds");
        boolean anyExpired = !rs.wasNull() && oldestExpired > 0;
        double farthest = rs.getDouble("farthest_expiry_seconds");
        boolean never = rs.wasNull();
        List<String> evidence = new ArrayList<>();
        evidence.add(keys + " key(s); configured ttl " + format(keyTtl) + ", purge grace " + format(purgeGrace));
        if (anyExpired) {
          evidence.add("oldest expired key expired " + format(seconds(oldestExpired)) + " ago; " + overdue
              + " key(s) expired more than the grace ago");
        }
        if (keys > 0) {
          evidence.add(never ? "some key never expires (expires_at infinity)" : "farthest expiry " + format(seconds(farthest)) + " ahead");
        }
        if (overdue > 0 || beyond > 0) {
          List<String> what = new ArrayList<>();
          if (overdue > 0) {
            what.add(overdue + " expired key(s) not purged within " + format(purgeGrace) + " (the purge is not running or not keeping up)");
          }
          if (beyond > 0) {
            what.add(beyond + " key(s) expire later than the ttl allows (written with another ttl, or never meant to expire)");
          }
          return new Check("key-expiry", title, Verdict.FAIL, String.join("; ", what), evidence,
              "Call IdempotencyStore.purgeExpired() periodically (e.g. hourly) from at least one instance; check that"
                  + " every writer sets expires_at = now + ttl. --key-ttl must match the store's ttl.");
        }
        return new Check("key-expiry", title, Verdict.PASS,
            keys == 0 ? "no keys stored" : "no key outlives its ttl by more than the grace", evidence, null);
      }
    }
  }

  private Map<String, Duration> oldestProcessed(Connection c) throws SQLException {
    // distinct consumers by skipping along the primary key, then each one's oldest row
    String consumers =
        "with recursive c(consumer) as ("
            + " (select consumer from " + schema + ".processed_message order by consumer limit 1)"
            + " union all select (select p.consumer from " + schema + ".processed_message p where p.consumer > c.consumer"
            + "   order by p.consumer limit 1) from c where c.consumer is not null)"
            + " select c.consumer, extract(epoch from clock_timestamp() - (select min(p.processed_at) from " + schema
            + ".processed_message p where p.consumer = c.consumer)) as oldest_seconds from c where c.consumer is not null";
    Map<String, Duration> out = new TreeMap<>();
    if (!tableExists(c, schema + ".processed_message")) {
      return out;
    }
    try (PreparedStatement st = c.prepareStatement(consumers);
        ResultSet rs = st.executeQuery()) {
      while (rs.next()) {
        out.put(rs.getString(1), seconds(rs.getDouble(2)));
      }
    }
    return out;
  }

  private Check processedExpiry(Map<String, Duration> oldest) {
    String title = "Processed message ids are purged after the consumer's retention";
    List<String> evidence = new ArrayList<>();
    List<String> late = new ArrayList<>();
    for (var e : oldest.entrySet()) {
      Duration retention = retention(e.getKey());
      evidence.add("consumer " + e.getKey() + ": oldest id " + format(e.getValue()) + " old, retention " + format(retention));
      if (e.getValue().compareTo(retention.plus(purgeGrace)) > 0) {
        late.add(e.getKey());
      }
    }
    if (!late.isEmpty()) {
      return new Check("processed-expiry", title, Verdict.FAIL,
          "ids older than retention + " + format(purgeGrace) + " grace for consumer(s) " + String.join(", ", late)
              + ": the purge is not running or not keeping up", evidence,
          "Keep IdempotentConsumer's scheduled purge on (purgeInterval, default 1 h) or call purgeProcessed(retention)"
              + " yourself; give the doctor each consumer's retention (--consumer-retention NAME=DURATION).");
    }
    return new Check("processed-expiry", title, Verdict.PASS,
        oldest.isEmpty() ? "no processed ids stored" : "every consumer's oldest id is within its retention", evidence, null);
  }

  // ---------------------------------------------------------------- responses and in-flight keys

  private Check storedResponses(Connection c) throws SQLException {
    String title = "Every completed key has its stored response";
    String sql =
        "select scope, idem_key, response_status from " + schema + ".idempotency_key"
            + " where response_status is not null and (response_body is null or response_headers is null)"
            + " order by created_at limit 6";
    List<String> evidence = new ArrayList<>();
    try (PreparedStatement st = c.prepareStatement(sql);
        ResultSet rs = st.executeQuery()) {
      while (rs.next()) {
        evidence.add(evidence.size() == 5 ? "..." : "scope " + rs.getString(1) + ", key " + rs.getString(2)
            + ": status " + rs.getInt(3) + " without body or headers");
      }
    }
    if (!evidence.isEmpty()) {
      return new Check("stored-responses", title, Verdict.FAIL,
          "completed keys without a stored response: a retry cannot get the original answer", evidence,
          "Store status, headers and body in the key row in the same transaction as the business write"
              + " (IdempotencyStore does); fix the writer of these rows.");
    }
    return new Check("stored-responses", title, Verdict.PASS, "every completed key has status, headers and body", evidence, null);
  }

  private Check inFlight(Connection c) throws SQLException {
    String title = "No key is stuck in flight beyond the lock timeout";
    List<String> evidence = new ArrayList<>();
    evidence.add("lock timeout " + format(lockTimeout));
    String committed =
        "select scope, idem_key, extract(epoch from clock_timestamp() - created_at) as age from " + schema + ".idempotency_key"
            + " where response_status is null and created_at < clock_timestamp() - ?::interval order by created_at limit 6";
    int stuck = 0;
    try (PreparedStatement st = c.prepareStatement(committed)) {
      st.setString(1, interval(lockTimeout));
      try (ResultSet rs = st.executeQuery()) {
        while (rs.next()) {
          stuck++;
          evidence.add(stuck == 6 ? "..." : "committed without a response: scope " + rs.getString(1) + ", key " + rs.getString(2)
              + ", " + format(seconds(rs.getDouble(3))) + " old");
        }
      }
    }
    String holders =
        "select distinct a.pid, a.usename, a.application_name, a.state, extract(epoch from clock_timestamp() - a.xact_start) as age,"
            + " left(regexp_replace(a.query, '\\s+', ' ', 'g'), 120) as query"
            + " from pg_locks l join pg_stat_activity a on a.pid = l.pid"
            + " where l.relation = to_regclass(?) and l.mode = 'RowExclusiveLock' and l.granted and a.pid <> pg_backend_pid()"
            + " and a.xact_start < clock_timestamp() - ?::interval order by age desc limit 5";
    int sessions = 0;
    try (PreparedStatement st = c.prepareStatement(holders)) {
      st.setString(1, schema + ".idempotency_key");
      st.setString(2, interval(lockTimeout));
      try (ResultSet rs = st.executeQuery()) {
        while (rs.next()) {
          sessions++;
          evidence.add("transaction writing keys for " + format(seconds(rs.getDouble("age"))) + ": pid " + rs.getInt("pid") + " "
              + rs.getString("usename") + " (" + rs.getString("application_name") + "), " + rs.getString("state") + ": "
              + rs.getString("query"));
        }
      }
    }
    if (stuck > 0 || sessions > 0) {
      return new Check("in-flight", title, Verdict.FAIL,
          (stuck > 0 ? "committed key(s) without a response (every retry gets 409 until they expire)" : "")
              + (stuck > 0 && sessions > 0 ? "; " : "")
              + (sessions > 0 ? sessions + " transaction(s) holding keys longer than the lock timeout (duplicates get 409)" : ""),
          evidence,
          "A key must be inserted and answered in one transaction (IdempotencyStore does): delete committed rows without a"
              + " response once their requests are known dead; find why the listed transactions stay open (a slow"
              + " downstream call inside the handler, idle in transaction).");
    }
    return new Check("in-flight", title, Verdict.PASS, "no committed key without a response, no long key-holding transaction",
        evidence, null);
  }

  // ---------------------------------------------------------------- retention against Kafka

  private Check topicRetention(Set<String> consumersWithIds) {
    String title = "Each consumer keeps processed ids at least as long as its topics keep records";
    Set<String> consumers = new TreeSet<>(consumersWithIds);
    consumers.addAll(consumerTopics.keySet());
    if (consumers.isEmpty()) {
      return new Check("topic-retention", title, Verdict.PASS, "no consumers (no processed ids, none given)", List.of(), null);
    }
    if (kafkaProperties == null) {
      return new Check("topic-retention", title, Verdict.SKIP, "Kafka not given; consumers " + String.join(", ", consumers),
          List.of(), "Give Kafka's address (bootstrap-servers) so the doctor can read the topics' retention.");
    }
    Map<String, Object> props = new LinkedHashMap<>(kafkaProperties);
    int ms = (int) Math.min(Integer.MAX_VALUE, kafkaTimeout.toMillis());
    props.putIfAbsent(AdminClientConfig.CLIENT_ID_CONFIG, "outbox-doctor");
    props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, ms);
    props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, ms);
    List<String> evidence = new ArrayList<>();
    List<String> shorter = new ArrayList<>();
    List<String> unknown = new ArrayList<>();
    try (Admin admin = Admin.create(props)) {
      Map<String, List<String>> topicsOf = new TreeMap<>();
      for (String consumer : consumers) {
        List<String> given = consumerTopics.get(consumer);
        if (given != null) {
          topicsOf.put(consumer, given);
          continue;
        }
        Set<String> topics = new TreeSet<>();
        Map<TopicPartition, ?> offsets = admin.listConsumerGroupOffsets(consumer).partitionsToOffsetAndMetadata()
            .get(kafkaTimeout.toMillis(), TimeUnit.MILLISECONDS);
        offsets.keySet().forEach(tp -> topics.add(tp.topic()));
        if (topics.isEmpty()) {
          unknown.add(consumer);
          evidence.add("consumer " + consumer + ": topics unknown (not given, and no consumer group " + consumer + " with offsets)");
        } else {
          topicsOf.put(consumer, List.copyOf(topics));
          evidence.add("consumer " + consumer + ": topics " + topics + " from the offsets of consumer group " + consumer);
        }
      }
      Set<ConfigResource> resources = new LinkedHashSet<>();
      topicsOf.values().forEach(ts -> ts.forEach(t -> resources.add(new ConfigResource(ConfigResource.Type.TOPIC, t))));
      Map<ConfigResource, Config> configs = resources.isEmpty() ? Map.of()
          : admin.describeConfigs(resources).all().get(kafkaTimeout.toMillis(), TimeUnit.MILLISECONDS);
      for (var e : topicsOf.entrySet()) {
        Duration retention = retention(e.getKey());
        for (String topic : e.getValue()) {
          Config config = configs.get(new ConfigResource(ConfigResource.Type.TOPIC, topic));
          ConfigEntry entry = config == null ? null : config.get(TopicConfig.RETENTION_MS_CONFIG);
          if (entry == null || entry.value() == null) {
            evidence.add("topic " + topic + ": retention.ms not readable");
            unknown.add(e.getKey() + "/" + topic);
            continue;
          }
          long topicMs = Long.parseLong(entry.value());
          ConfigEntry policy = config.get(TopicConfig.CLEANUP_POLICY_CONFIG);
          String shown = topicMs < 0 ? "unlimited" : format(Duration.ofMillis(topicMs));
          boolean tooShort = topicMs < 0 || retention.toMillis() < topicMs;
          evidence.add("consumer " + e.getKey() + " (retention " + format(retention) + ") reads " + topic + " (retention.ms "
              + shown + (policy == null ? "" : ", cleanup.policy " + policy.value()) + ")" + (tooShort ? ": SHORTER" : ""));
          if (tooShort) {
            shorter.add(e.getKey() + " on " + topic);
          }
        }
      }
    } catch (ExecutionException | TimeoutException | RuntimeException e) {
      Throwable cause = e instanceof ExecutionException ? e.getCause() : e;
      evidence.add("Kafka at " + kafkaProperties.get(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG) + ": " + cause);
      return new Check("topic-retention", title, Verdict.FAIL, "could not read the topics' retention from Kafka", evidence,
          "Check the Kafka address and the client security settings the doctor was given.");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return new Check("topic-retention", title, Verdict.FAIL, "interrupted while asking Kafka", evidence, null);
    }
    if (!shorter.isEmpty()) {
      return new Check("topic-retention", title, Verdict.FAIL,
          "processed ids are purged before the topic drops the records: " + String.join(", ", shorter)
              + " (a consumer that rewinds, e.g. after an offset reset, handles those records again)",
          evidence,
          "Raise the consumer's retention (IdempotentConsumer.builder().retention(...)) to at least the topic's"
              + " retention.ms, or lower the topic's retention; tell the doctor with --consumer-retention NAME=DURATION.");
    }
    if (!unknown.isEmpty()) {
      return new Check("topic-retention", title, Verdict.WARN, "topics unknown for " + String.join(", ", unknown), evidence,
          "Tell the doctor which topics each consumer reads: --consumer NAME=TOPIC[,TOPIC...].");
    }
    return new Check("topic-retention", title, Verdict.PASS, "every consumer's retention covers its topics' retention", evidence, null);
  }

  // ---------------------------------------------------------------- outbox

  private Check parked(Connection c) throws SQLException {
    String title = "The outbox has no parked messages";
    String sql = "select id, topic, message_key, attempts, last_error, extract(epoch from clock_timestamp() - parked_at) as age"
        + " from " + schema + ".outbox_message where parked_at is not null order by id limit 6";
    List<String> evidence = new ArrayList<>();
    try (PreparedStatement st = c.prepareStatement(sql);
        ResultSet rs = st.executeQuery()) {
      while (rs.next()) {
        evidence.add(evidence.size() == 5 ? "..." : "id " + rs.getLong("id") + " topic " + rs.getString("topic") + " key "
            + rs.getString("message_key") + ", parked " + format(seconds(rs.getDouble("age"))) + " ago after "
            + rs.getInt("attempts") + " attempt(s): " + rs.getString("last_error"));
      }
    }
    if (!evidence.isEmpty()) {
      return new Check("outbox-parked", title, Verdict.FAIL, "parked messages are waiting for an operator", evidence,
          "See them with 'parked list'; fix the cause (topic missing, record too large, ACLs), then 'parked requeue',"
              + " or 'parked purge' what must never be published.");
    }
    return new Check("outbox-parked", title, Verdict.PASS, "no parked messages", evidence, null);
  }

  private Check unpublished(Connection c) throws SQLException {
    String title = "No outbox message stays unpublished for long";
    String sql = "select count(*), extract(epoch from clock_timestamp() - min(created_at))"
        + " from " + schema + ".outbox_message where parked_at is null";
    try (PreparedStatement st = c.prepareStatement(sql);
        ResultSet rs = st.executeQuery()) {
      rs.next();
      long backlog = rs.getLong(1);
      double oldest = rs.getDouble(2);
      List<String> evidence = new ArrayList<>();
      evidence.add(backlog + " unpublished message(s)" + (backlog > 0 ? ", oldest " + format(seconds(oldest)) + " old" : "")
          + "; limit " + format(maxUnpublishedAge));
      if (backlog > 0 && seconds(oldest).compareTo(maxUnpublishedAge) > 0) {
        return new Check("outbox-unpublished", title, Verdict.FAIL, "messages wait longer than " + format(maxUnpublishedAge)
            + " to be published", evidence,
            "Check that relays run and own every shard ('status'), that Kafka is reachable, and what holds the xmin horizon.");
      }
      return new Check("outbox-unpublished", title, Verdict.PASS, "the backlog is fresh", evidence, null);
    }
  }

  // ---------------------------------------------------------------- helpers

  private Duration retention(String consumer) {
    return consumerRetention.getOrDefault(consumer, processedRetention);
  }

  private static String interval(Duration d) {
    return d.toMillis() + " milliseconds";
  }

  private static Duration seconds(double s) {
    return Duration.ofMillis(Math.round(Math.max(0, s) * 1000));
  }

  /** @return a duration as the doctor prints it: {@code 850ms}, {@code 12s}, {@code 3m20s}, {@code 5h}, {@code 7d} */
  static String format(Duration d) {
    long ms = d.toMillis();
    if (ms < 1000) {
      return ms + "ms";
    }
    long s = ms / 1000;
    if (s < 60) {
      return s + "s";
    }
    if (s < 3600) {
      return s / 60 + "m" + (s % 60 == 0 ? "" : s % 60 + "s");
    }
    if (s < 86_400) {
      return s / 3600 + "h" + (s % 3600 / 60 == 0 ? "" : s % 3600 / 60 + "m");
    }
    return s / 86_400 + "d" + (s % 86_400 / 3600 == 0 ? "" : s % 86_400 / 3600 + "h");
  }

  /** Builds a {@link Doctor}. Not thread-safe. */
  public static final class Builder {
    private DataSource dataSource;
    private String schema = OutboxMigrations.DEFAULT_SCHEMA;
    private Duration keyTtl = Duration.ofHours(24);
    private Duration lockTimeout = Duration.ofSeconds(2);
    private Duration processedRetention = Duration.ofDays(7);
    private final Map<String, Duration> consumerRetention = new LinkedHashMap<>();
    private final Map<String, List<String>> consumerTopics = new LinkedHashMap<>();
    private Map<String, Object> kafkaProperties;
    private Duration purgeGrace = Duration.ofHours(2);
    private Duration maxUnpublishedAge = Duration.ofMinutes(5);
    private Duration kafkaTimeout = Duration.ofSeconds(15);

    private Builder() {}

    /**
     * @param dataSource the database with the outbox tables; read only
     * @return this builder
     */
    public Builder dataSource(DataSource dataSource) {
      this.dataSource = Objects.requireNonNull(dataSource, "dataSource may not be null");
      return this;
    }

    /**
     * @param schema the schema of the outbox tables; default {@code outbox}
     * @return this builder
     * @throws IllegalArgumentException when it is not a plain SQL identifier
     */
    public Builder schema(String schema) {
      this.schema = OutboxMigrations.requireValidSchema(schema);
      return this;
    }

    /**
     * @param keyTtl the {@code IdempotencyStore}'s ttl; default 24 h, the store's default
     * @return this builder
     */
    public Builder keyTtl(Duration keyTtl) {
      this.keyTtl = positive(keyTtl, "keyTtl");
      return this;
    }

    /**
     * @param lockTimeout the {@code IdempotencyStore}'s lock timeout; a key held longer is stuck;
     *     default 2 s, the store's default
     * @return this builder
     */
    public Builder lockTimeout(Duration lockTimeout) {
      this.lockTimeout = positive(lockTimeout, "lockTimeout");
      return this;
    }

    /**
     * @param retention the processed-id retention of consumers not given one by {@link
     *     #consumerRetention}; default 7 days, {@code IdempotentConsumer}'s default
     * @return this builder
     */
    public Builder processedRetention(Duration retention) {
      this.processedRetention = positive(retention, "processedRetention");
      return this;
    }

    /**
     * @param consumer a consumer name (the dedup scope)
     * @param retention its {@code IdempotentConsumer.Builder.retention}
     * @return this builder
     */
    public Builder consumerRetention(String consumer, Duration retention) {
      consumerRetention.put(requireName(consumer), positive(retention, "retention of consumer " + consumer));
      return this;
    }

    /**
     * @param consumer a consumer name (the dedup scope)
     * @param topics the topics it reads
     * @return this builder
     * @throws IllegalArgumentException when no topic is given or one is blank
     */
    public Builder consumer(String consumer, String... topics) {
      Objects.requireNonNull(topics, "topics may not be null");
      if (topics.length == 0) {
        throw new IllegalArgumentException("consumer " + consumer + " needs at least one topic");
      }
      List<String> list = new ArrayList<>();
      for (String t : topics) {
        list.add(requireName(t));
      }
      consumerTopics.put(requireName(consumer), List.copyOf(list));
      return this;
    }

    /**
     * @param properties Kafka admin client properties, at least {@code bootstrap.servers}; without
     *     them the topic-retention check is skipped
     * @return this builder
     * @throws IllegalArgumentException when {@code bootstrap.servers} is missing
     */
    public Builder kafkaProperties(Map<String, ?> properties) {
      Objects.requireNonNull(properties, "properties may not be null");
      if (properties.get(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG) == null) {
        throw new IllegalArgumentException("kafkaProperties need bootstrap.servers");
      }
      this.kafkaProperties = new LinkedHashMap<>(properties);
      return this;
    }

    /**
     * @param grace how far past its expiry or retention a row may be before the purge counts as not
     *     keeping up; default 2 h (the purges run hourly by default)
     * @return this builder
     */
    public Builder purgeGrace(Duration grace) {
      this.purgeGrace = positive(grace, "purgeGrace");
      return this;
    }

    /**
     * @param age how old the oldest unpublished outbox row may be; default 5 minutes
     * @return this builder
     */
    public Builder maxUnpublishedAge(Duration age) {
      this.maxUnpublishedAge = positive(age, "maxUnpublishedAge");
      return this;
    }

    /**
     * @param timeout how long each Kafka request may take; default 15 s
     * @return this builder
     */
    public Builder kafkaTimeout(Duration timeout) {
      this.kafkaTimeout = positive(timeout, "kafkaTimeout");
      return this;
    }

    /**
     * @return the doctor
     * @throws IllegalStateException when no data source was given
     */
    public Doctor build() {
      if (dataSource == null) {
        throw new IllegalStateException("Doctor needs the database: call dataSource(dataSource)");
      }
      return new Doctor(this);
    }

    private static Duration positive(Duration d, String name) {
      return Checks.requirePositive(d, name, "");
    }

    private static String requireName(String name) {
      if (name == null || name.isBlank()) {
        throw new IllegalArgumentException("consumer and topic names may not be blank");
      }
      return name.strip();
    }
  }
}
