package dev.outbox.torture;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The short torture run: about 20,000 messages, 300 HTTP operations and 10 faults of each kind
 * against a private PostgreSQL instance, an in-JVM broker, relay processes from the runnable jar
 * and consumer-dedup processes. The test passes only when {@link Checker} says PASS, so a broken
 * invariant fails the build.
 */
@Tag("integration")
class TortureIT {

    /**
     * G1 (no loss), G2 (no phantom), G3 (per-key order), G4 (effectively once), G5 (HTTP executed
     * once) and G7 (nothing left parked) under every fault at once, judged by {@link Checker}.
     */
    @Test
    @Timeout(value = 20, unit = TimeUnit.MINUTES)
    void everyInvariantHoldsUnderTheFaultMix() throws Exception {
        Verdict v = Torture.run(Options.parse(), System.out);
        for (Fault f : Fault.scheduled()) {
            assertThat(v.faults().entrySet().stream()
                            .filter(e -> e.getKey().startsWith(label(f)))
                            .mapToLong(Map.Entry::getValue)
                            .sum())
                    .as("faults of kind %s injected", f)
                    .isGreaterThanOrEqualTo(10);
        }
        assertThat(v.faults().entrySet().stream()
                        .filter(e -> e.getKey().startsWith("duplicate"))
                        .mapToLong(Map.Entry::getValue)
                        .sum())
                .as("duplicates delivered")
                .isGreaterThanOrEqualTo(10);
        assertThat(v.committed()).isGreaterThanOrEqualTo(20_000);
        assertThat(v.failures()).as(v.summaryLine()).isEmpty();
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
