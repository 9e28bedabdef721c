package dev.outbox.relay.internal;

import dev.outbox.core.internal.Breakers;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Supplier;

/**
 * The relay's meters. Names are Micrometer's dotted form; the Prometheus registry renders {@code
 * outbox.relay.published} as {@code outbox_relay_published_total} and so on (see ENGINE.md). Every
 * meter carries the tag {@code relay.instance} (Prometheus: {@code relay_instance}), the relay's
 * instance id, so that two relays in one registry (the global one by default) keep their meters
 * apart; the tag is not named {@code instance}, which Prometheus sets itself to the scraped target.
 */
final class RelayMetrics {
    static final String PUBLISHED = "outbox.relay.published";
    static final String BATCH = "outbox.relay.batch";
    static final String ERRORS = "outbox.relay.errors";
    static final String PARKED = "outbox.relay.parked";
    static final String PARKED_ROWS = "outbox.relay.parked.rows";
    static final String OWNED_SHARDS = "outbox.relay.owned.shards";
    static final String BREAKER_STATE = "outbox.relay.breaker.state";
    static final String BACKOFF = "outbox.relay.backoff";
    static final String BACKLOG = "outbox.relay.backlog";
    static final String OLDEST_AGE = "outbox.relay.oldest.age";
    static final String ABORTED = "outbox.relay.transactions.aborted";
    static final String PRODUCER_REPLACED = "outbox.relay.producer.replaced";
    static final String BATCH_BYTES_REACHED = "outbox.relay.batch.bytes.reached";
    static final String DELETE_SHARDS = "outbox.relay.delete.shards";
    static final String VACUUM = "outbox.relay.vacuum";
    static final String VACUUM_SKIPPED = "outbox.relay.vacuum.skipped";
    static final String PROBE_WAITS = "outbox.relay.probe.waits";
    static final String PROBE_READS = "outbox.relay.probe.reads";
    static final String HELD_TOPICS = "outbox.relay.held.topics";
    static final String HELD_OVERFLOW = "outbox.relay.held.overflow.shards";
    static final String UNSAFE_TOPICS = "outbox.relay.unsafe.topics";
    static final String INSTANCE_TAG = "relay.instance";

    private final MeterRegistry registry;
    private final Tags tags;
    /** The gauges of this relay object, removed when it closes: they hold it. */
    private final List<Meter> gauges = new ArrayList<>();

    final Counter published;
    final Timer batch;
    final Counter retriable;
    final Counter nonRetriable;
    final Counter fenced;
    final Counter database;
    final Counter parked;
    final Timer backoff;
    final Counter aborted;
    final Counter producerReplaced;
    final Counter batchBytesReached;
    final DistributionSummary deleteShards;
    final Timer vacuum;
    final Counter vacuumSkipped;
    final Counter probeWaitsChanged;
    final Counter probeWaitsTimedOut;
    final Counter probeReadsFound;
    final Counter probeReadsEmpty;
    private final AtomicLong parkedRows = new AtomicLong();
    /**
     * Rows whose failure this relay recorded (an attempt counted, an error kept, a row parked): each
     * update leaves a dead row version behind, as a delete does, for {@link OutboxVacuum} to count.
     */
    final LongAdder rowsRewritten = new LongAdder();
    /** Shards holding more rows of topics without metadata than they remember (ShardWorker#HELD_WINDOW_BATCHES). */
    final AtomicInteger heldOverflow = new AtomicInteger();

    private final Map<Integer, double[]> backlog = new ConcurrentHashMap<>();
    private final Map<Integer, Meter[]> backlogMeters = new ConcurrentHashMap<>();

    /**
     * @param registry where the meters go
     * @param instance the relay's instance id, tag {@link #INSTANCE_TAG} of every meter
     * @param ownedShards how many shards the relay leases
     * @param breaker the Kafka breaker, whose state is a gauge
     */
    RelayMetrics(MeterRegistry registry, String instance, Supplier<Number> ownedShards, CircuitBreaker breaker) {
        this.registry = registry;
        this.tags = Tags.of(INSTANCE_TAG, instance);
        this.published = Counter.builder(PUBLISHED)
                .tags(tags)
                .description("Rows published and deleted by this relay")
                .register(registry);
        this.batch = Timer.builder(BATCH)
                .tags(tags)
                .description("One batch: read, send, every ack, fenced delete")
                .register(registry);
        this.retriable = error("retriable");
        this.nonRetriable = error("non_retriable");
        this.fenced = error("fenced");
        this.database = error("database");
        this.aborted = Counter.builder(ABORTED)
                .tags(tags)
                .description("Batches whose Kafka transaction was rolled back (transactional publish mode)")
                .register(registry);
        this.producerReplaced = Counter.builder(PRODUCER_REPLACED)
                .tags(tags)
                .description("Shared Kafka producers closed and created again after an error that left them unusable")
                .register(registry);
        this.batchBytesReached = Counter.builder(BATCH_BYTES_REACHED)
                .tags(tags)
                .description("Batches whose payloads reached batch-bytes with fewer rows than the read asked for")
                .register(registry);
        this.deleteShards = DistributionSummary.builder(DELETE_SHARDS)
                .tags(tags)
                .description("Shards whose finished batches one fenced delete statement took")
                .register(registry);
        this.vacuum = Timer.builder(VACUUM)
                .tags(tags)
                .description("Vacuums of the outbox table this relay ran (vacuum-after-rows)")
                .register(registry);
        this.vacuumSkipped = Counter.builder(VACUUM_SKIPPED)
                .tags(tags)
                .description(
                        "Vacuums not run: another vacuum of the table was running, the xmin horizon had not moved, or refused")
                .register(registry);
        this.probeWaitsChanged = probeWaits("change");
        this.probeWaitsTimedOut = probeWaits("timeout");
        this.probeReadsFound = probeReads("rows");
        this.probeReadsEmpty = probeReads("none");
        this.parked = Counter.builder(PARKED)
                .tags(tags)
                .description("Rows this relay parked (they can never be published)")
                .register(registry);
        this.backoff = Timer.builder(BACKOFF)
                .tags(tags)
                .description("Retry delays the shard loops actually waited")
                .serviceLevelObjectives(
                        Duration.ofMillis(10),
                        Duration.ofMillis(25),
                        Duration.ofMillis(50),
                        Duration.ofMillis(100),
                        Duration.ofMillis(250),
                        Duration.ofMillis(500),
                        Duration.ofSeconds(1),
                        Duration.ofMillis(2500),
                        Duration.ofSeconds(5),
                        Duration.ofSeconds(10),
                        Duration.ofSeconds(30),
                        Duration.ofSeconds(60))
                .register(registry);
        gauges.add(Gauge.builder(OWNED_SHARDS, ownedShards)
                .tags(tags)
                .description("Shards this relay leases")
                .register(registry));
        gauges.add(Gauge.builder(BREAKER_STATE, breaker, Breakers::gaugeValue)
                .tags(tags)
                .description("Kafka circuit breaker: 0 closed, 1 open, 2 half-open")
                .register(registry));
        gauges.add(Gauge.builder(PARKED_ROWS, parkedRows, AtomicLong::get)
                .tags(tags)
                .description("Parked rows in the outbox table (sampled)")
                .register(registry));
        gauges.add(Gauge.builder(HELD_OVERFLOW, heldOverflow, AtomicInteger::get)
                .tags(tags)
                .description("Shards holding more rows of topics without metadata than they remember: their reads"
                        + " leave out those topics and their keys' later rows, visiting every held row")
                .register(registry));
    }

