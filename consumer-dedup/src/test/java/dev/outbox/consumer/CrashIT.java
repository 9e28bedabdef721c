package dev.outbox.consumer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.MessageIds;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(RealServices.class)
@Timeout(600)
class CrashIT {
    private static final Duration WAIT = Duration.ofSeconds(180);
    private static final int MESSAGES = 10_000;
    private static final int KILLS = 6;

    /**
     * G4 under crashes: the consumer runs in its own JVM and is killed with SIGKILL at random moments
     * while 10,000 messages flow (a fifth of them published two or three times), then restarted.
     * At the end the business table holds exactly one row per message id and none is missing.
     */
    @Test
    void killNineAtRandomMomentsLeavesExactlyOneEffectPerMessageId(TestDatabase db, TestKafka kafka) throws Exception {
        Fixtures.createPayments(db);
        String topic = TestKafka.uniqueTopic("crash");
        kafka.createTopic(topic, 4);
        List<UUID> ids = new ArrayList<>();
        for (int i = 0; i < MESSAGES; i++) {
            ids.add(MessageIds.next());
        }
        // batch sizes and kill moments come from this generator: a fixed seed, printed
        // and overridable with -Doutbox.crash.seed=..., lets a failing run be repeated with the same draws
        long seed = Long.getLong("outbox.crash.seed", 20_261_129L);
        System.out.println("[CrashIT] random seed " + seed);
        Random random = new Random(seed);
        Path logs = Files.createDirectories(Path.of("target", "crash-it"));
        CompletableFuture<Integer> published =
                Fixtures.publishWithDuplicates(kafka, topic, ids, 0.2, 250, Duration.ofMillis(150));
        int kills = 0;
        for (int run = 0; run < KILLS; run++) {
            long before = rows(db);
            Process child = start(
                    db,
                    kafka,
                    topic,
                    1 + random.nextInt(40),
                    run % 2 == 1,
                    logs.resolve("run-" + run + ".log").toFile());
            try {
                // kill only once the process is processing, at a random moment after that
                await().atMost(WAIT).untilAsserted(() -> assertThat(rows(db)).isGreaterThan(before));
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(random.nextInt(1500)));
            } finally {
                child.destroyForcibly();
                assertThat(child.waitFor(60, TimeUnit.SECONDS)).isTrue();
            }
            kills++;
            if (published.isDone() && rows(db) >= MESSAGES) {
                break; // everything is in: later kills would hit an idle consumer
            }
        }
        Process last =
                start(db, kafka, topic, 50, false, logs.resolve("final.log").toFile());
        try {
            int sent = published.get(WAIT.toSeconds(), TimeUnit.SECONDS);
            assertThat(sent).isGreaterThan((int) (MESSAGES * 1.15));
            await().atMost(WAIT)
                    .pollInterval(Duration.ofMillis(500))
                    .untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, "crash-group", topic));
        } finally {
            last.destroyForcibly();
            last.waitFor(60, TimeUnit.SECONDS);
        }
        assertThat(kills).isGreaterThanOrEqualTo(3);
        Map<UUID, Long> perId = new HashMap<>(Fixtures.paymentsPerId(db));
        assertThat(perId).hasSize(MESSAGES).containsOnlyKeys(ids);
        assertThat(perId.entrySet()).filteredOn(e -> e.getValue() != 1).isEmpty();
        assertThat(rows(db)).isEqualTo(MESSAGES);
        assertThat(Fixtures.scalar(db, "select count(*) from outbox.processed_message where consumer = 'crash'"))
                .isEqualTo(MESSAGES);
    }

    private static Process start(
            TestDatabase db, TestKafka kafka, String topic, int batch, boolean savepoints, File log) throws Exception {
        return start(db, kafka, topic, "crash", batch, savepoints, null, log);
    }

    /** Starts a {@link CrashTestConsumer}; {@code hold} is the message id its handler holds, if any. */
    static Process start(
            TestDatabase db,
            TestKafka kafka,
            String topic,
            String name,
            int batch,
            boolean savepoints,
            UUID hold,
            File log)
            throws Exception {
        List<String> args =
                new ArrayList<>(List.of(topic, name, Integer.toString(batch), Boolean.toString(savepoints)));
        if (hold != null) {
            args.add(hold.toString());
        }
        return ForkedJvm.start(List.of("-Xmx256m"), CrashTestConsumer.class, db, kafka, args, log);
    }

    private static long rows(TestDatabase db) throws Exception {
        return Fixtures.scalar(db, "select count(*) from payments");
    }
}
