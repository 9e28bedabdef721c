package dev.outbox.consumer.internal;

import dev.outbox.consumer.FailureKind;
import dev.outbox.consumer.MessageHandler;
import dev.outbox.core.retry.Backoff;
import dev.outbox.schemas.AvroCodec;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.function.Function;
import javax.sql.DataSource;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.jooq.DSLContext;

/**
 * The validated settings of one consumer, as the builder hands them over. Exactly one of {@code
 * dataSource} and {@code dsl} is set; {@code messageIdExtractor}, {@code deadLetterTopic} and {@code
 * failureClassifier} may be null (defaults). {@code maxBufferedBytes} bounds the bytes of the records
 * fetched and not yet processed, over all partitions (see {@code Assignments#updatePauses}).
 */
public record Settings(
        Map<String, Object> consumerProperties,
        Map<String, Object> producerProperties,
        List<String> topics,
        String consumerName,
        DataSource dataSource,
        DSLContext dsl,
        String schema,
        MessageHandler handler,
        Function<ConsumerRecord<byte[], byte[]>, Optional<UUID>> messageIdExtractor,
        int maxAttempts,
        Backoff backoff,
        String deadLetterTopic,
        int maxRecordsPerTransaction,
        boolean savepointPerRecord,
        int concurrency,
        Duration retention,
        Duration purgeInterval,
        Duration closeTimeout,
        MeterRegistry meterRegistry,
        AvroCodec codec,
        Hooks hooks,
        String deadLetterTopicSuffix,
        Function<Throwable, FailureKind> failureClassifier,
        Duration maxTransientRetry,
        long maxBufferedBytes) {}