    /** Registers the gauge of the topics whose rows are held now (no metadata), once the relay starts. */
    void heldTopics(Supplier<Number> count) {
        gauges.add(Gauge.builder(HELD_TOPICS, count)
                .tags(tags)
                .description("Topics without metadata whose rows this relay holds now (not sent; an attempt per failed"
                        + " check, at most one per backoff cap)")
                .register(registry));
    }

    /** Registers the gauge of the topics met so far whose replication can lose an acknowledged record. */
    void unsafeTopics(Supplier<Number> count) {
        gauges.add(Gauge.builder(UNSAFE_TOPICS, count)
                .tags(tags)
                .description("Topics this relay published to whose replication can lose a record after Kafka"
                        + " acknowledged it (min.insync.replicas below 2 on a replicated topic, or unclean leader"
                        + " election)")
                .register(registry));
    }

    private Counter error(String kind) {
        return Counter.builder(ERRORS)
                .tags(tags)
                .tag("kind", kind)
                .description("Failed batches and writes by kind")
                .register(registry);
    }

    private Counter probeWaits(String outcome) {
        return Counter.builder(PROBE_WAITS)
                .tags(tags)
                .tag("outcome", outcome)
                .description(
                        "Waits of the idle probe in PostgreSQL, by how they ended: a transaction ended, or none did")
                .register(registry);
    }

    private Counter probeReads(String outcome) {
        return Counter.builder(PROBE_READS)
                .tags(tags)
                .tag("outcome", outcome)
                .description("Reads of the probe by what they found: rows for some shard (the next read comes after"
                        + " probe-interval-under-load), or none (after probe-interval)")
                .register(registry);
    }

    /** @return the breaker's state as its gauge reports it ({@link Breakers#gaugeValue}) */
    static double breakerState(CircuitBreaker b) {
        return Breakers.gaugeValue(b);
    }

    void parkedRows(long n) {
        parkedRows.set(n);
    }

    /** Publishes a sample for the owned shards and removes the gauges of shards no longer owned. */
    void backlog(Set<Integer> owned, Map<Integer, double[]> sample) {
        for (Integer shard : owned) {
            backlog.put(shard, sample.getOrDefault(shard, new double[] {0, 0}));
            backlogMeters.computeIfAbsent(shard, s -> new Meter[] {
                Gauge.builder(BACKLOG, () -> value(s, 0))
                        .tags(tags.and("shard", String.valueOf(s)))
                        .description("Publishable rows waiting in an owned shard (sampled)")
                        .register(registry),
                Gauge.builder(OLDEST_AGE, () -> value(s, 1))
                        .tags(tags.and("shard", String.valueOf(s)))
                        .baseUnit("seconds")
                        .description("Age of the oldest publishable row of an owned shard (sampled)")
                        .register(registry)
            });
        }
        for (Integer shard : Set.copyOf(backlogMeters.keySet())) {
            if (!owned.contains(shard)) {
                Meter[] meters = backlogMeters.remove(shard);
                backlog.remove(shard);
                for (Meter m : meters) {
                    registry.remove(m);
                }
            }
        }
    }

    /** @return the publishable rows of the owned shards, as last sampled */
    double backlogTotal() {
        double total = 0;
        for (double[] v : backlog.values()) {
            total += v[0];
        }
        return total;
    }

    /**
     * Removes this relay's gauges from the registry when it closes or halts; its counters and timers
     * stay, so that their totals can still be read.
     */
    void removeGauges() {
        backlog(Set.of(), Map.of());
        for (Meter m : gauges) {
            registry.remove(m);
        }
    }

    private double value(int shard, int index) {
        double[] v = backlog.get(shard);
        return v == null ? 0 : v[index];
    }
}
