package dev.outbox.torture;

import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxMessage;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
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
 * Writer threads: each transaction locks one to five keys' sequence rows (in key order, so
 * writers never deadlock), takes the next sequence number of each, appends one message per key
 * carrying it, and records the message in {@code torture.written}; a share of transactions is
 * rolled back on purpose after the append. The messages are spread over the run's duration.
 */
final class Writers {
  private static final int MAX_KEYS_PER_TRANSACTION = 5;
  private final Options o;
  private final DSLContext dsl;
  private final Outbox outbox = Outbox.builder().build();
  private final List<Thread> threads = new ArrayList<>();
  private final AtomicLong committed = new AtomicLong();
  private final Set<UUID> rolledBack = ConcurrentHashMap.newKeySet();
  private final Set<UUID> uncertain = ConcurrentHashMap.newKeySet();
  private final AtomicLong failures = new AtomicLong();
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

  long uncertain() {
    return uncertain.size();
  }

  /** @return ids whose transaction was rolled back on purpose or failed with an unknown outcome */
  Set<UUID> notKnownCommitted() {
    Set<UUID> all = new java.util.HashSet<>(rolledBack);
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
      TreeSet<String> keys = new TreeSet<>();
      int n = 1 + random.nextInt(MAX_KEYS_PER_TRANSACTION);
      while (keys.size() < n) {
        keys.add("key-" + random.nextInt(o.keys()));
      }
      boolean rollback = random.nextDouble() < o.rollbackRate();
      Long[] amounts = new Long[n];
      for (int i = 0; i < n; i++) {
        amounts[i] = 1L + random.nextInt(1000);
      }
      String[] keyArray = keys.toArray(String[]::new);
      List<UUID> appended = new ArrayList<>();
      try {
        dsl.transaction(cfg -> {
          DSLContext tx = cfg.dsl();
          // row locks in key order, so two writers never wait for each other in a cycle; they are
          // held until commit: sequence order is commit order within a key
          tx.fetch("select key from torture.key_seq where key = any(?) order by key for update", (Object) keyArray);
          Map<String, Long> seqs = new HashMap<>();
          for (var r : tx.fetch("update torture.key_seq set seq = seq + 1 where key = any(?) returning key, seq", (Object) keyArray)) {
            seqs.put(r.get(0, String.class), r.get(1, Long.class));
          }
          List<OutboxMessage> messages = new ArrayList<>();
          Long[] seqArray = new Long[n];
          for (int i = 0; i < n; i++) {
            seqArray[i] = seqs.get(keyArray[i]);
            messages.add(OutboxMessage.of(Torture.TOPIC, keyArray[i], "TortureMessage", "text/plain",
                (seqArray[i] + "|" + amounts[i]).getBytes(StandardCharsets.UTF_8)));
          }
          List<UUID> ids = outbox.appendAll(tx, messages);
          appended.addAll(ids);
          tx.execute("insert into torture.written (message_id, key, seq, amount)"
              + " select * from unnest(?::uuid[], ?::text[], ?::bigint[], ?::bigint[])",
              ids.toArray(UUID[]::new), keyArray, seqArray, amounts);
          if (rollback) {
            throw new RollbackOnPurpose();
          }
        });
        committed.addAndGet(n);
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
