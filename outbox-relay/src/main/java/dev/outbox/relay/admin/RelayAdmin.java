package dev.outbox.relay.admin;

import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxException;
import dev.outbox.migrations.OutboxMigrations;
import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import javax.sql.DataSource;

/**
 * The operator's view of a relay deployment, straight from the database: backlog and leases per
 * shard, live relays, parked messages, and what holds back PostgreSQL's xmin horizon; and the two
 * repairs for parked messages, requeue and purge.
 *
 * <p>The relay process's {@code status} and {@code parked} commands are a thin text layer over this
 * class; embed it to show the same in an admin page or a health check of your own. It needs no
 * lease and no running relay: every method is a few short statements on the given data source.
 * Thread-safe.
 *
 * <pre>{@code
 * RelayAdmin admin = RelayAdmin.create(dataSource, "outbox");
 * RelayAdmin.Status s = admin.status();
 * for (RelayAdmin.ParkedMessage p : admin.parked(20)) { ... }
 * admin.requeue(List.of(p.id()));          // after fixing the cause
 * }</pre>
 */
public final class RelayAdmin {

  /** The most rows {@link #parked(int)} returns at once. */
  public static final int MAX_LIMIT = 10_000;

  /** How many sessions holding the xmin horizon {@link #status()} lists. */
  static final int XMIN_SESSIONS = 5;

  private final DataSource dataSource;
  private final String schema;
  private final String message;
  private final String lease;
  private final String member;

  private RelayAdmin(DataSource dataSource, String schema) {
    this.dataSource = dataSource;
    this.schema = schema;
    this.message = schema + ".outbox_message";
    this.lease = schema + ".outbox_shard_lease";
    this.member = schema + ".outbox_relay_member";
  }

  /**
   * @param dataSource connections to the outbox database; the user needs to read and write the
   *     outbox tables, and to see {@code pg_stat_activity} rows of other users for a complete xmin
   *     report (role {@code pg_read_all_stats}); without it other users' query texts show as
   *     {@code <insufficient privilege>}
   * @param schema the schema holding the outbox tables
   * @return the admin view
   * @throws NullPointerException when an argument is null
   * @throws IllegalArgumentException when {@code schema} is not a plain lower-case SQL identifier
   */
  public static RelayAdmin create(DataSource dataSource, String schema) {
    Objects.requireNonNull(dataSource, "dataSource may not be null");
    OutboxMigrations.requireValidSchema(schema);
    return new RelayAdmin(dataSource, schema);
  }

  /** @return the schema this view reads */
  public String schema() {
    return schema;
  }

  // ---------------------------------------------------------------- records

  /**
   * One shard.
   *
   * @param shard the shard number
   * @param backlog publishable (unparked) rows waiting
   * @param oldestAge age of the oldest publishable row (database clock), or {@code null} when none
   * @param parked parked rows
   * @param owner the relay holding or last holding the lease, or {@code null} when never claimed or
   *     handed back
   * @param epoch the fencing epoch, bumped on every change of owner
   * @param leaseUntil when the lease expires
   * @param leaseLive whether the lease is still valid (database clock)
   */
  public record ShardStatus(
      int shard,
      long backlog,
      Duration oldestAge,
      long parked,
      String owner,
      long epoch,
      Instant leaseUntil,
      boolean leaseLive) {}

  /**
   * One relay in the membership table.
   *
   * @param owner its instance id
   * @param startedAt when it joined
   * @param heartbeatUntil until when its last heartbeat counts
   * @param live whether the heartbeat is still valid (database clock)
   * @param ownedShards shards whose valid lease it holds
   */
  public record Member(String owner, Instant startedAt, Instant heartbeatUntil, boolean live, int ownedShards) {}

  /**
   * Something that keeps PostgreSQL's xmin horizon back: while it exists, no vacuum anywhere in the
   * cluster can remove row versions deleted after its snapshot, so the relay's deleted outbox rows
   * stay on disk and in the indexes the relay scans.
   *
   * @param kind {@code session}, {@code replication slot}, {@code standby} (hot_standby_feedback) or
   *     {@code prepared transaction}
   * @param name the session's pid, user, database and application; the slot's or the prepared
   *     transaction's name; the standby's application name
   * @param xmin the transaction id it holds: a session's snapshot xmin, or its own transaction id
   *     when it has written but holds no snapshot
   * @param xminAge how many transactions old that id is ({@code age(xmin)})
   * @param since when the transaction started (session, prepared transaction), or {@code null}
   * @param state the session's state ({@code idle in transaction} is the usual culprit), or
   *     whether a slot is active
   * @param detail the session's current or last query (first 120 characters), or other context
   */
  public record XminHolder(
      String kind, String name, long xmin, long xminAge, Instant since, String state, String detail) {}

