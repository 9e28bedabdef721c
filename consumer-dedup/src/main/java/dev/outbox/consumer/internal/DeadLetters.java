package dev.outbox.consumer.internal;

import dev.outbox.consumer.DeadLetterHeaders;
import dev.outbox.core.internal.Durations;
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
import org.apache.kafka.common.InvalidRecordException;
import org.apache.kafka.common.errors.RecordBatchTooLargeException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/** Publishes records to the dead-letter topic and waits for the broker's acknowledgement. */
final class DeadLetters implements DeadLetterSink, AutoCloseable {
    private static final int MAX_EXCEPTION_MESSAGE = 4000;

    private final Settings settings;
    private final Duration sendTimeout;
    private KafkaProducer<byte[], byte[]> producer;
    private boolean closed;

    DeadLetters(Settings settings) {
        this.settings = settings;
        this.sendTimeout = settings.closeTimeout();
    }

    @Override
    public String topicFor(String sourceTopic) {
        return settings.deadLetterTopic() != null
                ? settings.deadLetterTopic()
                : sourceTopic + settings.deadLetterTopicSuffix();
    }

    /**
     * Publishes the record and waits for the broker's acknowledgement, at most the send timeout in
     * all (the producer's {@code max.block.ms} is at most that too). A record too large for the topic
     * is published once more without its value, with {@link DeadLetterHeaders#VALUE_DROPPED}.
     *
     * @param failure the handler's last exception; for a record without a usable id, what the message id
     *     extractor threw, or null
     * @throws InfrastructureException when the broker does not acknowledge in time, or fails with an
     *     error that a retry can cure
     * @throws DeadLetterRefusedException when the broker or the producer refuses the record for good
     */
    @Override
    public void publish(ConsumerRecord<byte[], byte[]> record, String reason, Throwable failure, int attempts)
            throws InfrastructureException, DeadLetterRefusedException {
        RecordHeaders headers = new RecordHeaders();
        for (Header h : record.headers()) {
            if (!h.key().startsWith("dlt-")) {
                headers.add(h);
            }
        }
        if (failure != null) {
            headers.add(
                    DeadLetterHeaders.EXCEPTION_CLASS, utf8(failure.getClass().getName()));
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
        long deadline = System.nanoTime() + sendTimeout.toNanos();
        try {
            send(new ProducerRecord<>(topic, null, record.key(), record.value(), headers), deadline);
        } catch (RecordTooLargeException e) {
            if (record.value() == null) {
                throw new DeadLetterRefusedException("dead-letter topic " + topic + " refused the record: " + e, e);
            }
            headers.add(DeadLetterHeaders.VALUE_DROPPED, utf8(Integer.toString(record.value().length)));
            try {
                send(new ProducerRecord<>(topic, null, record.key(), null, headers), deadline);
            } catch (RecordTooLargeException again) {
                throw new DeadLetterRefusedException(
                        "dead-letter topic " + topic + " refused the record, also without its" + " value: " + again,
                        again);
            }
        }
    }

    /**
     * Asks the dead-letter producer for {@code topic}'s partitions, which waits up to its {@code
     * max.block.ms} (at most the send timeout) for metadata.
     */
    @Override
    public void ping(String topic) throws InfrastructureException {
        try {
            producer().partitionsFor(topic);
        } catch (RuntimeException e) {
            throw new InfrastructureException("dead-letter topic " + topic + " has no metadata: " + e, e);
        }
    }

    /** @throws RecordTooLargeException when the record is too large for the producer or the topic */
    private void send(ProducerRecord<byte[], byte[]> record, long deadline)
            throws InfrastructureException, DeadLetterRefusedException {
        String topic = record.topic();
        try {
            producer().send(record).get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InfrastructureException("interrupted while publishing to dead-letter topic " + topic, e);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof RecordTooLargeException tooLarge) {
                throw tooLarge;
            }
            if (refusesTheRecordForGood(cause)) {
                throw new DeadLetterRefusedException(
                        "dead-letter topic " + topic + " refused the record: " + cause, cause);
            }
            throw new InfrastructureException("publishing to dead-letter topic " + topic + " failed: " + cause, cause);
        } catch (TimeoutException e) {
            throw new InfrastructureException(
                    "dead-letter topic " + topic + " did not acknowledge within " + Durations.format(sendTimeout), e);
        } catch (RuntimeException e) {
            throw new InfrastructureException("publishing to dead-letter topic " + topic + " failed: " + e, e);
        }
    }

    /**
     * @return whether the broker refused this record itself, so that no retry can publish it (it is
     *     then recorded and skipped): a record or batch too large, or a record the topic's settings
     *     refuse (a compacted topic and no key, say). Failures of the deployment rather than of the
     *     record (authentication, authorization, an invalid topic name, an unknown server error) are
     *     retried under the dead-letter breaker with the partition paused, so that an expired
     *     credential or a missing ACL skips no record.
     */
    static boolean refusesTheRecordForGood(Throwable cause) {
        return cause instanceof RecordTooLargeException
                || cause instanceof RecordBatchTooLargeException
                || cause instanceof InvalidRecordException;
    }

    private synchronized KafkaProducer<byte[], byte[]> producer() {
        if (closed) {
            throw new IllegalStateException("the consumer is closed");
        }
        if (producer == null) {
            producer = new KafkaProducer<>(
                    producerProperties(settings), new ByteArraySerializer(), new ByteArraySerializer());
        }
        return producer;
    }

    static Map<String, Object> producerProperties(Settings settings) {
        Map<String, Object> props = new HashMap<>();
        settings.consumerProperties().forEach((k, v) -> {
            if (k.equals(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG)
                    || k.startsWith("security.")
                    || k.startsWith("ssl.")
                    || k.startsWith("sasl.")
                    || k.equals(CommonClientConfigs.CLIENT_DNS_LOOKUP_CONFIG)) {
                props.put(k, v);
            }
        });
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "outbox-consumer-dlt-" + settings.consumerName());
        // send() blocks while the topic's metadata is missing: never longer than a whole publish may take
        props.put(
                ProducerConfig.MAX_BLOCK_MS_CONFIG,
                Long.toString(settings.closeTimeout().toMillis()));
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
