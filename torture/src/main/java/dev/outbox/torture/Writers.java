package dev.outbox.torture;

import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxMessage;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.jooq.DSLContext;

/**
 * Writer threads: each transaction locks one to eight keys' sequence rows (in key order, so
 * writers never deadlock), takes the next one to three sequence numbers of each, appends one
 * message per number (a key's messages in sequence order, interleaved with the other keys'), and
 * records the messages in {@code torture.written}; a share of transactions is rolled back on
 * purpose after the append. The messages are spread over the run's duration. Several messages per
 * transaction keep the commit rate up on a loaded machine, and also exercise per-key order within
 * one transaction.
 */
final class Writers {
    /** Keys per transaction: 1 to this many, locked in key order. */
    static final int MAX_KEYS_PER_TRANSACTION = 8;
    /** Messages per key and transaction: 1 to this many, with consecutive sequence numbers. */
    static final int MAX_MESSAGES_PER_KEY = 3;

    private final Options o;
    private final DSLContext dsl;
    private final Outbox outbox = Outbox.builder().build();
    private final List<Thread> threads = new ArrayList<>();
    private final AtomicLong committed = new AtomicLong();
    private final Set<UUID> rolledBack = ConcurrentHashMap.newKeySet();
    private final Set<UUID> uncertain = ConcurrentHashMap.newKeySet();
    private final AtomicLong failures = new AtomicLong();
    private final AtomicLong transactions = new AtomicLong();
    private final long startNanos = System.nanoTime();

    Writers(Options o, DSLContext dsl) {
        this.o = o;
        this.dsl = dsl;
    }

    /** Thrown inside the transaction to roll it back after the append. */
    private static final class RollbackOnPurpose extends RuntimeException {
        RollbackOnPurpose() {
            super("rolled back on purpose", null, false, false);
        }
    }

    void start() {
        for (int w = 0; w < o.writers(); w++) {
            Random random = new Random(o.seed() * 1_000_003L + w);
            threads.add(Thread.ofPlatform().name("torture-writer-" + w).start(() -> write(random)));
        }
    }

    void await() throws InterruptedException {
        for (Thread t : threads) {
            t.join();
        }
    }

    long committed() {
        return committed.get();
    }

    long rolledBack() {
        return rolledBack.size();
    }

    /** @return transactions committed so far */
    long transactions() {
        return transactions.get();
    }

    /** @return transactions that failed for another reason than a rollback on purpose (the database went away) */
    long failures() {
        return failures.get();
    }

    long uncertain() {
        return uncertain.size();
    }

    /** @return ids whose transaction was rolled back on purpose or failed with an unknown outcome */
    Set<UUID> notKnownCommitted() {
        Set<UUID> all = new HashSet<>(rolledBack);
        all.addAll(uncertain);
        return all;
    }

    private void write(Random random) {
        long periodNanos = o.duration().toNanos() / o.messages();
        while (committed.get() < o.messages()) {
            long due = startNanos + committed.get() * periodNanos;
            long wait = due - System.nanoTime();
            if (wait > 0) {
                LockSupport.parkNanos(wait);
            }
            TreeSet<String> keySet = new TreeSet<>();
            int k = 1 + random.nextInt(MAX_KEYS_PER_TRANSACTION);
            while (keySet.size() < k) {
                keySet.add("key-" + random.nextInt(o.keys()));
            }
            String[] keys = keySet.toArray(String[]::new);
            Integer[] perKey = new Integer[k];
            int n = 0;
            for (int i = 0; i < k; i++) {
                perKey[i] = 1 + random.nextInt(MAX_MESSAGES_PER_KEY);
                n += perKey[i];
            }
            // the messages in append order: per key, its sequence numbers ascending; keys interleaved
            // round-robin, so that one transaction's messages of a key are not adjacent rows
            String[] messageKeys = new String[n];
            int[] nth = new int[n];
            for (int m = 0, round = 0; m < n; round++) {
                for (int i = 0; i < k; i++) {
                    if (round < perKey[i]) {
                        messageKeys[m] = keys[i];
                        nth[m++] = round;
                    }
                }
            }
            Long[] amounts = new Long[n];
            for (int m = 0; m < n; m++) {
                amounts[m] = 1L + random.nextInt(1000);
            }
            boolean rollback = random.nextDouble() < o.rollbackRate();
            List<UUID> appended = new ArrayList<>();
            final int size = n;
            try {
                dsl.transaction(cfg -> {
                    DSLContext tx = cfg.dsl();
                    // row locks in key order, so two writers never wait for each other in a cycle; they are
                    // held until commit: sequence order is commit order within a key
                    tx.fetch("select key from torture.key_seq where key = any(?) order by key for update", (Object)
                            keys);
                    Map<String, Long> last = new HashMap<>();
                    for (var r : tx.fetch(
                            "update torture.key_seq s set seq = s.seq + v.n from unnest(?::text[], ?::int[]) v(key, n)"
                                    + " where s.key = v.key returning s.key, s.seq",
                            keys,
                            perKey)) {
                        last.put(r.get(0, String.class), r.get(1, Long.class));
                    }
                    Map<String, Integer> count = new HashMap<>();
                    for (int i = 0; i < k; i++) {
                        count.put(keys[i], perKey[i]);
                    }
                    List<OutboxMessage> messages = new ArrayList<>(size);
                    Long[] seqs = new Long[size];
                    for (int m = 0; m < size; m++) {
                        // the key's numbers of this transaction run from last - count + 1 up to last
                        seqs[m] = last.get(messageKeys[m]) - count.get(messageKeys[m]) + 1 + nth[m];
                        messages.add(OutboxMessage.of(
                                Torture.TOPIC,
                                messageKeys[m],
                                "TortureMessage",
                                "text/plain",
                                (seqs[m] + "|" + amounts[m]).getBytes(StandardCharsets.UTF_8)));
                    }
                    List<UUID> ids = outbox.appendAll(tx, messages);
                    appended.addAll(ids);
                    tx.execute(
                            "insert into torture.written (message_id, key, seq, amount)"
                                    + " select * from unnest(?::uuid[], ?::text[], ?::bigint[], ?::bigint[])",
                            ids.toArray(UUID[]::new),
                            messageKeys,
                            seqs,
                            amounts);
                    if (rollback) {
                        throw new RollbackOnPurpose();
                    }
                });
                committed.addAndGet(n);
                transactions.incrementAndGet();
            } catch (RuntimeException e) {
                if (causedByRollback(e)) {
                    rolledBack.addAll(appended);
                } else {
                    // the database went away: the commit may or may not have happened; torture.written says
                    uncertain.addAll(appended);
                    failures.incrementAndGet();
                    LockSupport.parkNanos(50_000_000L + random.nextInt(200) * 1_000_000L);
                }
            }
        }
    }

    private static boolean causedByRollback(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof RollbackOnPurpose) {
                return true;
            }
        }
        return false;
    }
}