  /**
   * Vacuum statistics of {@code outbox_message}.
   *
   * @param liveRows estimated live rows
   * @param deadRows estimated dead row versions not yet vacuumed
   * @param lastVacuum the last vacuum, manual or automatic, or {@code null}
   */
  public record TableStats(long liveRows, long deadRows, Instant lastVacuum) {}

  /**
   * The whole picture.
   *
   * @param at the database's clock when read
   * @param shards every shard in the lease table, by number
   * @param backlog publishable rows over all shards
   * @param oldestAge age of the oldest publishable row over all shards, or {@code null} when none
   * @param parked parked rows over all shards
   * @param members the relays in the membership table, live or not
   * @param xminHolders what holds the xmin horizon, oldest first
   * @param table vacuum statistics of the outbox table
   */
  public record Status(
      Instant at,
      List<ShardStatus> shards,
      long backlog,
      Duration oldestAge,
      long parked,
      List<Member> members,
      List<XminHolder> xminHolders,
      TableStats table) {

    /** @return the number of live members */
    public long liveMembers() {
      return members.stream().filter(Member::live).count();
    }
  }

  /**
   * A parked row.
   *
   * @param id the outbox id (commit order)
   * @param messageId the message id
   * @param shard its shard
   * @param topic the Kafka topic
   * @param key the message key, or {@code null}
   * @param payloadBytes the payload's size in bytes (0 for a tombstone)
   * @param attempts how often publishing was tried
   * @param createdAt when it was appended
   * @param parkedAt when it was parked
   * @param lastError the error that parked it
   */
  public record ParkedMessage(
      long id,
      UUID messageId,
      int shard,
      String topic,
      String key,
      int payloadBytes,
      int attempts,
      Instant createdAt,
      Instant parkedAt,
      String lastError) {}

  /**
   * What a requeue or purge did.
   *
   * @param ids the outbox ids it requeued or purged, ascending
   * @param notParked the requested ids it left alone because no parked row has them (already
   *     requeued or purged, published, or never parked), ascending
   */
  public record Changed(List<Long> ids, List<Long> notParked) {
    /** @return how many rows changed */
    public int count() {
      return ids.size();
    }
  }

  // ---------------------------------------------------------------- reads

  /**
   * Reads backlog, leases, members, parked count and xmin holders. Counts the backlog per shard
   * through the relay's own partial index; on a backlog of millions this takes a while, but holds
   * no lock the relay needs.
   *
   * @return the status
   * @throws OutboxException when the database fails; the cause keeps the SQLState
   */
  public Status status() {
    try (Connection c = dataSource.getConnection()) {
      c.setReadOnly(true);
      Instant at;
      try (PreparedStatement st = c.prepareStatement("select clock_timestamp()");
          ResultSet rs = st.executeQuery()) {
        rs.next();
        at = instant(rs, 1);
      }
      List<ShardStatus> shards = new ArrayList<>();
      String shardSql =
          "select l.shard, l.owner, l.epoch, l.lease_until, l.lease_until > clock_timestamp() as live,"
              + " b.backlog, extract(epoch from clock_timestamp() - o.created_at) as oldest_seconds, p.parked"
              + " from " + lease + " l"
              + " cross join lateral (select count(*) as backlog from " + message + " m"
              + "   where m.shard = l.shard and m.parked_at is null) b"
              + " left join lateral (select m.created_at from " + message + " m"
              + "   where m.shard = l.shard and m.parked_at is null order by m.id limit 1) o on true"
              + " cross join lateral (select count(*) as parked from " + message + " m"
              + "   where m.shard = l.shard and m.parked_at is not null) p"
              + " order by l.shard";
      long backlog = 0;
      long parked = 0;
      Duration oldest = null;
      try (PreparedStatement st = c.prepareStatement(shardSql);
          ResultSet rs = st.executeQuery()) {
        while (rs.next()) {
          double seconds = rs.getDouble("oldest_seconds");
          Duration age = rs.wasNull() ? null : seconds(seconds);
          ShardStatus s =
              new ShardStatus(
                  rs.getInt("shard"),
                  rs.getLong("backlog"),
                  age,
                  rs.getLong("parked"),
                  rs.getString("owner"),
                  rs.getLong("epoch"),
                  instant(rs, "lease_until"),
                  rs.getBoolean("live"));
          shards.add(s);
          backlog += s.backlog();
          parked += s.parked();
          if (age != null && (oldest == null || age.compareTo(oldest) > 0)) {
            oldest = age;
          }
        }
      }
      List<Member> members = new ArrayList<>();
      String memberSql =
          "select m.owner, m.started_at, m.heartbeat_until, m.heartbeat_until > clock_timestamp() as live,"
              + " (select count(*) from " + lease + " l where l.owner = m.owner and l.lease_until > clock_timestamp()) as shards"
              + " from " + member + " m order by m.started_at, m.owner";
      try (PreparedStatement st = c.prepareStatement(memberSql);
          ResultSet rs = st.executeQuery()) {
        while (rs.next()) {
          members.add(
              new Member(
                  rs.getString("owner"),
                  instant(rs, "started_at"),
                  instant(rs, "heartbeat_until"),
                  rs.getBoolean("live"),
                  rs.getInt("shards")));
        }
      }
      return new Status(at, List.copyOf(shards), backlog, oldest, parked, List.copyOf(members), xminHolders(c), tableStats(c));
    } catch (SQLException e) {
      throw failure("reading the relay status", e);
    }
  }

