package dev.outbox.consumer.internal;

import dev.outbox.consumer.DeadLetterHeaders;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/** Publishes records to the dead-letter topic and waits for the broker's acknowledgement. */
final class DeadLetters implements AutoCloseable {
  private static final int MAX_EXCEPTION_MESSAGE = 4000;

  private final Settings settings;
  private final Duration sendTimeout;
  private KafkaProducer<byte[], byte[]> producer;
  private boolean closed;

  DeadLetters(Settings settings) {
    this.settings = settings;
    this.sendTimeout = settings.closeTimeout();
  }

  String topicFor(String sourceTopic) {
    return settings.deadLetterTopic() != null ? settings.deadLetterTopic() : sourceTopic + ".dlt";
  }

  /**
   * @param failure the handler's last exception, or null for a record without a usable id
   * @throws InfrastructureException when the broker does not acknowledge in time
   */
  void publish(ConsumerRecord<byte[], byte[]> record, String reason, Throwable failure, int attempts)
      throws InfrastructureException {
    RecordHeaders headers = new RecordHeaders();
    for (Header h : record.headers()) {
      if (!h.key().startsWith("dlt-")) {
        headers.add(h);
      }
    }
    if (failure != null) {
      headers.add(DeadLetterHeaders.EXCEPTION_CLASS, utf8(failure.getClass().getName()));
      String message = failure.getMessage() == null ? "" : failure.getMessage();
      if (message.length() > MAX_EXCEPTION_MESSAGE) {
        message = message.substring(0, MAX_EXCEPTION_MESSAGE);
      }
      headers.add(DeadLetterHeaders.EXCEPTION_MESSAGE, utf8(message));
    }
    headers.add(DeadLetterHeaders.ATTEMPTS, utf8(Integer.toString(attempts)));
    headers.add(DeadLetterHeaders.ORIGINAL_TOPIC, utf8(record.topic()));
    headers.add(DeadLetterHeaders.ORIGINAL_PARTITION, utf8(Integer.toString(record.partition())));
    headers.add(DeadLetterHeaders.ORIGINAL_OFFSET, utf8(Long.toString(record.offset())));
    headers.add(DeadLetterHeaders.REASON, utf8(reason));
    String topic = topicFor(record.topic());
    try {
      producer().send(new ProducerRecord<>(topic, null, record.key(), record.value(), headers))
          .get(sendTimeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InfrastructureException("interrupted while publishing to dead-letter topic " + topic, e);
    } catch (ExecutionException e) {
      throw new InfrastructureException("publishing to dead-letter topic " + topic + " failed: " + e.getCause(),
          e.getCause());
    } catch (TimeoutException e) {
      throw new InfrastructureException("dead-letter topic " + topic + " did not acknowledge within " + sendTimeout, e);
    } catch (RuntimeException e) {
      throw new InfrastructureException("publishing to dead-letter topic " + topic + " failed: " + e, e);
    }
  }

  private synchronized KafkaProducer<byte[], byte[]> producer() {
    if (closed) {
      throw new IllegalStateException("the consumer is closed");
    }
    if (producer == null) {
      producer = new KafkaProducer<>(producerProperties(settings), new ByteArraySerializer(), new ByteArraySerializer());
    }
    return producer;
  }

  static Map<String, Object> producerProperties(Settings settings) {
    Map<String, Object> props = new HashMap<>();
    settings.consumerProperties().forEach((k, v) -> {
      if (k.equals(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG) || k.startsWith("security.") || k.startsWith("ssl.")
          || k.startsWith("sasl.") || k.equals(CommonClientConfigs.CLIENT_DNS_LOOKUP_CONFIG)) {
        props.put(k, v);
      }
    });
    props.put(ProducerConfig.ACKS_CONFIG, "all");
    props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    props.put(ProducerConfig.CLIENT_ID_CONFIG, "outbox-consumer-dlt-" + settings.consumerName());
    props.putAll(settings.producerProperties());
    props.remove(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG);
    props.remove(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG);
    return props;
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Override
  public synchronized void close() {
    closed = true;
    if (producer != null) {
      producer.close(sendTimeout);
    }
  }
}
