package dev.outbox.relay;

import dev.outbox.core.OutboxMessage;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jooq.DSLContext;

/**
 * Writers that append to keys the usual way: each transaction locks the key's aggregate row, bumps
 * its sequence number and appends one message whose payload is that number. Writers of one key are
 * serialised by the lock, so the sequence numbers of a key are its commit order.
 */
final class KeyedWriters implements AutoCloseable {
    private final DSLContext dsl;
    private final String topic;
    private final List<String> keys;
    private final AtomicBoolean running = new AtomicBoolean(true);
    private final List<Thread> threads = new ArrayList<>();
    private final Map<UUID, String> committed = new ConcurrentHashMap<>();
    private final Map<String, Integer> lastSeq = new ConcurrentHashMap<>();

    KeyedWriters(DSLContext dsl, String topic, List<String> keys) {
        this.dsl = dsl;
        this.topic = topic;
        this.keys = keys;
        dsl.execute("create table if not exists aggregate_seq (key text primary key, seq int not null)");
        for (String k : keys) {
            dsl.execute("insert into aggregate_seq values (?, 0) on conflict do nothing", k);
        }
    }

    /** Starts {@code n} threads appending to random keys with {@code pauseMillis} between transactions. */
    KeyedWriters start(int n, long pauseMillis) {
        for (int t = 0; t < n; t++) {
            Random random = new Random(t);
            Thread thread = new Thread(
                    () -> {
                        while (running.get()) {
                            write(keys.get(random.nextInt(keys.size())));
                            if (pauseMillis > 0) {
                                try {
                                    Thread.sleep(pauseMillis);
                                } catch (InterruptedException e) {
                                    return;
                                }
                            }
                        }
                    },
                    "test-writer-" + t);
            thread.setDaemon(true);
            thread.start();
            threads.add(thread);
        }
        return this;
    }

    /** Appends one message of {@code key} in a transaction that first locks the key's row. */
    void write(String key) {
        Object[] done = dsl.transactionResult(tx -> {
            int seq = tx.dsl()
                    .resultQuery("update aggregate_seq set seq = seq + 1 where key = ? returning seq", key)
                    .fetchOne(0, Integer.class);
            OutboxMessage m = Fixtures.message(topic, key, Integer.toString(seq));
            return new Object[] {Fixtures.OUTBOX.appendAll(tx.dsl(), List.of(m)).get(0), seq};
        });
        committed.put((UUID) done[0], key);
        lastSeq.merge(key, (Integer) done[1], Math::max);
    }

    /** @return the message ids committed so far */
    Set<UUID> committed() {
        return Set.copyOf(committed.keySet());
    }

    /** @return the message ids committed so far for the given keys */
    Set<UUID> committedFor(Set<String> ofKeys) {
        Set<UUID> out = new HashSet<>();
        committed.forEach((id, key) -> {
            if (ofKeys.contains(key)) {
                out.add(id);
            }
        });
        return out;
    }

    /** @return how many of {@code expected} are not in {@code received} (cheap to report, unlike the sets) */
    static long missing(Set<UUID> expected, Set<UUID> received) {
        return expected.stream().filter(id -> !received.contains(id)).count();
    }

    Map<String, Integer> lastSeq() {
        return Map.copyOf(lastSeq);
    }

    @Override
    public void close() throws InterruptedException {
        running.set(false);
        for (Thread t : threads) {
            t.join(30_000);
        }
    }

    /**
     * G3: per key, the sequence numbers in the order of their first appearance in the key's partition.
     *
     * @return one line per key whose first appearances are not in commit order, or whose last record is
     *     not its latest; empty when order held
     */
    static List<String> orderViolations(List<Fixtures.Received> records, Map<String, Integer> lastSeq) {
        List<Fixtures.Received> all = new ArrayList<>(records);
        all.sort(Comparator.comparingInt(Fixtures.Received::partition).thenComparingLong(Fixtures.Received::offset));
        Map<String, List<Integer>> first = new HashMap<>();
        Map<String, Integer> last = new HashMap<>();
        Set<UUID> seen = new HashSet<>();
        for (Fixtures.Received r : all) {
            int seq = Integer.parseInt(r.payload());
            if (seen.add(r.messageId())) {
                first.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(seq);
            }
            last.put(r.key(), seq);
        }
        List<String> out = new ArrayList<>();
        first.forEach((key, seqs) -> {
            int inversions = 0;
            for (int i = 1; i < seqs.size(); i++) {
                if (seqs.get(i) < seqs.get(i - 1)) {
                    inversions++;
                }
            }
            if (inversions > 0) {
                out.add("key " + key + ": " + inversions + " inversion(s) in first appearances " + seqs);
            }
        });
        lastSeq.forEach((key, seq) -> {
            if (!seq.equals(last.get(key))) {
                out.add("key " + key + ": last record " + last.get(key) + ", latest commit " + seq);
            }
        });
        return out;
    }
}
