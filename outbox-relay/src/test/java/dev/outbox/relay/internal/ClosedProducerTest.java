package dev.outbox.relay.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.time.Duration;
import java.util.Map;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

/**
 * A send on a producer that was closed or replaced meanwhile is transient: never poison (G7 parks
 * only records that can never be published), never the row's own failure (no attempt counted), and
 * it leads to a new producer.
 */
class ClosedProducerTest {

    @Test
    void aSendOnAClosedProducerIsTransient() {
        KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(Map.of(
                "bootstrap.servers", "localhost:1",
                "key.serializer", ByteArraySerializer.class.getName(),
                "value.serializer", ByteArraySerializer.class.getName()));
        producer.close(Duration.ZERO);

        Throwable thrown =
                catchThrowable(() -> producer.send(new ProducerRecord<>("t", new byte[] {1}), (md, e) -> {}));

        assertThat(thrown).isInstanceOf(IllegalStateException.class);
        assertClassifiedTransient(thrown);
    }

    @Test
    void aRecordAbortedByAForcedCloseIsTransient() {
        // what the callbacks of a producer closed with close(ZERO) receive for every record it still held
        assertClassifiedTransient(new KafkaException("Producer is closed forcefully."));
    }

    @Test
    void aRecordFailedForWantOfAProducerIsTransient() {
        // what a topic lookup reports while the replacement producer cannot be created
        assertClassifiedTransient(new Publisher.Unavailable(
                "no Kafka producer", new KafkaException("Failed to construct kafka producer")));
    }

    private static void assertClassifiedTransient(Throwable t) {
        assertThat(Errors.isPoison(t)).as("never parked").isFalse();
        assertThat(t).as("not counted as an attempt").isNotInstanceOf(Errors.TopicUnavailable.class);
        assertThat(Errors.isFatal(t)).as("the producer is replaced").isTrue();
    }
}