  private List<XminHolder> xminHolders(Connection c) throws SQLException {
    List<XminHolder> holders = new ArrayList<>();
    String sessions =
        "select pid, usename, datname, application_name, state,"
            + " coalesce(backend_xmin, backend_xid)::text::bigint as xmin,"
            + " greatest(age(backend_xmin), age(backend_xid)) as xmin_age, xact_start,"
            + " left(regexp_replace(query, '\\s+', ' ', 'g'), 120) as query"
            + " from pg_stat_activity"
            + " where (backend_xmin is not null or backend_xid is not null) and pid <> pg_backend_pid()"
            + " order by greatest(age(backend_xmin), age(backend_xid)) desc, xact_start limit " + XMIN_SESSIONS;
    try (PreparedStatement st = c.prepareStatement(sessions);
        ResultSet rs = st.executeQuery()) {
      while (rs.next()) {
        String app = rs.getString("application_name");
        String name =
            "pid " + rs.getInt("pid") + " " + rs.getString("usename") + "@" + rs.getString("datname")
                + (app == null || app.isEmpty() ? "" : " (" + app + ")");
        holders.add(
            new XminHolder(
                "session",
                name,
                rs.getLong("xmin"),
                rs.getLong("xmin_age"),
                instant(rs, "xact_start"),
                rs.getString("state"),
                rs.getString("query")));
      }
    }
    String slots =
        "select slot_name, slot_type, database, active,"
            + " coalesce(xmin, catalog_xmin)::text::bigint as xmin,"
            + " greatest(age(xmin), age(catalog_xmin)) as xmin_age"
            + " from pg_replication_slots where xmin is not null or catalog_xmin is not null";
    try (PreparedStatement st = c.prepareStatement(slots);
        ResultSet rs = st.executeQuery()) {
      while (rs.next()) {
        holders.add(
            new XminHolder(
                "replication slot",
                rs.getString("slot_name"),
                rs.getLong("xmin"),
                rs.getLong("xmin_age"),
                null,
                rs.getBoolean("active") ? "active" : "inactive",
                rs.getString("slot_type") + (rs.getString("database") == null ? "" : " on " + rs.getString("database"))));
      }
    }
    String standbys =
        "select application_name, client_addr::text as addr, state, backend_xmin::text::bigint as xmin,"
            + " age(backend_xmin) as xmin_age from pg_stat_replication where backend_xmin is not null";
    try (PreparedStatement st = c.prepareStatement(standbys);
        ResultSet rs = st.executeQuery()) {
      while (rs.next()) {
        holders.add(
            new XminHolder(
                "standby",
                rs.getString("application_name"),
                rs.getLong("xmin"),
                rs.getLong("xmin_age"),
                null,
                rs.getString("state"),
                "hot_standby_feedback from " + rs.getString("addr")));
      }
    }
    String prepared =
        "select gid, owner, database, transaction::text::bigint as xmin, age(transaction) as xmin_age, prepared"
            + " from pg_prepared_xacts";
    try (PreparedStatement st = c.prepareStatement(prepared);
        ResultSet rs = st.executeQuery()) {
      while (rs.next()) {
        holders.add(
            new XminHolder(
                "prepared transaction",
                rs.getString("gid"),
                rs.getLong("xmin"),
                rs.getLong("xmin_age"),
                instant(rs, "prepared"),
                "prepared",
                "owner " + rs.getString("owner") + " on " + rs.getString("database")));
      }
    }
    holders.sort((a, b) -> Long.compare(b.xminAge(), a.xminAge()));
    return List.copyOf(holders);
  }

