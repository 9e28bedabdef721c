package dev.outbox.consumer.internal;

import dev.outbox.consumer.DeadLetterHeaders;
import dev.outbox.core.internal.Durations;
import dev.outbox.core.internal.PrefixedLog;
import io.micrometer.core.instrument.Counter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.InvalidRecordException;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.ApiException;
import org.apache.kafka.common.errors.AuthenticationException;
import org.apache.kafka.common.errors.ClusterAuthorizationException;
import org.apache.kafka.common.errors.InterruptException;
import org.apache.kafka.common.errors.InvalidPidMappingException;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.RecordBatchTooLargeException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.TransactionalIdAuthorizationException;
import org.apache.kafka.common.errors.UnknownProducerIdException;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Publishes records to the dead-letter topic and waits for the broker's acknowledgement.
 *
 * <p>Its one idempotent producer is created at the first publish or check. A publish or check that
 * fails with an error after which that producer may never send again ({@link
 * #leavesTheProducerUnusable}) closes it without waiting and drops it, so that the next attempt, which
 * the dead-letter breaker and the record's retry make, creates a new one: once the operator has fixed
 * the cause (a credential, an ACL), dead letters flow again without a restart. The failed publish
 * itself is retried as any other failure of the dead-letter topic.
 */
final class DeadLetters implements DeadLetterSink, AutoCloseable {
    private static final int MAX_EXCEPTION_MESSAGE = 4000;

    private final Settings settings;
    private final Duration sendTimeout;
    private final Supplier<Producer<byte[], byte[]>> factory;
    private final Counter replaced;
    private final PrefixedLog log;
    // guarded by this; null until the first publish or check, and after a replacement
    private Producer<byte[], byte[]> producer;
    private boolean closed;

    /**
     * @param replaced counts the producers dropped after an error that left them unusable
     * @param log where a replacement is reported
     */
    DeadLetters(Settings settings, Counter replaced, PrefixedLog log) {
        this(
                settings,
                replaced,
                log,
                () -> new KafkaProducer<>(
                        producerProperties(settings), new ByteArraySerializer(), new ByteArraySerializer()));
    }

    /** @param factory makes each producer (tests pass Kafka's {@code MockProducer}) */
    DeadLetters(Settings settings, Counter replaced, PrefixedLog log, Supplier<Producer<byte[], byte[]>> factory) {
        this.settings = settings;
        this.sendTimeout = settings.closeTimeout();
        this.factory = factory;
        this.replaced = replaced;
        this.log = log;
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
     *     error that a retry can cure (with a new producer, when the error left this one unusable)
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
        Producer<byte[], byte[]> p = null;
        try {
            p = producer();
            p.partitionsFor(topic);
        } catch (RuntimeException e) {
            dropIfUnusable(p, e);
            throw new InfrastructureException("dead-letter topic " + topic + " has no metadata: " + e, e);
        }
    }

    /** @throws RecordTooLargeException when the record is too large for the producer or the topic */
    private void send(ProducerRecord<byte[], byte[]> record, long deadline)
            throws InfrastructureException, DeadLetterRefusedException {
        String topic = record.topic();
        Producer<byte[], byte[]> p = null;
        try {
            p = producer();
            p.send(record).get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
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
            dropIfUnusable(p, cause);
            throw new InfrastructureException("publishing to dead-letter topic " + topic + " failed: " + cause, cause);
        } catch (TimeoutException e) {
            throw new InfrastructureException(
                    "dead-letter topic " + topic + " did not acknowledge within " + Durations.format(sendTimeout), e);
        } catch (RuntimeException e) {
            dropIfUnusable(p, e);
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

    /**
     * Whether a Kafka producer may never send again after this error, so that only a new one can
     * publish. The client does not tell which state it is in, so an error that can leave it so
     * counts; a replacement costs no more than the sends the closed producer still held, and those
     * are retried:
     *
     * <ul>
     *   <li>the errors for which kafka-clients puts an idempotent producer in its fatal state: the
     *       cluster or a transactional id not authorized, a request version the broker does not
     *       support, a fenced producer, a producer id mapping the broker does not know;
     *   <li>a failed authentication: one that meets the producer's request for its producer id leaves
     *       it without one for good, and its later sends only time out;
     *   <li>a sequence or an epoch the broker refuses: the client bumps its epoch itself, but a broker
     *       has been seen to refuse a producer's sequence for ever, and a new producer starts with a
     *       new producer id;
     *   <li>a failure outside the Kafka protocol: a {@link KafkaException} that is no broker error,
     *       such as "cannot execute transactional method because we are in an error state", or an
     *       {@link IllegalStateException}, such as a producer closed.
     * </ul>
     *
     * Not among them: an interrupt of the worker (a hung publish at a revocation, the consumer's
     * close), a timeout, and every other broker error (no ACL on the topic, an unknown topic, a
     * partition without a leader), which the same producer survives. The relay's list (which this
     * module cannot use: it does not depend on the relay) is close to this one; this one adds the
     * transactional id, version and producer id mapping errors, and leaves interrupts out.
     */
    static boolean leavesTheProducerUnusable(Throwable t) {
        return t instanceof ClusterAuthorizationException
                || t instanceof TransactionalIdAuthorizationException
                || t instanceof UnsupportedVersionException
                || t instanceof ProducerFencedException
                || t instanceof InvalidPidMappingException
                || t instanceof AuthenticationException
                || t instanceof OutOfOrderSequenceException
                || t instanceof InvalidProducerEpochException
                || t instanceof UnknownProducerIdException
                || t instanceof IllegalStateException
                || (t instanceof KafkaException && !(t instanceof ApiException) && !(t instanceof InterruptException));
    }

    private synchronized Producer<byte[], byte[]> producer() {
        if (closed) {
            throw new IllegalStateException("the consumer is closed");
        }
        if (producer == null) {
            producer = factory.get();
        }
        return producer;
    }

    /**
     * Drops {@code failed} if {@code why} left it unusable and it is still the current producer, that
     * same instance (others that failed on it at the same time find it dropped already), then closes
     * it without waiting, which fails what it still holds: those publishes are retried. The next
     * publish or check creates a new producer. Nothing once the dead-letter sink is closed: {@link
     * #close()} closes the current producer.
     *
     * @param failed the producer that failed, or null when none was obtained
     */
    @SuppressWarnings("ReferenceEquality")
    private void dropIfUnusable(Producer<byte[], byte[]> failed, Throwable why) {
        if (failed == null || !leavesTheProducerUnusable(why)) {
            return;
        }
        synchronized (this) {
            if (closed || producer != failed) {
                return;
            }
            producer = null;
        }
        replaced.increment();
        log.warn(
                "closing the dead-letter producer after an error that leaves it unusable, {}; the next attempt"
                        + " creates a new one",
                why.toString());
        try {
            failed.close(Duration.ZERO);
        } catch (RuntimeException e) {
            log.warn("the dead-letter producer did not close cleanly: {}", e.toString());
        }
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
