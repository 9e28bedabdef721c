package dev.outbox.consumer.internal;

import dev.outbox.core.internal.Breakers;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.BaseUnits;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.apache.kafka.common.TopicPartition;

/**
 * The consumer's meters, tagged {@code consumer=<name>}. Names are Micrometer's dotted form; the
 * Prometheus registry renders them as {@code outbox_consumer_handled_total} and so on.
 */
final class Metrics {
    static final String HANDLED = "outbox.consumer.handled";
    static final String DUPLICATES = "outbox.consumer.duplicates";
    static final String RETRIES = "outbox.consumer.retries";
    static final String DEAD_LETTERED = "outbox.consumer.dead.lettered";
    static final String HANDLER = "outbox.consumer.handler";
    static final String LAG = "outbox.consumer.lag";
    static final String PURGED = "outbox.consumer.purged";
    static final String PURGE_FAILURES = "outbox.consumer.purge.failures";
    static final String BREAKER_STATE = "outbox.consumer.breaker.state";
    static final String REPLAYED = "outbox.consumer.replayed";
    static final String STALE = "outbox.consumer.stale";
    static final String DEAD_LETTER_REFUSED = "outbox.consumer.dead.letter.refused";
    static final String BUFFERED_BYTES = "outbox.consumer.buffered.bytes";
    static final String DEAD_LETTER_PRODUCER_REPLACED = "outbox.consumer.dead.letter.producer.replaced";

    private final MeterRegistry registry;
    private final Tags tags;
    /** Gauges are the state of one consumer object: two consumers of one name in a registry keep theirs apart. */
    private final Tags instanceTags;

    final Counter handled;
    final Counter duplicates;
    final Counter handlerRetries;
    final Counter infrastructureRetries;
    final Counter transientRetries;
    final Counter contentionRetries;
    final Counter replayed;
    final Counter stale;
    final Counter deadLetterRefused;
    final Counter deadLetterProducerReplaced;
    final Counter deadLetteredHandlerFailed;
    final Counter deadLetteredMissingId;
    final Counter deadLetteredInvalidId;
    final Timer handlerTimer;
    final Counter purged;
    final Counter purgeFailures;

    /**
     * @param registry where the meters go
     * @param consumer the consumer name, tag {@code consumer} of every meter
     * @param instance this consumer object's name, tag {@code consumer.instance} of its gauges
     */
    Metrics(MeterRegistry registry, String consumer, String instance) {
        this.registry = registry;
        this.tags = Tags.of("consumer", consumer);
        this.instanceTags = tags.and("consumer.instance", instance);
        handled = Counter.builder(HANDLED)
                .tags(tags)
                .description("Messages whose handler ran and whose transaction committed")
                .register(registry);
        duplicates = Counter.builder(DUPLICATES)
                .tags(tags)
                .description("Redelivered messages skipped because their id was already processed")
                .register(registry);
        handlerRetries = Counter.builder(RETRIES)
                .tags(tags)
                .tag("cause", "handler")
                .description("Retries scheduled after a failure")
                .register(registry);
        infrastructureRetries = Counter.builder(RETRIES)
                .tags(tags)
                .tag("cause", "infrastructure")
                .description("Retries scheduled after a failure")
                .register(registry);
        transientRetries = Counter.builder(RETRIES)
                .tags(tags)
                .tag("cause", "transient")
                .description("Retries scheduled after a failure")
                .register(registry);
        contentionRetries = Counter.builder(RETRIES)
                .tags(tags)
                .tag("cause", "contention")
                .description("Retries scheduled after a failure")
                .register(registry);
        replayed = Counter.builder(REPLAYED)
                .tags(tags)
                .description("Dead-lettered messages handled again because a copy carried the dlt-replay header")
                .register(registry);
        stale = Counter.builder(STALE)
                .tags(tags)
                .description("Messages handled as new although older than the retention of processed ids")
                .register(registry);
        deadLetterRefused = Counter.builder(DEAD_LETTER_REFUSED)
                .tags(tags)
                .description(
                        "Records the dead-letter topic refused for good (logged at ERROR with their offset), then skipped")
                .register(registry);
        deadLetterProducerReplaced = Counter.builder(DEAD_LETTER_PRODUCER_REPLACED)
                .tags(tags)
                .description("Dead-letter producers closed after an error that leaves a producer unusable (logged at"
                        + " WARN); the next attempt creates a new one")
                .register(registry);
        deadLetteredHandlerFailed = deadLettered("handler-failed");
        deadLetteredMissingId = deadLettered("missing-message-id");
        deadLetteredInvalidId = deadLettered("invalid-message-id");
        handlerTimer = Timer.builder(HANDLER)
                .tags(tags)
                .description("Time spent in the handler, successful or not")
                .register(registry);
        purged = Counter.builder(PURGED)
                .tags(tags)
                .description("processed_message rows deleted by the retention purge, scheduled or called")
                .register(registry);
        purgeFailures = Counter.builder(PURGE_FAILURES)
                .tags(tags)
                .description("Scheduled purges that failed (the next one retries)")
                .register(registry);
    }

    /**
     * Registers the state gauge of one of the consumer's circuit breakers.
     *
     * @param breaker the breaker
     * @param name its tag value: {@code database} or {@code dead-letter}
     * @return the gauge, to {@link #remove(Gauge) remove} when the consumer closes
     */
    Gauge breakerState(CircuitBreaker breaker, String name) {
        return Gauge.builder(BREAKER_STATE, breaker, Breakers::gaugeValue)
                .tags(instanceTags)
                .tag("breaker", name)
                .description("Circuit breaker state: 0 closed, 1 open, 2 half-open")
                .register(registry);
    }

    private Counter deadLettered(String reason) {
        return Counter.builder(DEAD_LETTERED)
                .tags(tags)
                .tag("reason", reason)
                .description("Records published to the dead-letter topic")
                .register(registry);
    }

    /** Registers the lag gauge of a newly assigned partition. */
    Gauge lagGauge(TopicPartition tp, AtomicLong lag) {
        return Gauge.builder(LAG, lag, AtomicLong::get)
                .tags(instanceTags)
                .tag("topic", tp.topic())
                .tag("partition", Integer.toString(tp.partition()))
                .description(
                        "Records of the partition not yet processed: log end offset minus the next offset to process")
                .register(registry);
    }

    /**
     * Registers the gauge of the bytes the consumer holds fetched and not yet processed.
     *
     * @param bytes their sum over the assigned partitions, read at each scrape
     * @return the gauge, to {@link #remove(Gauge) remove} when the consumer closes
     */
    Gauge bufferedBytes(Supplier<Number> bytes) {
        return Gauge.builder(BUFFERED_BYTES, bytes)
                .tags(instanceTags)
                .baseUnit(BaseUnits.BYTES)
                .description("Bytes (keys, values, headers) of the records fetched and not yet processed, all"
                        + " partitions together; partitions are paused as it nears maxBufferedBytes")
                .register(registry);
    }

    void remove(Gauge gauge) {
        registry.remove(gauge);
    }
}
