package dev.outbox.relay.internal;

import dev.outbox.core.retry.Backoff;
import dev.outbox.relay.ParkPolicy;
import dev.outbox.relay.PublishMode;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Duration;
import java.util.Map;
import javax.sql.DataSource;

/**
 * The relay's validated settings (see {@link dev.outbox.relay.Relay.Builder} for each one).
 *
 * @param producerProperties the complete producer configuration, enforced values included
 * @param circuitBreaker the given breaker configuration, always with the automatic transition from
 *     open to half-open enabled
 * @param listenDataSource where the LISTEN connection comes from, or {@code null} for no LISTEN
 * @param transactionalIdPrefix the given prefix of the per-shard transactional ids, or {@code null}
 *     for the default (read from the database at start)
 * @param batchBytes the payload bytes after which a read of a shard takes no more rows ({@link PayloadCap})
 * @param vacuumAfterRows rows deleted between two vacuums of the outbox table; 0: never
 * @param probeIntervalUnderLoad the probe's interval after a read that found rows, at least {@code
 *     probeInterval}
 */
public record RelayConfig(
        DataSource dataSource,
        String schema,
        String instanceId,
        Map<String, Object> producerProperties,
        int batchSize,
        int batchBytes,
        Duration leaseDuration,
        Duration idlePollInterval,
        Duration shutdownTimeout,
        int workerThreads,
        Backoff backoff,
        CircuitBreakerConfig circuitBreaker,
        ParkPolicy parkPolicy,
        MeterRegistry meterRegistry,
        int maxAttempts,
        Duration probeInterval,
        Duration probeIntervalUnderLoad,
        DataSource listenDataSource,
        PublishMode publishMode,
        String transactionalIdPrefix,
        int vacuumAfterRows) {

    public RelayConfig {
        producerProperties = Map.copyOf(producerProperties);
        // the shard loops do not ask an open breaker for a permit, so only its own timer can half-open it
        circuitBreaker = CircuitBreakerConfig.from(circuitBreaker)
                .automaticTransitionFromOpenToHalfOpenEnabled(true)
                .build();
    }

    /**
     * @return how often leases and the heartbeat are renewed: a third of the lease (in whole nanoseconds,
     *     as {@code dividedBy(3)} would give, without its decimal arithmetic: each shard's idle wait asks
     *     for it after every round)
     */
    public Duration renewInterval() {
        return Duration.ofNanos(leaseDuration.toNanos() / 3);
    }
}
