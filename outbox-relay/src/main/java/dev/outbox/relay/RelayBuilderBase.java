package dev.outbox.relay;

import dev.outbox.core.internal.Checks;
import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.relay.internal.ProducerSettings;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Metrics;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import javax.sql.DataSource;

/**
 * The first part of {@link Relay.Builder}, the only class that extends it: where the outbox is (the
 * database, the schema) and how the relay keeps its table small, who the relay is (its instance id)
 * and how it reaches Kafka (the producer properties). The rest, and {@link Relay.Builder#build()}, are
 * in {@link Relay.Builder}.
 */
abstract sealed class RelayBuilderBase permits Relay.Builder {
    DataSource dataSource;
    int vacuumAfterRows = Relay.Builder.DEFAULT_VACUUM_AFTER_ROWS;
    MeterRegistry meterRegistry;
    String schema = Relay.Builder.DEFAULT_SCHEMA;
    String instanceId;
    Map<String, ?> producerProperties;

    RelayBuilderBase() {}

    private Relay.Builder self() {
        return (Relay.Builder) this;
    }

    /**
     * The database that holds the outbox. Required. The relay uses up to {@link
     * Relay.Builder#workerThreads(int)} + 4 connections at a time (the shard loops, the lease round, the sampler,
     * the probe and the delete queue); size a pool accordingly. Every statement is a single autocommit statement, so
     * a transaction-pooling PgBouncer works.
     *
     * @param dataSource a pooled data source
     * @return this builder
     * @throws NullPointerException when null
     */
    public Relay.Builder dataSource(DataSource dataSource) {
        this.dataSource = Objects.requireNonNull(dataSource, "dataSource may not be null");
        return self();
    }

    /**
     * @param schema the schema the migrations were applied to; default {@link Relay.Builder#DEFAULT_SCHEMA}
     * @return this builder
     * @throws NullPointerException when null
     * @throws IllegalArgumentException when not a plain lower-case SQL identifier
     */
    public Relay.Builder schema(String schema) {
        this.schema = OutboxMigrations.requireValidSchema(Objects.requireNonNull(schema, "schema may not be null"));
        return self();
    }

    /**
     * How often the relay vacuums the outbox table: after every {@code rows} rows it deleted or
     * rewrote (a failed row's attempt recorded), checked once a second ({@code VACUUM (SKIP_LOCKED)}, skipped while another vacuum of the table runs). Every
     * read starts at its shard's first row and steps over the index entries of the rows deleted since
     * the table was last vacuumed; autovacuum comes by at most once per {@code autovacuum_naptime} (a
     * minute by default), so under a steady load those entries pile up and make every read slower.
     * While the relay drains a backlog larger than {@code rows} (as its backlog gauge last sampled
     * it) and that backlog shrinks, the vacuum waits until the backlog is drained, at the latest for
     * 64 times {@code rows} rows: each vacuum reads every index whole, backlog entries included. A
     * backlog that has not shrunk for 15 s (rows held for a missing topic, writers as fast as the
     * relay) is not waited for.
     * Needs the table's owner (or a superuser): for another role PostgreSQL skips the vacuum with a
     * warning, which the relay logs once before it stops trying.
     *
     * @param rows 1 to {@link Relay.Builder#MAX_VACUUM_AFTER_ROWS}, or 0 to leave the table to autovacuum; default
     *     {@link Relay.Builder#DEFAULT_VACUUM_AFTER_ROWS}
     * @return this builder
     * @throws IllegalArgumentException when out of range
     */
    public Relay.Builder vacuumAfterRows(int rows) {
        this.vacuumAfterRows = Checks.requireBetween(
                rows,
                0,
                Relay.Builder.MAX_VACUUM_AFTER_ROWS,
                "vacuumAfterRows",
                ": use 0 to turn it off, or e.g. the default " + Relay.Builder.DEFAULT_VACUUM_AFTER_ROWS);
        return self();
    }

    /**
     * @param meterRegistry where the relay registers its {@code outbox.relay.*} meters; default
     *     Micrometer's global registry ({@link Metrics#globalRegistry}), where frameworks and the
     *     other components of this library register theirs. Every meter carries the tag {@code
     *     relay.instance} = the {@link #instanceId(String) instance id}, so relays of one JVM can
     *     share a registry; a closed relay removes its gauges.
     * @return this builder
     * @throws NullPointerException when null
     */
    public Relay.Builder meterRegistry(MeterRegistry meterRegistry) {
        this.meterRegistry = Objects.requireNonNull(meterRegistry, "meterRegistry may not be null");
        return self();
    }

    /**
     * The owner name written into the lease and membership tables. It must be unique among the
     * relays of one outbox: two relays with one id would share leases without fencing each other.
     *
     * @param instanceId 1 to {@link Relay.Builder#MAX_INSTANCE_ID_LENGTH} characters, not blank; default {@code
     *     <host>-<pid>-<random hex>}
     * @return this builder
     * @throws NullPointerException when null
     * @throws IllegalArgumentException when blank or longer than {@link Relay.Builder#MAX_INSTANCE_ID_LENGTH}
     */
    public Relay.Builder instanceId(String instanceId) {
        Objects.requireNonNull(instanceId, "instanceId may not be null");
        if (instanceId.isBlank() || instanceId.length() > Relay.Builder.MAX_INSTANCE_ID_LENGTH) {
            throw new IllegalArgumentException("instanceId must be 1 to " + Relay.Builder.MAX_INSTANCE_ID_LENGTH
                    + " non-blank characters, got '" + instanceId + "': choose a name unique among the relays");
        }
        this.instanceId = instanceId;
        return self();
    }

    /**
     * Kafka producer properties, passed through to the {@code KafkaProducer} (TLS, SASL,
     * compression, linger, ...). Must contain {@code bootstrap.servers}. The relay enforces {@code
     * enable.idempotence=true} and {@code acks=all} and supplies its own byte-array serializers: a
     * conflicting value is refused, never silently replaced. Where not given, the relay uses {@code
     * linger.ms=0}, {@code batch.size=65536}, {@code delivery.timeout.ms} = a sixth of the lease,
     * {@code max.block.ms} = what a third of the lease leaves after it (at most 10000; 10000 in the
     * transactional mode) and {@code request.timeout.ms} = {@code delivery.timeout.ms - linger.ms}
     * (at most 10000), so that an unreachable broker fails a batch
     * (and trips the circuit breaker) in seconds rather than after Kafka's two-minute default, and
     * no record reaches Kafka after the lease it was sent under could have passed to another relay;
     * a {@code delivery.timeout.ms} above a third of the lease is refused, as are {@code
     * partitioner.class}, {@code partitioner.ignore.keys} and {@code interceptor.classes}. {@code linger.ms} is 0 rather than Kafka's 5 because the relay hands a
     * whole batch to the producer at once, which fills the producer's batches without waiting; a
     * linger would only add its delay to every message of an idle outbox (see {@code
     * benchmarks/RELAY.md}).
     *
     * @param producerProperties the properties; values are strings or the types Kafka accepts
     * @return this builder
     * @throws NullPointerException when null
     * @throws IllegalArgumentException when {@code bootstrap.servers} is missing or a property
     *     conflicts with what the relay enforces; the message names the property and the fix
     */
    public Relay.Builder producerProperties(Map<String, ?> producerProperties) {
        Objects.requireNonNull(producerProperties, "producerProperties may not be null");
        ProducerSettings.validate(producerProperties, "");
        this.producerProperties = new LinkedHashMap<>(producerProperties);
        return self();
    }
}
