package dev.outbox.consumer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.MessageIds;
import dev.outbox.core.retry.Backoff;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(RealServices.class)
@Timeout(600)
class PausedConsumerIT {
    private static final Duration WAIT = Duration.ofSeconds(90);

    /**
     * G4 and G6 with a consumer process paused (SIGSTOP) while its transaction is open: the process holds a
     * message's processed-id row (its handler never returns), is paused, and its partitions go to a new member
     * once its session expires. The new member's insert of that id stops waiting after the dedup insert's bound
     * and is retried (retries{cause="contention"}), so its one worker thread handles the other partition's
     * messages while the paused process still holds the row; without the bound, that worker waited until the
     * paused process's session ended. Once the paused process is killed, its session ends, its transaction rolls
     * back and the new member handles the held message: one payment, once.
     */
    @Test
    void aConsumerPausedWithItsTransactionOpenDoesNotHoldTheNewOwner(TestDatabase db, TestKafka kafka)
            throws Exception {
        Fixtures.createPayments(db);
        String name = "paused";
        String topic = TestKafka.uniqueTopic("paused");
        kafka.createTopic(topic, 2);
        kafka.createTopic(topic + ".dlt", 1);
        UUID held = MessageIds.next();
        Path log = Files.createDirectories(Path.of("target", "crash-it")).resolve("paused.log");
        Process child = CrashIT.start(db, kafka, topic, name, 1, false, held, log.toFile());
        // a paused child outlives a test JVM that is killed: the hook ends it with the JVM
        Thread reaper = new Thread(child::destroyForcibly);
        Runtime.getRuntime().addShutdownHook(reaper);
        MeterRegistry registry = new SimpleMeterRegistry();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            ProducerRecord<byte[], byte[]> first = Fixtures.payment(topic, held, "order-held", 1);
            producer.send(new ProducerRecord<>(topic, 0, first.key(), first.value(), first.headers()))
                    .get();
            await().atMost(WAIT).until(() -> Files.readString(log).contains("holding " + held));
            signal(child, "STOP");
            try (IdempotentConsumer owner = Fixtures.builder(kafka, db, topic, name)
                    .meterRegistry(registry)
                    .concurrency(1)
                    .backoff(Backoff.of(Duration.ofMillis(50), Duration.ofMillis(500)))
                    .build()) {
                owner.start();
                // the paused member's session (10 s) expires and the new one, given both partitions, is at the
                // held row before the other partition has anything
                Fixtures.awaitLockWait(db, "%processed_message%");
                Fixtures.handledBesideAHeldRow(db, producer, topic, registry);
                assertThat(Fixtures.paymentsOf(db, List.of(held))).isEmpty();
                assertThat(registry.get("outbox.consumer.retries")
                                .tag("cause", "contention")
                                .counter()
                                .count())
                        .isPositive();

                child.destroyForcibly(); // SIGKILL ends a paused process too; the server sees its socket close
                assertThat(child.waitFor(60, TimeUnit.SECONDS)).isTrue();
                await().atMost(WAIT)
                        .untilAsserted(() -> assertThat(Fixtures.paymentsOf(db, List.of(held)))
                                .containsEntry(held, 1L));
                assertThat(Fixtures.counter(registry, "outbox.consumer.dead.lettered"))
                        .isZero();
            }
        } finally {
            child.destroyForcibly();
            child.waitFor(60, TimeUnit.SECONDS);
            Runtime.getRuntime().removeShutdownHook(reaper);
        }
    }

    private static void signal(Process process, String signal) throws Exception {
        Process kill = new ProcessBuilder("kill", "-" + signal, Long.toString(process.pid()))
                .inheritIO()
                .start();
        assertThat(kill.waitFor(10, TimeUnit.SECONDS)).isTrue();
        assertThat(kill.exitValue()).as("kill -%s %d", signal, process.pid()).isZero();
    }
}
