package dev.outbox.consumer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.core.MessageIds;
import dev.outbox.core.OutboxHeaders;
import dev.outbox.testkit.RealServices;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(RealServices.class)
@Timeout(300)
class BufferedBytesIT {
    private static final int PARTITIONS = 24;
    private static final int MESSAGES = 480;
    private static final int VALUE_BYTES = 200 * 1024;
    private static final long MAX_BUFFERED_BYTES = 8L * 1024 * 1024;
    private static final String HEAP = "-Xmx64m";

    /**
     * A consumer process with a 64 MiB heap and a slow handler (25 ms a message, two workers) takes over a
     * backlog of 480 records of 200 KiB on 24 partitions, 94 MiB in all, with maxBufferedBytes at 8 MiB:
     * it handles every message exactly once without running out of memory (the process exits at an
     * OutOfMemoryError), and the bytes it holds queued, read every 10 ms from its gauge, stay below the
     * budget plus one poll's records, here one record per partition (the Kafka properties let one fetch
     * of a partition hold one such record). Where partitions paused at 1,000 queued records only, the
     * consumer fetched the whole backlog and the process died of an OutOfMemoryError within seconds.
     */
    @Test
    void aConsumerWithA64MiBHeapWorksThroughA94MiBBacklogOnceEach(TestDatabase db, TestKafka kafka) throws Exception {
        Fixtures.createPayments(db);
        String name = "buffered";
        String topic = TestKafka.uniqueTopic("buffered");
        kafka.createTopic(topic, PARTITIONS);
        kafka.createTopic(topic + ".dlt", 1);
        List<UUID> ids = new ArrayList<>();
        long recordBytes = 0;
        byte[] value = new byte[VALUE_BYTES];
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = Fixtures.producer(kafka)) {
            for (int i = 0; i < MESSAGES; i++) {
                UUID id = MessageIds.next();
                ids.add(id);
                byte[] key = ("order-" + i).getBytes(StandardCharsets.UTF_8);
                RecordHeaders headers = new RecordHeaders();
                byte[] idBytes = id.toString().getBytes(StandardCharsets.UTF_8);
                headers.add(OutboxHeaders.MESSAGE_ID, idBytes);
                recordBytes = Math.max(
                        recordBytes, key.length + value.length + OutboxHeaders.MESSAGE_ID.length() + idBytes.length);
                sent.add(producer.send(new ProducerRecord<>(topic, i % PARTITIONS, key, value, headers)));
            }
            for (Future<RecordMetadata> ack : sent) {
                ack.get(60, TimeUnit.SECONDS);
            }
        }

        Path log = Files.createDirectories(Path.of("target", "crash-it")).resolve("buffered-bytes.log");
        Process child = ForkedJvm.start(
                List.of(HEAP, "-XX:+ExitOnOutOfMemoryError"),
                BufferedBytesTestConsumer.class,
                db,
                kafka,
                List.of(topic, name, Long.toString(MAX_BUFFERED_BYTES), "25"),
                log.toFile());
        Thread reaper = new Thread(child::destroyForcibly);
        Runtime.getRuntime().addShutdownHook(reaper);
        try {
            await().atMost(Duration.ofSeconds(90))
                    .pollInterval(Duration.ofMillis(250))
                    .until(() -> {
                        if (!child.isAlive()) {
                            // not an AssertionError, which the wait would take for "not yet"
                            throw new IllegalStateException(String.format(
                                    "the consumer process ended with exit code %d before it handled every message;"
                                            + " the end of its output:%n%s",
                                    child.exitValue(), tail(log)));
                        }
                        return Fixtures.paymentsOf(db, ids).size() == MESSAGES;
                    });
            await().atMost(Duration.ofSeconds(30))
                    .pollInterval(Duration.ofMillis(250))
                    .untilAsserted(() -> Fixtures.assertCommittedToEnd(kafka, name + "-group", topic));
            assertThat(child.isAlive()).as("the consumer process still runs").isTrue();
        } finally {
            child.destroyForcibly();
            child.waitFor(60, TimeUnit.SECONDS);
            Runtime.getRuntime().removeShutdownHook(reaper);
        }
        Map<UUID, Long> perId = Fixtures.paymentsOf(db, ids);
        assertThat(perId).hasSize(MESSAGES);
        assertThat(perId.entrySet()).filteredOn(e -> e.getValue() != 1).isEmpty();
        assertThat(Fixtures.scalar(db, "select count(*) from outbox.processed_message where consumer = '" + name + "'"))
                .isEqualTo(MESSAGES);

        long maxBuffered = maxBuffered(log);
        System.out.printf(
                "[BufferedBytesIT] most bytes queued: %d (maxBufferedBytes %d, one record %d)%n",
                maxBuffered, MAX_BUFFERED_BYTES, recordBytes);
        assertThat(maxBuffered)
                .as("the most bytes queued seen, against maxBufferedBytes plus one poll's records")
                .isGreaterThanOrEqualTo(MAX_BUFFERED_BYTES / 2)
                .isLessThan(MAX_BUFFERED_BYTES + PARTITIONS * recordBytes);
    }

    /** @return the highest {@code buffered-bytes-max} the process printed, or 0 */
    private static long maxBuffered(Path log) throws IOException {
        long max = 0;
        for (String line : Files.readAllLines(log)) {
            if (line.startsWith("buffered-bytes-max ")) {
                max = Math.max(max, Long.parseLong(line.substring("buffered-bytes-max ".length())));
            }
        }
        return max;
    }

    private static String tail(Path log) throws IOException {
        List<String> lines = Files.readAllLines(log);
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 15), lines.size()));
    }
}
