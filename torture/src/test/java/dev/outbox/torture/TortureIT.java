package dev.outbox.torture;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Set;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The short torture run of the test suite: about 20,000 messages, 300 HTTP operations and 10
 * faults of each kind against a private PostgreSQL instance, an in-JVM broker, relay processes
 * from the runnable jar and consumer-dedup processes.
 */
@Tag("integration")
class TortureIT {

  /**
   * Invariants that fail on this code base for a known reason, with the issue that fixes them:
   * none may fail for any other reason. Remove a name once its fix is in.
   *
   * <p>Stale last records: a relay paused past its lease still publishes the batch it had read
   * when it wakes, after the new owner's records (relay fencing on the Kafka side).
   */
  private static final Set<String> KNOWN_OPEN = Set.of("keys whose last record is stale");

  /**
   * G1 (no loss), G2 (no phantom), G3 (per-key order), G4 (effectively once), G5 (HTTP executed
   * once) and G7 (nothing left parked) under every fault at once, judged by {@link Checker}.
   */
  @Test
  @Timeout(value = 8, unit = java.util.concurrent.TimeUnit.MINUTES)
  void everyInvariantHoldsUnderTheFaultMix() throws Exception {
    Verdict v = Torture.run(Options.parse(), System.out);
    for (Fault f : Fault.scheduled()) {
      assertThat(v.faults().entrySet().stream().filter(e -> e.getKey().startsWith(label(f))).mapToLong(java.util.Map.Entry::getValue).sum())
          .as("faults of kind %s injected", f).isGreaterThanOrEqualTo(10);
    }
    assertThat(v.faults().entrySet().stream().filter(e -> e.getKey().startsWith("duplicate")).mapToLong(java.util.Map.Entry::getValue).sum())
        .as("duplicates delivered").isGreaterThanOrEqualTo(10);
    assertThat(v.committed()).isGreaterThanOrEqualTo(20_000);
    assertThat(v.failures()).as(v.summaryLine()).isSubsetOf(KNOWN_OPEN);
  }

  private static String label(Fault f) {
    return switch (f) {
      case SIGKILL -> "SIGKILL";
      case SIGSTOP -> "SIGSTOP";
      case PG_TERMINATE -> "pg_terminate_backend";
      case BROKER_RESTART -> "Kafka broker";
      case PG_RESTART -> "PostgreSQL";
      case DUPLICATE -> "duplicate";
    };
  }
}
