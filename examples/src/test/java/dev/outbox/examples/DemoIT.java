package dev.outbox.examples;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * The demo end to end, with small numbers: lost responses, injected duplicate deliveries and a relay
 * killed with SIGKILL half-way. Proves G1 (no lost order), G4 (no double charge) and G5 (no order
 * created twice) together, through every real part: HTTP, PostgreSQL, relay processes, Kafka.
 */
class DemoIT {

    @Test
    void everyOrderIsChargedExactlyOnce() throws Exception {
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        Demo.Options options = new Demo.Options(120, 6, 0.15, 0.2, 2, Duration.ofMinutes(3));
        Demo.Summary s;
        try (PrintStream out = new PrintStream(log, true, StandardCharsets.UTF_8)) {
            s = Demo.run(options, out);
            s.print(out);
        }
        System.out.println(log.toString(StandardCharsets.UTF_8));

        assertThat(s.operationsSucceeded()).isEqualTo(120);
        assertThat(s.ordersCreated()).isEqualTo(120);
        assertThat(s.duplicateOrders()).isZero();
        assertThat(s.doubleCharges()).isZero();
        assertThat(s.lostOrders()).isZero();
        assertThat(s.paymentsRecorded()).isEqualTo(120);
        assertThat(s.chargesApplied()).isEqualTo(120);
        // the failures really happened, so the invariants above were tested rather than assumed
        assertThat(s.relayKilled()).contains("SIGKILL");
        assertThat(s.lostResponses()).isPositive();
        assertThat(s.replayedResponses()).isPositive();
        assertThat(s.injectedDuplicates()).isPositive();
        assertThat(s.messagesPublished()).isGreaterThanOrEqualTo(120);
        assertThat(s.ok()).isTrue();
    }

    @Test
    void badOptionsAreNamed() {
        assertThatThrownBy(() -> Demo.parse(new String[] {"--operations", "0"}))
                .hasMessageContaining("--operations must be at least 1, got 0");
        assertThatThrownBy(() -> Demo.parse(new String[] {"--colour=red"}))
                .hasMessageContaining("unknown option --colour");
        assertThatThrownBy(() -> Demo.parse(new String[] {"--clients=many"})).hasMessageContaining("not a number");
        assertThat(Demo.parse(new String[] {"--operations=50", "--clients", "3"})
                        .operations())
                .isEqualTo(50);
    }
}
