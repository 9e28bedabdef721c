package dev.outbox.testkit;

import static dev.outbox.migrations.jooq.Tables.OUTBOX_SHARD_LEASE;
import static dev.outbox.migrations.jooq.Tables.PROCESSED_MESSAGE;
import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** The kit hands out a migrated PostgreSQL database and a working Kafka broker. */
@ExtendWith(RealServices.class)
class RealServicesIT {

  @Test
  void databaseIsFreshAndMigrated(TestDatabase db) {
    assertThat(db.name()).startsWith("outbox_it_");
    assertThat(db.dsl().fetchCount(OUTBOX_SHARD_LEASE)).isEqualTo(64);
    UUID id = UUID.randomUUID();
    db.dsl().insertInto(PROCESSED_MESSAGE).set(PROCESSED_MESSAGE.CONSUMER, "kit").set(PROCESSED_MESSAGE.MESSAGE_ID, id).execute();
    assertThat(db.dsl().fetchCount(PROCESSED_MESSAGE, PROCESSED_MESSAGE.MESSAGE_ID.eq(id))).isOne();
  }

  @Test
  void sameDatabaseWithinAClass(TestDatabase a, TestDatabase b) {
    assertThat(a).isSameAs(b);
  }

  @Test
  void kafkaProducesAndConsumes(TestKafka kafka) {
    // a topic of this run only: a broker named by outbox.test.kafka.bootstrap outlives the JVM, and
    // records of an earlier run would be read from the earliest offset too
    String topic = TestKafka.uniqueTopic("kit-roundtrip");
    kafka.createTopic(topic, 3);
    try (var producer = new KafkaProducer<byte[], byte[]>(kafka.producerProperties())) {
      for (int i = 0; i < 30; i++) {
        producer.send(new ProducerRecord<>(topic, ("k" + i).getBytes(), ("v" + i).getBytes()));
      }
      producer.flush();
    }
    List<String> values = new ArrayList<>();
    try (var consumer = new KafkaConsumer<byte[], byte[]>(kafka.consumerProperties("kit-" + UUID.randomUUID()))) {
      consumer.subscribe(List.of(topic));
      long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
      while (values.size() < 30 && System.nanoTime() < deadline) {
        for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
          values.add(new String(r.value()));
        }
      }
    }
    assertThat(values).hasSize(30).contains("v0", "v29");
  }
}
