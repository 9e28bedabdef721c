package dev.outbox.relay.process;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The only relay, frozen with SIGSTOP past its lease while it publishes and thawed with SIGCONT, with
 * no other relay to take its shards over: what a long GC pause, a throttled container or a suspended
 * host does to a single-instance deployment.
 */
@ExtendWith(RealServices.class)
@Tag("integration")
class PausedAloneIT {
    private static final int KEYS = 60;
    private static final int WRITERS = 4;
    private static final int PARTITIONS = 3;
    private static final String INSTANCE = "relay-alone";

    /**
     * G1 and G3 across a pause past the lease with nobody to take over. Writers on four threads
     * serialise per key on a row lock and go on committing while the relay is frozen until every one
     * of its leases has expired. On the thaw, the relay's batches, deferred deletes and lease round
     * all resume at once: writes that find a lease expired are fenced and their shards dropped and
     * handed back, or the round renews the leases first. Either way, it holds every shard again,
     * drains the outbox, and for every key the first appearances of its messages follow commit order
     * and its last record is its latest committed message: nothing published before the pause, and
     * published again after it, lands after a newer message of its key. The relay notices the pause,
     * and the batches that failed across it do not open its circuit breaker.
     */
    @Test
    @Timeout(value = 6, unit = TimeUnit.MINUTES)
    void aLoneRelayPausedPastItsLeaseLosesAndReordersNothing(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("paused-alone");
        kafka.createTopic(topic, PARTITIONS);
        KeyLockWriters writers = new KeyLockWriters(db.dsl(), KEYS, topic, null, key -> false);
        Map<String, String> env = ChildRelay.env(db, kafka.bootstrapServers(), INSTANCE);
        env.put(RelaySettings.LEASE_DURATION.envVar(), "6s");
        env.put(RelaySettings.BATCH_SIZE.envVar(), "100");
        try (Records records = new Records(kafka.consumerProperties("unused"), topic, PARTITIONS);
                ChildRelay relay = ChildRelay.start("paused-alone", env)) {
            ChildRelay.awaitLeasing(db, Duration.ofSeconds(300), relay);
            writers.start(WRITERS);
            await("the relay publishing")
                    .atMost(Duration.ofSeconds(180))
                    .until(() -> records.size() >= 1_000 || writers.failed());
            int rowsAtPause;
            relay.signal("STOP");
            try {
                rowsAtPause = ProcessKillFailoverIT.count(db, "select count(*) from outbox.outbox_message");
                await("every lease of the paused relay expired")
                        .atMost(Duration.ofSeconds(30))
                        .pollInterval(Duration.ofMillis(250))
                        .until(() -> ChildRelay.liveLeases(db, INSTANCE) == 0);
                Thread.sleep(1_000);
            } finally {
                relay.signal("CONT");
            }
            int atThaw = records.size();
            // the writers go on a moment after the thaw, while the relay sorts its shards out
            Thread.sleep(3_000);
            writers.stop();
            await("the relay holds every shard again and drained the outbox")
                    .atMost(Duration.ofSeconds(120))
                    .pollInterval(Duration.ofMillis(250))
                    .untilAsserted(() -> {
                        assertThat(ChildRelay.liveLeases(db, INSTANCE)).isEqualTo(64);
                        assertThat(ProcessKillFailoverIT.count(db, "select count(*) from outbox.outbox_message"))
                                .isZero();
                    });
            await("G1: every committed message in Kafka")
                    .atMost(Duration.ofSeconds(60))
                    .untilAsserted(() -> assertThat(records.distinctIds())
                            .as("distinct messages in Kafka")
                            .isEqualTo(writers.appended()));
            // a record of the pause's batches that arrives late would arrive by now
            Thread.sleep(2_000);
            writers.assertCommitOrder(Map.of(topic, records.all()));

            String log = relay.stdout();
            System.out.printf(
                    "[PausedAloneIT] %d messages on %d keys, %d records in Kafka (%d after the thaw); %d rows in the"
                            + " outbox at the pause; after the thaw the relay reported %d fenced write(s) and %d"
                            + " hand-back(s) of dropped shards%n",
                    writers.appended(),
                    KEYS,
                    records.size(),
                    records.size() - atThaw,
                    rowsAtPause,
                    log.lines().filter(l -> l.contains("no longer held")).count(),
                    log.lines().filter(l -> l.contains("handed back shards")).count());
            assertThat(rowsAtPause)
                    .as("rows in the outbox when the relay froze")
                    .isPositive();
            assertThat(log).as("the pause noticed").contains("the process stood still");
            assertThat(log.lines().filter(l -> l.contains("Kafka circuit breaker") && l.contains("to OPEN")))
                    .as("the batches that failed across the pause did not open the breaker")
                    .isEmpty();
            relay.process.destroy();
            assertThat(relay.waitFor(90)).as("exit code, see %s", relay.err).isZero();
        }
    }
}
