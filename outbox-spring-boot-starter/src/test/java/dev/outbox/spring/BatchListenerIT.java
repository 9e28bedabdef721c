package dev.outbox.spring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.outbox.consumer.ProcessedMessages;
import dev.outbox.core.MessageIds;
import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.kafka.autoconfigure.KafkaConnectionDetails;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.kafka.config.KafkaListenerEndpointRegistry;
import org.springframework.kafka.listener.BatchListenerFailedException;
import org.springframework.stereotype.Service;
import org.springframework.test.annotation.DirtiesContext;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;
import org.springframework.transaction.annotation.Transactional;

/**
 * G4 (and G1 on the consumer's side) for a batch {@code @KafkaListener} that claims and writes every
 * record of its batch in one transaction and names the failing record with Spring Kafka's {@code
 * BatchListenerFailedException}, as Spring Kafka advises for batch listeners. The transaction rolls back
 * the records before the failing one too; Spring Kafka's {@code DefaultErrorHandler} then committed
 * their offsets, and they were never applied. With the starter's handler the batch is delivered again
 * whole, and every record is applied once.
 */
@ExtendWith(DropDatabaseAtEnd.class)
@SpringBootTest(classes = BatchListenerIT.App.class)
@DirtiesContext
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class BatchListenerIT {
    static final TestDatabase DB = ListenerApps.database(ListenerApps.PAYMENTS_DDL);
    static final TestKafka KAFKA = TestKafka.shared();
    static final String TOPIC = TestKafka.uniqueTopic("starter-batch");
    static final String LISTENER = "batch-payments";

    /** Deliveries of the failing record left to fail. */
    static final AtomicInteger FAILURES_LEFT = new AtomicInteger(1);
    /** The size of each batch delivered, in order. */
    static final List<Integer> BATCHES = new ArrayList<>();

    @Autowired
    JdbcTemplate jdbc;

    @Autowired
    KafkaListenerEndpointRegistry listeners;

    @DynamicPropertySource
    static void properties(DynamicPropertyRegistry registry) {
        KAFKA.createTopic(TOPIC, 1);
        ListenerApps.properties(registry, DB, TOPIC);
        registry.add("spring.kafka.listener.type", () -> "batch");
    }

    @Test
    void aBatchWhoseListenerNamesAFailingRecordIsDeliveredAgainWholeAndEveryRecordAppliedOnce() throws Exception {
        List<UUID> ids = List.of(MessageIds.next(), MessageIds.next(), MessageIds.next(), MessageIds.next());
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(KAFKA.producerProperties())) {
            // one partition, and the container started only once all four are there: one batch of four,
            // the third failing
            for (int i = 0; i < ids.size(); i++) {
                producer.send(ListenerApps.record(TOPIC, ids.get(i), i == 2 ? "o-fails" : "o-" + i))
                        .get(30, TimeUnit.SECONDS);
            }
        }
        listeners.getListenerContainer(LISTENER).start();

        await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
            for (UUID id : ids) {
                assertThat(ListenerApps.payments(jdbc, id))
                        .as("payments of message %s", id)
                        .isEqualTo(1);
            }
        });
        assertThat(FAILURES_LEFT).as("the failing delivery ran").hasValue(0);
        synchronized (BATCHES) {
            assertThat(BATCHES)
                    .as("the first batch held all four records, and was delivered again whole")
                    .startsWith(4, 4);
        }
    }

    @SpringBootConfiguration
    @EnableAutoConfiguration
    @Import(PaymentsListener.class)
    static class App {
        /** The brokers as a service connection gives them. */
        @Bean
        KafkaConnectionDetails kafkaServiceConnection() {
            return () -> List.of(KAFKA.bootstrapServers());
        }
    }

    /** Every record's claim and payment row in one transaction for the batch. */
    @Service
    static class PaymentsListener {
        private final JdbcTemplate jdbc;
        private final ProcessedMessagesTemplate processed;

        PaymentsListener(JdbcTemplate jdbc, ProcessedMessagesTemplate processed) {
            this.jdbc = jdbc;
            this.processed = processed;
        }

        @KafkaListener(id = LISTENER, topics = "${test.topic}", groupId = "batch-payments", autoStartup = "false")
        @Transactional
        public void onOrders(List<ConsumerRecord<String, byte[]>> records) {
            synchronized (BATCHES) {
                BATCHES.add(records.size());
            }
            for (int i = 0; i < records.size(); i++) {
                ConsumerRecord<String, byte[]> record = records.get(i);
                if (!processed.claim("payments", record)) {
                    continue;
                }
                UUID id = ProcessedMessages.messageId(record.headers()).orElseThrow();
                jdbc.update("insert into payments(message_id, order_id) values (?, ?)", id, record.key());
                if (record.key().equals("o-fails") && FAILURES_LEFT.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
                    throw new BatchListenerFailedException("ledger unavailable for " + record.key(), i);
                }
            }
        }
    }
}
