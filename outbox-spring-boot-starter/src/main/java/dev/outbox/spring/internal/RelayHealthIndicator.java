package dev.outbox.spring.internal;

import dev.outbox.relay.Relay;
import org.springframework.boot.health.contributor.AbstractHealthIndicator;
import org.springframework.boot.health.contributor.Health;

/**
 * The embedded relay's health: UP when it is live and ready (PostgreSQL and Kafka answered lately),
 * {@link OutboxHealth#DEGRADED} when it is live but waiting for one of them, DOWN when its loops are
 * not running. A Kafka outage, which the outbox exists to absorb, thus does not turn the
 * application's overall health DOWN.
 */
public final class RelayHealthIndicator extends AbstractHealthIndicator {
    private final Relay relay;

    public RelayHealthIndicator(Relay relay) {
        super("outbox relay health check failed");
        this.relay = relay;
    }

    @Override
    protected void doHealthCheck(Health.Builder builder) {
        boolean live = relay.isLive();
        boolean ready = relay.isReady();
        (live ? ready ? builder.up() : builder.status(OutboxHealth.DEGRADED) : builder.down())
                .withDetail("instanceId", relay.instanceId())
                .withDetail("live", live)
                .withDetail("ready", ready)
                .withDetail("ownedShards", relay.ownedShards().size());
    }
}
