package dev.outbox.relay.process;

import static dev.outbox.relay.process.BadConfigurationIT.lines;
import static dev.outbox.relay.process.BadConfigurationIT.print;
import static dev.outbox.relay.process.ProcessKillFailoverIT.count;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.Outbox;
import dev.outbox.core.OutboxMessage;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** A message that cannot be published, from parking to delivery, driven through the process's settings and commands. */
@ExtendWith(RealServices.class)
@Tag("integration")
class PoisonThroughTheCliIT {
    private final Outbox outbox = Outbox.builder().build();

    /**
     * G7 (poison isolation) through the operator's tools: with {@code --kafka.max.request.size=10240}
     * a 50 KiB message is parked while other keys flow; {@code status} shows one parked message and
     * {@code parked list} its error; {@code parked purge} without {@code --yes} refuses; after a
     * restart with a larger limit, {@code parked requeue --all} gets the message delivered.
     */
    @Test
    void aTooLargeMessageIsParkedShownRequeuedAndDelivered(TestDatabase db, TestKafka kafka) throws Exception {
        String topic = TestKafka.uniqueTopic("poison");
        kafka.createTopic(topic, 3);
        Map<String, String> flags = InProcess.flags(db, kafka.bootstrapServers(), "poison-1");
        flags.put("kafka.max.request.size", "10240");

        try (Records records = new Records(kafka.consumerProperties("unused"), topic, 3)) {
            UUID big;
            List<UUID> small = new ArrayList<>();
            try (RelayProcess relay = InProcess.start(flags)) {
                small.addAll(append(topic, 0, 10));
                big = db.dsl()
                        .transactionResult(tx -> outbox.append(
                                tx.dsl(),
                                OutboxMessage.of(
                                        topic, "big-key", "Test", "application/octet-stream", new byte[50 * 1024])));
                small.addAll(append(topic, 10, 20));

                await("the other keys flow")
                        .atMost(Duration.ofSeconds(60))
                        .untilAsserted(() -> assertThat(ids(records)).containsAll(small));
                await("the large message is parked")
                        .atMost(Duration.ofSeconds(60))
                        .untilAsserted(() -> assertThat(count(
                                        db, "select count(*) from outbox.outbox_message where parked_at is not null"))
                                .isOne());
                assertThat(ids(records)).doesNotContain(big);

                Cli status = cli(db, "status");
                assertThat(status.code).isZero();
                assertThat(status.out).containsPattern("(?m)^parked\\s+1 message\\(s\\)");

                Cli list = cli(db, "parked", "list");
                assertThat(list.code).isZero();
                assertThat(list.out)
                        .contains(big.toString())
                        .contains("big-key")
                        .contains("RecordTooLarge");

                Cli purge = cli(db, "parked", "purge", "--all");
                assertThat(purge.code).as("purge without --yes refuses").isEqualTo(2);
                assertThat(purge.err).hasSize(1);
                assertThat(purge.out).contains(big.toString());
                assertThat(count(db, "select count(*) from outbox.outbox_message where parked_at is not null"))
                        .isOne();
            }

            flags.put("kafka.max.request.size", String.valueOf(1024 * 1024));
            flags.put("instance-id", "poison-2");
            try (RelayProcess relay = InProcess.start(flags)) {
                Cli requeue = cli(db, "parked", "requeue", "--all");
                assertThat(requeue.code).isZero();
                assertThat(requeue.out).startsWith("Requeued 1 parked message(s)");
                await("the requeued message is delivered")
                        .atMost(Duration.ofSeconds(60))
                        .untilAsserted(() -> assertThat(ids(records)).contains(big));
                await().atMost(Duration.ofSeconds(30))
                        .untilAsserted(() -> assertThat(count(db, "select count(*) from outbox.outbox_message"))
                                .isZero());
                assertThat(records.all())
                        .filteredOn(r -> big.equals(r.messageId()))
                        .first()
                        .satisfies(r -> assertThat(r.payloadBytes()).isEqualTo(50 * 1024));
                Cli after = cli(db, "status", "--json");
                assertThat(after.code).isZero();
                assertThat(after.out).contains("\"parked\":0").contains("\"backlog\":0");
            }
        }
    }

    private List<UUID> append(String topic, int from, int to) {
        List<OutboxMessage> messages = new ArrayList<>();
        for (int i = from; i < to; i++) {
            messages.add(OutboxMessage.of(
                    topic, "key-" + (i % 5), "Test", "text/plain", ("m" + i).getBytes(StandardCharsets.UTF_8)));
        }
        return db().dsl().transactionResult(tx -> outbox.appendAll(tx.dsl(), messages));
    }

    private TestDatabase db;

    private TestDatabase db() {
        return db;
    }

    @BeforeEach
    void keep(TestDatabase db) {
        this.db = db;
    }

    private static Set<UUID> ids(Records records) {
        return records.all().stream().map(Records.Received::messageId).collect(Collectors.toSet());
    }

    record Cli(int code, String out, List<String> err) {}

    static Cli cli(TestDatabase db, String... command) {
        return run(InProcess.dbArgs(db, command));
    }

    /** Runs the command line in this JVM, without an environment. */
    static Cli run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Main.run(args, Map.of(), print(out), print(err));
        return new Cli(code, out.toString(StandardCharsets.UTF_8), lines(err));
    }
}