  private TableStats tableStats(Connection c) throws SQLException {
    String sql =
        "select n_live_tup, n_dead_tup, greatest(last_vacuum, last_autovacuum) as last_vacuum"
            + " from pg_stat_all_tables where schemaname = ? and relname = 'outbox_message'";
    try (PreparedStatement st = c.prepareStatement(sql)) {
      st.setString(1, schema);
      try (ResultSet rs = st.executeQuery()) {
        if (!rs.next()) {
          return new TableStats(0, 0, null);
        }
        return new TableStats(rs.getLong("n_live_tup"), rs.getLong("n_dead_tup"), instant(rs, "last_vacuum"));
      }
    }
  }

  /**
   * Lists parked rows, oldest (lowest id) first.
   *
   * @param limit the most rows to return, 1 to {@value #MAX_LIMIT}
   * @return the parked rows
   * @throws IllegalArgumentException when {@code limit} is out of range
   * @throws OutboxException when the database fails; the cause keeps the SQLState
   */
  public List<ParkedMessage> parked(int limit) {
    if (limit < 1 || limit > MAX_LIMIT) {
      throw new IllegalArgumentException("limit must be between 1 and " + MAX_LIMIT + ", got " + limit);
    }
    String sql =
        "select id, message_id, shard, topic, message_key, coalesce(octet_length(payload), 0) as size, attempts,"
            + " created_at, parked_at, last_error from " + message
            + " where parked_at is not null order by id limit ?";
    try (Connection c = dataSource.getConnection();
        PreparedStatement st = c.prepareStatement(sql)) {
      st.setInt(1, limit);
      List<ParkedMessage> rows = new ArrayList<>();
      try (ResultSet rs = st.executeQuery()) {
        while (rs.next()) {
          rows.add(
              new ParkedMessage(
                  rs.getLong("id"),
                  rs.getObject("message_id", UUID.class),
                  rs.getInt("shard"),
                  rs.getString("topic"),
                  rs.getString("message_key"),
                  rs.getInt("size"),
                  rs.getInt("attempts"),
                  instant(rs, "created_at"),
                  instant(rs, "parked_at"),
                  rs.getString("last_error")));
        }
      }
      return List.copyOf(rows);
    } catch (SQLException e) {
      throw failure("listing parked messages", e);
    }
  }

  // ---------------------------------------------------------------- repairs

  /**
   * Makes the given parked rows publishable again ({@code parked_at}, {@code attempts} and {@code
   * last_error} cleared) and wakes the relays that own their shards. Fix the cause first (topic
   * created, ACL granted, size limit raised), or the row parks again. A requeued row is published
   * in its original id position: under {@code HOLD_KEY} before the key's held-back rows; under
   * {@code PARK_AND_CONTINUE} after the key's later messages, which already left.
   *
   * @param ids outbox ids (as listed by {@link #parked(int)}); ids of rows that are not parked are
   *     reported in {@link Changed#notParked()} and left alone
   * @return what changed
   * @throws NullPointerException when {@code ids} or an element is null
   * @throws IllegalArgumentException when {@code ids} is empty
   * @throws OutboxException when the database fails; the cause keeps the SQLState
   */
  public Changed requeue(Collection<Long> ids) {
    Set<Long> wanted = checkIds(ids);
    return change("requeueing parked messages", requeueSql("and id = any(?)"), wanted);
  }

  /**
   * Requeues every parked row; see {@link #requeue(Collection)}.
   *
   * @return what changed
   * @throws OutboxException when the database fails; the cause keeps the SQLState
   */
  public Changed requeueAll() {
    return change("requeueing parked messages", requeueSql(""), null);
  }

