package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxMessage;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Predicate;
import org.jooq.DSLContext;

/**
 * Writers on several threads that append one message of a random key ({@code key-0} ..) per
 * transaction, each after taking the key's next sequence number under its row lock in {@code
 * key_lock}: writers of one key serialise, and a key's sequence numbers are its commit order. With
 * a second topic, the messages of its keys with an odd sequence number go there.
 */
final class KeyLockWriters {
    private final DSLContext dsl;
    private final Outbox outbox = Outbox.builder().build();
    private final int keys;
    private final String topic;
    private final String second;
    private final Predicate<String> writesToSecond;
    private final Map<String, TreeMap<Integer, UUID>> committed = new ConcurrentHashMap<>();
    private final Map<UUID, String> topicOf = new ConcurrentHashMap<>();
    private final AtomicBoolean writing = new AtomicBoolean(true);
    private final AtomicInteger appended = new AtomicInteger();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final List<Thread> threads = new ArrayList<>();

    /**
     * Empties the outbox (the test class's database is shared by its tests, and rows an earlier one
     * left would hold these keys behind them) and creates {@code key_lock} afresh.
     *
     * @param second the second topic, or null
     * @param writesToSecond the keys that write to {@code second} too
     */
    KeyLockWriters(DSLContext dsl, int keys, String topic, String second, Predicate<String> writesToSecond) {
        this.dsl = dsl;
        this.keys = keys;
        this.topic = topic;
        this.second = second;
        this.writesToSecond = writesToSecond;
        dsl.execute("drop table if exists key_lock");
        dsl.execute("delete from outbox.outbox_message");
        dsl.execute("create table key_lock (k text primary key, seq int not null)");
        for (int k = 0; k < keys; k++) {
            dsl.execute("insert into key_lock values (?, 0)", "key-" + k);
        }
    }

    KeyLockWriters start(int n) {
        for (int w = 0; w < n; w++) {
            Thread t = new Thread(
                    () -> {
                        try {
                            while (writing.get()) {
                                append();
                                appended.incrementAndGet();
                            }
                        } catch (Throwable e) {
                            failure.set(e);
                        }
                    },
                    "test-writer-" + w);
            t.start();
            threads.add(t);
        }
        return this;
    }

    /** Stops the writers, and fails if one of them failed. */
    void stop() throws InterruptedException {
        writing.set(false);
        for (Thread t : threads) {
            t.join(60_000);
        }
        assertThat(failure.get()).as("a writer's failure").isNull();
    }

    boolean failed() {
        return failure.get() != null;
    }

    int appended() {
        return appended.get();
    }

    /** @return per key, its messages by sequence number; synchronise on a key's map to read it */
    Map<String, TreeMap<Integer, UUID>> committed() {
        return committed;
    }

    /**
     * G3 in each topic: for every key, the first appearances of its messages follow its commit order,
     * and its last record is its latest committed message there.
     *
     * @param byTopic everything consumed, per topic, in the order the topic's reader got it
     */
    void assertCommitOrder(Map<String, List<Records.Received>> byTopic) {
        int total = committed.values().stream().mapToInt(Map::size).sum();
        assertThat(total).isEqualTo(appended.get());
        for (var t : byTopic.entrySet()) {
            Map<String, LinkedHashSet<UUID>> first = new HashMap<>();
            Map<String, UUID> last = new HashMap<>();
            for (Records.Received r : t.getValue()) {
                first.computeIfAbsent(r.key(), k -> new LinkedHashSet<>()).add(r.messageId());
                last.put(r.key(), r.messageId());
            }
            for (var e : committed.entrySet()) {
                List<UUID> order = e.getValue().values().stream()
                        .filter(id -> topicOf.get(id).equals(t.getKey()))
                        .toList();
                if (order.isEmpty()) {
                    assertThat(first)
                            .as("%s never wrote to %s", e.getKey(), t.getKey())
                            .doesNotContainKey(e.getKey());
                    continue;
                }
                assertThat(new ArrayList<>(first.getOrDefault(e.getKey(), new LinkedHashSet<>())))
                        .as("G3: first appearances of %s in %s follow commit order", e.getKey(), t.getKey())
                        .containsExactlyElementsOf(order);
                assertThat(last.get(e.getKey()))
                        .as(
                                "G3: the last record of %s in %s is its latest committed message there",
                                e.getKey(), t.getKey())
                        .isEqualTo(order.get(order.size() - 1));
            }
        }
    }

    private void append() {
        String key = "key-" + ThreadLocalRandom.current().nextInt(keys);
        Object[] result = dsl.transactionResult(tx -> {
            int seq = tx.dsl()
                    .fetchOne("update key_lock set seq = seq + 1 where k = ? returning seq", key)
                    .get(0, Integer.class);
            String to = second != null && writesToSecond.test(key) && seq % 2 == 1 ? second : topic;
            // every third payload is long: batches end at batch-bytes too, and the long payloads are fetched by
            // the reads' second statement
            String body = "seq " + seq + (seq % 3 == 0 ? " " + "x".repeat(300) : "");
            UUID id = outbox.append(tx.dsl(), OutboxMessage.of(to, key, "Test", "text/plain", body.getBytes()));
            topicOf.put(id, to);
            return new Object[] {seq, id};
        });
        TreeMap<Integer, UUID> perKey = committed.computeIfAbsent(key, k -> new TreeMap<>());
        synchronized (perKey) {
            perKey.put((Integer) result[0], (UUID) result[1]);
        }
    }
}
