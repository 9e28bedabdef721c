package dev.outbox.relay.process;

import static dev.outbox.relay.process.ChildRelay.liveLeases;
import static dev.outbox.relay.process.ProcessKillFailoverIT.count;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** The relay process stops gracefully on SIGTERM. */
@ExtendWith(RealServices.class)
@Tag("integration")
class ProcessSigtermIT {

    /**
     * SIGTERM (what {@code docker stop} and Kubernetes send) makes the process close the relay: it
     * exits 0, its leases are handed back (owner null, so another relay takes them at once rather
     * than after lease expiry) and its membership row is gone. The lease here is 60 s, so a lease
     * still held by the dead process could not have expired during the test.
     */
    @Test
    void sigtermHandsTheLeasesBackAndExitsZero(TestDatabase db, TestKafka kafka) throws Exception {
        Map<String, String> env = ChildRelay.env(db, kafka.bootstrapServers(), "relay-term");
        env.put("OUTBOX_RELAY_LEASE_DURATION", "60s");
        try (ChildRelay relay = ChildRelay.start("sigterm", env)) {
            await("the relay owns every shard")
                    .atMost(Duration.ofSeconds(120))
                    .pollInterval(Duration.ofMillis(250))
                    .untilAsserted(() -> {
                        assertThat(relay.process.isAlive())
                                .as("alive, see %s", relay.err)
                                .isTrue();
                        assertThat(liveLeases(db, "relay-term")).isEqualTo(64);
                    });
            assertThat(count(db, "select count(*) from outbox.outbox_relay_member where owner = 'relay-term'"))
                    .isOne();

            relay.process.destroy(); // SIGTERM on Linux

            assertThat(relay.waitFor(90)).as("exit code, see %s", relay.out).isZero();
            assertThat(count(db, "select count(*) from outbox.outbox_shard_lease where owner is not null"))
                    .isZero();
            assertThat(count(db, "select count(*) from outbox.outbox_relay_member"))
                    .isZero();
            assertThat(relay.stdout())
                    .contains("handed back shards [0-63]")
                    .contains("outbox-relay[relay-term] stopped");
            assertThat(relay.stderrLines()).isEmpty();
        }
    }
}