  /**
   * Deletes the given parked rows for good: they will never be published. Rows that are not parked
   * are never deleted by this method. Under {@code HOLD_KEY}, purging a key's parked row releases
   * its held-back rows.
   *
   * @param ids outbox ids of parked rows
   * @return what changed
   * @throws NullPointerException when {@code ids} or an element is null
   * @throws IllegalArgumentException when {@code ids} is empty
   * @throws OutboxException when the database fails; the cause keeps the SQLState
   */
  public Changed purge(Collection<Long> ids) {
    Set<Long> wanted = checkIds(ids);
    return change("purging parked messages", purgeSql("and id = any(?)"), wanted);
  }

  /**
   * Deletes every parked row; see {@link #purge(Collection)}.
   *
   * @return what changed
   * @throws OutboxException when the database fails; the cause keeps the SQLState
   */
  public Changed purgeAll() {
    return change("purging parked messages", purgeSql(""), null);
  }

  private String requeueSql(String filter) {
    return "update " + message + " set parked_at = null, attempts = 0, last_error = null"
        + " where parked_at is not null " + filter + " returning id, shard";
  }

  private String purgeSql(String filter) {
    return "delete from " + message + " where parked_at is not null " + filter + " returning id, shard";
  }

  private static Set<Long> checkIds(Collection<Long> ids) {
    Objects.requireNonNull(ids, "ids may not be null");
    if (ids.isEmpty()) {
      throw new IllegalArgumentException("ids may not be empty; pass the outbox ids of parked rows, or use the *All method");
    }
    Set<Long> set = new TreeSet<>();
    for (Long id : ids) {
      set.add(Objects.requireNonNull(id, "ids may not contain null"));
    }
    return set;
  }

  /** Runs the change and a wake-up notification in one transaction, so the relay sees both at commit. */
  private Changed change(String what, String sql, Set<Long> wanted) {
    try (Connection c = dataSource.getConnection()) {
      boolean auto = c.getAutoCommit();
      c.setAutoCommit(false);
      try {
        TreeSet<Long> changed = new TreeSet<>();
        Set<Integer> shards = new TreeSet<>();
        try (PreparedStatement st = c.prepareStatement(sql)) {
          if (wanted != null) {
            Array array = c.createArrayOf("bigint", wanted.toArray());
            st.setArray(1, array);
          }
          try (ResultSet rs = st.executeQuery()) {
            while (rs.next()) {
              changed.add(rs.getLong(1));
              shards.add(rs.getInt(2));
            }
          }
        }
        if (!shards.isEmpty()) {
          String payload = String.join(",", shards.stream().map(String::valueOf).toList());
          try (PreparedStatement st = c.prepareStatement("select pg_notify(?, ?)")) {
            st.setString(1, Outbox.channel(schema));
            st.setString(2, payload.length() > 4000 ? "*" : payload);
            st.execute();
          }
        }
        c.commit();
        List<Long> missing = new ArrayList<>();
        if (wanted != null) {
          Set<Long> rest = new LinkedHashSet<>(wanted);
          rest.removeAll(changed);
          missing.addAll(rest);
        }
        return new Changed(List.copyOf(changed), List.copyOf(missing));
      } catch (SQLException | RuntimeException e) {
        c.rollback();
        throw e;
      } finally {
        c.setAutoCommit(auto);
      }
    } catch (SQLException e) {
      throw failure(what, e);
    }
  }

  // ---------------------------------------------------------------- helpers

  private OutboxException failure(String what, SQLException e) {
    return new OutboxException(
        "RelayAdmin[" + schema + "]: " + what + " failed (SQLState " + e.getSQLState() + "): " + e.getMessage(), e);
  }

  private static Duration seconds(double s) {
    return Duration.ofNanos(Math.round(Math.max(0, s) * 1e9));
  }

  private static Instant instant(ResultSet rs, String column) throws SQLException {
    OffsetDateTime t = rs.getObject(column, OffsetDateTime.class);
    return t == null ? null : t.toInstant();
  }

  private static Instant instant(ResultSet rs, int column) throws SQLException {
    OffsetDateTime t = rs.getObject(column, OffsetDateTime.class);
    return t == null ? null : t.toInstant();
  }
}
