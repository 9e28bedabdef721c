package dev.outbox.core.internal;

import static dev.outbox.migrations.jooq.Tables.OUTBOX_MESSAGE;
import static dev.outbox.migrations.jooq.Tables.OUTBOX_SHARD_LEASE;

import dev.outbox.core.MessageIds;
import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.core.OutboxMessage;
import dev.outbox.core.Shards;
import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.schemas.AvroCodec;
import java.sql.Connection;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.TreeSet;
import java.util.UUID;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import org.apache.avro.generic.GenericContainer;
import org.jooq.DSLContext;
import org.jooq.InsertValuesStep9;
import org.jooq.JSONB;
import org.jooq.conf.Settings;
import org.jooq.conf.SettingsTools;
import org.jooq.impl.DSL;

/** The {@link Outbox} on jOOQ and PostgreSQL. */
public final class JooqOutbox implements Outbox {
  /** Rows per INSERT: 9 bind values each keeps a statement under PostgreSQL's 65,535 limit. */
  public static final int MAX_ROWS_PER_STATEMENT = 5000;

  /** Longer shard lists are sent as {@code *} (all shards): PostgreSQL caps payloads at 8000 bytes. */
  static final int NOTIFY_PAYLOAD_LIMIT = 4000;

  private final String schema;
  private final int shards;
  private final AvroCodec codec;
  private final Supplier<String> traceparent;
  private final String channel;
  private final Settings mapping;
  /** Set once the install's shard count was found equal to {@link #shards}; checked once per instance. */
  private volatile boolean shardCountChecked;

  public JooqOutbox(String schema, int shards, AvroCodec codec, Supplier<String> traceparent) {
    this.schema = schema;
    this.shards = shards;
    this.codec = codec;
    this.traceparent = traceparent;
    this.channel = Outbox.channel(schema);
    this.mapping = OutboxMigrations.jooqSettings(schema);
  }

  @Override
  public UUID append(DSLContext tx, OutboxMessage message) {
    return appendAll(tx, List.of(Objects.requireNonNull(message, "message may not be null"))).get(0);
  }

  @Override
  public UUID append(DSLContext tx, String topic, String key, GenericContainer payload) {
    return append(tx, avroMessage(topic, key, payload));
  }

  @Override
  public OutboxMessage avroMessage(String topic, String key, GenericContainer payload) {
    Objects.requireNonNull(payload, "payload may not be null; use append(tx, OutboxMessage) with a null payload for a tombstone");
    return OutboxMessage.of(topic, key, payload.getSchema().getFullName(), AvroCodec.contentType(payload.getSchema()), codec.encode(payload));
  }

  @Override
  public List<UUID> appendAll(DSLContext tx, List<OutboxMessage> messages) {
    Objects.requireNonNull(tx, "tx may not be null");
    Objects.requireNonNull(messages, "messages may not be null");
    if (messages.isEmpty()) {
      return List.of();
    }
    if (Boolean.TRUE.equals(tx.connectionResult(Connection::getAutoCommit))) {
      throw new IllegalStateException(
          "Outbox.append needs the caller's transaction, but the connection is in autocommit mode: the outbox row"
              + " would commit on its own, apart from the business write. Call it inside dsl.transaction(cfg -> ...)"
              + " with cfg.dsl(), or on a connection with autocommit off.");
    }
    DSLContext db = DSL.using(tx.configuration().derive(withMapping(tx.settings())));
    if (!shardCountChecked) {
      checkShardCount(db);
    }
    String inheritedTrace = traceparent.get();
    List<UUID> ids = new ArrayList<>(messages.size());
    TreeSet<Integer> touched = new TreeSet<>();
    for (int from = 0; from < messages.size(); from += MAX_ROWS_PER_STATEMENT) {
      List<OutboxMessage> chunk = messages.subList(from, Math.min(messages.size(), from + MAX_ROWS_PER_STATEMENT));
      InsertValuesStep9<?, UUID, Integer, String, String, String, String, JSONB, byte[], Integer> insert =
          db.insertInto(
              OUTBOX_MESSAGE,
              OUTBOX_MESSAGE.MESSAGE_ID,
              OUTBOX_MESSAGE.SHARD,
              OUTBOX_MESSAGE.TOPIC,
              OUTBOX_MESSAGE.MESSAGE_KEY,
              OUTBOX_MESSAGE.MESSAGE_TYPE,
              OUTBOX_MESSAGE.CONTENT_TYPE,
              OUTBOX_MESSAGE.HEADERS,
              OUTBOX_MESSAGE.PAYLOAD,
              OUTBOX_MESSAGE.ATTEMPTS);
      for (OutboxMessage m : chunk) {
        Objects.requireNonNull(m, "messages may not contain null");
        OutboxMessage message = m;
        if (inheritedTrace != null && !m.headers().containsKey(OutboxHeaders.TRACEPARENT)) {
          message = m.withTraceparent(inheritedTrace);
        }
        UUID id = message.messageId() != null ? message.messageId() : MessageIds.next();
        int shard = Shards.of(message.key(), id, shards);
        ids.add(id);
        touched.add(shard);
        insert = insert.values(
            id, shard, message.topic(), message.key(), message.type(), message.contentType(),
            JSONB.valueOf(Json.write(message.headers())), message.payload(), 0);
      }
      insert.execute();
    }
    // delivered at commit, dropped on rollback; the payload tells the relay which shards to read
    String shardList = touched.stream().map(String::valueOf).collect(Collectors.joining(","));
    db.execute("select pg_notify({0}, {1})", DSL.val(channel), DSL.val(shardList.length() > NOTIFY_PAYLOAD_LIMIT ? "*" : shardList));
    return ids;
  }

  /**
   * Compares {@link #shards} with the install's shard count (the rows of the lease table), once per
   * instance, in the caller's transaction. A producer with another count than the install maps keys
   * to other shards than the relay and the other producers expect: with more, its rows could land on
   * shards no relay leases; with fewer, one key's messages could sit in two shards and lose their
   * order. Either way the append fails here, before anything is written.
   */
  private void checkShardCount(DSLContext db) {
    int installed = db.fetchCount(OUTBOX_SHARD_LEASE);
    if (installed != shards) {
      throw new IllegalStateException("this Outbox spreads keys over " + shards + " shards, but the outbox in schema "
          + schema + " was installed with " + installed + " (the rows of " + schema + ".outbox_shard_lease); set"
          + " Outbox.builder().shards(" + installed + "), the outbox_shards value the migrations were installed with");
    }
    shardCountChecked = true;
  }

  private Settings withMapping(Settings callers) {
    Settings s = SettingsTools.clone(callers);
    return s.withRenderMapping(mapping.getRenderMapping());
  }

  @Override
  public String schema() {
    return schema;
  }

  @Override
  public int shardCount() {
    return shards;
  }

  @Override
  public String channel() {
    return channel;
  }
}
